"""Reading a layer tar entry by entry, with access to the content (the same decoder and tar reader as
`pallet.layers.analysis`, which only reads headers)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

from pallet.layers.compression import DigestingDecoder
from pallet.layers.tarstream import TarReader


def entries(stream: BinaryIO, media_type: str) -> Iterator:
    """(Entry, reader) per entry of a (compressed) layer; `reader.data()` is the entry's content."""
    dec = DigestingDecoder(media_type)

    def chunks() -> Iterator[bytes]:
        while True:
            b = stream.read(1 << 20)
            if not b:
                break
            out = dec.feed(b)
            if out:
                yield out
        out = dec.finish()
        if out:
            yield out

    reader = TarReader(chunks())
    for e in reader.entries():
        yield e, reader


def read(reader, limit: int = 16 << 20) -> bytes:
    out = bytearray()
    for chunk in reader.data():
        out += chunk
        if len(out) > limit:
            break
    return bytes(out)
