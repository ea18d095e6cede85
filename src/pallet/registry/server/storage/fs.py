"""Filesystem storage driver.

Layout under the storage root::

    blobs/<alg>/<hex>                                   content, stored once
    repositories/<name>/_layers/<alg>/<hex>             link: repo may read blob
    repositories/<name>/_manifests/revisions/<alg>/<hex> link: manifest in repo (holds media type)
    repositories/<name>/_manifests/tags/<tag>           tag -> digest
    repositories/<name>/_referrers/<alg>/<hex>/<alg>-<hex>  descriptor of a referrer of a subject
    uploads/<id>/info.json, uploads/<id>/data           upload sessions (survive restarts)

Every file is written through `pallet.fsutil` (temp file, fsync, rename), so a
killed server leaves either the old state or the new, never a partial blob under
its digest. Names and tags reach this module only after the grammar check, and
a repository component can never start with `_`, so links never collide with
repositories.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pallet.errors import DigestMismatch
from pallet.fsutil import atomic_write, fsync_dir
from pallet.oci import Digest, Hasher
from pallet.oci.digest import ALGORITHMS
from pallet.registry.server.storage.base import Storage, UploadInfo, UploadWriter

_CHUNK = 1 << 20


class _FileUploadWriter(UploadWriter):
    def __init__(self, storage: FilesystemStorage, upload_id: str, path: Path) -> None:
        self._storage = storage
        self._id = upload_id
        self._f = open(path, "ab")  # noqa: SIM115 - closed in close()
        self.size = self._f.tell()
        cached = storage._hashers.get(upload_id)
        self._hasher = cached if cached is not None and cached.size == self.size else None
        if self._hasher is None:
            storage._hashers.pop(upload_id, None)
            if self.size == 0:
                self._hasher = Hasher("sha256")

    def write(self, data: bytes) -> None:
        self._f.write(data)
        self.size += len(data)
        if self._hasher is not None:
            self._hasher.update(data)

    def close(self) -> None:
        self._f.close()
        if self._hasher is not None:
            self._storage._hashers[self._id] = self._hasher


class FilesystemStorage(Storage):
    def __init__(self, root: str | os.PathLike, *, fsync: bool = True) -> None:
        self.root = Path(root)
        self.fsync = fsync
        self.blobs = self.root / "blobs"
        self.repos = self.root / "repositories"
        self.uploads = self.root / "uploads"
        for d in (self.blobs, self.repos, self.uploads):
            d.mkdir(parents=True, exist_ok=True)
        # upload id -> running sha256 of the bytes so far (this process only; rebuilt from disk if absent)
        self._hashers: dict[str, Hasher] = {}

    # ---- paths ---------------------------------------------------------------------------
    def _blob(self, d: Digest) -> Path:
        return self.blobs / d.algorithm / d.hex

    def _repo(self, name: str) -> Path:
        return self.repos / name

    def _layer_link(self, name: str, d: Digest) -> Path:
        return self.repos / name / "_layers" / d.algorithm / d.hex

    def _revision(self, name: str, d: Digest) -> Path:
        return self.repos / name / "_manifests" / "revisions" / d.algorithm / d.hex

    def _tags(self, name: str) -> Path:
        return self.repos / name / "_manifests" / "tags"

    def _referrers_dir(self, name: str, subject: Digest) -> Path:
        return self.repos / name / "_referrers" / subject.algorithm / subject.hex

    def _write(self, path: Path, data: bytes) -> None:
        atomic_write(path, data, fsync=self.fsync)

    # ---- blobs ---------------------------------------------------------------------------
    def blob_size(self, digest: Digest) -> int | None:
        try:
            return self._blob(digest).stat().st_size
        except FileNotFoundError:
            return None

    def blob_path(self, digest: Digest) -> Path | None:
        p = self._blob(digest)
        return p if p.exists() else None

    def read_blob(self, digest: Digest) -> bytes | None:
        try:
            return self._blob(digest).read_bytes()
        except FileNotFoundError:
            return None

    def repo_has_blob(self, name: str, digest: Digest) -> bool:
        if not self._blob(digest).exists():
            return False
        return self._layer_link(name, digest).exists() or self._revision(name, digest).exists()

    def link_blob(self, name: str, digest: Digest) -> None:
        link = self._layer_link(name, digest)
        if link.exists():
            os.utime(link)
        else:
            self._write(link, b"")

    def unlink_blob(self, name: str, digest: Digest) -> bool:
        try:
            self._layer_link(name, digest).unlink()
            return True
        except FileNotFoundError:
            return False

    def touch_blob(self, name: str, digest: Digest) -> None:
        for p in (self._blob(digest), self._layer_link(name, digest)):
            with contextlib.suppress(FileNotFoundError):
                os.utime(p)

    def _store_content(self, digest: Digest, data: bytes) -> None:
        target = self._blob(digest)
        if target.exists():
            os.utime(target)
        else:
            self._write(target, data)

    def put_blob(self, name: str, digest: Digest, data: bytes) -> None:
        self._store_content(digest, data)
        self.link_blob(name, digest)

    # ---- uploads -------------------------------------------------------------------------
    def _upload_dir(self, upload_id: str) -> Path:
        return self.uploads / upload_id

    def new_upload(self, name: str) -> UploadInfo:
        upload_id = uuid.uuid4().hex
        d = self._upload_dir(upload_id)
        d.mkdir(parents=True)
        started = time.time()
        (d / "data").touch()
        self._write(d / "info.json", json.dumps({"name": name, "started": started}).encode())
        self._hashers[upload_id] = Hasher("sha256")
        return UploadInfo(upload_id, name, 0, started)

    def upload_info(self, name: str, upload_id: str) -> UploadInfo | None:
        d = self._upload_dir(upload_id)
        try:
            info = json.loads((d / "info.json").read_bytes())
            size = (d / "data").stat().st_size
        except (FileNotFoundError, NotADirectoryError, ValueError):
            return None
        if info.get("name") != name:
            return None
        return UploadInfo(upload_id, name, size, float(info.get("started", 0)))

    def upload_writer(self, name: str, upload_id: str) -> UploadWriter:
        return _FileUploadWriter(self, upload_id, self._upload_dir(upload_id) / "data")

    def _hash_file(self, path: Path, algorithm: str) -> Digest:
        h = Hasher(algorithm)
        with open(path, "rb") as f:
            while chunk := f.read(_CHUNK):
                h.update(chunk)
        return h.digest()

    def commit_upload(self, name: str, upload_id: str, digest: Digest) -> int:
        d = self._upload_dir(upload_id)
        data = d / "data"
        size = data.stat().st_size
        cached = self._hashers.pop(upload_id, None)
        if digest.algorithm == "sha256" and cached is not None and cached.size == size:
            actual = cached.digest()
        else:
            actual = self._hash_file(data, digest.algorithm)
        if actual != digest:
            self.cancel_upload(name, upload_id)
            raise DigestMismatch(f"upload hashes to {actual}, not {digest}")
        target = self._blob(digest)
        if target.exists():
            os.utime(target)
        else:
            if self.fsync:
                fd = os.open(data, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(data, target)
            if self.fsync:
                fsync_dir(target.parent)
        self.link_blob(name, digest)
        shutil.rmtree(d, ignore_errors=True)
        return size

    def cancel_upload(self, name: str, upload_id: str) -> bool:
        self._hashers.pop(upload_id, None)
        if self.upload_info(name, upload_id) is None:
            return False
        shutil.rmtree(self._upload_dir(upload_id), ignore_errors=True)
        return True

    def purge_uploads(self, older_than: float) -> int:
        n = 0
        for d in self.uploads.iterdir():
            try:
                started = json.loads((d / "info.json").read_bytes()).get("started", 0)
            except (OSError, ValueError):
                try:
                    started = d.stat().st_mtime  # being created (or removed) right now
                except FileNotFoundError:
                    continue
            if started < older_than:
                shutil.rmtree(d, ignore_errors=True)
                self._hashers.pop(d.name, None)
                n += 1
        return n

    # ---- manifests -----------------------------------------------------------------------
    def get_manifest(self, name: str, digest: Digest) -> tuple[bytes, str] | None:
        try:
            media_type = self._revision(name, digest).read_text()
            return self._blob(digest).read_bytes(), media_type
        except FileNotFoundError:
            return None

    def manifest_media_type(self, name: str, digest: Digest) -> str | None:
        try:
            return self._revision(name, digest).read_text()
        except FileNotFoundError:
            return None

    def put_manifest(self, name: str, digest: Digest, raw: bytes, media_type: str, *,
                     tag: str | None = None, subject: Digest | None = None,
                     referrer: dict[str, Any] | None = None) -> None:
        self._store_content(digest, raw)
        self._write(self._revision(name, digest), media_type.encode())
        if subject is not None and referrer is not None:
            entry = self._referrers_dir(name, subject) / f"{digest.algorithm}-{digest.hex}"
            self._write(entry, json.dumps(referrer).encode())
        if tag is not None:
            self._write(self._tags(name) / tag, str(digest).encode())

    def delete_manifest(self, name: str, digest: Digest) -> bool:
        rev = self._revision(name, digest)
        if not rev.exists():
            return False
        for tag, target in self.list_tag_targets(name).items():
            if target == digest:
                self.delete_tag(name, tag)
        ref_root = self.repos / name / "_referrers"
        if ref_root.is_dir():
            for entry in ref_root.glob(f"*/*/{digest.algorithm}-{digest.hex}"):
                entry.unlink(missing_ok=True)
        rev.unlink(missing_ok=True)
        return True

    def resolve_tag(self, name: str, tag: str) -> Digest | None:
        try:
            return Digest.parse(((self._tags(name)) / tag).read_text().strip())
        except (FileNotFoundError, NotADirectoryError):
            return None

    def delete_tag(self, name: str, tag: str) -> bool:
        try:
            (self._tags(name) / tag).unlink()
            return True
        except FileNotFoundError:
            return False

    def repo_exists(self, name: str) -> bool:
        r = self._repo(name)
        return (r / "_manifests").is_dir() or (r / "_layers").is_dir()

    def list_tags(self, name: str) -> list[str] | None:
        if not self.repo_exists(name):
            return None
        try:
            return sorted(p for p in os.listdir(self._tags(name)) if not p.startswith("."))
        except FileNotFoundError:
            return []

    def list_repositories(self) -> list[str]:
        out: list[str] = []
        for dirpath, dirnames, _ in os.walk(self.repos):
            if "_manifests" in dirnames or "_layers" in dirnames:
                out.append(os.path.relpath(dirpath, self.repos))
            dirnames[:] = [d for d in dirnames if not d.startswith("_")]
        return sorted(out)

    def referrers(self, name: str, subject: Digest) -> list[dict[str, Any]]:
        d = self._referrers_dir(name, subject)
        out: list[dict[str, Any]] = []
        try:
            entries = sorted(os.listdir(d))
        except FileNotFoundError:
            return out
        for e in entries:
            if e.startswith("."):
                continue
            try:
                desc = json.loads((d / e).read_bytes())
            except (FileNotFoundError, ValueError):
                continue
            if self._revision(name, Digest.parse(desc["digest"])).exists():
                out.append(desc)
        return out

    # ---- gc ------------------------------------------------------------------------------
    def _list_digests(self, base: Path) -> list[tuple[Digest, float]]:
        out = []
        for alg in ALGORITHMS:
            d = base / alg
            try:
                names = os.listdir(d)
            except FileNotFoundError:
                continue
            for h in names:
                if h.startswith("."):
                    continue
                try:
                    out.append((Digest.parse(f"{alg}:{h}"), (d / h).stat().st_mtime))
                except (FileNotFoundError, Exception):  # noqa: BLE001 - stray files are skipped
                    continue
        return out

    def list_manifests(self, name: str) -> list[Digest]:
        return [d for d, _ in self._list_digests(self.repos / name / "_manifests" / "revisions")]

    def manifest_mtime(self, name: str, digest: Digest) -> float | None:
        try:
            return self._revision(name, digest).stat().st_mtime
        except FileNotFoundError:
            return None

    def list_tag_targets(self, name: str) -> dict[str, Digest]:
        out = {}
        for tag in self.list_tags(name) or []:
            d = self.resolve_tag(name, tag)
            if d is not None:
                out[tag] = d
        return out

    def list_repo_blobs(self, name: str) -> list[tuple[Digest, float]]:
        return self._list_digests(self.repos / name / "_layers")

    def iter_blobs(self) -> Iterator[tuple[Digest, float]]:
        yield from self._list_digests(self.blobs)

    def delete_blob(self, digest: Digest) -> None:
        self._blob(digest).unlink(missing_ok=True)
