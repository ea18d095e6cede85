"""Building layer tars (friendly and hostile), OCI layouts of them, and comparing trees."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

from helpers.oci_layout import OCI_CONFIG, OCI_MANIFEST, Layout
from helpers.tars import TarBuilder  # noqa: F401 (tests import it from here)

OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"


def gz(data: bytes) -> bytes:
    import gzip

    return gzip.compress(data, mtime=0)


def zst(data: bytes) -> bytes:
    import zstandard

    return zstandard.ZstdCompressor().compress(data)


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# ---- trees --------------------------------------------------------------------------------
def _xattrs(p: str) -> dict[str, bytes]:
    try:
        names = os.listxattr(p, follow_symlinks=False)
    except OSError:
        return {}
    out = {}
    for n in names:
        if n.startswith("trusted.overlay.") or n == "security.selinux":
            continue
        out[n] = os.getxattr(p, n, follow_symlinks=False)
    return out


def describe_tree(root: str | os.PathLike, *, content: bool = True) -> dict[str, tuple]:
    """path -> (type, mode, uid, gid, size, sha256 | symlink target | rdev, xattrs, hardlink group)."""
    root = os.fspath(root)
    inodes: dict[tuple[int, int], list[str]] = {}
    out: dict[str, list] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            rel = "/" + os.path.relpath(p, root)
            st = os.lstat(p)
            m = st.st_mode
            if stat.S_ISREG(m):
                kind = "file"
                if content:
                    h = hashlib.sha256()
                    with open(p, "rb") as f:
                        for b in iter(lambda: f.read(1 << 20), b""):
                            h.update(b)
                    extra = h.hexdigest()
                else:
                    extra = ""
                if st.st_nlink > 1:
                    inodes.setdefault((st.st_dev, st.st_ino), []).append(rel)
            elif stat.S_ISDIR(m):
                kind, extra = "dir", ""
            elif stat.S_ISLNK(m):
                kind, extra = "symlink", os.readlink(p)
            elif stat.S_ISCHR(m) or stat.S_ISBLK(m):
                kind, extra = ("char" if stat.S_ISCHR(m) else "block"), f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"
            elif stat.S_ISFIFO(m):
                kind, extra = "fifo", ""
            else:
                kind, extra = "other", ""
            size = st.st_size if kind == "file" else 0
            out[rel] = [kind, oct(stat.S_IMODE(m)), st.st_uid, st.st_gid, size, extra,
                        tuple(sorted(_xattrs(p).items())), ()]
    for group in inodes.values():
        if len(group) < 2:
            continue  # nlink counts names outside this view (e.g. a lower layer's, under overlayfs)
        g = tuple(sorted(group))
        for rel in group:
            out[rel][7] = g
    return {k: tuple(v) for k, v in out.items()}


def diff_trees(a: dict, b: dict, limit: int = 20) -> list[str]:
    problems = []
    for k in sorted(set(a) | set(b)):
        if k not in a:
            problems.append(f"only in second: {k} {b[k]}")
        elif k not in b:
            problems.append(f"only in first: {k} {a[k]}")
        elif a[k] != b[k]:
            problems.append(f"differs: {k}\n   {a[k]}\n   {b[k]}")
        if len(problems) >= limit:
            break
    return problems


def fingerprint(root: str | os.PathLike, skip: str | os.PathLike | None = None) -> dict[str, tuple]:
    """Everything under `root` except `skip`: path -> (mode, size, mtime, content/target)."""
    out = {}
    skip = os.fspath(skip) if skip else None
    for dirpath, dirnames, filenames in os.walk(root):
        if skip:
            dirnames[:] = [d for d in dirnames if os.path.join(dirpath, d) != skip]
        for name in [*dirnames, *filenames]:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            extra = os.readlink(p) if stat.S_ISLNK(st.st_mode) else (
                Path(p).read_bytes() if stat.S_ISREG(st.st_mode) else b"")
            out[p] = (st.st_mode, st.st_size, st.st_mtime_ns, st.st_nlink, extra)
    return out


# ---- OCI layouts of raw layers ------------------------------------------------------------
class RawLayout(Layout):
    """An OCI layout (helpers.oci_layout.Layout) where images are given as lists of layer tars (plain
    bytes, gzipped or zstd-compressed here)."""

    def image(self, tag: str, layers: list[bytes], *, history: list[str] | None = None,  # type: ignore[override]
              compress: str = "gzip") -> str:
        descs, diff_ids = [], []
        for raw in layers:
            blob = gz(raw) if compress == "gzip" else zst(raw) if compress == "zstd" else raw
            mt = {"gzip": OCI_LAYER_GZIP, "zstd": OCI_LAYER_ZSTD, "": OCI_LAYER}[compress]
            descs.append({"mediaType": mt, "digest": self.put(blob), "size": len(blob)})
            diff_ids.append(sha(raw))
        hist = [{"created_by": h} for h in (history or [f"layer {i}" for i in range(len(layers))])]
        config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                             "rootfs": {"type": "layers", "diff_ids": diff_ids}, "history": hist}).encode()
        manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                               "config": {"mediaType": OCI_CONFIG, "digest": self.put(config), "size": len(config)},
                               "layers": descs}).encode()
        md = self.put(manifest)
        self._add_ref({"mediaType": OCI_MANIFEST, "digest": md, "size": len(manifest)}, tag)
        return md
