"""Flags for storage, limits, security, restart and health -> docker's HostConfig / Config fields.

Pure parsing and validation, done before anything is created, so bad input is one
sentence, exit 125, and leaves nothing behind:

    host, config = parse_flags({"volume": ["data:/data"], "cap_add": ["NET_ADMIN"], ...})
    host.update(check_resources(Resources(Memory=64 << 20, NanoCpus=1_500_000_000)))

The resource limits and the process/privilege fields are records already (`options.Resources`,
`options.HostOptions`, docker's field names): the checks raise `InvalidField` naming the field, and the
CLI says the same sentence with its flag. The other flags still come as click's keyword arguments.

Field names and value shapes follow docker's API (Binds, Mounts, Tmpfs, Memory,
NanoCpus, Ulimits, Devices, CapAdd, RestartPolicy, Config.Healthcheck, ...).
"""

from __future__ import annotations

import os
import re
import resource
import stat

from pallet.engine.options import HostOptions, Resources
from pallet.engine.units import parse_duration
from pallet.errors import InvalidField, PalletError

TYPE_CHECKING = False  # typing is not imported at run time (start-up)
if TYPE_CHECKING:
    from typing import Any

def host_cpus() -> set[int]:
    """The CPUs this process may run on (what a container's cpuset can use)."""
    try:
        return set(os.sched_getaffinity(0))
    except OSError:
        return set(range(os.cpu_count() or 1))


def parse_cpuset(text: str, field: str = "CpusetCpus") -> set[int]:
    out: set[int] = set()
    for part in text.split(","):
        m = re.fullmatch(r"\s*(\d+)(?:-(\d+))?\s*", part)
        if not m:
            raise InvalidField(field, "invalid value {text!r} for {name}: give CPUs like 0-1 or 0,2", text=text)
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        if hi < lo:
            raise InvalidField(field, "invalid value {text!r} for {name}: {lo}-{hi} is an empty range", text=text,
                               lo=lo, hi=hi)
        out.update(range(lo, hi + 1))
    return out


def _fmt_cpus(cpus: set[int]) -> str:
    s = sorted(cpus)
    out, i = [], 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and s[j + 1] == s[j] + 1:
            j += 1
        out.append(str(s[i]) if i == j else f"{s[i]}-{s[j]}")
        i = j + 1
    return ",".join(out)


# ---- capabilities ----------------------------------------------------------------------------
ALL_CAPS = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID",
    "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
]


def host_caps() -> list[str]:
    """The capabilities this kernel knows (cap_last_cap) and we hold in our bounding set."""
    try:
        last = int(open("/proc/sys/kernel/cap_last_cap").read())
    except (OSError, ValueError):
        last = len(ALL_CAPS) - 1
    bnd = (1 << (last + 1)) - 1
    try:   # never more than we hold ourselves (pallet may itself run in a container)
        for line in open("/proc/self/status"):
            if line.startswith("CapBnd:"):
                bnd = int(line.split()[1], 16)
    except (OSError, ValueError):
        pass
    return [c for i, c in enumerate(ALL_CAPS[: last + 1]) if bnd >> i & 1]


def normalize_cap(name: str) -> str:
    n = name.strip().upper()
    if n == "ALL":
        return "ALL"
    if not n.startswith("CAP_"):
        n = "CAP_" + n
    if n not in ALL_CAPS:
        raise PalletError(f"unknown capability: {name!r}")
    return n


# ---- sysctls (docker's namespaced whitelist) ---------------------------------------------------
_IPC_SYSCTLS = {"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall", "kernel.shmmax",
                "kernel.shmmni", "kernel.shm_rmid_forced"}


def check_sysctl(key: str, network: str) -> None:
    if key in _IPC_SYSCTLS or key.startswith("fs.mqueue."):
        return
    if key.startswith("net."):
        if network == "host":
            raise PalletError(f"sysctl {key!r} is not allowed with --network host (it would change the host)")
        return
    if key == "kernel.domainname":
        return
    raise PalletError(f"sysctl {key!r} is not allowed: only namespaced sysctls (kernel.msg*, kernel.sem, "
                      "kernel.shm*, fs.mqueue.*, net.*) can be set for a container")


# Linux RLIMIT_* numbers (the resource module lacks some, e.g. RLIMIT_LOCKS)
ULIMITS = {"cpu": 0, "fsize": 1, "data": 2, "stack": 3, "core": 4, "rss": 5, "nproc": 6, "nofile": 7,
           "memlock": 8, "as": 9, "locks": 10, "sigpending": 11, "msgqueue": 12, "nice": 13, "rtprio": 14,
           "rttime": 15}


