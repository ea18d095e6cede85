"""Garbage collection never removes a blob still in use; docker rmi semantics at the library level."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from helpers.oci_layout import Layout, make_layer
from pallet.errors import Conflict, NotFound
from pallet.store import Store
from pallet.store.layout import load_layout


def shared_layer_layout(tmp_path: Path) -> Layout:
    """Two images, `a` and `b`, whose first layer is the same blob."""
    lay = Layout(tmp_path / "layout")
    import hashlib
    import json

    blob, diff = make_layer({"shared/file": b"shared" * 1000})
    shared = {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": lay.put(blob), "size": len(blob)}
    for name in ("a", "b"):
        own, own_diff = make_layer({f"{name}/file": name.encode() * 500})
        layers = [shared, {**shared, "digest": lay.put(own), "size": len(own)}]
        config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                             "rootfs": {"type": "layers", "diff_ids": [diff, own_diff]}}).encode()
        manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                               "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                          "digest": lay.put(config), "size": len(config)},
                               "layers": layers}).encode()
        lay._add_ref({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": lay.put(manifest),
                      "size": len(manifest)}, f"example.com/{name}:1")
        assert hashlib.sha256(manifest).hexdigest()
    return lay


def all_blobs_ok(store: Store) -> None:
    for rec in store.images():
        m = store.manifest(rec)
        for d in [m.digest, m.config.digest, *(x.digest for x in m.layers)]:
            store.blobs.read(d)     # present and verified


def test_gc_keeps_shared_layers_and_removes_unreferenced_blobs(tmp_path):
    store = Store(tmp_path / "root")
    load_layout(store, shared_layer_layout(tmp_path).root)
    stray = store.blobs.put(b"nobody refers to me")
    assert store.gc(dry_run=True) == [stray] and store.blobs.has(stray)
    assert store.gc() == [stray]
    all_blobs_ok(store)
    before = set(store.blobs)
    out = store.remove_image("example.com/a:1")
    assert out[0] == ("Untagged", "example.com/a:1") and out[-1][0] == "Deleted"
    after = set(store.blobs)
    assert len(before - after) == 3                     # a's manifest, config and own layer
    all_blobs_ok(store)                                 # b (with the shared layer) is whole
    assert store.gc() == []


def test_gc_waits_for_a_load_in_flight(tmp_path):
    """A blob written by a load that has not registered its image yet survives a concurrent gc."""
    root = tmp_path / "root"
    store = Store(root)
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys
        from pallet.store import Store
        from pallet.store.ingest import Ingest
        store = Store({str(root)!r})
        with Ingest(store) as ing:
            d = ing.put_bytes(b"a blob not yet registered")
            print(d, flush=True)
            sys.stdin.readline()
        print("released", flush=True)
    """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    digest = proc.stdout.readline().strip()
    assert store.blobs.has(digest)
    done = threading.Event()
    removed: list[str] = []

    def gc() -> None:
        removed.extend(Store(root).gc())
        done.set()

    t = threading.Thread(target=gc)
    t.start()
    time.sleep(0.5)
    assert not done.is_set(), "gc ran while a load held the shared lock"
    assert store.blobs.has(digest)
    proc.stdin.write("go\n")
    proc.stdin.flush()
    proc.wait(timeout=30)
    t.join(timeout=30)
    assert done.is_set()
    # the load registered nothing, so its own cleanup (or this gc) removed the blob: never while in flight
    assert not store.blobs.has(digest)


def test_discard_blobs_keeps_what_an_image_reaches(tmp_path):
    store = Store(tmp_path / "root")
    load_layout(store, shared_layer_layout(tmp_path).root)
    rec = store.resolve_image("example.com/b:1")
    m = store.manifest(rec)
    stray = store.blobs.put(b"stray")
    gone = store.discard_blobs([m.digest, m.layers[0].digest, stray])
    assert gone == [stray]
    all_blobs_ok(store)


def test_rmi_semantics(tmp_path):
    store = Store(tmp_path / "root")
    load_layout(store, shared_layer_layout(tmp_path).root)
    rec = store.resolve_image("example.com/a:1")
    assert rec.repo_digests == [f"example.com/a@{rec.manifest_digest}"]
    store.tag(rec, "example.com/a:2")
    store.tag(rec, "docker.io/library/other:latest")
    # by ID with names in two repositories: refused without force
    with pytest.raises(Conflict, match="referenced in multiple repositories"):
        store.remove_image(rec.short_id)
    # by name: only that name goes
    assert store.remove_image("other") == [("Untagged", "docker.io/library/other:latest")]
    # removing one tag of a repository that keeps another tag leaves the repo digest
    assert store.remove_image("example.com/a:2") == [("Untagged", "example.com/a:2")]
    assert store.get_image(rec.id).repo_digests == [f"example.com/a@{rec.manifest_digest}"]
    # the last tag of the repository takes the repository's digest reference with it, and then the image
    out = store.remove_image("example.com/a:1")
    assert out == [("Untagged", "example.com/a:1"), ("Untagged", f"example.com/a@{rec.manifest_digest}"),
                   ("Deleted", rec.id)]
    with pytest.raises(NotFound):
        store.get_image(rec.id)
    # by digest reference
    b = store.resolve_image("example.com/b:1")
    assert store.remove_image(f"example.com/b@{b.manifest_digest}") == [
        ("Untagged", f"example.com/b@{b.manifest_digest}")]
    # by ID, one tag in one repository: deleted without force
    assert store.remove_image(b.id[7:15])[-1] == ("Deleted", b.id)
    assert store.images() == []
    assert list(store.blobs) == []
