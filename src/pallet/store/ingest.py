"""Bringing images into the store all-or-nothing: the shared base of load, import and layout import.

    with Ingest(store) as ing:                 # holds store.shared_lock()
        info = ing.put_stream(f, expected="sha256:…", size=n)   # verified while written
        ing.add_image(manifest, config, names=[...])            # checked now, registered at the end
        records = ing.commit()

Every blob is verified against its digest while it is written; every layer's
uncompressed digest is checked against the config's `rootfs.diff_ids` before
anything is registered. Images are registered only by `commit()`, after all
of them passed their checks. If anything fails, the blobs this ingest created
are removed again (unless another image reaches them), so the store is left
as it was.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import BinaryIO

from pallet.errors import DigestMismatch, InvalidArchive, InvalidDocument, PalletError
from pallet.oci import mediatypes as mt
from pallet.oci.digest import Digest
from pallet.oci.documents import ImageConfig, Manifest
from pallet.store.blobs import CHUNK


@dataclass
class BlobInfo:
    digest: str
    size: int
    compression: str                  # what the first bytes show: 'gzip', 'zstd' or '' (anything else)
    diff_id: str | None = None        # digest of the decompressed stream, when it could be decompressed
    uncompressed_size: int | None = None
    error: str | None = None          # why decompressing failed


@dataclass
class PendingImage:
    manifest: Manifest
    config: ImageConfig
    size: int
    names: list[str] = field(default_factory=list)
    target_digest: str | None = None
    repo_digests: list[str] = field(default_factory=list)
    layer_infos: list[tuple[str, str, int]] = field(default_factory=list)  # (digest, diff id, size)


@dataclass
class Loaded:
    """One image a load brought in, with the names it got."""

    record: object                      # ImageRecord
    names: list[str] = field(default_factory=list)


def merge_loaded(found: list[tuple[str, list[str]]], records: list) -> list[Loaded]:
    """(image ID, names) pairs and the registered records → one Loaded per image, in order."""
    by_id = {r.id: r for r in records}
    merged: dict[str, Loaded] = {}
    for image_id, names in found:
        lo = merged.setdefault(image_id, Loaded(by_id[image_id]))
        lo.names += [n for n in names if n not in lo.names]
    return list(merged.values())


def _sniff(head: bytes) -> str:
    from pallet.layers.compression import sniff

    return sniff(head)


class Ingest:
    def __init__(self, store) -> None:
        self.store = store
        self.created: set[str] = set()
        self.infos: dict[str, BlobInfo] = {}
        self.pending: list[PendingImage] = []
        self._lock = None
        self._used: set[str] = set()

    # ---- context ---------------------------------------------------------------------------
    def __enter__(self) -> Ingest:
        self._lock = self.store.shared_lock()
        self._lock.__enter__()
        return self

    def __exit__(self, et, ev, tb) -> bool:
        try:
            self._lock.__exit__(et, ev, tb)
        finally:
            # after a failure everything this ingest wrote goes; after success, what no image uses
            left = self.created if et is not None else self.created - self._used
            self.store.discard_blobs(left)
        return False

    # ---- blobs -----------------------------------------------------------------------------
    def put_stream(self, stream: BinaryIO, *, expected: str | None = None, size: int | None = None,
                   what: str = "blob") -> BlobInfo:
        """Write a blob from `stream`, verified against `expected` (and `size`) when given.

        A stream that starts like gzip or zstd is also decompressed on the fly (best
        effort) so that a layer's diff id is known without reading the blob again.
        """
        blobs = self.store.blobs
        writer = blobs.writer(expected, size)
        with writer:
            head = stream.read(CHUNK)
            kind = _sniff(head)
            dec = uhash = None
            usize = 0
            error = None
            if kind:
                from pallet.layers.compression import decoder

                dec, uhash = decoder(kind), hashlib.sha256()
            chunk = head
            while chunk:
                writer.write(chunk)
                if dec is not None:
                    try:
                        out = dec.feed(chunk)
                        uhash.update(out)
                        usize += len(out)
                    except PalletError as e:
                        dec, error = None, e.message
                chunk = stream.read(CHUNK)
            if dec is not None:
                try:
                    out = dec.finish()
                    uhash.update(out)
                    usize += len(out)
                except PalletError as e:
                    dec, error = None, e.message
            existed = blobs.has(str(writer.hasher.digest()))
            try:
                digest = writer.commit()
            except DigestMismatch as e:
                raise DigestMismatch(f"{what}: {e.message}") from None
        if not existed:
            self.created.add(digest)
        if kind and dec is not None:
            info = BlobInfo(digest, writer.size, kind, "sha256:" + uhash.hexdigest(), usize)
        elif kind:
            info = BlobInfo(digest, writer.size, kind, error=error)
        else:
            info = BlobInfo(digest, writer.size, "", digest, writer.size)
        self.infos[digest] = info
        return info

    def put_bytes(self, data: bytes, *, expected: str | None = None, what: str = "blob") -> str:
        import io

        return self.put_stream(io.BytesIO(data), expected=expected, size=len(data), what=what).digest

    # ---- layers ----------------------------------------------------------------------------
    def layer_info(self, digest: str, media_type: str, *, what: str = "layer") -> tuple[str, int]:
        """(diff id, uncompressed size) of a stored layer blob, checking its compression against its media type."""
        kind = mt.layer_compression(media_type)
        if kind is None:
            raise InvalidDocument(f"{what} has media type {media_type!r}, which is not a layer type pallet can use")
        info = self.infos.get(digest)
        if info is not None:
            if info.compression != kind:
                names = {"gzip": "gzip-compressed", "zstd": "zstd-compressed", "": "not compressed"}
                raise InvalidArchive(f"{what} ({digest}) is {names[info.compression]} but its media type "
                                     f"{media_type} says {names[kind]}")
            if info.diff_id is None:
                raise InvalidArchive(f"{what} ({digest}) cannot be decompressed: {info.error}")
            return info.diff_id, info.uncompressed_size or 0
        known = self.store.layer_info(digest)
        if known is not None:
            return known
        from pallet.layers.compression import DigestingDecoder

        dec = DigestingDecoder(media_type, what=f"{what} ({digest})")
        with self.store.blobs.open(digest) as f:
            while chunk := f.read(CHUNK):
                dec.feed(chunk)
        dec.finish()
        if dec.digest != digest:
            raise DigestMismatch(f"stored blob {digest} is corrupt: its content does not match its digest")
        return dec.diff_id, dec.size

    # ---- images ----------------------------------------------------------------------------
    def check_image(self, manifest: Manifest, config: ImageConfig, *, what: str = "image"
                    ) -> tuple[int, list[tuple[str, str, int]]]:
        """Check that every blob is here with its announced size and the layers match the diff ids."""
        blobs = self.store.blobs
        for kind, desc in [("config", manifest.config), *((f"layer {i}", x) for i, x in enumerate(manifest.layers))]:
            if not blobs.has(desc.digest):
                raise InvalidArchive(f"{what}: the manifest names {kind} blob {desc.digest}, which is missing")
            actual = blobs.size(desc.digest)
            if actual != desc.size:
                raise DigestMismatch(f"{what}: {kind} blob {desc.digest} has {actual} bytes but the manifest "
                                     f"says {desc.size}")
        if manifest.config.digest != config.digest:
            raise DigestMismatch(f"{what}: the manifest names config {manifest.config.digest} but the config "
                                 f"is {config.digest}")
        if manifest.config.media_type not in mt.CONFIGS:
            raise InvalidDocument(f"{what}: config media type {manifest.config.media_type!r} is not an image "
                                  f"config (not a container image?)")
        if len(manifest.layers) != len(config.diff_ids):
            raise InvalidDocument(f"{what}: the manifest has {len(manifest.layers)} layers but the config lists "
                                  f"{len(config.diff_ids)} diff ids")
        total, infos = 0, []
        for i, (desc, expected) in enumerate(zip(manifest.layers, config.diff_ids, strict=True)):
            diff_id, usize = self.layer_info(desc.digest, desc.media_type, what=f"{what}: layer {i}")
            if diff_id != expected:
                raise DigestMismatch(f"{what}: layer {i} ({desc.digest}) unpacks to diff id {diff_id}, but the "
                                     f"config lists {expected}")
            total += usize
            infos.append((desc.digest, diff_id, usize))
        return total, infos

    def add_image(self, manifest: Manifest, config: ImageConfig, *, names: list[str] = (),
                  target_digest: str | None = None, repo_digests: list[str] = (), what: str = "image"
                  ) -> PendingImage:
        """Check an image whose blobs are in the store; it is registered by `commit()`."""
        Digest.parse(manifest.digest)
        if not self.store.blobs.has(manifest.digest):
            self.put_bytes(manifest.raw, expected=manifest.digest, what=f"{what}: manifest")
        size, infos = self.check_image(manifest, config, what=what)
        for p in self.pending:
            if p.config.digest == config.digest and p.manifest.digest == manifest.digest:
                p.names += [n for n in names if n not in p.names]
                p.repo_digests += [r for r in repo_digests if r not in p.repo_digests]
                return p
        p = PendingImage(manifest, config, size, list(names), target_digest, list(repo_digests), infos)
        self.pending.append(p)
        return p

    def commit(self) -> list:
        """Register every checked image; returns their ImageRecords in order."""
        records = []
        used = self._used
        for p in self.pending:
            for digest, diff_id, usize in p.layer_infos:
                self.store.record_layer(digest, diff_id, usize)
            records.append(self.store.register_image(p.manifest, p.config, size=p.size, names=p.names,
                                                     target_digest=p.target_digest,
                                                     repo_digests=p.repo_digests))
            used.update([p.manifest.digest, p.config.digest, *(x.digest for x in p.manifest.layers)])
            if p.target_digest:
                used.add(p.target_digest)
        return records
