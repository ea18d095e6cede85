"""config.json: the default document (`pallet-runtime spec`) and loading with basic checks."""

from __future__ import annotations

import os

from pallet.errors import RuntimeFailure
from pallet.jsonfast import loads
from pallet.runtime.state import OCI_VERSION


class InvalidConfig(RuntimeFailure):
    pass


DEFAULT_CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
MASKED = ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
          "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"]
READONLY = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]


def default_spec(*, rootless: bool = False) -> dict:
    """What `runc spec` writes (same defaults), optionally for a rootless container."""
    spec: dict = {
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": True,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {k: list(DEFAULT_CAPS) for k in ("bounding", "effective", "permitted")},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "pallet",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
        ],
        "linux": {
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},
            "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount", "cgroup")],
            "maskedPaths": list(MASKED),
            "readonlyPaths": list(READONLY),
        },
    }
    if rootless:
        uid, gid = os.getuid(), os.getgid()
        linux = spec["linux"]
        linux["namespaces"] = [n for n in linux["namespaces"] if n["type"] != "network"] + [{"type": "user"}]
        linux["uidMappings"] = [{"containerID": 0, "hostID": uid, "size": 1}]
        linux["gidMappings"] = [{"containerID": 0, "hostID": gid, "size": 1}]
        del linux["resources"]
        spec["mounts"] = [m for m in spec["mounts"] if m["destination"] not in ("/sys", "/sys/fs/cgroup")] + [
            {"destination": "/sys", "type": "none", "source": "/sys", "options": ["rbind", "nosuid", "noexec",
                                                                                  "nodev", "ro"]}]
        for m in spec["mounts"]:
            if m["destination"] == "/dev/pts":
                m["options"].remove("gid=5")
    return spec


_NS_TYPES = {"pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time"}


def load_config(bundle: str) -> dict:
    path = os.path.join(bundle, "config.json")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise InvalidConfig(f"JSON specification file {path} not found") from None
    except OSError as e:
        raise InvalidConfig(f"cannot read {path}: {e.strerror}") from None
    try:
        cfg = loads(data)
    except ValueError as e:
        raise InvalidConfig(f"{path} is not valid JSON: {e}") from None
    if not isinstance(cfg, dict):
        raise InvalidConfig(f"{path} is not a JSON object")
    validate(cfg)
    return cfg


def validate(cfg: dict) -> None:
    """The checks the kernel would not make for us (or would make with a worse message)."""
    version = cfg.get("ociVersion")
    if not isinstance(version, str):
        raise InvalidConfig("config.json: ociVersion is missing")
    nums = version.split("-", 1)[0].split("+", 1)[0].split(".")
    if len(nums) != 3 or not all(n.isdigit() for n in nums) or nums[0] != "1":
        raise InvalidConfig(f"config.json: unsupported ociVersion {version!r} (this runtime implements 1.x)")
    proc = cfg.get("process")
    if proc is None:
        proc = {"args": ["-"]}  # optional in the spec: such a container can be created, not started
    if not isinstance(proc, dict):
        raise InvalidConfig("config.json: process must be an object")
    args = proc.get("args")
    if not isinstance(args, list) or not args or not all(isinstance(a, str) for a in args):
        raise InvalidConfig("config.json: process.args must be a non-empty list of strings")
    cwd = proc.get("cwd", "/")
    if not isinstance(cwd, str) or not cwd.startswith("/"):
        raise InvalidConfig(f"config.json: process.cwd {cwd!r} must be an absolute path")
    root = cfg.get("root")
    if not isinstance(root, dict) or not isinstance(root.get("path"), str):
        raise InvalidConfig("config.json: root.path is missing")
    check_types(cfg)
    linux = cfg.get("linux") or {}
    seen = set()
    for n in linux.get("namespaces") or ():
        t = n.get("type")
        if t not in _NS_TYPES:
            raise InvalidConfig(f"config.json: unknown namespace type {t!r}")
        if t in seen:
            raise InvalidConfig(f"config.json: namespace {t} listed twice")
        seen.add(t)
        if n.get("path") and not os.path.exists(n["path"]):
            raise InvalidConfig(f"namespace {t} path {n['path']} does not exist")
    if (linux.get("uidMappings") or linux.get("gidMappings")) and "user" not in seen:
        raise InvalidConfig("config.json: uidMappings/gidMappings need a user namespace")
    for m in cfg.get("mounts") or ():
        if not isinstance(m, dict) or not isinstance(m.get("destination"), str):
            raise InvalidConfig("config.json: every mount needs a destination")


# -- the JSON types of the fields the runtime reads (runc: `json: cannot unmarshal ...`) -----------

