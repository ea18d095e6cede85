"""Reading a layer tar entry by entry, with access to the content (`pallet.layers.analysis.layer_entries`)."""

from __future__ import annotations

from pallet.layers.analysis import layer_entries

entries = layer_entries   # (Entry, reader) per entry; reader.data() is its content


def read(reader, limit: int = 16 << 20) -> bytes:
    out = bytearray()
    for chunk in reader.data():
        out += chunk
        if len(out) > limit:
            break
    return bytes(out)
