"""The other direction: a filesystem change -> an OCI layer tar (for `commit` and `build`).

Two sources:

- `diff_upper(upper, out)`: an overlayfs upper dir (a container's changes).
  0/0 character devices become `.wh.NAME` files, directories with
  ``trusted.overlay.opaque=y`` get a `.wh..wh..opq` entry.
- `diff_trees(lower, upper, out)`: two plain trees (the copy driver): paths
  only in `upper` or different there are added, paths gone from `upper` get
  a `.wh.NAME` (one for a removed directory, not one per child).

Output is deterministic, so the same change gives the same diff id: entries
sorted by name (a directory, then its whiteouts, then its children), PAX
format, uname/gname empty, uid/gid numeric, mtimes in whole seconds as
stored, no atime/ctime; hardlinks inside the change are written as tar
hardlinks to the first name in sort order. Whiteout files are mode 0, owned
by 0:0, with the mtime of their directory.

`write_layer(...)` wraps either in compression and returns both digests.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tarfile
from dataclasses import dataclass
from typing import BinaryIO

from pallet.layers.apply import OPAQUE_NAME, OPAQUE_XATTR, WHITEOUT_PREFIX
from pallet.oci import mediatypes


@dataclass
class DiffResult:
    diff_id: str
    digest: str
    size: int              # uncompressed
    compressed_size: int
    media_type: str
    entries: int


def _xattrs(path: str) -> dict[str, str]:
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return {}
    out = {}
    for n in sorted(names):
        if n.startswith("trusted.overlay."):
            continue
        try:
            out["SCHILY.xattr." + n] = os.getxattr(path, n, follow_symlinks=False).decode("utf-8", "surrogateescape")
        except OSError:
            continue
    return out


def _is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _opaque(path: str) -> bool:
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


class _Writer:
    def __init__(self, out: BinaryIO) -> None:
        self.tf = tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT, encoding="utf-8",
                               errors="surrogateescape")
        self.links: dict[tuple[int, int], str] = {}
        self.entries = 0

    def whiteout(self, name: str, mtime: int) -> None:
        ti = tarfile.TarInfo(name)
        ti.mode, ti.mtime, ti.uname, ti.gname = 0, mtime, "", ""
        self.tf.addfile(ti)
        self.entries += 1

    def add(self, path: str, name: str, st: os.stat_result) -> None:
        ti = tarfile.TarInfo(name)
        ti.mode = stat.S_IMODE(st.st_mode)
        ti.uid, ti.gid = st.st_uid, st.st_gid
        ti.uname = ti.gname = ""
        ti.mtime = int(st.st_mtime)
        ti.pax_headers = _xattrs(path)
        m = st.st_mode
        data = None
        key = (st.st_dev, st.st_ino)
        if not stat.S_ISDIR(m) and st.st_nlink > 1 and key in self.links:
            ti.type, ti.linkname = tarfile.LNKTYPE, self.links[key]
        elif stat.S_ISREG(m):
            ti.type, ti.size = tarfile.REGTYPE, st.st_size
            data = open(path, "rb")  # noqa: SIM115 - closed below
            if st.st_nlink > 1:
                self.links[key] = name
        elif stat.S_ISDIR(m):
            ti.type = tarfile.DIRTYPE
        elif stat.S_ISLNK(m):
            ti.type, ti.linkname = tarfile.SYMTYPE, os.readlink(path)
        elif stat.S_ISFIFO(m):
            ti.type = tarfile.FIFOTYPE
        elif stat.S_ISCHR(m) or stat.S_ISBLK(m):
            ti.type = tarfile.CHRTYPE if stat.S_ISCHR(m) else tarfile.BLKTYPE
            ti.devmajor, ti.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
        else:
            return  # sockets are not part of images
        try:
            self.tf.addfile(ti, data)
        finally:
            if data is not None:
                data.close()
        self.entries += 1

    def close(self) -> None:
        self.tf.close()


def _scan(path: str) -> list[tuple[str, os.stat_result]]:
    with os.scandir(path) as it:
        ents = [(e.name, e.stat(follow_symlinks=False)) for e in it]
    ents.sort(key=lambda x: os.fsencode(x[0]))
    return ents


def diff_upper(upper: str, out: BinaryIO) -> int:
    """Write the layer tar of an overlay upper dir to `out`; returns the entry count."""
    w = _Writer(out)

    def walk(d: str, prefix: str) -> None:
        ents = _scan(d)
        dmtime = int(os.lstat(d).st_mtime)
        for name, st in ents:  # whiteouts first, as the spec recommends
            if _is_whiteout(st):
                w.whiteout(prefix + WHITEOUT_PREFIX + name, dmtime)
        for name, st in ents:
            if _is_whiteout(st):
                continue
            p = d + "/" + name
            w.add(p, prefix + name, st)
            if stat.S_ISDIR(st.st_mode):
                if _opaque(p):
                    w.whiteout(prefix + name + "/" + OPAQUE_NAME, int(st.st_mtime))
                walk(p, prefix + name + "/")

    if _opaque(upper):
        w.whiteout(OPAQUE_NAME, int(os.lstat(upper).st_mtime))
    walk(upper, "")
    w.close()
    return w.entries


def _same(a: str, sa: os.stat_result, b: str, sb: os.stat_result) -> bool:
    if (sa.st_mode, sa.st_uid, sa.st_gid) != (sb.st_mode, sb.st_uid, sb.st_gid):
        return False
    m = sa.st_mode
    if stat.S_ISDIR(m):
        return _xattrs(a) == _xattrs(b)
    if sa.st_mtime_ns != sb.st_mtime_ns or sa.st_size != sb.st_size:
        return False
    if stat.S_ISLNK(m):
        return os.readlink(a) == os.readlink(b)
    if stat.S_ISCHR(m) or stat.S_ISBLK(m):
        return sa.st_rdev == sb.st_rdev
    if (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino):
        return True
    if stat.S_ISREG(m) and not _same_content(a, b):
        return False
    return _xattrs(a) == _xattrs(b)


def _same_content(a: str, b: str) -> bool:
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            x, y = fa.read(1 << 20), fb.read(1 << 20)
            if x != y:
                return False
            if not x:
                return True


def diff_trees(lower: str, upper: str, out: BinaryIO) -> int:
    """Write the layer tar that turns tree `lower` into tree `upper`; returns the entry count."""
    w = _Writer(out)

    def walk(ld: str | None, ud: str, prefix: str) -> None:
        uents = _scan(ud)
        lents = dict(_scan(ld)) if ld is not None else {}
        names = {n for n, _ in uents}
        dmtime = int(os.lstat(ud).st_mtime)
        for name in sorted(lents, key=os.fsencode):
            if name not in names:
                w.whiteout(prefix + WHITEOUT_PREFIX + name, dmtime)
        for name, st in uents:
            up = ud + "/" + name
            lp = ld + "/" + name if ld is not None else None
            lst = lents.get(name)
            isdir = stat.S_ISDIR(st.st_mode)
            if lst is None or lp is None or not _same(lp, lst, up, st):
                w.add(up, prefix + name, st)
            if isdir:
                below = lp if lst is not None and stat.S_ISDIR(lst.st_mode) else None
                walk(below, up, prefix + name + "/")

    walk(lower, upper, "")
    w.close()
    return w.entries


class _Tee:
    """File-like sink: hashes (and counts) the uncompressed tar, compresses, hashes and writes the result."""

    def __init__(self, out: BinaryIO, compression: str) -> None:
        self.out = out
        self.u = hashlib.sha256()
        self.c = hashlib.sha256()
        self.usize = self.csize = 0
        self.comp = None
        if compression == "gzip":
            from isal import isal_zlib

            self.comp = isal_zlib.compressobj(2, isal_zlib.DEFLATED, 31)  # ISA-L levels are 0..3
        elif compression == "zstd":
            import zstandard

            self.comp = zstandard.ZstdCompressor(level=3).compressobj()

    def _emit(self, data: bytes) -> None:
        if data:
            self.c.update(data)
            self.csize += len(data)
            self.out.write(data)

    def write(self, data: bytes) -> int:
        self.u.update(data)
        self.usize += len(data)
        self._emit(self.comp.compress(data) if self.comp else data)
        return len(data)

    def finish(self) -> None:
        if self.comp is not None:
            self._emit(self.comp.flush())


def write_layer(out: BinaryIO, *, upper: str, lower: str | None = None, compression: str = "gzip") -> DiffResult:
    """Write a layer blob for the change in `upper` (overlay upper dir, or tree vs `lower`) to `out`."""
    tee = _Tee(out, compression)
    if lower is None:
        n = diff_upper(upper, tee)  # type: ignore[arg-type]
    else:
        n = diff_trees(lower, upper, tee)  # type: ignore[arg-type]
    tee.finish()
    media = {"gzip": mediatypes.OCI_LAYER_GZIP, "zstd": mediatypes.OCI_LAYER_ZSTD, "": mediatypes.OCI_LAYER}
    return DiffResult("sha256:" + tee.u.hexdigest(), "sha256:" + tee.c.hexdigest(), tee.usize, tee.csize,
                      media[compression], n)

