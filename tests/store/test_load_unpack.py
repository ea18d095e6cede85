"""`pallet load` unpacks layers in the same pass that stores and verifies them (pallet.layers.staged).

After a load the image's layers are in the snapshots under their chain ids, so a mount unpacks
nothing; a failed load leaves no blob, no temp file and no layer (not even the layers dir).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
import threading
from pathlib import Path

import pytest

from helpers.tars import tar_of
from layers.layer_helpers import RawLayout, TarBuilder
from pallet.errors import DigestMismatch, InvalidArchive, PalletError, UnsafePath
from pallet.layers import images, stream
from pallet.layers.chain import chain_ids
from pallet.store import Store
from pallet.store.archive import load_archive

pytestmark = pytest.mark.root   # overlay-form whiteouts are device nodes


def base() -> bytes:
    b = TarBuilder().dir("etc").file("etc/a", b"a" * 3000).file("etc/b", b"b" * 100).dir("big")
    for i in range(50):
        b.file(f"big/f{i}", os.urandom(2000))
    return b.symlink("etc/link", "a").hardlink("etc/hard", "etc/a").bytes()


def top() -> bytes:
    return TarBuilder().dir("etc").file("etc/a", b"A").whiteout("etc/.wh.b").whiteout(".wh.big").bytes()


def archive(tmp_path: Path, images_: dict[str, tuple[list[bytes], str]]) -> Path:
    lay = RawLayout(tmp_path / "layout")
    for tag, (layers, compress) in images_.items():
        lay.image(tag, layers, compress=compress)
    out = tmp_path / "image.tar"
    subprocess.run(["tar", "-C", str(lay.root), "-cf", str(out), "."], check=True)
    return out


def members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as tf:
        return {m.name: tf.extractfile(m).read() for m in tf if m.isfile()}


def state(root: Path) -> list[str]:
    """What a failed load must not change: every path under the root but the database files."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")
                  if not p.name.startswith("pallet.db") and not p.name.endswith(".lock"))


def layer_dirs(root: Path) -> list[str]:
    d = root / "layers"
    return sorted(p.name for p in d.iterdir() if len(p.name) == 64) if d.is_dir() else []


def no_unpack(monkeypatch) -> None:
    def refuse(*a, **k):
        raise AssertionError("the layer was unpacked again")
    monkeypatch.setattr(stream, "apply_layer", refuse)
    monkeypatch.setattr(stream.LayerWriter, "__init__", refuse)


@pytest.mark.parametrize("compress", ["gzip", "zstd", ""])
def test_load_unpacks_layers_and_mount_does_not_again(tmp_path, monkeypatch, compress):
    path = archive(tmp_path, {"localhost/x:1": ([base(), top()], compress)})
    store = Store(tmp_path / "root")
    with open(path, "rb") as f:
        [loaded] = load_archive(store, f)
    config = store.config(loaded.record)
    ids = chain_ids(config.diff_ids)
    assert layer_dirs(store.root) == sorted(i[7:] for i in ids)
    assert os.listdir(store.tmp) == []
    manifest = store.manifest(loaded.record)
    for i, (c, desc) in enumerate(zip(ids, manifest.layers, strict=True)):
        meta = json.loads((store.root / "layers" / c[7:] / "layer.json").read_text())
        assert meta["digest"] == desc.digest and meta["diff_id"] == config.diff_ids[i]
        assert meta["parent"] == (ids[i - 1] if i else None)
    diff = store.root / "layers" / ids[0][7:] / "diff"
    assert (diff / "etc" / "a").read_bytes() == b"a" * 3000 and os.readlink(diff / "etc" / "link") == "a"
    assert os.stat(diff / "etc" / "hard").st_ino == os.stat(diff / "etc" / "a").st_ino
    upper = store.root / "layers" / ids[1][7:] / "diff"
    assert os.stat(upper / "big").st_rdev == 0 and not (upper / "big").is_dir()   # overlay whiteout
    no_unpack(monkeypatch)
    mnt = images.mount(store, "localhost/x:1")
    try:
        assert sorted(os.listdir(mnt / "etc")) == ["a", "hard", "link"] and (mnt / "etc" / "a").read_bytes() == b"A"
        assert not (mnt / "big").exists()
    finally:
        images.unmount(store, "localhost/x:1")


def test_load_from_a_stream_and_a_docker_archive(tmp_path, monkeypatch):
    """A load with another thread running (no fork: unpacked on first use), non-seekable input (a pipe)
    and docker-archive layers (plain tars under their own names)."""
    path = archive(tmp_path, {"localhost/x:1": ([base(), top()], "gzip")})
    store = Store(tmp_path / "root")
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)   # a thread is running: no fork, unpacked on first use
    other.start()
    try:
        with open(path, "rb") as f:
            load_archive(store, f)
    finally:
        stop.set()
        other.join()
    assert layer_dirs(store.root) == []
    images.mount(store, "localhost/x:1")
    images.unmount(store, "localhost/x:1")
    assert len(layer_dirs(store.root)) == 2

    store2 = Store(tmp_path / "root2")
    with subprocess.Popen(["cat", str(path)], stdout=subprocess.PIPE) as p:
        [loaded] = load_archive(store2, p.stdout)
    assert len(layer_dirs(store2.root)) == 2

    from pallet.store.archive import save_archive

    out = tmp_path / "docker.tar"
    with open(out, "wb") as f:
        save_archive(store2, [(loaded.record, ["localhost/x:1"])], f, "docker-archive")
    store3 = Store(tmp_path / "root3")
    with open(out, "rb") as f:
        load_archive(store3, f)
    assert layer_dirs(store3.root) == layer_dirs(store2.root)
    no_unpack(monkeypatch)
    images.mount(store3, "localhost/x:1")
    images.unmount(store3, "localhost/x:1")


