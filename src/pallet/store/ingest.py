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

With `Ingest(store, unpack=True)` (`pallet load`) a blob that looks like a
layer is also unpacked while it is written: a forked process
(`pallet.layers.staged`) reads the blob's temp file as it grows, decompresses
it, computes the diff id (the one `check_image` compares with the config) and
untars it into a staging dir under `<root>/tmp`. The blob itself is then not
decompressed here at all. Only after the images are registered does
`commit()` move those trees into the layer snapshots under their chain ids,
so `pallet image mount` finds them unpacked; a failed ingest removes them and
leaves `<root>/layers` untouched. When such an unpack fails (a layer that is
no valid tar, say), the diff id comes from decompressing the stored blob, as
without `unpack`, and the layer is unpacked (or refused) on first use.
"""

from __future__ import annotations

import hashlib
import os
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
    staged: object = None             # StagedUnpack: the layer being unpacked from this blob (unpack=True)


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


def _is_tar(head: bytes) -> bool:
    """Whether a plain stream starts with a POSIX or GNU tar header (magic `ustar` at offset 257)."""
    return head[257:262] == b"ustar"


def _decode(chunks, kind: str) -> tuple[str | None, int, str | None]:
    """(diff id, uncompressed size, None) of a compressed stream given in chunks, or (None, 0, why)."""
    from pallet.layers.compression import decoder

    dec, uhash, usize = decoder(kind), hashlib.sha256(), 0
    try:
        for chunk in chunks:
            out = dec.feed(chunk)
            uhash.update(out)
            usize += len(out)
        out = dec.finish()
    except PalletError as e:
        return None, 0, e.message
    uhash.update(out)
    return "sha256:" + uhash.hexdigest(), usize + len(out), None


_LAYER_TYPES = {"gzip": mt.OCI_LAYER_GZIP, "zstd": mt.OCI_LAYER_ZSTD, "": mt.OCI_LAYER}


class Ingest:
    def __init__(self, store, *, unpack: bool = False) -> None:
        self.store = store
        self.unpack = unpack
        self.created: set[str] = set()
        self.infos: dict[str, BlobInfo] = {}
        self.pending: list[PendingImage] = []
        self._lock = None
        self._used: set[str] = set()
        self._staged: list = []      # every StagedUnpack started
        self._unsynced: list = []    # (BlobWriter, digest): verified, fsync and rename put off (see `sync`)

    # ---- context ---------------------------------------------------------------------------
    def __enter__(self) -> Ingest:
        self._lock = self.store.shared_lock()
        self._lock.__enter__()
        return self

    def __exit__(self, et, ev, tb) -> bool:
        try:
            for writer, _ in self._unsynced:   # blobs never published (a failure): temp files go
                writer.abort()
            self._unsynced.clear()
            for s in self._staged:   # unpacks not published: stop them, remove their trees
                s.discard()
        finally:
            self._exit_lock(et, ev, tb)
        return False

    def _exit_lock(self, et, ev, tb) -> None:
        try:
            self._lock.__exit__(et, ev, tb)
        finally:
            # after a failure everything this ingest wrote goes; after success, what no image uses
            left = self.created if et is not None else self.created - self._used
            self.store.discard_blobs(left)

    # ---- blobs -----------------------------------------------------------------------------
    def put_stream(self, stream: BinaryIO, *, expected: str | None = None, size: int | None = None,
                   what: str = "blob") -> BlobInfo:
        """Write a blob from `stream`, verified against `expected` (and `size`) when given.

        A stream that starts like gzip or zstd is also decompressed on the fly (best
        effort) so that a layer's diff id is known without reading the blob again --
        with `unpack`, by the process that unpacks it from the blob being written.
        """
        blobs = self.store.blobs
        writer = blobs.writer(expected, size)
        staged = None
        try:
            head = stream.read(CHUNK)
            kind = _sniff(head)
            if self.unpack and (kind or _is_tar(head)) and not (expected and blobs.has(expected)):
                staged = self._stage(writer, kind)
            dec = uhash = None
            usize = 0
            error = None
            if kind and staged is None:
                from pallet.layers.compression import decoder

                dec, uhash = decoder(kind), hashlib.sha256()
            try:
                chunk = head
                while chunk:
                    writer.write(chunk)
                    if staged is not None:
                        writer.flush()
                        staged.grown(writer.size)
                    elif dec is not None:
                        try:
                            out = dec.feed(chunk)
                            uhash.update(out)
                            usize += len(out)
                        except PalletError as e:
                            dec, error = None, e.message
                    chunk = stream.read(CHUNK)
                if staged is not None:
                    writer.flush()
                    staged.end(writer.size)   # it unpacks the rest while the blob is fsynced
                elif dec is not None:
                    try:
                        out = dec.finish()
                        uhash.update(out)
                        usize += len(out)
                    except PalletError as e:
                        dec, error = None, e.message
                existed = blobs.has(str(writer.hasher.digest()))
                try:
                    # a layer being unpacked: verified now; its fsync and rename are put off until
                    # the blob is needed (`sync`), so the next members are read in the meantime
                    digest = writer.check() if staged is not None else writer.commit()
                except DigestMismatch as e:
                    raise DigestMismatch(f"{what}: {e.message}") from None
            except BaseException:
                if staged is not None:
                    staged.discard()
                raise
        except BaseException:
            writer.abort()
            raise
        if staged is not None:
            self._unsynced.append((writer, digest))
        elif not existed:
            self.created.add(digest)
        if staged is not None:   # the diff id comes from the unpack (plain tar: it is the digest)
            info = BlobInfo(digest, writer.size, kind, None if kind else digest,
                            None if kind else writer.size, staged=staged)
        elif kind and dec is not None:
            info = BlobInfo(digest, writer.size, kind, "sha256:" + uhash.hexdigest(), usize)
        elif kind:
            info = BlobInfo(digest, writer.size, kind, error=error)
        else:
            info = BlobInfo(digest, writer.size, "", digest, writer.size)
        self.infos[digest] = info
        return info

    # most unpack processes at once (more wait: the reader is then ahead of the unpackers anyway)
    MAX_STAGED = max(4, 2 * (os.cpu_count() or 1))

    def _stage(self, writer, kind: str):
        """Start unpacking the blob `writer` is writing, in a forked process; None where that cannot be."""
        import threading

        if threading.active_count() != 1:
            return None   # forking is only safe from a single-threaded process
        running = [s for s in self._staged if s.running]
        while len(running) >= self.MAX_STAGED:
            import select

            ready, _, _ = select.select(running, [], [])
            for s in ready:
                s.wait()
            running = [s for s in running if s.running]
        from pallet.layers.staged import StagedUnpack

        try:
            s = StagedUnpack(writer.tmp_path, _LAYER_TYPES[kind], str(self.store.tmp))
        except OSError:
            return None
        self._staged.append(s)
        return s

    def sync(self) -> None:
        """Publish (fsync, rename) the verified blobs whose publishing was put off; call before
        anything looks for them in the blob store."""
        blobs = self.store.blobs
        while self._unsynced:
            writer, digest = self._unsynced[0]
            existed = blobs.has(digest)
            writer.commit()
            self._unsynced.pop(0)
            if not existed:
                self.created.add(digest)

    def _staged_diff_id(self, info: BlobInfo) -> None:
        """Fill in a staged blob's diff id: from its unpack, or (that failed) by decompressing the blob."""
        r = info.staged.wait()
        if r is not None:
            info.diff_id, info.uncompressed_size = r.diff_id, r.size
            return

        def chunks():
            with self.store.blobs.open(info.digest) as f:
                while chunk := f.read(CHUNK):
                    yield chunk
        info.diff_id, info.uncompressed_size, info.error = _decode(chunks(), info.compression)

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
            if info.diff_id is None and info.staged is not None:
                self._staged_diff_id(info)
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
        self.sync()
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
        self.sync()
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
        self.sync()
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
        if self._staged:
            self._publish_staged()
        return records

    def _publish_staged(self) -> None:
        """Move the layers unpacked during the ingest into the snapshots, under their chain ids.

        After registering: a crash before this point leaves images whose layers are unpacked
        on first use, never a layer that no image has. A layer that cannot be published is
        left to that first use too."""
        from pallet.layers.chain import chain_ids
        from pallet.layers.snapshots import Snapshots

        snaps = None
        for p in self.pending:
            ids = chain_ids(p.config.diff_ids)
            for i, (digest, diff_id, _) in enumerate(p.layer_infos):
                info = self.infos.get(digest)
                staged = info.staged if info is not None else None
                if staged is None or staged.published:
                    continue
                r = staged.wait()
                if r is None or r.diff_id != diff_id:
                    continue
                if snaps is None:
                    snaps = Snapshots(self.store.root)   # the diff dirs are the same for every driver
                if not snaps.has(ids[i]):
                    staged.publish(snaps, ids[i], ids[i - 1] if i else None, digest)
