"""Apply the entries of one layer tar to a directory, safely.

Two modes, per the OCI image spec's "Image Layer Filesystem Changeset":

- ``overlay``: the directory is the layer's own diff dir (an overlayfs
  lowerdir). `.wh.NAME` becomes an overlay whiteout (a 0/0 character device
  named NAME), `.wh..wh..opq` sets ``trusted.overlay.opaque=y`` on its
  directory. Nothing is deleted: the directory starts empty.
- ``flat``: the directory holds the layers below (the copy driver's
  flattened tree). `.wh.NAME` deletes NAME, `.wh..wh..opq` deletes the
  directory's children that this layer did not add.

Safety: names are cleaned lexically (`paths.clean_name`: absolute names are
made relative, a `..` above the root is refused) and every parent directory is
resolved by `paths.Resolver`, which follows symlinks only inside the root. The
last component is always created with calls that do not follow symlinks
(O_CREAT|O_EXCL|O_NOFOLLOW, mkdir, symlink, mknod, link without
AT_SYMLINK_FOLLOW), and anything already there is removed first -- so a
symlink a layer planted can never redirect a write. Hardlink targets and
whiteouts go through the same resolution. ``trusted.overlay.*`` xattrs from a
tar are dropped: they would let a layer forge whiteouts or redirects.

Per regular file the work is open, write, (fchown), (fchmod), futimens, close:
ownership and mode calls are skipped when creation already gave the right
result (owner = the unpacking user, mode unchanged by the umask, no
setuid/setgid bits, no setgid parent). Directory mtimes are set at the end,
after their contents stopped changing.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from collections.abc import Callable
from typing import Literal

from pallet.errors import InvalidArchive, PalletError, UnsafePath
from pallet.layers.paths import Resolver, clean_name
from pallet.layers.tarstream import BLK, CHR, DIR, FIFO, LNK, REG, SYM, Entry, TarReader

Mode = Literal["overlay", "flat"]
IdMap = Callable[[int, int], tuple[int, int]]
"""Maps a (uid, gid) from the tar to the (uid, gid) written to disk (rootless id mapping)."""

OPAQUE_XATTR = "trusted.overlay.opaque"
WHITEOUT_PREFIX = ".wh."
OPAQUE_NAME = ".wh..wh..opq"

_O_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def current_umask() -> int:
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    old = os.umask(0o022)
    os.umask(old)
    return old


class Applier:
    """Applies entries from a `TarReader` to `dest` (which must exist)."""

    def __init__(self, dest: str | os.PathLike, *, mode: Mode = "overlay", id_map: IdMap | None = None,
                 privileged: bool | None = None) -> None:
        if mode not in ("overlay", "flat"):
            raise ValueError(f"unknown apply mode {mode!r}")
        self.dest = os.path.realpath(os.fspath(dest))
        self.mode = mode
        self.flat = mode == "flat"
        self.id_map = id_map
        self.privileged = os.geteuid() == 0 if privileged is None else privileged
        self.owner = (os.geteuid(), os.getegid())
        self.umask = current_umask()
        self.res = Resolver(self.dest)
        st = os.lstat(self.dest)
        self.res.set_root_sgid(bool(st.st_mode & stat.S_ISGID))
        self.warnings: list[str] = []
        self._warned: set[str] = set()
        self._dir_times: list[tuple[str, int, int]] = []
        self._added: set[str] = set()       # flat mode: paths this layer created (and their parents)
        self._whiteouts: set[str] = set()   # overlay mode: whiteout devices this layer made
        self.entries = 0

    # -- helpers --------------------------------------------------------------------------
    def warn(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            self.warnings.append(message)

    def _ids(self, e: Entry) -> tuple[int, int]:
        return self.id_map(e.uid, e.gid) if self.id_map else (e.uid, e.gid)

    def _chown(self, target: int | str, uid: int, gid: int, sgid_parent: bool) -> bool:
        """chown when creation did not already give (uid, gid); True if it ran."""
        if (uid, gid) == self.owner and not sgid_parent:
            return False
        try:
            if isinstance(target, int):
                os.fchown(target, uid, gid)
            else:
                os.chown(target, uid, gid, follow_symlinks=False)
        except PermissionError:
            if self.privileged:
                raise
            self.warn("chown", "file ownership from the layer was not kept (not running as root)")
            return False
        return True

    def _xattrs(self, e: Entry, target: int | str) -> None:
        for key, value in e.xattrs.items():
            if key.startswith("trusted.overlay."):
                self.warn("ovl-xattr", f"dropped overlayfs xattr {key!r} from {e.name!r} (layers may not set them)")
                continue
            try:
                if isinstance(target, int):
                    os.setxattr(target, key, value)
                else:
                    os.setxattr(target, key, value, follow_symlinks=False)
            except OSError as err:
                if err.errno in (errno.EOPNOTSUPP, errno.EPERM, errno.EACCES):
                    self.warn(f"xattr:{key.split('.')[0]}",
                              f"xattr {key!r} of {e.name!r} could not be set here ({err.strerror}); later ones skipped")
                    continue
                raise

    def _remove(self, path: str) -> None:
        """Remove whatever is at `path` (not following symlinks)."""
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            shutil.rmtree(path)
            self.res.forget()
        else:
            os.unlink(path)
            if stat.S_ISLNK(st.st_mode):
                self.res.forget()

    def _mark_added(self, rel: str) -> None:
        added = self._added
        while rel and rel not in added:
            added.add(rel)
            rel = rel.rpartition("/")[0]

    # -- entries --------------------------------------------------------------------------
    def apply(self, reader: TarReader) -> int:
        for e in reader.entries():
            try:
                self._entry(e, reader)
            except PalletError:
                raise
            except OSError as err:
                raise PalletError(f"unpacking layer entry {e.name!r} failed: {err.strerror or err}") from err
            self.entries += 1
        return self.entries

    def _entry(self, e: Entry, reader: TarReader) -> None:
        rel = clean_name(e.name)
        if not rel:
            if e.type != DIR:
                raise InvalidArchive(f"tar entry {e.name!r} names the layer root but is not a directory")
            self._dir_meta(self.dest, e, existed=True, sgid_parent=False)
            return
        parent_rel, _, base = rel.rpartition("/")
        if base.startswith(WHITEOUT_PREFIX):
            self._whiteout(e, parent_rel, base)
            return
        parent, sgid = self.res.dir(parent_rel, create=True, entry=e.name)  # type: ignore[misc]
        path = parent + "/" + base
        t = e.type
        if t == REG:
            self._file(e, path, reader, sgid)
        elif t == DIR:
            self._dir(e, rel, path, sgid)
        elif t == SYM:
            self._make(e, path, lambda: os.symlink(e.linkname, path))
            uid, gid = self._ids(e)
            self._chown(path, uid, gid, sgid)
            if e.xattrs:
                self._xattrs(e, path)
            os.utime(path, ns=(e.atime_ns or e.mtime_ns, e.mtime_ns), follow_symlinks=False)
        elif t == LNK:
            self._hardlink(e, path)
        elif t in (CHR, BLK, FIFO):
            if t != FIFO and not self.privileged:
                self.warn("dev", f"device nodes were skipped (not running as root), e.g. {e.name!r}")
                return
            kind = stat.S_IFIFO if t == FIFO else (stat.S_IFCHR if t == CHR else stat.S_IFBLK)
            dev = os.makedev(e.devmajor, e.devminor) if t != FIFO else 0
            self._make(e, path, lambda: os.mknod(path, kind | (e.mode & 0o777), dev))
            self._node_meta(e, path, sgid)
        if self.flat:
            self._mark_added(rel)

    def _make(self, e: Entry, path: str, create: Callable[[], None]) -> None:
        try:
            create()
        except FileExistsError:
            self._remove(path)
            create()

    def _node_meta(self, e: Entry, path: str, sgid: bool) -> None:
        uid, gid = self._ids(e)
        chowned = self._chown(path, uid, gid, sgid)
        if chowned or e.mode & 0o7000 or e.mode & self.umask:
            os.chmod(path, e.mode, follow_symlinks=False)
        if e.xattrs:
            self._xattrs(e, path)
        os.utime(path, ns=(e.atime_ns or e.mtime_ns, e.mtime_ns), follow_symlinks=False)

    def _file(self, e: Entry, path: str, reader: TarReader, sgid: bool) -> None:
        mode = e.mode
        try:
            fd = os.open(path, _O_CREATE, mode)
        except FileExistsError:
            self._remove(path)
            fd = os.open(path, _O_CREATE, mode)
        try:
            if e.size:
                write = os.write
                for piece in reader.data():
                    n = write(fd, piece)
                    while n < len(piece):
                        n += write(fd, piece[n:])
            uid, gid = self._ids(e)
            chowned = self._chown(fd, uid, gid, sgid)
            if chowned or mode & 0o7000 or mode & self.umask:
                os.fchmod(fd, mode)
            if e.xattrs:
                self._xattrs(e, fd)
            os.utime(fd, ns=(e.atime_ns or e.mtime_ns, e.mtime_ns))
        finally:
            os.close(fd)

    def _dir(self, e: Entry, rel: str, path: str, sgid: bool) -> None:
        existed = False
        try:
            os.mkdir(path, e.mode & 0o777)
        except FileExistsError:
            st = os.lstat(path)
            if stat.S_ISDIR(st.st_mode):
                existed = True
            else:
                self._remove(path)
                os.mkdir(path, e.mode & 0o777)
                if rel in self._whiteouts:
                    # `.wh.NAME` then directory NAME in one layer: the new dir hides the lower one
                    os.setxattr(path, OPAQUE_XATTR, b"y")
        self._dir_meta(path, e, existed=existed, sgid_parent=sgid)
        self.res.remember(rel, path, bool(e.mode & stat.S_ISGID))

    def _dir_meta(self, path: str, e: Entry, *, existed: bool, sgid_parent: bool) -> None:
        uid, gid = self._ids(e)
        chowned = self._chown(path, uid, gid, sgid_parent or existed)
        if existed or chowned or sgid_parent or e.mode & 0o7000 or e.mode & self.umask:
            os.chmod(path, e.mode)
        if path == self.dest:
            self.res.set_root_sgid(bool(e.mode & stat.S_ISGID))
        if e.xattrs:
            self._xattrs(e, path)
        self._dir_times.append((path, e.atime_ns or e.mtime_ns, e.mtime_ns))

    def _hardlink(self, e: Entry, path: str) -> None:
        what = f"hardlink {e.name!r} target"
        target_rel = clean_name(e.linkname, what=what)
        if not target_rel:
            raise UnsafePath(f"{what} {e.linkname!r} is the layer root; refused")
        tparent_rel, _, tbase = target_rel.rpartition("/")
        hit = self.res.dir(tparent_rel, create=False, entry=e.name)
        missing = InvalidArchive(f"hardlink {e.name!r} points at {e.linkname!r}, which is not in the layer")
        if hit is None:
            raise missing
        target = hit[0] + "/" + tbase
        if target == path:
            return
        try:
            st = os.lstat(target)
        except FileNotFoundError:
            raise missing from None
        if stat.S_ISDIR(st.st_mode):
            raise InvalidArchive(f"hardlink {e.name!r} points at directory {e.linkname!r}; refused")
        self._make(e, path, lambda: os.link(target, path, follow_symlinks=False))

    def _whiteout(self, e: Entry, parent_rel: str, base: str) -> None:
        if base == OPAQUE_NAME:
            if self.flat:
                hit = self.res.dir(parent_rel, create=False, entry=e.name)
                if hit is None:
                    return
                for child in os.listdir(hit[0]):
                    crel = f"{parent_rel}/{child}" if parent_rel else child
                    if crel not in self._added:
                        self._remove(hit[0] + "/" + child)
            else:
                parent, _ = self.res.dir(parent_rel, create=True, entry=e.name)  # type: ignore[misc]
                os.setxattr(parent, OPAQUE_XATTR, b"y")
            return
        if base.startswith(".wh..wh."):
            return  # AUFS bookkeeping (.wh..wh.plnk, .wh..wh.aufs): meaningless here, as docker treats it
        name = base[len(WHITEOUT_PREFIX):]
        if name in ("", ".", ".."):
            raise UnsafePath(f"whiteout {e.name!r} names {name!r}, which is not a file in the layer; refused")
        rel = f"{parent_rel}/{name}" if parent_rel else name
        if self.flat:
            if rel in self._added:
                return  # a whiteout only hides what lower layers have
            hit = self.res.dir(parent_rel, create=False, entry=e.name)
            if hit is not None:
                self._remove(hit[0] + "/" + name)
            return
        parent, _ = self.res.dir(parent_rel, create=True, entry=e.name)  # type: ignore[misc]
        path = parent + "/" + name
        if os.path.lexists(path):
            return  # this layer has NAME itself: that already hides the lower one
        if not self.privileged:
            raise PalletError("overlay whiteouts need root (mknod); use the copy storage driver")
        os.mknod(path, stat.S_IFCHR, os.makedev(0, 0))
        self._whiteouts.add(rel)

    def finish(self) -> None:
        """Set directory times, now that nothing changes inside them any more."""
        for path, atime, mtime in reversed(self._dir_times):
            try:
                os.utime(path, ns=(atime, mtime), follow_symlinks=False)
            except FileNotFoundError:
                pass
        self._dir_times.clear()
