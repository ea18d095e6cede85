"""Layer decompression by media type, checked against the stream's magic bytes.

gzip goes through ISA-L (`isal.isal_zlib`, several times faster than zlib),
zstd through `zstandard`. Both decoders here are push-style (`feed(bytes) ->
bytes`, `finish()`) so that the same code serves a download that arrives in
pieces and a file read in chunks. `DigestingDecoder` hashes the compressed
bytes (the blob digest) and the uncompressed bytes (the diff id) in the same
pass.

Strictness, on purpose: a gzip stream followed by anything that is not another
gzip member, a stream that ends early, and a zstd frame whose content does not
match its header are all `InvalidArchive` errors -- the bytes after a stream
are covered by the blob digest but would never be unpacked, which is exactly
the kind of ambiguity a hostile layer uses.
"""

from __future__ import annotations

import hashlib

from pallet.errors import InvalidArchive
from pallet.oci import mediatypes

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
# zstd skippable frames: 0x184D2A50..0x184D2A5F little-endian; first byte varies, rest fixed.
_ZSTD_SKIPPABLE_TAIL = b"\x2a\x4d\x18"


def compression_for(media_type: str) -> str:
    """'gzip', 'zstd' or '' (plain tar) for a layer media type; InvalidArchive for anything else."""
    kind = mediatypes.layer_compression(media_type)
    if kind is None:
        raise InvalidArchive(f"{media_type!r} is not a layer media type pallet can unpack")
    return kind


def sniff(head: bytes) -> str:
    """The compression the first bytes of a stream show: 'gzip', 'zstd' or '' (anything else)."""
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(ZSTD_MAGIC) or (len(head) >= 4 and head[1:4] == _ZSTD_SKIPPABLE_TAIL
                                       and 0x50 <= head[0] <= 0x5F):
        return "zstd"
    return ""


_NAMES = {"gzip": "gzip", "zstd": "zstd", "": "plain tar"}


class _Plain:
    def feed(self, data: bytes) -> bytes:
        return data

    def finish(self) -> bytes:
        return b""


class _Gzip:
    """Multi-member gzip (as `gzip -d` reads it), rejecting trailing non-gzip bytes."""

    def __init__(self) -> None:
        from isal import isal_zlib

        self._zlib = isal_zlib
        self._d = isal_zlib.decompressobj(wbits=31)
        self._between = b""  # bytes after a member's end, before we know whether another member starts
        self._member_started = False

    def feed(self, data: bytes) -> bytes:
        out = []
        while data:
            if self._d is None:
                self._between += data
                data = b""
                if len(self._between) < 2:
                    break
                if not self._between.startswith(GZIP_MAGIC):
                    raise InvalidArchive(
                        "the layer has data after the end of its gzip stream that is not another gzip member")
                data, self._between = self._between, b""
                self._d = self._zlib.decompressobj(wbits=31)
            try:
                out.append(self._d.decompress(data))
            except self._zlib.error as e:
                raise InvalidArchive(f"the layer's gzip stream is corrupt: {e}") from None
            self._member_started = True
            if self._d.eof:
                data = self._d.unused_data
                self._d = None
                self._member_started = False
            else:
                data = b""
        return b"".join(out)

    def finish(self) -> bytes:
        if self._between:
            raise InvalidArchive("the layer has data after the end of its gzip stream that is not another gzip member")
        if self._d is not None and self._member_started:
            raise InvalidArchive("the layer's gzip stream ends early (truncated download or file)")
        return b""


class _Zstd:
    """Multi-frame zstd; libzstd itself checks a frame's declared content size and checksum."""

    def __init__(self) -> None:
        import zstandard

        self._zstd = zstandard
        self._dctx = zstandard.ZstdDecompressor(max_window_size=1 << 31)
        self._d = self._dctx.decompressobj()
        self._fed = False

    def feed(self, data: bytes) -> bytes:
        out = []
        while data:
            try:
                out.append(self._d.decompress(data))
            except self._zstd.ZstdError as e:
                raise InvalidArchive(f"the layer's zstd stream is corrupt: {e}") from None
            self._fed = True
            if self._d.eof:
                data = self._d.unused_data
                self._d = self._dctx.decompressobj()
                self._fed = False
            else:
                data = b""
        return b"".join(out)

    def finish(self) -> bytes:
        if self._fed:
            raise InvalidArchive("the layer's zstd stream ends early (truncated download or file)")
        return b""


def decoder(kind: str):
    if kind == "gzip":
        return _Gzip()
    if kind == "zstd":
        return _Zstd()
    return _Plain()


class DigestingDecoder:
    """Decompress a layer pushed in pieces, hashing compressed and uncompressed bytes as they pass.

    The first bytes are checked against the compression the media type names.
    """

    def __init__(self, media_type: str, *, what: str = "layer", hash_compressed: bool = True,
                 hash_uncompressed: bool = True) -> None:
        self.kind = compression_for(media_type)
        self.hash_compressed = hash_compressed
        self.hash_uncompressed = hash_uncompressed
        self.what = what
        self.compressed = hashlib.sha256()
        self.uncompressed = hashlib.sha256()
        self.compressed_size = 0
        self.size = 0
        self._head = b""
        self._checked = False
        self._dec = decoder(self.kind)

    def _check(self, head: bytes) -> None:
        seen = sniff(head)
        if seen != self.kind:
            raise InvalidArchive(
                f"{self.what} is {_NAMES[seen] if seen else 'not compressed'} but its media type says "
                f"{_NAMES[self.kind]}")
        self._checked = True

    def feed(self, data: bytes) -> bytes:
        if not data:
            return b""
        if self.hash_compressed:
            self.compressed.update(data)
        self.compressed_size += len(data)
        if not self._checked:
            self._head += data
            if len(self._head) < 4:
                return b""
            data, self._head = self._head, b""
            self._check(data)
        out = self._dec.feed(data)
        if out:
            if self.hash_uncompressed:
                self.uncompressed.update(out)
            self.size += len(out)
        return out

    def finish(self) -> bytes:
        out = b""
        if not self._checked:
            data, self._head = self._head, b""
            if data or self.kind:
                self._check(data)
            if data:
                out = self._dec.feed(data)
        out += self._dec.finish()
        if out and self.hash_uncompressed:
            self.uncompressed.update(out)
        if out:
            self.size += len(out)
        return out

    @property
    def digest(self) -> str:
        """The blob digest ('' when the caller trusted the blob and turned hashing it off)."""
        return "sha256:" + self.compressed.hexdigest() if self.hash_compressed else ""

    @property
    def diff_id(self) -> str:
        """The diff id ('' when the caller knew it and turned hashing off)."""
        return "sha256:" + self.uncompressed.hexdigest() if self.hash_uncompressed else ""
