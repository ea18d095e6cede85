"""Helpers for the image command tests: small tarballs and archives, a store snapshot for "unchanged" checks."""

from __future__ import annotations

import hashlib
import io
import json
import os
import sqlite3
import tarfile
from pathlib import Path

from helpers.tars import rootfs_tar, tar_of  # noqa: F401 (tests import them from here)


def untar(data: bytes) -> dict[str, bytes]:
    out = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        for m in tf:
            if m.isreg():
                out[m.name] = tf.extractfile(m).read()
    return out


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def store_state(root: Path) -> dict:
    """Everything that makes up a store's visible state: blob names, temp files, index.json, the DB rows."""
    blobs = sorted(str(p.relative_to(root)) for p in (root / "blobs").rglob("*") if p.is_file())
    tmp = sorted(os.listdir(root / "tmp")) if (root / "tmp").is_dir() else []
    db = {}
    if (root / "pallet.db").exists():
        with sqlite3.connect(root / "pallet.db") as c:
            for table in ("images", "tags", "repo_digests"):
                db[table] = sorted(c.execute(f"SELECT * FROM {table}").fetchall())
    index = json.loads((root / "index.json").read_bytes()) if (root / "index.json").exists() else None
    return {"blobs": blobs, "tmp": tmp, "db": db, "index": index}


def text(s: str | bytes) -> str:
    """A CompletedProcess stream as text (the `pallet` fixture gives bytes when the input was bytes)."""
    return s.decode(errors="replace") if isinstance(s, bytes) else s