def _bad_cases(tmp_path: Path) -> dict[str, tuple[bytes, type]]:
    good = archive(tmp_path, {"localhost/x:1": ([base(), top()], "gzip")})
    m = members(good)
    index = json.loads(m["./index.json"])
    manifest = json.loads(m["./blobs/sha256/" + index["manifests"][0]["digest"][7:]])
    layer0 = "./blobs/sha256/" + manifest["layers"][0]["digest"][7:]
    layer1 = "./blobs/sha256/" + manifest["layers"][1]["digest"][7:]
    cfg = "./blobs/sha256/" + manifest["config"]["digest"][7:]
    config = json.loads(m[cfg])
    cases = {}
    flipped = bytearray(m[layer1])
    flipped[len(flipped) // 2] ^= 0xFF
    cases["blob-mismatch"] = (tar_of({**m, layer1: bytes(flipped)}), DigestMismatch)
    # a config whose diff id for layer 0 is wrong: layer 0 unpacked fine, then refused
    config["rootfs"]["diff_ids"][0] = "sha256:" + "0" * 64
    raw = json.dumps(config).encode()
    from hashlib import sha256

    new_cfg = "./blobs/sha256/" + sha256(raw).hexdigest()
    manifest["config"] = {**manifest["config"], "digest": "sha256:" + sha256(raw).hexdigest(), "size": len(raw)}
    mraw = json.dumps(manifest).encode()
    mpath = "./blobs/sha256/" + sha256(mraw).hexdigest()
    idx = {**index, "manifests": [{**index["manifests"][0], "digest": "sha256:" + sha256(mraw).hexdigest(),
                                   "size": len(mraw)}]}
    cases["diff-id-mismatch"] = (tar_of({**m, new_cfg: raw, mpath: mraw, "./index.json": json.dumps(idx).encode()}),
                                 DigestMismatch)
    cases["missing-config"] = (tar_of({k: v for k, v in m.items() if k != cfg}), PalletError)
    whole = tar_of(m)
    at = whole.index(m[layer1]) + len(m[layer1]) // 2 if whole.index(m[layer1]) > whole.index(m[layer0]) \
        else whole.index(m[layer0]) + len(m[layer0]) // 2
    cases["truncated-in-second-layer"] = (whole[:at], InvalidArchive)
    return cases


@pytest.mark.parametrize("seekable", [True, False])
def test_failed_load_leaves_root_and_layers_untouched(tmp_path, seekable):
    cases = _bad_cases(tmp_path)
    store = Store(tmp_path / "root")
    with open(archive(tmp_path / "other", {"localhost/y:1": ([TarBuilder().file("y", b"y").bytes()], "gzip")}),
              "rb") as f:
        load_archive(store, f)
    before = state(store.root)
    assert len(layer_dirs(store.root)) == 1
    for name, (data, err) in cases.items():
        p = tmp_path / f"{name}.tar"
        p.write_bytes(data)
        with pytest.raises(err):
            if seekable:
                with open(p, "rb") as f:
                    load_archive(store, f)
            else:
                with subprocess.Popen(["cat", str(p)], stdout=subprocess.PIPE) as proc:
                    load_archive(store, proc.stdout)
        assert state(store.root) == before, name
    # into an empty root: not even the layers dir appears
    empty = Store(tmp_path / "empty")
    before = state(empty.root)
    for name, (data, err) in cases.items():
        with pytest.raises(err):
            load_archive(empty, io.BytesIO(data))
        assert state(empty.root) == before and not (empty.root / "layers").exists(), name


def test_hostile_layer_loads_as_before_and_is_refused_at_mount(tmp_path):
    """A layer whose tar escapes its root has the right diff id: the load stores it (as it always
    did); the unpack during the load refuses it and publishes nothing; the mount refuses it too."""
    evil = TarBuilder().file("../../escaped", b"x").bytes()
    path = archive(tmp_path, {"localhost/evil:1": ([base(), evil], "gzip")})
    store = Store(tmp_path / "root")
    with open(path, "rb") as f:
        [loaded] = load_archive(store, f)
    ids = chain_ids(store.config(loaded.record).diff_ids)
    assert layer_dirs(store.root) == [ids[0][7:]] and os.listdir(store.tmp) == []
    with pytest.raises(UnsafePath):
        images.mount(store, "localhost/evil:1")
    assert not list(tmp_path.rglob("escaped"))


def test_reload_and_shared_layers(tmp_path, monkeypatch):
    """Two images sharing a base layer, loaded twice: one snapshot per chain id, all published."""
    b = base()
    path = archive(tmp_path, {"localhost/x:1": ([b, top()], "gzip"),
                              "localhost/y:1": ([b, TarBuilder().file("y", b"y").bytes()], "gzip")})
    store = Store(tmp_path / "root")
    for _ in range(2):
        with open(path, "rb") as f:
            load_archive(store, f)
        assert len(layer_dirs(store.root)) == 3 and os.listdir(store.tmp) == []
    no_unpack(monkeypatch)
    for ref in ("localhost/x:1", "localhost/y:1"):
        images.mount(store, ref)
        images.unmount(store, ref)
