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
