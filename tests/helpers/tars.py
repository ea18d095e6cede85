"""Tars in memory for tests: exactly the members given, a rootfs with its directories, or entry by entry
(TarBuilder: every type, hostile names too). PAX format; mode 0644 and mtime 0 unless given."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path


def tar_of(members: dict[str, bytes]) -> bytes:
    """An archive whose members are exactly `members`, in the order given (names as given, even hostile
    ones)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in members.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def rootfs_tar(files: dict[str, bytes]) -> bytes:
    """A plain tar of regular files, sorted, after their parent directories (0755)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for d in sorted({str(Path(p).parent) for p in files} - {"."}):
            ti = tarfile.TarInfo(d)
            ti.type, ti.mode = tarfile.DIRTYPE, 0o755
            tf.addfile(ti)
        for path, data in sorted(files.items()):
            ti = tarfile.TarInfo(path)
            ti.size, ti.mode = len(data), 0o644
            tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


class TarBuilder:
    """A tar in memory, entry by entry, with full control over names and types (hostile ones too)."""

    def __init__(self, fmt: int = tarfile.PAX_FORMAT) -> None:
        self.buf = io.BytesIO()
        self.tf = tarfile.open(fileobj=self.buf, mode="w", format=fmt)

    def _info(self, name: str, type_: bytes, *, mode: int = 0o644, uid: int = 0, gid: int = 0,
              mtime: int = 1_600_000_000, xattrs: dict[str, str] | None = None) -> tarfile.TarInfo:
        ti = tarfile.TarInfo(name)
        ti.type, ti.mode, ti.uid, ti.gid, ti.mtime = type_, mode, uid, gid, mtime
        if xattrs:
            ti.pax_headers = {"SCHILY.xattr." + k: v for k, v in xattrs.items()}
        return ti

    def file(self, name: str, data: bytes = b"", **kw) -> TarBuilder:
        ti = self._info(name, tarfile.REGTYPE, **kw)
        ti.size = len(data)
        self.tf.addfile(ti, io.BytesIO(data))
        return self

    def dir(self, name: str, **kw) -> TarBuilder:
        kw.setdefault("mode", 0o755)
        self.tf.addfile(self._info(name, tarfile.DIRTYPE, **kw))
        return self

    def symlink(self, name: str, target: str, **kw) -> TarBuilder:
        kw.setdefault("mode", 0o777)
        ti = self._info(name, tarfile.SYMTYPE, **kw)
        ti.linkname = target
        self.tf.addfile(ti)
        return self

    def hardlink(self, name: str, target: str, **kw) -> TarBuilder:
        ti = self._info(name, tarfile.LNKTYPE, **kw)
        ti.linkname = target
        self.tf.addfile(ti)
        return self

    def device(self, name: str, kind: str = "c", major: int = 1, minor: int = 3, **kw) -> TarBuilder:
        ti = self._info(name, tarfile.CHRTYPE if kind == "c" else tarfile.BLKTYPE, **kw)
        ti.devmajor, ti.devminor = major, minor
        self.tf.addfile(ti)
        return self

    def fifo(self, name: str, **kw) -> TarBuilder:
        self.tf.addfile(self._info(name, tarfile.FIFOTYPE, **kw))
        return self

    def whiteout(self, name: str) -> TarBuilder:
        return self.file(name, b"", mode=0)

    def bytes(self) -> bytes:
        self.tf.close()
        return self.buf.getvalue()
