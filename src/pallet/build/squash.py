"""`--squash`: the layers a build added, merged into one (the base image's layers stay as they are).

The unpacked layers are in overlay form (whiteouts are 0/0 character devices, opaque directories
carry trusted.overlay.opaque=y), so merging them in order into one overlay-form tree and writing
that tree with `pallet.layers.diff` gives the layer a single step making all the changes would
have made: a later whiteout removes what an earlier layer added and stays to hide the base's
file; an opaque directory empties what came before it. (Hard links between layers become copies.)
"""

from __future__ import annotations

import os
import shutil
import stat

from pallet.layers.apply import OPAQUE_XATTR

__all__ = ["merge_diffs"]


def _is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _opaque(path: str) -> bool:
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)


def _clear(d: str) -> None:
    for n in os.listdir(d):
        _remove(os.path.join(d, n))


def _meta(src: str, dst: str, st: os.stat_result) -> None:
    os.chown(dst, st.st_uid, st.st_gid, follow_symlinks=False)
    if not stat.S_ISLNK(st.st_mode):
        os.chmod(dst, stat.S_IMODE(st.st_mode))
    try:
        for name in os.listxattr(src, follow_symlinks=False):
            if not name.startswith("trusted.overlay."):
                os.setxattr(dst, name, os.getxattr(src, name, follow_symlinks=False), follow_symlinks=False)
    except OSError:
        pass
    os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)


def _merge(src: str, dst: str) -> None:
    dirs: list[tuple[str, str, os.stat_result]] = []
    for name in sorted(os.listdir(src)):
        s, t = os.path.join(src, name), os.path.join(dst, name)
        st = os.lstat(s)
        if _is_whiteout(st):
            _remove(t)
            os.mknod(t, stat.S_IFCHR | 0o000, 0)
            continue
        if stat.S_ISDIR(st.st_mode):
            if os.path.lexists(t) and not (os.path.isdir(t) and not os.path.islink(t)):
                _remove(t)
            if not os.path.lexists(t):
                os.mkdir(t, 0o700)
            if _opaque(s):
                _clear(t)
                os.setxattr(t, OPAQUE_XATTR, b"y", follow_symlinks=False)
            _merge(s, t)
            dirs.append((s, t, st))
            continue
        _remove(t)
        if stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(s), t)
        elif stat.S_ISREG(st.st_mode):
            shutil.copyfile(s, t, follow_symlinks=False)
        else:
            os.mknod(t, st.st_mode, st.st_rdev)
        _meta(s, t, st)
    for s, t, st in dirs:   # after their children, so their mtimes stay
        _meta(s, t, st)


def merge_diffs(diff_dirs: list[str], out: str) -> None:
    """Merge overlay-form layer dirs (lowest first) into the empty dir `out`."""
    for d in diff_dirs:
        if _opaque(d):
            _clear(out)
        _merge(d, out)