def parse_ulimit(text: str) -> dict:
    name, eq, val = text.partition("=")
    name = name.strip().lower()
    if not eq or name not in ULIMITS:
        raise PalletError(f"invalid --ulimit {text!r}: expected NAME=SOFT[:HARD] with NAME one of "
                          f"{', '.join(sorted(ULIMITS))}")
    soft_s, _, hard_s = val.partition(":")
    try:
        soft = int(soft_s)
        hard = int(hard_s) if hard_s else soft
    except ValueError:
        raise PalletError(f"invalid --ulimit {text!r}: limits are integers (-1 for unlimited)") from None
    if soft != -1 and hard != -1 and soft > hard:
        raise PalletError(f"invalid --ulimit {text!r}: the soft limit {soft} is above the hard limit {hard}")
    _, host_hard = resource.getrlimit(ULIMITS[name])
    if host_hard != resource.RLIM_INFINITY:
        for v in (soft, hard):
            if v == -1 or v > host_hard:
                raise PalletError(f"--ulimit {name}={val}: {'unlimited' if v == -1 else v} is above this host's "
                                  f"hard limit {host_hard} (raising it needs CAP_SYS_RESOURCE on the host)")
    return {"Name": name, "Soft": soft, "Hard": hard}


def parse_device(text: str) -> dict:
    parts = text.split(":")
    if len(parts) > 3 or not parts[0]:
        raise PalletError(f"invalid --device {text!r}: expected HOST[:CONTAINER][:PERMISSIONS]")
    host = parts[0]
    ctr = host
    perms = "rwm"
    if len(parts) == 2:
        if re.fullmatch(r"[rwm]+", parts[1]):
            perms = parts[1]
        else:
            ctr = parts[1]
    elif len(parts) == 3:
        ctr, perms = parts[1], parts[2]
    if not re.fullmatch(r"[rwm]{1,3}", perms):
        raise PalletError(f"invalid --device {text!r}: permissions are a combination of r, w and m")
    if not host.startswith("/") or not ctr.startswith("/"):
        raise PalletError(f"invalid --device {text!r}: paths must be absolute")
    try:
        st = os.stat(host)
    except OSError as e:
        raise PalletError(f"error gathering device information for {host!r}: {e.strerror.lower()}") from None
    if not (stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)):
        raise PalletError(f"--device {host}: not a character or block device")
    return {"PathOnHost": host, "PathInContainer": ctr, "CgroupPermissions": perms}


def parse_restart(text: str) -> dict:
    name, _, n = text.partition(":")
    if name not in ("no", "always", "on-failure", "unless-stopped"):
        raise PalletError(f"invalid restart policy {text!r}: no, always, on-failure[:N] or unless-stopped")
    if n and name != "on-failure":
        raise PalletError(f"invalid restart policy {text!r}: only on-failure takes a maximum retry count")
    try:
        count = int(n) if n else 0
        if count < 0:
            raise ValueError
    except ValueError:
        raise PalletError(f"invalid restart policy {text!r}: the retry count must be a number >= 0") from None
    return {"Name": name, "MaximumRetryCount": count}


def _int(v: Any, what: str, lo: int | None = None, hi: int | None = None) -> int:
    try:
        n = int(v)
    except (TypeError, ValueError):
        raise PalletError(f"invalid {what} {v!r}: a whole number") from None
    if (lo is not None and n < lo) or (hi is not None and n > hi):
        raise PalletError(f"invalid {what} {n}: must be between {lo} and {hi}")
    return n


def _in_range(r: Resources, field: str, lo: int | None = None, hi: int | None = None) -> None:
    n = getattr(r, field)
    if (lo is not None and n < lo) or (hi is not None and n > hi):
        raise InvalidField(field, "invalid {name} {n}: must be between {lo} and {hi}", n=n, lo=lo, hi=hi)


