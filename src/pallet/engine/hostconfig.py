"""docker's HostConfig / Config fields for storage, limits, security, restart and health, checked.

Pure parsing and validation, done before anything is created, so bad input is one
sentence, exit 125, and leaves nothing behind:

    host = check_resources(Resources(Memory=64 << 20, NanoCpus=1_500_000_000))
    host.update(check_host_settings(HostSettings(Binds=["data:/data"]), network="bridge"))

The options are records with docker's field names (`options.Resources`, `HostOptions`, `HostSettings`,
`Healthcheck`): the checks raise `InvalidField` naming the field (a message may also say `{text}`: the
value as docker's CLI writes it), and the CLI says the same sentence with its flag and the text the
user gave. Nothing here knows a flag.

Field names and value shapes follow docker's API (Binds, Mounts, Tmpfs, Memory,
NanoCpus, Ulimits, Devices, CapAdd, RestartPolicy, Config.Healthcheck, ...).
"""

from __future__ import annotations

import os
import re
import stat

from pallet.engine.options import Healthcheck, HostOptions, HostSettings, Resources
from pallet.errors import InvalidField, PalletError


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
            raise InvalidField("Sysctls", "sysctl {key!r} is not allowed with {network} host (it would change the "
                               "host)", key=key, network="NetworkMode")
        return
    if key == "kernel.domainname":
        return
    raise InvalidField("Sysctls", "sysctl {key!r} is not allowed: only namespaced sysctls (kernel.msg*, kernel.sem, "
                       "kernel.shm*, fs.mqueue.*, net.*) can be set for a container", key=key)


# Linux RLIMIT_* numbers (the resource module lacks some, e.g. RLIMIT_LOCKS)
ULIMITS = {"cpu": 0, "fsize": 1, "data": 2, "stack": 3, "core": 4, "rss": 5, "nproc": 6, "nofile": 7,
           "memlock": 8, "as": 9, "locks": 10, "sigpending": 11, "msgqueue": 12, "nice": 13, "rtprio": 14,
           "rttime": 15}


def check_ulimit(u: dict) -> dict:
    """One of HostConfig.Ulimits ({Name, Soft, Hard}) checked against the names and this host's hard
    limits. The messages say `{text}` (the item as NAME=SOFT[:HARD]) and `{item}` (NAME=VALUES)."""
    name, soft, hard = u.get("Name"), u.get("Soft"), u.get("Hard")
    vals = f"{soft}" if hard == soft else f"{soft}:{hard}"
    text = item = f"{name}={vals}"
    if name not in ULIMITS:
        raise InvalidField("Ulimits", "invalid {name} {text!r}: expected NAME=SOFT[:HARD] with NAME one of "
                           + ", ".join(sorted(ULIMITS)), text=text, item=item)
    if not isinstance(soft, int) or not isinstance(hard, int):
        raise InvalidField("Ulimits", "invalid {name} {text!r}: limits are integers (-1 for unlimited)", text=text,
                           item=item)
    if soft != -1 and hard != -1 and soft > hard:
        raise InvalidField("Ulimits", "invalid {name} {text!r}: the soft limit {soft} is above the hard limit "
                           "{hard}", text=text, item=item, soft=soft, hard=hard)
    import resource  # (a C extension: loaded only when a ulimit is given)

    _, host_hard = resource.getrlimit(ULIMITS[name])
    if host_hard != resource.RLIM_INFINITY:
        for v in (soft, hard):
            if v == -1 or v > host_hard:
                raise InvalidField("Ulimits", "{name} {item}: {v} is above this host's hard limit {host_hard} "
                                   "(raising it needs CAP_SYS_RESOURCE on the host)", text=text, item=item,
                                   v="unlimited" if v == -1 else v, host_hard=host_hard)
    return {"Name": name, "Soft": soft, "Hard": hard}


def check_device(d: dict) -> dict:
    """One of HostConfig.Devices ({PathOnHost, PathInContainer, CgroupPermissions}): absolute paths, rwm,
    and a character or block device on the host. Messages say `{text}` (HOST:CONTAINER:PERMISSIONS)."""
    host = d.get("PathOnHost") or ""
    ctr = d.get("PathInContainer") or host
    perms = d.get("CgroupPermissions") or "rwm"
    text = f"{host}:{ctr}:{perms}"
    if not re.fullmatch(r"[rwm]{1,3}", perms):
        raise InvalidField("Devices", "invalid {name} {text!r}: permissions are a combination of r, w and m", text=text)
    if not host.startswith("/") or not ctr.startswith("/"):
        raise InvalidField("Devices", "invalid {name} {text!r}: paths must be absolute", text=text)
    try:
        st = os.stat(host)
    except OSError as e:
        raise InvalidField("Devices", "error gathering device information for {host!r}: {err}", text=text, host=host,
                           err=e.strerror.lower()) from None
    if not (stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)):
        raise InvalidField("Devices", "{name} {host}: not a character or block device", text=text, host=host)
    return {"PathOnHost": host, "PathInContainer": ctr, "CgroupPermissions": perms}


RESTART_POLICIES = ("no", "always", "on-failure", "unless-stopped")


