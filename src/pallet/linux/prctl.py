"""prctl(2) switches the runtime uses, plus personality(2), close_range(2) and prlimit(2)."""

from __future__ import annotations

from pallet.linux import trace as T
from pallet.linux.libc import (
    Structure,
    byref,
    c_int,
    c_uint,
    c_uint64,
    c_ulong,
    check,
    get_errno,
    libc,
    sysno,
)

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_KEEPCAPS = 8
PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
PR_GET_CHILD_SUBREAPER = 37
PR_SET_NO_NEW_PRIVS = 38
PR_GET_NO_NEW_PRIVS = 39
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_CLEAR_ALL = 4

CLOSE_RANGE_CLOEXEC = 4

PER_LINUX = 0x0000
PER_LINUX32 = 0x0008

_prctl = libc.prctl
_prctl.argtypes = [c_int, c_ulong, c_ulong, c_ulong, c_ulong]


PR_NAMES = {PR_SET_PDEATHSIG: "PR_SET_PDEATHSIG", PR_SET_DUMPABLE: "PR_SET_DUMPABLE",
            PR_SET_KEEPCAPS: "PR_SET_KEEPCAPS", PR_CAPBSET_READ: "PR_CAPBSET_READ",
            PR_CAPBSET_DROP: "PR_CAPBSET_DROP", PR_SET_CHILD_SUBREAPER: "PR_SET_CHILD_SUBREAPER",
            PR_SET_NO_NEW_PRIVS: "PR_SET_NO_NEW_PRIVS", PR_GET_NO_NEW_PRIVS: "PR_GET_NO_NEW_PRIVS",
            PR_CAP_AMBIENT: "PR_CAP_AMBIENT"}


def prctl(option: int, a2: int = 0, a3: int = 0, a4: int = 0, a5: int = 0) -> int:
    r = T.recorder
    t = T.now() if r else 0
    ret = _prctl(option, a2, a3, a4, a5)
    if r:
        r.done("prctl", t, {"option": PR_NAMES.get(option, option), "args": [a2, a3, a4, a5]},
               get_errno() if ret < 0 else None)
    return check(ret, f"prctl({option})")


def set_dumpable(on: bool) -> None:
    prctl(PR_SET_DUMPABLE, 1 if on else 0)


def set_no_new_privs() -> None:
    prctl(PR_SET_NO_NEW_PRIVS, 1)


def set_keepcaps(on: bool) -> None:
    prctl(PR_SET_KEEPCAPS, 1 if on else 0)


def set_child_subreaper(on: bool = True) -> None:
    prctl(PR_SET_CHILD_SUBREAPER, 1 if on else 0)


def is_child_subreaper() -> bool:
    from ctypes import addressof

    flag = c_int(0)
    prctl(PR_GET_CHILD_SUBREAPER, addressof(flag))
    return bool(flag.value)


def set_pdeathsig(sig: int) -> None:
    prctl(PR_SET_PDEATHSIG, sig)


def personality(persona: int) -> None:
    r = T.recorder
    t = T.now() if r else 0
    ret = libc.personality(c_ulong(persona))
    if r:
        r.done("personality", t, {"persona": persona}, get_errno() if ret < 0 else None)
    check(ret, "personality")


def cloexec_from(first: int) -> None:
    """Mark every descriptor >= first close-on-exec (close_range(2) with CLOSE_RANGE_CLOEXEC)."""
    check(libc.syscall(sysno("close_range"), c_uint(first), c_uint(0xFFFFFFFF),
                       c_uint(CLOSE_RANGE_CLOEXEC)), "close_range")


# the generic Linux numbering (x86_64, aarch64); RLIM_INFINITY is all ones
RLIMITS = {name: i for i, name in enumerate((
    "RLIMIT_CPU", "RLIMIT_FSIZE", "RLIMIT_DATA", "RLIMIT_STACK", "RLIMIT_CORE", "RLIMIT_RSS", "RLIMIT_NPROC",
    "RLIMIT_NOFILE", "RLIMIT_MEMLOCK", "RLIMIT_AS", "RLIMIT_LOCKS", "RLIMIT_SIGPENDING", "RLIMIT_MSGQUEUE",
    "RLIMIT_NICE", "RLIMIT_RTPRIO", "RLIMIT_RTTIME"))}


class _Rlimit(Structure):
    _fields_ = [("cur", c_uint64), ("max", c_uint64)]


def setrlimit(resource: int, soft: int, hard: int) -> None:
    """prlimit(2) on the calling process (here rather than the `resource` module: one import less
    in the container init). -1 or 2**64-1 is unlimited."""
    r = T.recorder
    t = T.now() if r else 0
    ret = libc.prlimit(0, resource, byref(_Rlimit(soft & (2 ** 64 - 1), hard & (2 ** 64 - 1))), None)
    if r:
        names = [n for n, i in RLIMITS.items() if i == resource]
        r.done("prlimit64", t, {"resource": names[0] if names else resource, "soft": soft, "hard": hard},
               get_errno() if ret < 0 else None)
    check(ret, "setrlimit")
