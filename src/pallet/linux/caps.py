"""Capabilities: names, the bounding and ambient sets (prctl) and capset(2)."""

from __future__ import annotations

import os

from pallet.linux import trace as T
from pallet.linux.libc import Structure, byref, c_int, c_uint32, check, get_errno, libc
from pallet.linux.prctl import (
    PR_CAP_AMBIENT,
    PR_CAP_AMBIENT_CLEAR_ALL,
    PR_CAP_AMBIENT_RAISE,
    PR_CAPBSET_DROP,
    _prctl,
    prctl,
)

NAMES = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT",
    "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
    "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
]
BY_NAME = {n: i for i, n in enumerate(NAMES)}


def last_cap() -> int:
    try:
        fd = os.open("/proc/sys/kernel/cap_last_cap", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return len(NAMES) - 1
    try:
        return int(os.read(fd, 32))
    finally:
        os.close(fd)


def mask(names: list[str] | None, *, what: str = "capability") -> int:
    """Bit mask of a list of capability names; unknown names raise ValueError."""
    m = 0
    for n in names or ():
        i = BY_NAME.get(n.upper() if n.upper().startswith("CAP_") else "CAP_" + n.upper())
        if i is None:
            raise ValueError(f"unknown {what} {n!r}")
        m |= 1 << i
    return m


def drop_bounding(keep: int, last: int) -> None:
    r = T.recorder
    for i in range(last + 1):
        if not keep & (1 << i):
            t = T.now() if r else 0
            ret = _prctl(PR_CAPBSET_DROP, i, 0, 0, 0)
            if r:
                r.done("prctl", t, {"option": "PR_CAPBSET_DROP", "args": [i, 0, 0, 0], "cap": names_of(1 << i)[0]},
                       get_errno() if ret < 0 else None)
            if ret < 0:
                check(-1, f"prctl(PR_CAPBSET_DROP, {i})")


def names_of(m: int) -> list[str]:
    """The capability names of a bit mask."""
    return [NAMES[i] if i < len(NAMES) else str(i) for i in range(64) if m >> i & 1]


class _Header(Structure):
    _fields_ = [("version", c_uint32), ("pid", c_int)]


class _Data(Structure):
    _fields_ = [("effective", c_uint32), ("permitted", c_uint32), ("inheritable", c_uint32)]


_LINUX_CAPABILITY_VERSION_3 = 0x20080522


_Data2 = _Data * 2  # the two 32-bit halves of each set (_LINUX_CAPABILITY_U32S_3)


def capset(effective: int, permitted: int, inheritable: int) -> None:
    hdr = _Header(_LINUX_CAPABILITY_VERSION_3, 0)
    lo, hi = 0xFFFFFFFF, 32
    data = _Data2(_Data(effective & lo, permitted & lo, inheritable & lo),
                  _Data(effective >> hi & lo, permitted >> hi & lo, inheritable >> hi & lo))
    r = T.recorder
    t = T.now() if r else 0
    ret = libc.capset(byref(hdr), data)
    if r:
        r.done("capset", t, {"effective": names_of(effective), "permitted": names_of(permitted),
                             "inheritable": names_of(inheritable)}, get_errno() if ret < 0 else None)
    check(ret, "capset")


def set_ambient(ambient: int, last: int) -> list[str]:
    """Raise the ambient set; returns the capabilities the kernel refused (not both permitted and
    inheritable) — runc ignores those too, so a config listing ambient caps alone still runs."""
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)
    refused = []
    for i in range(last + 1):
        if ambient & (1 << i):
            try:
                prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, i)
            except PermissionError:
                refused.append(NAMES[i] if i < len(NAMES) else str(i))
    return refused