def check_restart(p: dict, auto_remove: bool = False) -> dict:
    """HostConfig.RestartPolicy ({Name, MaximumRetryCount}); messages say `{text}` (NAME[:N])."""
    name, count = p.get("Name") or "no", p.get("MaximumRetryCount") or 0
    text = f"{name}:{count}" if count else name
    if name not in RESTART_POLICIES:
        raise InvalidField("RestartPolicy", "invalid restart policy {text!r}: no, always, on-failure[:N] or "
                           "unless-stopped", text=text)
    if not isinstance(count, int) or count < 0:
        raise InvalidField("RestartPolicy", "invalid restart policy {text!r}: the retry count must be a number >= 0",
                           text=text)
    if count and name != "on-failure":
        raise InvalidField("RestartPolicy", "invalid restart policy {text!r}: only on-failure takes a maximum retry "
                           "count", text=text)
    if name != "no" and auto_remove:
        raise InvalidField("RestartPolicy", "Conflicting options: {name} and {other}", other="AutoRemove")
    return {"Name": name, "MaximumRetryCount": count}


NAMESPACE_MODES = {"PidMode": ("", "host", "private"), "IpcMode": ("", "host", "private", "shareable")}


def check_security_opt(o: str) -> None:
    k, sep, v = o.replace(":", "=", 1).partition("=") if "=" not in o else o.partition("=")
    if k == "no-new-privileges":
        if sep and v not in ("true", "false"):
            raise InvalidField("SecurityOpt", "invalid {name} {text!r}: no-new-privileges[=true|false]", text=o)
    elif k == "seccomp":
        if not v:
            raise InvalidField("SecurityOpt", "invalid {name} {text!r}: seccomp=unconfined or seccomp=PROFILE.json",
                               text=o)
        if v != "unconfined":
            load_seccomp_file(v)
    elif k == "systempaths":
        if v != "unconfined":
            raise InvalidField("SecurityOpt", "invalid {name} {text!r}: systempaths=unconfined", text=o)
    elif k not in ("apparmor", "label", "mask", "unmask"):
        raise InvalidField("SecurityOpt", "invalid {name} {text!r}: seccomp=, no-new-privileges, apparmor=, label=",
                           text=o)


def check_dns(d: str) -> None:
    import ipaddress

    try:
        ipaddress.ip_address(d)
    except ValueError:
        raise InvalidField("Dns", "invalid {name} {text!r}: a name server is an IP address", text=d) from None


def check_tmpfs(path: str, opts: str) -> None:
    from pallet.engine import volumes

    text = f"{path}:{opts}" if opts else path
    if not path.startswith("/"):
        raise InvalidField("Tmpfs", "invalid {name} {text!r}: the path must be absolute", text=text)
    volumes.tmpfs_options(opts, text)


def check_volumes_from(v: str) -> None:
    ref, _, mode = v.partition(":")
    if not ref or mode not in ("", "ro", "rw"):
        raise InvalidField("VolumesFrom", "invalid {name} {text!r}: expected CONTAINER[:ro|rw]", text=v)


def check_namespace_mode(field: str, mode: str) -> None:
    modes = NAMESPACE_MODES[field]
    if mode not in modes:
        raise InvalidField(field, "invalid {name} {text!r}: " + " or ".join(m for m in modes if m) +
                           (" (container:NAME is not supported)" if mode.startswith("container:") else ""), text=mode)


def check_host_settings(s: HostSettings, network: str = "none", auto_remove: bool = False) -> dict:
    """The checks of the rest of HostConfig (`options.HostSettings`) -> the fields given, as HostConfig has
    them. `network` is the NetworkMode (net.* sysctls would change the host's), `auto_remove` AutoRemove
    (no restart policy then). A bad value raises InvalidField naming the field."""
    from pallet.engine import volumes

    for b in s.Binds:
        volumes.parse_bind(b)           # validates
    s.Mounts = [volumes.check_mount(m) for m in s.Mounts]
    tmpfs = {}
    for path, opts in s.Tmpfs.items():
        check_tmpfs(path, opts or "")
        tmpfs[os.path.normpath(path)] = opts or ""
    s.Tmpfs = tmpfs
    out = s.given()
    volumes.check_duplicates(out)
    for v in s.VolumesFrom:
        check_volumes_from(v)
    if s.Ulimits:
        out["Ulimits"] = [check_ulimit(u) for u in s.Ulimits]
    if s.Devices:
        out["Devices"] = [check_device(d) for d in s.Devices]
    for f in NAMESPACE_MODES:
        if getattr(s, f) is not None:
            check_namespace_mode(f, getattr(s, f))
            if not getattr(s, f):
                out.pop(f, None)
    for o in s.SecurityOpt:
        check_security_opt(o)
    for k in s.Sysctls:
        check_sysctl(k, network)
    for d in s.Dns:
        check_dns(d)
    if s.RestartPolicy is not None:
        out["RestartPolicy"] = check_restart(s.RestartPolicy, auto_remove)
    return out


HEALTH_DURATIONS = ("Interval", "Timeout", "StartPeriod", "StartInterval")


def check_healthcheck(h: Healthcheck) -> dict:
    """Config.Healthcheck's checks (docker's: durations of 0 or at least 1ms, Retries >= 0) -> its fields
    given. A bad value raises InvalidField naming the field."""
    for f in HEALTH_DURATIONS:
        ns = getattr(h, f)
        if ns is not None and (ns < 0 or 0 < ns < 1_000_000):
            raise InvalidField(f, "{name} cannot be less than 1ms")
    if h.Retries is not None and h.Retries < 0:
        raise InvalidField("Retries", "invalid {name} {n}: must be between 0 and None", n=h.Retries)
    return h.given()


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
