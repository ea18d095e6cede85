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
    def __init__(self, root: str | os.PathLike, blobs) -> None:
        self.dir = Path(root) / "buildcache"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.blobs = blobs

    def _path(self, key: str) -> Path:
        return self.dir / (key.split(":", 1)[1] + ".json")

    def get(self, key: str) -> dict | None:
        try:
            entry = json.loads(self._path(key).read_text())
        except (OSError, ValueError):
            return None
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
