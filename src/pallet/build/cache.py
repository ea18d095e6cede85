"""The content-addressed step cache.

A step's key is sha256 over its parent's key and what decides its result: the instruction
after expansion, the build-arg values it sees (RUN's environment), and for COPY/ADD the content
hash of exactly the files it selects (`Context.digest`) or the source stage's key. The first
key of a stage is its base image's id (or `scratch`).

An entry is the image state after the step (config, layers, history), one JSON file under
`<root>/buildcache/`, written by rename: an interrupted build leaves no half entry. An entry
whose layer blobs are gone (image gc) is a miss.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from pallet.errors import PalletError

__all__ = ["StepCache", "Usage", "prune", "step_key"]


def step_key(parent: str, *parts: object) -> str:
    h = hashlib.sha256(parent.encode())
    h.update(b"\0")
    h.update(json.dumps(parts, sort_keys=True, default=str).encode())
    return "sha256:" + h.hexdigest()


class StepCache:
    def __init__(self, root: str | os.PathLike, blobs, *, sources: list[str] = (), record_layer=None,
                 remotes: list = ()) -> None:
        self.dir = Path(root) / "buildcache"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.blobs = blobs
        self.sources = [Path(s) for s in sources]   # --cache-from type=local,src=DIR
        self.remotes = list(remotes)   # --cache-from type=registry (regcache.RemoteEntries)
        self.record_layer = record_layer

    def _from_remotes(self, key: str) -> dict | None:
        """An entry from a registry cache, its layer blobs fetched into the store."""
        for remote in self.remotes:
            entry = remote.entries.get(key)
            if entry is None:
                continue
            try:
                for layer in entry.get("layers", []):
                    if not self.blobs.has(layer["digest"]):
                        remote.fetch(layer)
                    if self.record_layer is not None and layer.get("diff_id"):
                        self.record_layer(layer["digest"], layer["diff_id"], layer.get("size", 0))
            except Exception:  # noqa: BLE001 (a blob the registry lost or sent wrong: a miss)
                continue
            self.put(key, entry)
            return entry
        return None

    def _from_sources(self, key: str) -> dict | None:
        """An entry from a --cache-from directory, its blobs imported into the store."""
        if self.remotes:
            entry = self._from_remotes(key)
            if entry is not None:
                return entry
        name = key.split(":", 1)[1] + ".json"
        for src in self.sources:
            try:
                entry = json.loads((src / "entries" / name).read_text())
            except (OSError, ValueError):
                continue
            try:
                for layer in entry.get("layers", []):
                    if not self.blobs.has(layer["digest"]):
                        blob = src / "blobs" / "sha256" / layer["digest"].split(":", 1)[1]
                        self.blobs.put_file(blob, expected=layer["digest"])
                    if self.record_layer is not None and layer.get("diff_id"):
                        self.record_layer(layer["digest"], layer["diff_id"], layer.get("size", 0))
            except (OSError, ValueError):
                continue
            except Exception:  # noqa: BLE001 (a digest mismatch: that cache is not used)
                continue
            self.put(key, entry)
            return entry
        return None

    def export(self, keys: list[str], dest: str | os.PathLike) -> int:
        """--cache-to type=local,dest=DIR: the entries of `keys` and their layer blobs; returns the count."""
        import shutil

        d = Path(dest)
        (d / "entries").mkdir(parents=True, exist_ok=True)
        (d / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        n = 0
        for key in dict.fromkeys(keys):
            entry = self.get(key)
            if entry is None:
                continue
            for layer in entry.get("layers", []):
                target = d / "blobs" / "sha256" / layer["digest"].split(":", 1)[1]
                if not target.exists():
                    tmp = target.with_name(target.name + ".tmp")
                    shutil.copyfile(self.blobs.path(layer["digest"]), tmp)
                    os.replace(tmp, target)
            (d / "entries" / (key.split(":", 1)[1] + ".json")).write_text(json.dumps(entry))
            n += 1
        return n

    def _path(self, key: str) -> Path:
        return self.dir / (key.split(":", 1)[1] + ".json")

    def get(self, key: str) -> dict | None:
        try:
            entry = json.loads(self._path(key).read_text())
        except (OSError, ValueError):
            return self._from_sources(key) if self.sources or self.remotes else None
        for layer in entry.get("layers", []):
            if not self.blobs.has(layer["digest"]):
                return None
        try:
            os.utime(self._path(key))   # its last use: builder prune --keep-storage/--filter go oldest first
        except OSError:
            pass
        return entry

    def put(self, key: str, entry: dict) -> None:
        p = self._path(key)
        tmp = p.with_name(p.name + f".{os.getpid()}.{id(entry)}.tmp")
        tmp.write_text(json.dumps(entry))
        os.replace(tmp, p)

    def prune(self) -> int:
        """Remove every entry; returns how many."""
        n = 0
        for p in self.dir.glob("*.json"):
            try:
                p.unlink()
                n += 1
            except OSError:
                pass
        return n


# ---- builder du / builder prune -------------------------------------------------------------------

def _tree_bytes(top: Path, seen: set[tuple[int, int]]) -> int:
    """Bytes on disk of the files under `top` (st_blocks; a hard link counted once)."""
    n = 0
    for d, _, files in os.walk(top):
        for f in files:
            try:
                st = os.lstat(os.path.join(d, f))
            except OSError:
                continue
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            n += st.st_blocks * 512
    return n


class Usage:
    """What the build cache holds: step entries (their JSON), the layer blobs only the cache refers
    to (no image's), the unpacked layers only the cache's steps need, and the cache mounts."""

    def __init__(self, store) -> None:
        from pallet.layers.chain import chain_ids

        self.store = store
        self.dir = Path(store.root) / "buildcache"
        self.entries: dict[Path, dict] = {}
        for p in self.dir.glob("*.json"):
            if len(p.stem) != 64:   # the context index, not a step
                continue
            try:
                self.entries[p] = json.loads(p.read_text())
            except (OSError, ValueError):
                self.entries[p] = {}
        self.image_blobs: set[str] = set()
        self.image_chains: set[str] = set()
        for rec in store.images():
            try:
                self.image_blobs.update(d.digest for d in store.manifest(rec).layers)
                self.image_chains.update(chain_ids(store.config(rec).diff_ids))
            except Exception:  # noqa: BLE001 (an image whose documents are gone: nothing to keep)
                continue
        self._chain_ids = chain_ids

    def layers_of(self, entry: dict) -> list[dict]:
        return [x for x in entry.get("layers") or [] if isinstance(x, dict) and "digest" in x]

    def cache_blobs(self, entries) -> set[str]:
        return {x["digest"] for e in entries for x in self.layers_of(e)
                if x["digest"] not in self.image_blobs and self.store.blobs.has(x["digest"])}

    def cache_chains(self, entries) -> set[str]:
        out: set[str] = set()
        for e in entries:
            diffs = [x.get("diff_id") for x in self.layers_of(e)]
            if all(diffs):
                out.update(self._chain_ids(diffs))
        return out - self.image_chains

    def blob_bytes(self, digests) -> int:
        n = 0
        for d in digests:
            try:
                n += self.store.blobs.size(d)
            except (OSError, PalletError):
                pass
        return n

    def unpacked(self, chains: set[str]) -> tuple[int, int]:
        """(count, bytes) of the unpacked layers of `chains` that exist."""
        from pallet.layers.snapshots import Snapshots

        snaps = Snapshots(self.store.root)
        n, size = 0, 0
        seen: set[tuple[int, int]] = set()
        for c in chains:
            p = snaps.dir / c.split(":", 1)[1]
            if p.is_dir():
                n += 1
                size += _tree_bytes(p, seen)
        return n, size

    def mounts(self) -> tuple[int, int]:
        m = self.dir / "mounts"
        if not m.is_dir():
            return 0, 0
        return len(list(m.iterdir())), _tree_bytes(m, set())


def prune(store, *, keep_storage: int | None = None, unused_for: float | None = None) -> tuple[int, int]:
    """Remove step entries — all of them, or the least recently used ones until the entries and the
    layers only they hold fit in `keep_storage` bytes, or those not used for `unused_for` seconds —
    and the layer blobs and unpacked layers no image and no kept entry needs. (removed, bytes freed)."""
    import time

    from pallet.layers.snapshots import Snapshots

    u = Usage(store)
    order = sorted(u.entries, key=lambda p: p.stat().st_mtime if p.exists() else 0)   # oldest use first
    drop: list[Path] = []
    if keep_storage is None and unused_for is None:
        drop = order
    else:
        if unused_for is not None:
            cutoff = time.time() - unused_for
            drop = [p for p in order if p.stat().st_mtime < cutoff]
        if keep_storage is not None:
            kept = [p for p in order if p not in drop]
            sizes = {p: p.stat().st_size for p in kept}

            def total() -> int:
                return sum(sizes[p] for p in kept) + u.blob_bytes(u.cache_blobs(u.entries[p] for p in kept))
            while kept and total() > keep_storage:
                drop.append(kept.pop(0))
    keep = [u.entries[p] for p in u.entries if p not in drop]
    gone_blobs = u.cache_blobs(u.entries[p] for p in drop) - u.cache_blobs(keep)
    freed = u.blob_bytes(gone_blobs)
    n = 0
    for p in drop:
        try:
            size = p.stat().st_size
            p.unlink()
            n += 1
            freed += size
        except OSError:
            pass
    with store.exclusive_lock():
        for d in gone_blobs:
            store.blobs.delete(d)
        keep_chains = u.image_chains | u.cache_chains(keep)
        snaps = Snapshots(store.root)
        before = {p.name for p in snaps.dir.iterdir() if len(p.name) == 64}
        gone_chains = u.cache_chains(u.entries[p] for p in drop) - keep_chains
        if gone_chains:
            sizes = {c: u.unpacked({c})[1] for c in gone_chains}
            removed = snaps.gc(keep_chains | {"sha256:" + h for h in before
                                              if "sha256:" + h not in gone_chains})
            freed += sum(sizes.get(c, 0) for c in removed)
    return n, freed
