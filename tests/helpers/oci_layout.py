"""Build small OCI images in an OCI image layout from Python (no tools needed).

`write_image(layout, tag, ...)` adds a single-platform image; `write_index(...)`
a multi-platform one. Layers are gzip tars of a few generated files, so every
image is different and verifiable.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from helpers.tars import tar_of

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def make_layer(files: dict[str, bytes]) -> tuple[bytes, str]:
    """(gzip tar bytes, diff id) of a layer holding `files`."""
    raw = tar_of(dict(sorted(files.items())))
    return gzip.compress(raw, mtime=0), _digest(raw)


class Layout:
    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        (self.root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        (self.root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
        idx = self.root / "index.json"
        if not idx.exists():
            idx.write_text(json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}))

    def put(self, data: bytes) -> str:
        d = _digest(data)
        (self.root / "blobs" / "sha256" / d[7:]).write_bytes(data)
        return d

    def blob(self, digest: str) -> bytes:
        return (self.root / "blobs" / "sha256" / digest.split(":", 1)[1]).read_bytes()

    def _add_ref(self, desc: dict[str, Any], tag: str) -> None:
        idx = json.loads((self.root / "index.json").read_text())
        idx["manifests"] = [m for m in idx["manifests"]
                            if m.get("annotations", {}).get("org.opencontainers.image.ref.name") != tag]
        idx["manifests"].append({**desc, "annotations": {"org.opencontainers.image.ref.name": tag}})
        (self.root / "index.json").write_text(json.dumps(idx))

    def image(self, seed: str, *, layers: int = 2, size: int = 2048, arch: str = "amd64") -> dict[str, Any]:
        """Write an image's blobs and manifest; return the manifest descriptor (not yet referenced)."""
        layer_descs, diff_ids = [], []
        for i in range(layers):
            content = hashlib.sha256(f"{seed}/{i}".encode()).digest() * (size // 32 + 1)
            blob, diff_id = make_layer({f"data/{seed}-{i}.bin": content[:size], f"etc/{seed}-{i}": seed.encode()})
            layer_descs.append({"mediaType": OCI_LAYER_GZIP, "digest": self.put(blob), "size": len(blob)})
            diff_ids.append(diff_id)
        config = json.dumps({"architecture": arch, "os": "linux", "config": {"Cmd": ["/bin/true"]},
                             "rootfs": {"type": "layers", "diff_ids": diff_ids},
                             "history": [{"created_by": f"{seed} layer {i}"} for i in range(layers)]},
                            separators=(",", ":")).encode()
        manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                               "config": {"mediaType": OCI_CONFIG, "digest": self.put(config),
                                          "size": len(config)},
                               "layers": layer_descs}, separators=(",", ":")).encode()
        return {"mediaType": OCI_MANIFEST, "digest": self.put(manifest), "size": len(manifest),
                "platform": {"architecture": arch, "os": "linux"}}

    def write_image(self, tag: str, seed: str | None = None, **kw: Any) -> dict[str, Any]:
        desc = self.image(seed or tag, **kw)
        desc.pop("platform")
        self._add_ref(desc, tag)
        return desc

    def write_index(self, tag: str, seed: str | None = None, arches: tuple[str, ...] = ("amd64", "arm64"),
                    **kw: Any) -> dict[str, Any]:
        children = [self.image(f"{seed or tag}-{a}", arch=a, **kw) for a in arches]
        index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children},
                           separators=(",", ":")).encode()
        desc = {"mediaType": OCI_INDEX, "digest": self.put(index), "size": len(index)}
        self._add_ref(desc, tag)
        return desc
