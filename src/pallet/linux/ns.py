"""Namespaces: unshare(2), setns(2) and the OCI names for them."""

from __future__ import annotations

import os

from pallet.linux import trace as T
from pallet.linux.libc import _b, check, get_errno, libc

CLONE_NEWTIME = 0x00000080
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

# OCI type -> (clone flag, name under /proc/PID/ns)
NAMESPACES: dict[str, tuple[int, str]] = {
    "user": (CLONE_NEWUSER, "user"),
    "mount": (CLONE_NEWNS, "mnt"),
    "pid": (CLONE_NEWPID, "pid"),
    "network": (CLONE_NEWNET, "net"),
    "ipc": (CLONE_NEWIPC, "ipc"),
    "uts": (CLONE_NEWUTS, "uts"),
    "cgroup": (CLONE_NEWCGROUP, "cgroup"),
    "time": (CLONE_NEWTIME, "time"),
}

# the order setns must follow: user first (it grants the rights for the others), mount last
JOIN_ORDER = ("user", "ipc", "uts", "network", "pid", "cgroup", "time", "mount")


def flag_names(flags: int) -> list[str]:
    """CLONE_NEW* names of a flag word, as strace prints them (CLONE_NEWNS, CLONE_NEWPID, ...)."""
    return [n for n, v in _FLAG_NAMES if flags & v]


_FLAG_NAMES = [("CLONE_NEWNS", CLONE_NEWNS), ("CLONE_NEWCGROUP", CLONE_NEWCGROUP), ("CLONE_NEWUTS", CLONE_NEWUTS),
               ("CLONE_NEWIPC", CLONE_NEWIPC), ("CLONE_NEWUSER", CLONE_NEWUSER), ("CLONE_NEWPID", CLONE_NEWPID),
               ("CLONE_NEWNET", CLONE_NEWNET), ("CLONE_NEWTIME", CLONE_NEWTIME)]


def unshare(flags: int) -> None:
    r = T.recorder
    t = T.now() if r else 0
    ret = libc.unshare(flags)
    if r:
        r.done("unshare", t, {"flags": flag_names(flags)}, get_errno() if ret < 0 else None)
    check(ret, "unshare")


def setns(fd: int, nstype: int = 0) -> None:
    r = T.recorder
    t = T.now() if r else 0
    ret = libc.setns(fd, nstype)
    if r:
        target = ""
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            pass
        r.done("setns", t, {"fd": fd, "ns": target, "nstype": flag_names(nstype)}, get_errno() if ret < 0 else None)
    check(ret, "setns")


def _set_name(op: str, call, name: str) -> None:
    b = _b(name)
    r = T.recorder
    t = T.now() if r else 0
    ret = call(b, len(b))
    if r:
        r.done(op, t, {"name": name}, get_errno() if ret < 0 else None)
    check(ret, op)


def sethostname(name: str) -> None:
    _set_name("sethostname", libc.sethostname, name)


def setdomainname(name: str) -> None:
    _set_name("setdomainname", libc.setdomainname, name)


def supported() -> list[str]:
    """OCI namespace types this kernel offers (from /proc/self/ns)."""
    have = set(os.listdir("/proc/self/ns"))
    return [t for t, (_, n) in NAMESPACES.items() if n in have]
