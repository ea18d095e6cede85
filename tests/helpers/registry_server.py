"""Drive `pallet registry serve` as a real process on 127.0.0.1, and small API helpers for tests."""

from __future__ import annotations

import hashlib
import json
import re
import sys
from pathlib import Path

import httpx

from helpers.net import ServerProcess, free_port  # noqa: F401 (tests import free_port from here)

BIN = Path(sys.executable).parent


class RegistryProcess(ServerProcess):
    """`pallet registry serve` on 127.0.0.1. Without `port` it is told port 0 and the port it bound is
    read from its "listening on" line (no race for a free port); restarts keep that port."""

    name = "registry"

    def __init__(self, storage: Path, args: list[str], log_path: Path, scheme: str = "http",
                 port: int | None = None) -> None:
        super().__init__(log_path)
        self.storage = storage
        self.port = port or 0
        self.scheme = scheme
        self.args = args

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.addr}"

    def argv(self) -> list[str]:
        return [str(BIN / "pallet"), "registry", "serve", "--addr", self.addr, "--storage", str(self.storage),
                *self.args]

    def ready(self, offset: int) -> bool:
        m = re.search(r"listening on \w+://127\.0\.0\.1:(\d+)", self.log()[offset:])
        if m:
            self.port = int(m.group(1))
        return m is not None

    def client(self, **kw) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, **kw)


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def push_blob(c: httpx.Client, name: str, data: bytes) -> str:
    d = sha256(data)
    r = c.post(f"/v2/{name}/blobs/uploads/", params={"digest": d}, content=data,
               headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 201, r.text
    return d


def make_manifest(c: httpx.Client, name: str, seed: str = "x", *, layers: int = 1,
                  extra: dict | None = None, config: bytes | None = None) -> tuple[bytes, str]:
    """Push a config and layers, return (manifest bytes, digest) without pushing the manifest."""
    config = config or json.dumps({"architecture": "amd64", "os": "linux",
                                   "rootfs": {"type": "layers", "diff_ids": []}, "seed": seed}).encode()
    cd = push_blob(c, name, config)
    descs = []
    for i in range(layers):
        data = f"{seed}-layer-{i}".encode() * 50
        descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                      "digest": push_blob(c, name, data), "size": len(data)})
    doc = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd,
                      "size": len(config)}, "layers": descs, **(extra or {})}
    raw = json.dumps(doc, indent=1).encode()  # indented: the server must keep these exact bytes
    return raw, sha256(raw)


def push_manifest(c: httpx.Client, name: str, ref: str, raw: bytes,
                  media_type: str = "application/vnd.oci.image.manifest.v1+json") -> httpx.Response:
    return c.put(f"/v2/{name}/manifests/{ref}", content=raw, headers={"Content-Type": media_type})


def error_code(r: httpx.Response) -> str:
    return r.json()["errors"][0]["code"]

