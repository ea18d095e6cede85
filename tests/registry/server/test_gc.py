"""`pallet registry gc`: what it keeps, what it sweeps, and that it is safe during pushes."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from helpers.cli import run_cli
from helpers.oci_layout import Layout
from helpers.registry_server import make_manifest, push_blob, push_manifest, sha256

pytestmark = pytest.mark.network

PALLET = Path(sys.executable).parent / "pallet"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def gc(storage: Path, *args: str) -> str:
    cp = run_cli([str(PALLET), "registry", "gc", "--storage", str(storage), *args], capture_output=True,
                 text=True, timeout=120)
    assert cp.returncode == 0, cp.stderr
    return cp.stdout


def age(storage: Path, seconds: float = 7200) -> None:
    """Make everything in the storage look `seconds` old (past gc's grace period)."""
    t = time.time() - seconds
    for p in storage.rglob("*"):
        os.utime(p, (t, t), follow_symlinks=False)


def blob_files(storage: Path) -> set[str]:
    return {f"{d.name}:{f.name}" for d in (storage / "blobs").iterdir() for f in d.iterdir()}


def pulls_whole(c: httpx.Client, name: str, ref: str) -> None:
    r = c.get(f"/v2/{name}/manifests/{ref}")
    assert r.status_code == 200, (name, ref, r.text)
    assert r.headers["Docker-Content-Digest"] == sha256(r.content)
    doc = json.loads(r.content)
    for child in doc.get("manifests", []):
        pulls_whole(c, name, child["digest"])
    for desc in ([doc["config"]] if "config" in doc else []) + doc.get("layers", []):
        b = c.get(f"/v2/{name}/blobs/{desc['digest']}")
        assert b.status_code == 200 and sha256(b.content) == desc["digest"], (name, desc)


def test_gc_sweeps_unreferenced_and_keeps_reachable(serve):
    rp = serve()
    with rp.client() as c:
        keep, keep_d = make_manifest(c, "gc/app", "keep", layers=2)
        push_manifest(c, "gc/app", "v1", keep)
        drop, drop_d = make_manifest(c, "gc/app", "drop", layers=2)
        push_manifest(c, "gc/app", "old", drop)
        orphan = push_blob(c, "gc/app", b"an orphan blob nobody references")
        # an index whose children are untagged, and a referrer of the kept manifest
        c1, c1d = make_manifest(c, "gc/app", "child1")
        push_manifest(c, "gc/app", c1d, c1)
        index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": c1d, "size": len(c1)}]}).encode()
        push_manifest(c, "gc/app", "multi", index, OCI_INDEX)
        ref, ref_d = make_manifest(c, "gc/app", "sig", extra={
            "subject": {"mediaType": OCI_MANIFEST, "digest": keep_d, "size": len(keep)}})
        push_manifest(c, "gc/app", ref_d, ref)
        assert c.delete("/v2/gc/app/manifests/old").status_code == 202  # drop is now untagged
    drop_layers = [d["digest"] for d in json.loads(drop)["layers"]]

    # within the grace period nothing goes, even with --delete-untagged
    out = gc(rp.storage, "--delete-untagged")
    assert "removed 0 manifest(s), 0 blob(s)" in out
    age(rp.storage)
    before = blob_files(rp.storage)
    out = gc(rp.storage, "--delete-untagged", "--dry-run")
    assert "would remove 1 manifest(s)" in out and blob_files(rp.storage) == before
    # without --delete-untagged the untagged manifest (and so its blobs) stays; the orphan goes
    out = gc(rp.storage)
    assert "removed 0 manifest(s), 1 blob(s)" in out
    assert orphan not in blob_files(rp.storage)
    assert all(d in blob_files(rp.storage) for d in drop_layers)
    out = gc(rp.storage, "--delete-untagged")
    assert "removed 1 manifest(s)" in out
    left = blob_files(rp.storage)
    assert drop_d not in left and not any(d in left for d in drop_layers)
    with rp.client() as c:
        for ref_ in ("v1", "multi", ref_d, c1d):
            pulls_whole(c, "gc/app", ref_)
        assert c.get(f"/v2/gc/app/manifests/{drop_d}").status_code == 404
        refs = c.get(f"/v2/gc/app/referrers/{keep_d}").json()["manifests"]
        assert [m["digest"] for m in refs] == [ref_d]


def test_gc_shared_blob_survives_in_other_repo(serve):
    rp = serve()
    with rp.client() as c:
        raw, _ = make_manifest(c, "share/a", "same")
        push_manifest(c, "share/a", "v1", raw)
        raw_b, _ = make_manifest(c, "share/b", "same")  # the same blobs, linked into b too
        push_manifest(c, "share/b", "v1", raw_b)
        c.delete("/v2/share/a/manifests/v1")
    age(rp.storage)
    gc(rp.storage, "--delete-untagged")
    with rp.client() as c:
        pulls_whole(c, "share/b", "v1")
        assert c.get("/v2/share/a/manifests/v1").status_code == 404


@pytest.mark.slow
def test_concurrent_pushes_pulls_and_gc(serve, tmp_path):
    """20 concurrent skopeo pushes and 20 pulls, then gc while further pushes race with it."""
    rp = serve()
    layout = Layout(tmp_path / "oci")
    for i in range(40):
        layout.write_image(f"img{i}", layers=2, size=20_000)
    reg = rp.addr

    def push(i: int, repo: str) -> None:
        subprocess.run(["skopeo", "copy", "-q", "--dest-tls-verify=false", f"oci:{layout.root}:img{i}",
                        f"docker://{reg}/{repo}:v1"], check=True, capture_output=True, timeout=120)

    def pull(i: int) -> None:
        # one layout per pull: concurrent skopeo processes writing one layout's index.json race each other
        cp = subprocess.run(["skopeo", "copy", "-q", "--src-tls-verify=false", f"docker://{reg}/conc/img{i}:v1",
                             f"oci:{tmp_path / 'pulled' / str(i)}:img{i}"], capture_output=True, text=True,
                            timeout=120)
        assert cp.returncode == 0, cp.stderr

    with ThreadPoolExecutor(20) as ex:
        list(ex.map(lambda i: push(i, f"conc/img{i}"), range(20)))
    (tmp_path / "pulled").mkdir()
    with ThreadPoolExecutor(20) as ex:
        list(ex.map(pull, range(20)))
    # garbage: untag half of them, and make every file old, so gc has real work
    with rp.client() as c:
        for i in range(10):
            assert c.delete(f"/v2/conc/img{i}/manifests/v1").status_code == 202
    age(rp.storage)
    errors: list[BaseException] = []

    def racing_pushes() -> None:
        try:
            with ThreadPoolExecutor(10) as ex:
                # new images, and re-pushes of the just-untagged ones whose old blobs the client skips
                jobs = [ex.submit(push, i, f"conc/new{i}") for i in range(20, 40)]
                jobs += [ex.submit(push, i, f"conc/img{i}") for i in range(0, 10)]
                for j in jobs:
                    j.result()
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    t = threading.Thread(target=racing_pushes)
    t.start()
    runs = 0
    while t.is_alive() or runs < 2:
        gc(rp.storage, "--delete-untagged")
        runs += 1
    t.join()
    assert not errors, errors
    gc(rp.storage, "--delete-untagged")
    with rp.client() as c:
        repos = [f"conc/img{i}" for i in range(20)] + [f"conc/new{i}" for i in range(20, 40)]
        for repo in repos:
            pulls_whole(c, repo, "v1")
    for d in (rp.storage / "blobs" / "sha256").iterdir():
        assert hashlib.sha256(d.read_bytes()).hexdigest() == d.name


def test_gc_without_storage_is_an_error(tmp_path):
    cp = run_cli([str(PALLET), "registry", "gc", "--storage", str(tmp_path / "none")], capture_output=True,
                 text=True, timeout=60)
    assert cp.returncode == 125 and "no registry storage at" in cp.stderr
    assert not (tmp_path / "none").exists()