def _is_int(v, lo: int, hi: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def _uint32(v) -> bool:
    return _is_int(v, 0, 2 ** 32 - 1)


def _int64(v) -> bool:
    return _is_int(v, -(2 ** 63), 2 ** 63 - 1)


def _uint64(v) -> bool:
    return _is_int(v, 0, 2 ** 64 - 1)


def _strs(v) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


def _objs(v) -> bool:
    return isinstance(v, list) and all(isinstance(x, dict) for x in v)


_STR = (lambda v: isinstance(v, str), "a string")
_BOOL = (lambda v: isinstance(v, bool), "true or false")
_OBJ = (lambda v: isinstance(v, dict), "an object")
_STRS = (_strs, "a list of strings")
_OBJS = (_objs, "a list of objects")
_U32 = (_uint32, "an integer 0-4294967295")
_I64 = (_int64, "an integer")
_U64 = (_uint64, "a non-negative integer")
_STRMAP = (lambda v: isinstance(v, dict) and all(isinstance(x, str) for x in v.values()),
           "an object of strings")

# dotted path (`*`: every element of a list or every value of an object) -> (check, what it must be)
_TYPES: dict[str, tuple] = {
    "hostname": _STR, "domainname": _STR, "mounts": _OBJS, "annotations": _STRMAP,
    "mounts.*.type": _STR, "mounts.*.source": _STR, "mounts.*.options": _STRS,
    "process.terminal": _BOOL, "process.env": _STRS, "process.user": _OBJ,
    "process.user.uid": _U32, "process.user.gid": _U32, "process.user.umask": _U32,
    "process.user.additionalGids": (lambda v: isinstance(v, list) and all(_uint32(x) for x in v),
                                    "a list of integers 0-4294967295"),
    "process.capabilities": _OBJ, "process.capabilities.*": _STRS,
    "process.rlimits": _OBJS, "process.rlimits.*.type": _STR, "process.rlimits.*.soft": _U64,
    "process.rlimits.*.hard": _U64, "process.noNewPrivileges": _BOOL, "process.oomScoreAdj": _I64,
    "process.apparmorProfile": _STR, "process.selinuxLabel": _STR,
    "hooks": _OBJ, "hooks.*": _OBJS, "hooks.*.*.path": _STR, "hooks.*.*.args": _STRS, "hooks.*.*.env": _STRS,
    "linux": _OBJ, "linux.namespaces": _OBJS, "linux.namespaces.*.type": _STR, "linux.namespaces.*.path": _STR,
    "linux.uidMappings": _OBJS, "linux.gidMappings": _OBJS,
    "linux.uidMappings.*.containerID": _U32, "linux.uidMappings.*.hostID": _U32, "linux.uidMappings.*.size": _U32,
    "linux.gidMappings.*.containerID": _U32, "linux.gidMappings.*.hostID": _U32, "linux.gidMappings.*.size": _U32,
    "linux.sysctl": _STRMAP, "linux.maskedPaths": _STRS, "linux.readonlyPaths": _STRS,
    "linux.devices": _OBJS, "linux.devices.*.path": _STR, "linux.devices.*.type": _STR,
    "linux.devices.*.major": _I64, "linux.devices.*.minor": _I64, "linux.cgroupsPath": _STR,
    "linux.resources": _OBJ, "linux.resources.memory": _OBJ,
    **{f"linux.resources.memory.{k}": _I64 for k in ("limit", "reservation", "swap", "kernel", "kernelTCP")},
    "linux.resources.memory.swappiness": _U64, "linux.resources.memory.disableOOMKiller": _BOOL,
    "linux.resources.pids": _OBJ, "linux.resources.pids.limit": _I64, "linux.resources.cpu": _OBJ,
    "linux.resources.cpu.shares": _U64, "linux.resources.cpu.quota": _I64, "linux.resources.cpu.period": _U64,
    "linux.resources.cpu.cpus": _STR, "linux.resources.cpu.mems": _STR, "linux.resources.devices": _OBJS,
    "linux.resources.unified": _STRMAP, "linux.seccomp": _OBJ, "linux.rootfsPropagation": _STR,
    "linux.timeOffsets": _OBJ, "linux.timeOffsets.*": _OBJ, "linux.timeOffsets.*.secs": _I64,
    "linux.timeOffsets.*.nanosecs": _U32,
}


def _kind(v) -> str:
    if v is None:
        return "null"
    if isinstance(v, int | float) and not isinstance(v, bool):
        return str(v)
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "a list",
            dict: "an object"}.get(type(v), type(v).__name__)


def check_types(cfg: dict) -> None:
    """Every field the runtime reads has its JSON type, or one line names it (never a Python error
    from deep inside the setup): `config.json: process.env must be a list of strings (got a string)`."""
    for path, (ok, what) in _TYPES.items():
        for where, v in _lookup(cfg, path.split("."), ""):
            if v is not None and not ok(v):
                raise InvalidConfig(f"config.json: {where} must be {what} (got {_kind(v)})")


def _lookup(node, parts: list[str], where: str):
    if not parts:
        yield where, node
        return
    head, rest = parts[0], parts[1:]
    if head == "*":
        items = enumerate(node) if isinstance(node, list) else node.items() if isinstance(node, dict) else ()
        for k, v in items:
            yield from _lookup(v, rest, f"{where}[{k}]" if isinstance(node, list) else f"{where}.{k}")
    elif isinstance(node, dict) and head in node:
        yield from _lookup(node[head], rest, f"{where}.{head}" if where else head)
