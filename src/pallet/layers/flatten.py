"""The copy driver's merge: apply overlay-form diff dirs, bottom first, onto one plain directory.

This is what overlayfs computes on the fly, done once with copies: a 0/0
character device deletes the path below it, a directory with
``trusted.overlay.opaque=y`` hides what lower layers had in it, anything else
replaces the lower entry (directories merge). Hardlinks inside one diff stay
hardlinks. File data is copied with copy_file_range (reflinks where the
filesystem has them).

Only directories this code created or checked with lstat are descended into,
and the last component is always replaced, never followed: a symlink in a
lower layer cannot redirect a copy.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat

from pallet.layers.apply import OPAQUE_XATTR


def _xattrs(src: str) -> list[tuple[str, bytes]]:
    try:
        names = os.listxattr(src, follow_symlinks=False)
    except OSError:
        return []
    out = []
    for n in names:
        if n.startswith("trusted.overlay."):
            continue
        try:
            out.append((n, os.getxattr(src, n, follow_symlinks=False)))
        except OSError:
            continue
    return out


def _remove(path: str) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(path)
    else:
        os.unlink(path)


def _meta(src: str, dst: str, st: os.stat_result, *, is_link: bool = False) -> None:
    os.chown(dst, st.st_uid, st.st_gid, follow_symlinks=False)
    if not is_link:
        os.chmod(dst, stat.S_IMODE(st.st_mode))
    for k, v in _xattrs(src):
        try:
            os.setxattr(dst, k, v, follow_symlinks=False)
        except OSError as e:
            if e.errno not in (errno.EOPNOTSUPP, errno.EPERM):
                raise
    if not stat.S_ISDIR(st.st_mode):
        os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)


def _copy_file(src: str, dst: str, size: int) -> None:
    with open(src, "rb") as fi:
        fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            left = size
            while left > 0:
                try:
                    n = os.copy_file_range(fi.fileno(), fd, left)
                except OSError as e:
                    if e.errno not in (errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL):
                        raise
                    n = os.sendfile(fd, fi.fileno(), None, left)
                if n == 0:
                    break
                left -= n
        finally:
            os.close(fd)


def apply_diff(diff: str, dest: str) -> None:
    """Merge one overlay-form diff dir onto `dest` (an existing directory)."""
    links: dict[tuple[int, int], str] = {}
    dir_times: list[tuple[str, int, int]] = []
    root_st = os.lstat(diff)

    def clear(d: str) -> None:
        with os.scandir(d) as it:
            for ent in it:
                _remove(ent.path)

    def is_opaque(path: str) -> bool:
        try:
            return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
        except OSError:
            return False

    def walk(s: str, d: str) -> None:
        with os.scandir(s) as it:
            ents = list(it)
        for ent in ents:
            sp, dp = ent.path, d + "/" + ent.name
            st = ent.stat(follow_symlinks=False)
            m = st.st_mode
            if stat.S_ISCHR(m) and st.st_rdev == 0:
                _remove(dp)
                continue
            if stat.S_ISDIR(m):
                try:
                    dst = os.lstat(dp)
                except FileNotFoundError:
                    dst = None
                if dst is not None and not stat.S_ISDIR(dst.st_mode):
                    os.unlink(dp)
                    dst = None
                if dst is None:
                    os.mkdir(dp, 0o700)
                elif is_opaque(sp):
                    clear(dp)
                _meta(sp, dp, st)
                walk(sp, dp)
                dir_times.append((dp, st.st_atime_ns, st.st_mtime_ns))
                continue
            _remove(dp)
            key = (st.st_dev, st.st_ino)
            if st.st_nlink > 1 and key in links:
                os.link(links[key], dp, follow_symlinks=False)
                continue
            if stat.S_ISREG(m):
                _copy_file(sp, dp, st.st_size)
                _meta(sp, dp, st)
            elif stat.S_ISLNK(m):
                os.symlink(os.readlink(sp), dp)
                _meta(sp, dp, st, is_link=True)
            else:
                os.mknod(dp, m, st.st_rdev)
                _meta(sp, dp, st)
            if st.st_nlink > 1:
                links[key] = dp

    if is_opaque(diff):
        clear(dest)
    walk(diff, dest)
    _meta(diff, dest, root_st)
    dir_times.append((dest, root_st.st_atime_ns, root_st.st_mtime_ns))
    for path, at, mt in reversed(dir_times):
        os.utime(path, ns=(at, mt), follow_symlinks=False)


def flatten(diffs: list[str], dest: str) -> None:
    """Merge overlay-form diff dirs, bottom layer first, into the existing directory `dest`."""
    for diff in diffs:
        apply_diff(diff, dest)