def check_resources(r: Resources) -> dict:
    """docker's checks of the resource limits (run/create and update) -> the HostConfig fields given.
    A bad value raises InvalidField naming the field (docker's own sentences where it has them)."""
    if r.Memory and r.Memory < 6 * 1024 * 1024:
        raise InvalidField("Memory", "Minimum memory limit allowed is 6MB")
    if r.MemorySwap is not None and r.MemorySwap != -1:
        if not r.Memory:
            raise InvalidField("MemorySwap", "you should always set the memory limit when using the memory swap limit")
        if r.MemorySwap < r.Memory:
            raise InvalidField("MemorySwap", "Minimum memoryswap limit should be larger than memory limit, see usage")
    if r.MemoryReservation is not None and r.Memory and r.MemoryReservation > r.Memory:
        raise InvalidField("MemoryReservation",
                           "Minimum memory limit can not be less than memory reservation limit, see usage")
    if r.NanoCpus is not None:
        n = len(host_cpus())
        if r.NanoCpus < 10_000_000 or r.NanoCpus > n * 1_000_000_000:
            raise InvalidField("NanoCpus", "range of CPUs is from 0.01 to {n}.00, as there are only {n} CPUs "
                               "available", n=n)
    if r.CpuShares is not None:
        _in_range(r, "CpuShares", 0, 262144)
    if r.CpuPeriod is not None:
        _in_range(r, "CpuPeriod", 1000, 1000000)
    if r.CpuQuota is not None:
        _in_range(r, "CpuQuota", -1)
    if r.CpusetCpus is not None:
        want = parse_cpuset(r.CpusetCpus, "CpusetCpus")
        have = host_cpus()
        if not want <= have:
            raise InvalidField("CpusetCpus", "Requested CPUs are not available - requested {want}, available: "
                               "{have}", want=r.CpusetCpus, have=_fmt_cpus(have))
    if r.CpusetMems is not None:
        want = parse_cpuset(r.CpusetMems, "CpusetMems")
        try:
            have = parse_cpuset(open("/sys/devices/system/node/online").read().strip())
        except OSError:
            have = {0}
        if not want <= have:
            raise InvalidField("CpusetMems", "Requested memory nodes are not available - requested {want}",
                               want=r.CpusetMems)
    if r.PidsLimit is not None:
        _in_range(r, "PidsLimit", -1)
    if r.BlkioWeight is not None:
        _in_range(r, "BlkioWeight", 0, 1000)
        if r.BlkioWeight and r.BlkioWeight < 10:
            raise InvalidField("BlkioWeight", "invalid {name}: the range is from 10 to 1000")
    return r.given()


def check_host_options(h: HostOptions) -> dict:
    """The checks of HostConfig's process and privilege fields -> the fields given (capabilities as
    CAP_NAME). A bad value raises InvalidField naming the field."""
    if h.ShmSize is not None and h.ShmSize <= 0:
        raise InvalidField("ShmSize", "invalid {name}: must be greater than 0")
    if h.OomScoreAdj is not None and not -1000 <= h.OomScoreAdj <= 1000:
        raise InvalidField("OomScoreAdj", "invalid {name} {n}: must be between -1000 and 1000", n=h.OomScoreAdj)
    out = h.given()
    for f in ("CapAdd", "CapDrop"):
        if f in out:
            out[f] = [normalize_cap(c) for c in out[f]]
    return out


