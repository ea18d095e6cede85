"""mount(2), umount2(2), pivot_root(2) and the mount option table runc uses."""

from __future__ import annotations

import os

from pallet.linux import trace as T
from pallet.linux.libc import _b, c_ulong, check, get_errno, libc, sysno

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_SYNCHRONOUS = 16
MS_REMOUNT = 32
MS_MANDLOCK = 64
MS_DIRSYNC = 128
MS_NOSYMFOLLOW = 256
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_SILENT = 32768
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24
MS_LAZYTIME = 1 << 25

MNT_FORCE = 1
MNT_DETACH = 2
UMOUNT_NOFOLLOW = 8

# option -> (clear?, flag)
FLAGS: dict[str, tuple[bool, int]] = {
    "async": (True, MS_SYNCHRONOUS), "atime": (True, MS_NOATIME), "bind": (False, MS_BIND),
    "defaults": (False, 0), "dev": (True, MS_NODEV), "diratime": (True, MS_NODIRATIME),
    "dirsync": (False, MS_DIRSYNC), "exec": (True, MS_NOEXEC), "mand": (False, MS_MANDLOCK),
    "noatime": (False, MS_NOATIME), "nodev": (False, MS_NODEV), "nodiratime": (False, MS_NODIRATIME),
    "noexec": (False, MS_NOEXEC), "nomand": (True, MS_MANDLOCK), "norelatime": (True, MS_RELATIME),
    "nostrictatime": (True, MS_STRICTATIME), "nosuid": (False, MS_NOSUID), "rbind": (False, MS_BIND | MS_REC),
    "relatime": (False, MS_RELATIME), "remount": (False, MS_REMOUNT), "ro": (False, MS_RDONLY),
    "rw": (True, MS_RDONLY), "strictatime": (False, MS_STRICTATIME), "suid": (True, MS_NOSUID),
    "sync": (False, MS_SYNCHRONOUS), "nosymfollow": (False, MS_NOSYMFOLLOW), "symfollow": (True, MS_NOSYMFOLLOW),
    "lazytime": (False, MS_LAZYTIME), "nolazytime": (True, MS_LAZYTIME), "silent": (False, MS_SILENT),
    "loud": (True, MS_SILENT),
}
PROPAGATION: dict[str, int] = {
    "private": MS_PRIVATE, "rprivate": MS_PRIVATE | MS_REC, "shared": MS_SHARED, "rshared": MS_SHARED | MS_REC,
    "slave": MS_SLAVE, "rslave": MS_SLAVE | MS_REC, "unbindable": MS_UNBINDABLE,
    "runbindable": MS_UNBINDABLE | MS_REC,
}
# options that runc accepts and the kernel does not need (handled elsewhere or ignored)
IGNORED = {"tmpcopyup", "idmap", "ridmap"}


def parse_options(options: list[str]) -> tuple[int, int, str]:
    """Split OCI mount options into (flags, propagation flags, data string)."""
    flags = 0
    prop = 0
    data: list[str] = []
    for o in options:
        if o in FLAGS:
            clear, f = FLAGS[o]
            flags = flags & ~f if clear else flags | f
        elif o in PROPAGATION:
            prop |= PROPAGATION[o]
        elif o in IGNORED:
            continue
        else:
            data.append(o)
    return flags, prop, ",".join(data)


def mount(source: str | None, target: str, fstype: str | None, flags: int = 0, data: str | None = None) -> None:
    r = T.recorder
    t = T.now() if r else 0
    ret = libc.mount(_b(source), _b(target), _b(fstype), c_ulong(flags), _b(data) if data else None)
    if r:
        r.done("mount", t, {"source": source, "target": target, "fstype": fstype, "flags": flags,
                            "flag_names": flag_names(flags), "data": data or None},
               get_errno() if ret < 0 else None)
    if ret < 0:
        check(ret, f"mount {source or fstype or ''} on {target}")


def umount(target: str, flags: int = 0) -> None:
    r = T.recorder
    t = T.now() if r else 0
    ret = libc.umount2(_b(target), flags)
    if r:
        r.done("umount2", t, {"target": target, "flags": flags}, get_errno() if ret < 0 else None)
    check(ret, f"umount {target}")


def pivot_root(new_root: str, put_old: str) -> None:
    r = T.recorder
    t = T.now() if r else 0
    ret = libc.syscall(sysno("pivot_root"), _b(new_root), _b(put_old))
    if r:
        r.done("pivot_root", t, {"new_root": new_root, "put_old": put_old, "cwd": os.getcwd()},
               get_errno() if ret < 0 else None)
    check(ret, "pivot_root")


def chroot(path: str) -> None:
    r = T.recorder
    t = T.now() if r else 0
    ret = libc.chroot(_b(path))
    if r:
        r.done("chroot", t, {"path": path}, get_errno() if ret < 0 else None)
    check(ret, "chroot")


_MS_NAMES = [("MS_RDONLY", MS_RDONLY), ("MS_NOSUID", MS_NOSUID), ("MS_NODEV", MS_NODEV), ("MS_NOEXEC", MS_NOEXEC),
             ("MS_SYNCHRONOUS", MS_SYNCHRONOUS), ("MS_REMOUNT", MS_REMOUNT), ("MS_MANDLOCK", MS_MANDLOCK),
             ("MS_DIRSYNC", MS_DIRSYNC), ("MS_NOSYMFOLLOW", MS_NOSYMFOLLOW), ("MS_NOATIME", MS_NOATIME),
             ("MS_NODIRATIME", MS_NODIRATIME), ("MS_BIND", MS_BIND), ("MS_MOVE", MS_MOVE), ("MS_REC", MS_REC),
             ("MS_SILENT", MS_SILENT), ("MS_UNBINDABLE", MS_UNBINDABLE), ("MS_PRIVATE", MS_PRIVATE),
             ("MS_SLAVE", MS_SLAVE), ("MS_SHARED", MS_SHARED), ("MS_RELATIME", MS_RELATIME),
             ("MS_STRICTATIME", MS_STRICTATIME), ("MS_LAZYTIME", MS_LAZYTIME)]


def flag_names(flags: int) -> list[str]:
    """The MS_* names of a mount flag word (strace's spelling)."""
    return [n for n, v in _MS_NAMES if flags & v]
