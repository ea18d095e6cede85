"""Crash-safe file writes: temp file in the target's filesystem, fsync, rename.

A reader never sees a partial file under the final name, and a killed writer
leaves only a temp file (named `.tmp-*`) that cleanup may remove.
"""

from __future__ import annotations

import os
from pathlib import Path


def rmtree(path: str | os.PathLike) -> None:
    """shutil.rmtree(path, ignore_errors=True); shutil (with bz2, lzma, fnmatch) is imported only
    when there is something to remove, not at every start of pallet."""
    if not os.path.lexists(path):
        return
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def fsync_dir(path: str | os.PathLike) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _mkstemp(directory: Path) -> tuple[int, str]:
    """tempfile.mkstemp(prefix=".tmp-", dir=directory) without importing tempfile (random,
    hashlib, weakref: milliseconds of `pallet run`'s start-up)."""
    for _ in range(100):
        path = os.path.join(directory, ".tmp-" + os.urandom(6).hex())
        try:
            return os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600), path
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name in {directory}")


class AtomicFile:
    """Write to a temp file beside (or in `tmp_dir` on the same fs) and rename into place on commit.

    Use as a context manager: leaving the block without `commit()` removes the temp file.
    """

    def __init__(self, target: str | os.PathLike, *, tmp_dir: str | os.PathLike | None = None,
                 mode: int = 0o644, fsync: bool = True) -> None:
        self.target = Path(target)
        directory = Path(tmp_dir) if tmp_dir else self.target.parent
        directory.mkdir(parents=True, exist_ok=True)
        fd, self.tmp_path = _mkstemp(directory)
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