def parse_flags(kw: dict) -> tuple[dict, dict]:
    """Every flag of this module's concern from a click kwargs dict -> (HostConfig part, Config part).
    (The resource limits and the process/privilege fields are not here: the CLI gives them as
    `Resources` and `HostOptions`, see check_resources and check_host_options.)"""
    from pallet.engine import volumes

    host: dict[str, Any] = {}
    config: dict[str, Any] = {}
    network = kw.get("network") or "none"
    if not isinstance(network, str):       # (several --network: the first is the mode)
        network = network[0] if network else "none"
    binds = list(kw.get("volume") or ())
    for b in binds:
        volumes.parse_bind(b)           # validates
    if binds:
        host["Binds"] = binds
    mounts = [volumes.parse_mount(m) for m in kw.get("mount") or ()]
    if mounts:
        host["Mounts"] = mounts
    tmpfs = {}
    for t in kw.get("tmpfs") or ():
        path, _, opts = t.partition(":")
        if not path.startswith("/"):
            raise PalletError(f"invalid --tmpfs {t!r}: the path must be absolute")
        volumes.tmpfs_options(opts, t)
        tmpfs[os.path.normpath(path)] = opts
    if tmpfs:
        host["Tmpfs"] = tmpfs
    volumes.check_duplicates(host)
    vfrom = []
    for v in kw.get("volumes_from") or ():
        ref, _, mode = v.partition(":")
        if not ref or mode not in ("", "ro", "rw"):
            raise PalletError(f"invalid --volumes-from {v!r}: expected CONTAINER[:ro|rw]")
        vfrom.append(v)
    if vfrom:
        host["VolumesFrom"] = vfrom
    ulimits = [parse_ulimit(u) for u in kw.get("ulimit") or ()]
    if ulimits:
        host["Ulimits"] = ulimits
    devices = [parse_device(d) for d in kw.get("device") or ()]
    if devices:
        host["Devices"] = devices
    for flag, key, modes in (("pid", "PidMode", ("", "host", "private")),
                             ("ipc", "IpcMode", ("", "host", "private", "shareable"))):
        mode = kw.get(flag)
        if mode is None:
            continue
        if mode not in modes:
            raise PalletError(f"invalid --{flag} {mode!r}: " + " or ".join(m for m in modes if m) +
                              (" (container:NAME is not supported)" if mode.startswith("container:") else ""))
        if mode:
            host[key] = mode
    secopts = []
    for o in kw.get("security_opt") or ():
        k, sep, v = o.replace(":", "=", 1).partition("=") if "=" not in o else o.partition("=")
        if k == "no-new-privileges":
            if sep and v not in ("true", "false"):
                raise PalletError(f"invalid --security-opt {o!r}: no-new-privileges[=true|false]")
        elif k == "seccomp":
            if not v:
                raise PalletError(f"invalid --security-opt {o!r}: seccomp=unconfined or seccomp=PROFILE.json")
            if v != "unconfined":
                load_seccomp_file(v)
        elif k == "systempaths":
            if v != "unconfined":
                raise PalletError(f"invalid --security-opt {o!r}: systempaths=unconfined")
        elif k in ("apparmor", "label", "mask", "unmask"):
            pass
        else:
            raise PalletError(f"invalid --security-opt {o!r}: seccomp=, no-new-privileges, apparmor=, label=")
        secopts.append(o)
    if secopts:
        host["SecurityOpt"] = secopts
    sysctls = {}
    for s in kw.get("sysctl") or ():
        k, eq, v = s.partition("=")
        if not eq or not k:
            raise PalletError(f"invalid --sysctl {s!r}: expected KEY=VALUE")
        check_sysctl(k.strip(), network)
        sysctls[k.strip()] = v
    if sysctls:
        host["Sysctls"] = sysctls
    dns = list(kw.get("dns") or ())
    for d in dns:
        import ipaddress

        try:
            ipaddress.ip_address(d)
        except ValueError:
            raise PalletError(f"invalid --dns {d!r}: a name server is an IP address") from None
    if dns:
        host["Dns"] = dns
    if kw.get("dns_search"):
        host["DnsSearch"] = list(kw["dns_search"])
    if kw.get("dns_option"):
        host["DnsOptions"] = list(kw["dns_option"])
    if kw.get("restart"):
        host["RestartPolicy"] = parse_restart(kw["restart"])
        if host["RestartPolicy"]["Name"] != "no" and kw.get("auto_remove"):
            raise PalletError("Conflicting options: --restart and --rm")
    hc: dict[str, Any] = {}
    if kw.get("no_healthcheck"):
        if any(kw.get(k) for k in ("health_cmd", "health_interval", "health_timeout", "health_retries",
                                   "health_start_period")):
            raise PalletError("--no-healthcheck conflicts with --health-* options")
        hc["Test"] = ["NONE"]
    if kw.get("health_cmd"):
        hc["Test"] = ["CMD-SHELL", kw["health_cmd"]]
    for opt, key in (("health_interval", "Interval"), ("health_timeout", "Timeout"),
                     ("health_start_period", "StartPeriod"), ("health_start_interval", "StartInterval")):
        if kw.get(opt):
            ns = parse_duration(kw[opt], "--" + opt.replace("_", "-"))
            if ns and ns < 1_000_000:
                raise PalletError(f"--{opt.replace('_', '-')} cannot be less than 1ms")
            hc[key] = ns
    if kw.get("health_retries") not in (None, ""):
        hc["Retries"] = _int(kw["health_retries"], "--health-retries", 0)
    if hc:
        config["Healthcheck"] = hc
    return host, config


def load_seccomp_file(path: str) -> dict:
    import json

    try:
        with open(path) as f:
            prof = json.load(f)
    except OSError as e:
        raise PalletError(f"cannot read seccomp profile {path}: {e.strerror}") from None
    except ValueError as e:
        raise PalletError(f"seccomp profile {path} is not valid JSON: {e}") from None
    if not isinstance(prof, dict) or "defaultAction" not in prof:
        raise PalletError(f"seccomp profile {path} has no defaultAction")
    return prof


def merge_healthcheck(image: dict | None, flags: dict | None) -> dict | None:
    """docker's merge: flags override the image's Healthcheck field by field."""
    if not image and not flags:
        return None
    out = dict(image or {})
    out.update(flags or {})
    return out
