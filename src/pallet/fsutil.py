"""Crash-safe file writes: temp file in the target's filesystem, fsync, rename.

A reader never sees a partial file under the final name, and a killed writer
leaves only a temp file (named `.tmp-*`) that cleanup may remove.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def fsync_dir(path: str | os.PathLike) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class AtomicFile:
    """Write to a temp file beside (or in `tmp_dir` on the same fs) and rename into place on commit.

    Use as a context manager: leaving the block without `commit()` removes the temp file.
    """

    def __init__(self, target: str | os.PathLike, *, tmp_dir: str | os.PathLike | None = None,
                 mode: int = 0o644, fsync: bool = True) -> None:
        self.target = Path(target)
        directory = Path(tmp_dir) if tmp_dir else self.target.parent
        directory.mkdir(parents=True, exist_ok=True)
        fd, self.tmp_path = tempfile.mkstemp(prefix=".tmp-", dir=directory)
        os.fchmod(fd, mode)
        self.file = os.fdopen(fd, "wb")
        self.fsync = fsync
        self.committed = False

    def write(self, data: bytes | memoryview) -> int:
        return self.file.write(data)

    def commit(self) -> Path:
        self.file.flush()
        if self.fsync:
            os.fsync(self.file.fileno())
        self.file.close()
        self.target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self.tmp_path, self.target)
        if self.fsync:
            fsync_dir(self.target.parent)
        self.committed = True
        return self.target

    def abort(self) -> None:
        if not self.file.closed:
            self.file.close()
        if not self.committed:
            try:
                os.unlink(self.tmp_path)
            except FileNotFoundError:
                pass

    def __enter__(self) -> AtomicFile:
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.committed:
            self.abort()


def atomic_write(target: str | os.PathLike, data: bytes, *, mode: int = 0o644, fsync: bool = True) -> Path:
    with AtomicFile(target, mode=mode, fsync=fsync) as f:
        f.write(data)
        return f.commit()
