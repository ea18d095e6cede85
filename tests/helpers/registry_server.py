"""Drive `pallet registry serve` as a real process on 127.0.0.1, and small API helpers for tests."""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from helpers.net import free_port  # noqa: F401 (tests import it from here)

BIN = Path(sys.executable).parent


class RegistryProcess:
    def __init__(self, storage: Path, args: list[str], log_path: Path, scheme: str = "http",
                 port: int | None = None) -> None:
        self.storage = storage
        self.port = port or free_port()
        self.scheme = scheme
        self.args = args
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.addr}"

    def start(self, timeout: float = 20) -> RegistryProcess:
        cmd = [str(BIN / "pallet"), "registry", "serve", "--addr", self.addr, "--storage", str(self.storage),
               *self.args]
        offset = len(self.log())
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(self.log_path, "ab"))  # noqa: SIM115
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"registry exited {self.proc.returncode}:\n{self.log()}")
            if "listening on" in self.log()[offset:]:
                return self
            time.sleep(0.05)
        raise AssertionError(f"registry did not start:\n{self.log()}")

    def log(self) -> str:
        try:
            return self.log_path.read_text()
        except FileNotFoundError:
            return ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

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

