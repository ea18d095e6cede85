"""seccomp filters through libseccomp (ctypes to libseccomp.so.2): never hand-written BPF.

`compile_filter(linux.seccomp)` builds a libseccomp context before the fork (the
library must be loaded while the host filesystem is still visible); the container
init calls `Filter.load()` as its last step before execve.
"""

from __future__ import annotations

import errno as _errno
from _ctypes import _SimpleCData, addressof

from pallet.linux.libc import (
    POINTER,
    Library,
    Structure,
    byref,
    c_char_p,
    c_int,
    c_uint,
    c_uint32,
    c_uint64,
    c_ulong,
    c_void_p,
    get_errno,
)

_lib: Library | None = None

ACTIONS = {
    "SCMP_ACT_KILL": 0x00000000, "SCMP_ACT_KILL_THREAD": 0x00000000, "SCMP_ACT_KILL_PROCESS": 0x80000000,
    "SCMP_ACT_TRAP": 0x00030000, "SCMP_ACT_ERRNO": 0x00050000, "SCMP_ACT_TRACE": 0x7FF00000,
    "SCMP_ACT_LOG": 0x7FFC0000, "SCMP_ACT_ALLOW": 0x7FFF0000,
}
OPS = {"SCMP_CMP_NE": 1, "SCMP_CMP_LT": 2, "SCMP_CMP_LE": 3, "SCMP_CMP_EQ": 4, "SCMP_CMP_GE": 5,
       "SCMP_CMP_GT": 6, "SCMP_CMP_MASKED_EQ": 7}
