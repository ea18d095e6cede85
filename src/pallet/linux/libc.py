"""The C library handle, the few C types the kernel modules need, and syscall numbers.

Built on `_ctypes` directly rather than the `ctypes` package: `ctypes/__init__`
(plus `struct`, `types`, `ctypes._endian`) costs a few milliseconds on every
`pallet-runtime` start, and this layer only needs dlopen, function pointers
with errno capture, simple types, structures and arrays — all in `_ctypes`.
"""

from __future__ import annotations

import _ctypes
import os
from _ctypes import POINTER, Structure, byref, get_errno  # noqa: F401 - re-exported

_MACHINE = os.uname().machine


class c_int(_ctypes._SimpleCData):
    _type_ = "i"


class c_uint(_ctypes._SimpleCData):
    _type_ = "I"


class c_ulong(_ctypes._SimpleCData):
    _type_ = "L"


class c_uint64(_ctypes._SimpleCData):
    _type_ = "Q"


class c_char_p(_ctypes._SimpleCData):
    _type_ = "z"


class c_void_p(_ctypes._SimpleCData):
    _type_ = "P"


c_uint32 = c_uint  # Linux: int is 32 bits on every supported architecture


class _FuncPtr(_ctypes.CFuncPtr):
    _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_USE_ERRNO
    _restype_ = c_int


class Library:
    """A dlopen()ed library whose attributes are C functions (int result, errno captured)."""

    def __init__(self, name: str | None) -> None:
        self._name = name
        self._handle = _ctypes.dlopen(name, os.RTLD_NOW | os.RTLD_GLOBAL)

    def __getattr__(self, name: str) -> _FuncPtr:
        if name.startswith("__"):
            raise AttributeError(name)
        f = _FuncPtr((name, self))
        setattr(self, name, f)
        return f


libc = Library(None)

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
        err = get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return ret


def _b(s: str | bytes | None) -> bytes | None:
    if s is None or isinstance(s, bytes):
        return s
    return os.fsencode(s)
