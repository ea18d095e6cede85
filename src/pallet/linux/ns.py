"""Namespaces: unshare(2), setns(2) and the OCI names for them."""

from __future__ import annotations

import os

from pallet.linux.libc import _b, check, libc

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


def unshare(flags: int) -> None:
    check(libc.unshare(flags), "unshare")


def setns(fd: int, nstype: int = 0) -> None:
    check(libc.setns(fd, nstype), "setns")


def sethostname(name: str) -> None:
    b = _b(name)
    check(libc.sethostname(b, len(b)), "sethostname")


def setdomainname(name: str) -> None:
    b = _b(name)
    check(libc.setdomainname(b, len(b)), "setdomainname")


def supported() -> list[str]:
    """OCI namespace types this kernel offers (from /proc/self/ns)."""
    have = set(os.listdir("/proc/self/ns"))
    return [t for t, (_, n) in NAMESPACES.items() if n in have]
