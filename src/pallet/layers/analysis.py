"""What each layer of an image does to the filesystem: `pallet image tree` and `pallet image efficiency`.

Works from the layer tars (headers only; contents are skipped), so it needs no
unpacked snapshot and no driver. Per layer every entry is classified against
the merged view of the layers below:

- ``+`` added: the path did not exist below;
- ``~`` changed: the path existed below and this layer replaces it (a directory
  listed again only because it is a parent of something new is not a change);
- ``-`` deleted: a whiteout removed it (every path below it counts as deleted);
  an opaque directory deletes what lower layers had inside it.

Efficiency follows dive's idea: bytes a layer ships that a later layer
overwrites or deletes are wasted, `score = 1 - wasted / all bytes shipped`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from pallet.layers.apply import OPAQUE_NAME, WHITEOUT_PREFIX
from pallet.layers.compression import DigestingDecoder
from pallet.layers.paths import clean_name
from pallet.layers.tarstream import DIR, LNK, REG, SYM, TarReader

_TYPES = {REG: "file", DIR: "dir", SYM: "symlink", LNK: "hardlink", "3": "char", "4": "block", "6": "fifo"}


@dataclass
class Change:
    op: str          # + ~ -
    path: str        # absolute, e.g. /usr/bin/env
    type: str        # file dir symlink hardlink char block fifo (for -: what was deleted)
    size: int        # bytes added (+ ~) or removed (-)


@dataclass
class LayerReport:
    index: int
    digest: str
    diff_id: str
    created_by: str
    size: int                      # bytes of file content this layer ships
    changes: list[Change] = field(default_factory=list)

    def count(self, op: str, prefix: str = "/") -> int:
        return sum(1 for c in self.changes if c.op == op and _under(c.path, prefix))


@dataclass
class Waste:
    path: str
    count: int                     # versions shipped by layers
    wasted: int                    # bytes of versions that are not in the final image


def _under(path: str, prefix: str) -> bool:
    prefix = "/" + prefix.strip("/") if prefix.strip("/") else "/"
    return prefix == "/" or path == prefix or path.startswith(prefix + "/")


def layer_entries(stream: BinaryIO, media_type: str) -> Iterator:
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


def _entries(stream: BinaryIO, media_type: str) -> Iterator:
    for e, _ in layer_entries(stream, media_type):
        yield e


class _Merged:
    """The merged view so far: path -> (layer index, size, type)."""

    def __init__(self) -> None:
        self.files: dict[str, tuple[int, int, str]] = {}

    def under(self, path: str) -> list[str]:
        pre = path + "/"
        return [p for p in self.files if p == path or p.startswith(pre)]


def analyze(layers: list[tuple[str, str, str, str, Callable[[], BinaryIO]]]) -> tuple[list[LayerReport], list[Waste]]:
    """`layers`: (digest, diff_id, media_type, created_by, open) bottom first -> reports, waste by path."""
    merged = _Merged()
    shipped: dict[str, list[int]] = {}   # path -> sizes of every version shipped
    wasted: dict[str, int] = {}
    reports = []
    for i, (digest, diff_id, media_type, created_by, opener) in enumerate(layers):
        rep = LayerReport(i, digest, diff_id, created_by, 0)
        seen_here: set[str] = set()
        with opener() as f:
            for e in _entries(f, media_type):
                rel = clean_name(e.name)
                parent, _, base = rel.rpartition("/")
                if base == OPAQUE_NAME:
                    d = "/" + parent if parent else ""
                    for p in merged.under(d) if d else list(merged.files):
                        if p == d or p in seen_here:
                            continue
                        li, size, typ = merged.files.pop(p)
                        wasted[p] = wasted.get(p, 0) + size
                        rep.changes.append(Change("-", p, typ, size))
                    continue
                if base.startswith(WHITEOUT_PREFIX):
                    if base.startswith(".wh..wh."):
                        continue
                    target = "/" + (f"{parent}/" if parent else "") + base[len(WHITEOUT_PREFIX):]
                    for p in merged.under(target):
                        if p in seen_here:
                            continue
                        li, size, typ = merged.files.pop(p)
                        wasted[p] = wasted.get(p, 0) + size
                        rep.changes.append(Change("-", p, typ, size))
                    continue
                if not rel:
                    continue
                path = "/" + rel
                typ = _TYPES.get(e.type, e.type)
                size = e.size
                rep.size += size
                seen_here.add(path)
                prev = merged.files.get(path)
                merged.files[path] = (i, size, typ)
                shipped.setdefault(path, []).append(size)
                if prev is None:
                    rep.changes.append(Change("+", path, typ, size))
                elif not (prev[2] == "dir" and typ == "dir"):
                    wasted[path] = wasted.get(path, 0) + prev[1]
                    rep.changes.append(Change("~", path, typ, size))
        reports.append(rep)
    waste = [Waste(p, len(shipped.get(p, [])) or 1, w) for p, w in wasted.items() if w > 0]
    waste.sort(key=lambda w: (-w.wasted, w.path))
    return reports, waste


def efficiency(reports: list[LayerReport], waste: list[Waste]) -> dict:
    total = sum(r.size for r in reports)
    wasted = sum(w.wasted for w in waste)
    return {"total_bytes": total, "wasted_bytes": wasted,
            "efficiency": 1.0 if total == 0 else max(0.0, 1.0 - wasted / total)}


def image_layers(store, rec) -> list[tuple[str, str, str, str, Callable[[], BinaryIO]]]:
    """The (digest, diff_id, media_type, created_by, open) list of a stored image, bottom first."""
    import functools

    manifest = store.manifest(rec)
    config = store.config(rec)
    history = [h for h in config.history if not h.get("empty_layer")]
    out = []
    for i, (desc, diff_id) in enumerate(zip(manifest.layers, config.diff_ids, strict=True)):
        created_by = (history[i].get("created_by") or history[i].get("comment") or "") if i < len(history) else ""
        out.append((desc.digest, diff_id, desc.media_type, created_by,
                    functools.partial(store.blobs.open, desc.digest)))
    return out
