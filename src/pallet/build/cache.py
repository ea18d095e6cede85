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

__all__ = ["StepCache", "step_key"]


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
