"""The content-addressed blob store: `<root>/blobs/<alg>/<hex>`, the OCI image layout's.

Writes stream into a temp file under `<root>/tmp` (same filesystem), hash while
writing, check digest and size, fsync, and rename into place. A killed writer
leaves only a temp file; two writers of the same blob both succeed (the rename
of identical content is harmless).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from pallet.errors import DigestMismatch, NotFound
from pallet.fsutil import AtomicFile, rmtree
from pallet.oci.digest import ALGORITHMS, Digest, Hasher

TYPE_CHECKING = False  # typing is not imported at run time (start-up)
if TYPE_CHECKING:
    from typing import BinaryIO

CHUNK = 1 << 20


class BlobWriter:
    """A blob being written; `commit()` verifies and publishes it, leaving the block without it discards."""

    def __init__(self, store: BlobStore, expected: str | None, size: int | None, algorithm: str) -> None:
        self.store = store
        self.expected = Digest.parse(expected) if expected else None
        self.expected_size = size
        self.hasher = Hasher(self.expected.algorithm if self.expected else algorithm)
        self._file: AtomicFile | None = None
        self._target_known = self.expected is not None
        self._open()

    def _open(self) -> None:
        # target is fixed at commit time when the digest is not known in advance
        self._file = AtomicFile(self.store.tmp / "unused", tmp_dir=self.store.tmp, mode=0o644)

    def write(self, data: bytes | memoryview) -> int:
        self.hasher.update(data)
        assert self._file is not None
        return self._file.write(data)

    @property
    def size(self) -> int:
        return self.hasher.size

    @property
    def tmp_path(self) -> str:
        """The temp file the blob is being written to (readable by a concurrent unpacker)."""
        assert self._file is not None
        return self._file.tmp_path

    def flush(self) -> None:
        """Hand what was written so far to the kernel, so a reader of `tmp_path` sees it."""
        assert self._file is not None
        self._file.file.flush()

    def check(self) -> str:
        """Verify size and digest without publishing (DigestMismatch, temp file removed); the digest."""
        digest = self.hasher.digest()
        assert self._file is not None
        if self.expected_size is not None and self.hasher.size != self.expected_size:
            self._file.abort()
            raise DigestMismatch(
                f"blob {self.expected or digest} has {self.hasher.size} bytes, expected {self.expected_size}")
        if self.expected is not None and digest != self.expected:
            self._file.abort()
            raise DigestMismatch(f"blob content does not match its digest: expected {self.expected}, got {digest}")
        return str(digest)

    def commit(self) -> str:
        """Verify, fsync and rename into place; returns the digest."""
        digest = self.check()
        assert self._file is not None
        self._file.target = self.store.path(digest)
        self._file.commit()
        return digest

    def abort(self) -> None:
        if self._file is not None:
            self._file.abort()

    def __enter__(self) -> BlobWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._file is not None and not self._file.committed:
            self._file.abort()


class BlobStore:
    def __init__(self, blobs_dir: Path, tmp_dir: Path) -> None:
        self.dir = blobs_dir
        self.tmp = tmp_dir

    def path(self, digest: str) -> Path:
        d = Digest.parse(digest)
        return self.dir / d.algorithm / d.hex

    def has(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def size(self, digest: str) -> int:
        try:
            return self.path(digest).stat().st_size
        except FileNotFoundError:
            raise NotFound(f"blob {digest} is not in the store") from None

    def open(self, digest: str) -> BinaryIO:
        try:
            return open(self.path(digest), "rb")
        except FileNotFoundError:
            raise NotFound(f"blob {digest} is not in the store") from None

    def read(self, digest: str, *, verify: bool = True) -> bytes:
        with self.open(digest) as f:
            data = f.read()
        if verify and not Digest.parse(digest).verify(data):
            raise DigestMismatch(f"stored blob {digest} is corrupt: its content does not match its digest")
        return data

    def writer(self, expected: str | None = None, size: int | None = None, algorithm: str = "sha256") -> BlobWriter:
        return BlobWriter(self, expected, size, algorithm)

    def put(self, data: bytes, expected: str | None = None) -> str:
        if expected and self.has(expected):
            if not Digest.parse(expected).verify(data):
                raise DigestMismatch(f"blob content does not match its digest {expected}")
            return expected
        with self.writer(expected, len(data)) as w:
            w.write(data)
            return w.commit()

    def put_stream(self, stream: BinaryIO, expected: str | None = None, size: int | None = None) -> str:
        with self.writer(expected, size) as w:
            while chunk := stream.read(CHUNK):
                w.write(chunk)
            return w.commit()

    def put_file(self, path: str | os.PathLike, expected: str | None = None) -> str:
        with open(path, "rb") as f:
            return self.put_stream(f, expected)

    def delete(self, digest: str) -> bool:
        try:
            self.path(digest).unlink()
            return True
        except FileNotFoundError:
            return False

    def __iter__(self) -> Iterator[str]:
        for alg in ALGORITHMS:
            d = self.dir / alg
            if d.is_dir():
                for name in os.listdir(d):
                    if not name.startswith("."):
                        yield f"{alg}:{name}"

    def clean_tmp(self, older_than: float = 3600.0) -> None:
        """Remove temp files of writers that died (only old ones: a live writer may own a young one)."""
        import time

        cutoff = time.time() - older_than
        if not self.tmp.is_dir():
            return
        for entry in os.scandir(self.tmp):
            try:
                if entry.stat(follow_symlinks=False).st_mtime < cutoff:
                    if entry.is_dir(follow_symlinks=False):
                        rmtree(entry.path)
                    else:
                        os.unlink(entry.path)
            except FileNotFoundError:
                pass
