"""`docker import`: a root filesystem tarball (plain or compressed) → a single-layer image.

The tarball is decompressed once into a temp file (its sha256 is the layer's diff
id), checked to be a readable tar, and stored gzip-compressed (ISA-L) as an OCI
layer. The config records the platform, the `--change` instructions and one
history entry with the message.
"""

from __future__ import annotations

import hashlib
import tarfile
import tempfile
from datetime import UTC, datetime
from typing import BinaryIO

from pallet.errors import InvalidArchive
from pallet.oci import mediatypes as mt
from pallet.oci.documents import Descriptor, ImageConfig, Manifest, canonical_json
from pallet.store.archive import open_maybe_compressed
from pallet.store.blobs import CHUNK
from pallet.store.changes import apply_changes
from pallet.store.ingest import Ingest
from pallet.store.layout import host_platform


def rfc3339_now() -> str:
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond:06d}000Z"


class _GzipStream:
    """A readable stream of `src` gzip-compressed (ISA-L when available), for BlobStore writers."""

    def __init__(self, src: BinaryIO, level: int = 1) -> None:
        try:
            from isal import isal_zlib as z
        except ImportError:  # pragma: no cover - isal is a dependency
            import zlib as z
        self.src = src
        self.c = z.compressobj(level, z.DEFLATED, 31)
        self.done = False

    def read(self, n: int = -1) -> bytes:
        while not self.done:
            chunk = self.src.read(CHUNK)
            out = self.c.compress(chunk) if chunk else self.c.flush()
            if not chunk:
                self.done = True
            if out:
                return out
        return b""


def import_rootfs(store, stream: BinaryIO, *, name: str | None = None, changes: list[str] = (),
                  message: str | None = None, source: str = "-"):
    """Import a rootfs tarball as a one-layer image named `name` (a full reference) or untagged."""
    cfg = apply_changes({}, list(changes))      # bad --change fails before anything is written
    with Ingest(store) as ing, tempfile.TemporaryFile(dir=store.tmp) as tmp:
        src = open_maybe_compressed(stream, source)
        h = hashlib.sha256()
        size = 0
        try:
            while chunk := src.read(CHUNK):
                h.update(chunk)
                tmp.write(chunk)
                size += len(chunk)
        except (OSError, EOFError, ValueError) as e:
            raise InvalidArchive(f"{source} cannot be decompressed: {e}") from None
        if size == 0:
            raise InvalidArchive(f"{source} is empty, not a tar archive")
        tmp.seek(0)
        try:
            with tarfile.open(fileobj=tmp, mode="r:") as tf:
                for _ in tf:
                    pass
        except (tarfile.TarError, EOFError) as e:
            raise InvalidArchive(f"{source} is not a tar archive ({e})") from None
        tmp.seek(0)
        diff_id = "sha256:" + h.hexdigest()
        layer = ing.put_stream(_GzipStream(tmp), what="layer")
        if layer.diff_id != diff_id:  # the round trip through gzip must give the same bytes back
            raise InvalidArchive(f"compressing the layer failed: {layer.diff_id} != {diff_id}")
        created = rfc3339_now()
        os_, arch = host_platform()
        comment = message if message is not None else f"Imported from {source}"
        doc = {"created": created, "architecture": arch, "os": os_, "config": cfg,
               "rootfs": {"type": "layers", "diff_ids": [diff_id]},
               "history": [{"created": created, "created_by": "pallet import", "comment": comment}]}
        if message is not None:
            doc["comment"] = message
        raw = canonical_json(doc)
        config = ImageConfig.parse(raw)
        cfg_digest = ing.put_bytes(raw, what="config")
        manifest = Manifest.build(Descriptor(mt.OCI_CONFIG, cfg_digest, len(raw)),
                                  [Descriptor(mt.OCI_LAYER_GZIP, layer.digest, layer.size)])
        ing.add_image(manifest, config, names=[name] if name else [])
        return ing.commit()[0]
