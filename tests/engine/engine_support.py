"""Helpers for container tests: build an image into a store, run the CLI, clean up everything."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

from helpers.cli import run_pallet
from helpers.mounts import unmount_all_under

BIN = Path(sys.executable).parent

IMAGE = "localhost/busybox:latest"


def build_image(root: Path, rootfs: Path, name: str = IMAGE, config: dict | None = None) -> str:
    """Register `rootfs` as a one-layer OCI image in the store at `root`; returns the image id."""
    from pallet.oci import mediatypes as mt
    from pallet.oci.digest import sha256_digest
    from pallet.oci.documents import Descriptor, ImageConfig, Manifest, canonical_json
    from pallet.store import Store

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for p in sorted(rootfs.rglob("*")):
            tar.add(p, arcname=str(p.relative_to(rootfs)), recursive=False)
    layer = buf.getvalue()
    store = Store(root)
    ldig = store.blobs.put(layer)
    cfg = {"architecture": "amd64" if os.uname().machine == "x86_64" else "arm64", "os": "linux",
           "created": "2024-01-01T00:00:00Z",
           "config": config if config is not None else {"Cmd": ["sh"], "Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"]},
           "rootfs": {"type": "layers", "diff_ids": [sha256_digest(layer)]},
           "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "test"}]}
    craw = canonical_json(cfg)
    cdig = store.blobs.put(craw)
    man = Manifest.build(Descriptor(mt.OCI_CONFIG, cdig, len(craw)), [Descriptor(mt.OCI_LAYER, ldig, len(layer))])
    store.blobs.put(man.raw)
    rec = store.register_image(man, ImageConfig.parse(craw), size=len(layer), names=[name])
    store.db.close()
    return rec.id


class Env:
    def __init__(self, root: Path, run: Path, tmp: Path) -> None:
        self.root, self.runroot, self.tmp = root, run, tmp
        self.env = dict(os.environ, PALLET_ROOT=str(root), PALLET_RUNROOT=str(run),
                        PALLET_CONFIG_DIR=str(tmp / "config"))
        self.prefix: list[str] = []     # e.g. nsenter into the mount namespace crun needs (helpers.crun_ns)

    def argv(self, *args: str) -> list[str]:
        return [*self.prefix, str(BIN / "pallet"), *args]

    def __call__(self, *args: str, input=None, check: bool = False, timeout: float = 60,
                 env: dict | None = None, allow_traceback: bool = False) -> subprocess.CompletedProcess:
        return run_pallet(self.argv(*args), input=input, check=check, env=dict(self.env, **(env or {})),
                          timeout=timeout, allow_traceback=allow_traceback)

    def ids(self) -> list[str]:
        cp = self("ps", "-aq", "--no-trunc")
        return cp.stdout.split()

    def cleanup(self) -> None:
        import sqlite3

        ids = []
        db = self.root / "pallet.db"
        if db.exists():
            try:
                con = sqlite3.connect(db)
                ids = [r[0] for r in con.execute("SELECT id FROM containers")]
                rows = con.execute("SELECT pid, monitor_pid FROM containers").fetchall()
                con.close()
            except sqlite3.Error:
                rows = []
            if ids:
                self("rm", "-f", *ids, timeout=120)
            for pid, mpid in rows:
                for p in (pid, mpid):
                    if p:
                        try:
                            os.kill(p, signal.SIGKILL)
                        except OSError:
                            pass
        unmount_all_under(self.root)
        for cid in ids:
            for d in _cgroup_dirs(cid):
                try:
                    d.rmdir()
                except OSError:
                    pass


def _cgroup_dirs(cid: str) -> list[Path]:
    """The container's cgroup directories left in any hierarchy (the walk is retried when a directory
    vanishes under it: the monitor removes the container's cgroups while we look)."""
    for _ in range(5):
        try:
            return list(Path("/sys/fs/cgroup").glob(f"*/**/pallet/{cid}"))
        except FileNotFoundError:
            continue
    return []


def wait_for(cond, timeout: float = 10, step: float = 0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = cond()
        if v:
            return v
        time.sleep(step)
    return cond()
