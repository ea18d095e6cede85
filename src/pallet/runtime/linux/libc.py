"""The C library handle and syscall numbers shared by the other kernel modules."""

from __future__ import annotations

import ctypes
import os

libc = ctypes.CDLL(None, use_errno=True)

_MACHINE = os.uname().machine

# syscall numbers glibc 2.36 has no wrapper for
_SYSCALLS = {
    "x86_64": {"pivot_root": 155, "setns": 308, "close_range": 436},
    "aarch64": {"pivot_root": 41, "setns": 268, "close_range": 436},
}


def sysno(name: str) -> int:
    try:
        return _SYSCALLS[_MACHINE][name]
    except KeyError:
        raise OSError(38, f"{name}: no syscall number known for {_MACHINE}") from None


def check(ret: int, what: str) -> int:
    """Raise OSError(errno, 'what: strerror') when a libc call returned -1."""
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return ret


def _b(s: str | bytes | None) -> bytes | None:
    if s is None or isinstance(s, bytes):
        return s
    return os.fsencode(s)