_ATTR_NNP = 3
FLAGS = {"SECCOMP_FILTER_FLAG_TSYNC": 4, "SECCOMP_FILTER_FLAG_LOG": 6, "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 7}
ARCHES = ["SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_ARM", "SCMP_ARCH_AARCH64",
          "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64", "SCMP_ARCH_MIPS64N32", "SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64",
          "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC", "SCMP_ARCH_PPC64", "SCMP_ARCH_PPC64LE", "SCMP_ARCH_S390",
          "SCMP_ARCH_S390X", "SCMP_ARCH_PARISC", "SCMP_ARCH_PARISC64", "SCMP_ARCH_RISCV64"]


class _ArgCmp(Structure):
    _fields_ = [("arg", c_uint), ("op", c_int), ("datum_a", c_uint64),
                ("datum_b", c_uint64)]


def lib() -> Library:
    global _lib
    if _lib is None:
        try:
            _lib = Library("libseccomp.so.2")
        except OSError as e:
            raise OSError(_errno.ENOENT, f"seccomp: cannot load libseccomp.so.2 ({e})") from None
        _lib.seccomp_init.restype = c_void_p
        _lib.seccomp_init.argtypes = [c_uint32]
        for fn in ("seccomp_load", "seccomp_release"):
            getattr(_lib, fn).argtypes = [c_void_p]
        _lib.seccomp_release.restype = None
        _lib.seccomp_arch_add.argtypes = [c_void_p, c_uint32]
        _lib.seccomp_arch_resolve_name.restype = c_uint32
        _lib.seccomp_arch_resolve_name.argtypes = [c_char_p]
        _lib.seccomp_syscall_resolve_name.argtypes = [c_char_p]
        _lib.seccomp_attr_set.argtypes = [c_void_p, c_int, c_uint32]
        _lib.seccomp_rule_add_array.argtypes = [c_void_p, c_uint32, c_int, c_uint,
                                                POINTER(_ArgCmp)]
    return _lib


_VERSION: list[str] = []


def version() -> str:
    """libseccomp's version (loaded once per process: part of the BPF cache's key)."""
    if not _VERSION:
        class _V(Structure):
            _fields_ = [("major", c_uint), ("minor", c_uint), ("micro", c_uint)]
        f = lib().seccomp_version
        f.restype = POINTER(_V)
        v = f().contents
        _VERSION.append(f"{v.major}.{v.minor}.{v.micro}")
    return _VERSION[0]


def _action(name: str, errno_ret: int | None) -> int:
    base = ACTIONS.get(name)
    if base is None:
        raise ValueError(f"seccomp: unsupported action {name!r}")
    if name in ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE"):
        return base | ((_errno.EPERM if errno_ret is None else errno_ret) & 0xFFFF)
    return base


class Filter:
    """A compiled libseccomp context, loaded into the kernel by `load()`."""

    info: dict = {}

    def __init__(self, ctx: int) -> None:
        self.ctx = ctx

    def load(self) -> None:
        from pallet.linux import trace as T

        r = T.recorder
        t = T.now() if r else 0
        rc = lib().seccomp_load(self.ctx)
        if r:
            r.done("seccomp", t, dict(self.info, via="libseccomp"), -rc if rc < 0 else None)
        if rc < 0:
            raise OSError(-rc, f"seccomp_load: {_errno.errorcode.get(-rc, -rc)}")

    def release(self) -> None:
        if self.ctx:
            lib().seccomp_release(self.ctx)
            self.ctx = 0


def compile_filter(sc: dict) -> Filter:
    """Turn the OCI `linux.seccomp` object into a libseccomp context; ValueError on bad input."""
    if sc.get("listenerPath"):
        raise ValueError("seccomp: listenerPath (SCMP_ACT_NOTIFY) is not supported")
    L = lib()
    default = _action(sc.get("defaultAction", ""), sc.get("defaultErrnoRet"))
    ctx = L.seccomp_init(default)
    if not ctx:
        raise ValueError("seccomp: seccomp_init failed")
    f = Filter(ctx)
    try:
        _check(L.seccomp_attr_set(ctx, _ATTR_NNP, 0), "disable libseccomp's implicit no_new_privs")
        for flag in sc.get("flags") or ():
            attr = FLAGS.get(flag)
            if attr is None:
                raise ValueError(f"seccomp: unsupported flag {flag!r}")
            _check(L.seccomp_attr_set(ctx, attr, 1), f"flag {flag}")
        for arch in sc.get("architectures") or ():
            if arch not in ARCHES:
                raise ValueError(f"seccomp: unknown architecture {arch!r}")
            token = L.seccomp_arch_resolve_name(arch[len("SCMP_ARCH_"):].lower().encode())
            if token == 0:
                raise ValueError(f"seccomp: libseccomp does not know architecture {arch!r}")
            rc = L.seccomp_arch_add(ctx, token)
            if rc < 0 and rc != -_errno.EEXIST:
                _check(rc, f"add architecture {arch}")
        for rule in sc.get("syscalls") or ():
            _add_rule(L, ctx, rule, default)
    except BaseException:
        f.release()
        raise
    return f


def _check(rc: int, what: str) -> None:
    if rc < 0:
        raise ValueError(f"seccomp: {what}: {_errno.errorcode.get(-rc, -rc)}")


def _add_rule(L: Library, ctx: int, rule: dict, default: int) -> None:
    action = _action(rule.get("action", ""), rule.get("errnoRet"))
    names = rule.get("names") or ([rule["name"]] if rule.get("name") else [])
    args = rule.get("args") or []
    conds = []
    for a in args:
        op = OPS.get(a.get("op", ""))
        if op is None:
            raise ValueError(f"seccomp: unknown operator {a.get('op')!r}")
        idx = a.get("index", 0)
        if not 0 <= idx < 6:
            raise ValueError(f"seccomp: argument index {idx} out of range")
        conds.append(_ArgCmp(idx, op, a.get("value", 0), a.get("valueTwo", 0)))
    # libseccomp cannot AND two conditions on one argument: like runc, add one rule per condition then
    same_arg = len({c.arg for c in conds}) != len(conds)
    groups = [[c] for c in conds] if same_arg else [conds]
    for name in names:
        nr = L.seccomp_syscall_resolve_name(name.encode())
        if nr == -1:
            raise ValueError(f"seccomp: unknown syscall {name!r}")
        if action == default:
            continue  # libseccomp refuses rules that repeat the default action
        for g in groups:
            arr = (_ArgCmp * len(g))(*g) if g else None
            rc = L.seccomp_rule_add_array(ctx, action, nr, len(g), arr)
            _check(rc, f"rule for {name}")


# -- compiled filters, cached ------------------------------------------------------------------
# Building the libseccomp context of docker's default profile (~300 rules) costs tens of
# milliseconds at every create. The BPF program libseccomp generates from it (seccomp_export_bpf)
# depends only on the profile, the libseccomp version and the kernel it probed, so a runtime given a
# cache directory (the engine's run dir) keeps it in a file there and later loads those bytes with
# seccomp(2) — libseccomp's BPF, never hand-written, loaded with the flags seccomp_load would pass.

_SYS_SECCOMP = {"x86_64": 317, "aarch64": 277}
_SECCOMP_SET_MODE_FILTER = 1
_KERNEL_FLAGS = {"SECCOMP_FILTER_FLAG_TSYNC": 1, "SECCOMP_FILTER_FLAG_LOG": 2, "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 4}


class _Byte(_SimpleCData):
    _type_ = "B"


class _UShort(_SimpleCData):
    _type_ = "H"


class _Fprog(Structure):   # struct sock_fprog
    _fields_ = [("len", _UShort), ("filter", c_void_p)]


class BpfFilter:
    """A BPF program exported by libseccomp, loaded by `load()` with seccomp(2) (Filter's interface)."""

    def __init__(self, prog: bytes, flags: int, machine: str) -> None:
        from pallet.linux.libc import libc

        if not prog or len(prog) % 8 or len(prog) // 8 > 0xFFFF:
            raise ValueError("seccomp: invalid cached BPF program")
        self.flags = flags
        self._nr = _SYS_SECCOMP[machine]
        # built before the fork: the child only makes the system call (nothing to import after pivot_root)
        self._buf = (_Byte * len(prog)).from_buffer_copy(prog)
        self._prog = _Fprog(len(prog) // 8, addressof(self._buf))
        self._syscall = libc.syscall

    info: dict = {}

    def load(self) -> None:
        from pallet.linux import trace as T

        r = T.recorder
        t = T.now() if r else 0
        rc = self._syscall(c_ulong(self._nr), c_ulong(_SECCOMP_SET_MODE_FILTER), c_ulong(self.flags),
                           byref(self._prog))
        if r:
            r.done("seccomp", t, dict(self.info, operation="SECCOMP_SET_MODE_FILTER", flags=self.flags,
                                      bpf_instructions=self._prog.len), get_errno() if rc < 0 else None)
        if rc < 0:
            err = get_errno()
            raise OSError(err, f"seccomp_load: {_errno.errorcode.get(err, err)}")

    def release(self) -> None:
        pass


def summary(sc: dict) -> dict:
    """What a trace shows of a profile: rules, syscalls named, the default action, the architectures."""
    rules = sc.get("syscalls") or ()
    return {"rules": len(rules), "syscalls": sum(len(r.get("names") or ([r["name"]] if r.get("name") else []))
                                                 for r in rules),
            "default_action": sc.get("defaultAction"), "architectures": list(sc.get("architectures") or ())}


def compile_filter_cached(sc: dict, cache_dir: str | None) -> Filter | BpfFilter:
    """`compile_filter`, through a cache of exported BPF programs in `cache_dir` (None: no cache)."""
    from pallet.linux import trace as T

    f = _compile_filter_cached(sc, cache_dir)
    if T.recorder is not None:
        f.info = summary(sc)
    return f


def _compile_filter_cached(sc: dict, cache_dir: str | None) -> Filter | BpfFilter:
    import os

    machine = os.uname().machine
    if cache_dir is None or machine not in _SYS_SECCOMP or sc.get("listenerPath"):
        return compile_filter(sc)
    flags = 0
    for flag in sc.get("flags") or ():
        if flag not in _KERNEL_FLAGS:
            return compile_filter(sc)   # it says why
        flags |= _KERNEL_FLAGS[flag]
    try:   # CPython's own sha256: hashlib would load OpenSSL (~10 ms) in the monitor just for this key
        from _sha256 import sha256
    except ImportError:
        from hashlib import sha256

    from pallet.jsonfast import dumps

    try:
        ver = version()
    except (OSError, AttributeError) as e:
        raise OSError(_errno.ENOENT, f"seccomp: {e}") from None
    key = sha256(f"{ver}\0{os.uname().release}\0{machine}\0{dumps(sc)}".encode()).hexdigest()
    d = cache_dir
    path = os.path.join(d, key + ".bpf")
    try:
        with open(path, "rb") as f:
            return BpfFilter(f.read(), flags, machine)
    except (OSError, ValueError):
        pass
    f = compile_filter(sc)
    try:
        os.makedirs(d, mode=0o700, exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            L = lib()
            L.seccomp_export_bpf.argtypes = [c_void_p, c_int]
            rc = L.seccomp_export_bpf(f.ctx, fd)
        finally:
            os.close(fd)
        if rc == 0:
            os.replace(tmp, path)
        else:
            os.unlink(tmp)
    except OSError:
        pass   # no cache this time; the context works all the same
    return f
