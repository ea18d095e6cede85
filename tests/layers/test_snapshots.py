"""Snapshots: unpack once, atomic publish, short links, image and container mounts, cleanup, gc, diff."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import pytest

from helpers.mounts import mounts_under
from layers.layer_helpers import OCI_LAYER_GZIP, TarBuilder, describe_tree, gz, sha
from pallet.errors import DigestMismatch, InvalidArchive, PalletError
from pallet.layers.chain import chain_ids
from pallet.layers.snapshots import LayerSource, Snapshots

pytestmark = pytest.mark.root


def source(tar: bytes, *, diff_id: str | None = None) -> LayerSource:
    blob = gz(tar)
    return LayerSource(diff_id=diff_id or sha(tar), digest=sha(blob), media_type=OCI_LAYER_GZIP,
                       open=lambda: io.BytesIO(blob), size=len(blob))


def test_chain_ids_follow_the_spec() -> None:
    a, b = "sha256:" + "a" * 64, "sha256:" + "b" * 64
    import hashlib

    assert chain_ids([a, b]) == [a, "sha256:" + hashlib.sha256(f"{a} {b}".encode()).hexdigest()]


@pytest.mark.parametrize("driver", ["overlay", "copy"])
def test_image_mount_and_container_snapshot(tmp_path: Path, driver: str) -> None:
    snaps = Snapshots(tmp_path / "root", driver)
    layers = [source(TarBuilder().dir("etc").file("etc/a", b"a").file("etc/b", b"b").bytes()),
              source(TarBuilder().dir("etc").whiteout("etc/.wh.a").file("etc/c", b"c").bytes())]
    ids = snaps.ensure(layers)
    assert all(snaps.has(c) for c in ids)
    assert snaps.layer_meta(ids[1])["parent"] == ids[0]
    assert snaps.ensure(layers) == ids  # second time: nothing to do
    view = snaps.mount_image("sha256:" + "1" * 64, ids)
    assert sorted(os.listdir(view / "etc")) == ["b", "c"]
    snaps.unmount_image("sha256:" + "1" * 64)

    c = snaps.create_container("c1", ids)
    root = c.mount()
    (root / "etc" / "new").write_text("n")
    os.unlink(root / "etc" / "b")
    assert sorted(os.listdir(root / "etc")) == ["c", "new"]
    if driver == "overlay":
        assert stat.S_ISCHR(os.lstat(c.upper / "etc" / "b").st_mode)  # a whiteout in upper
    c.unmount()
    c.remove()
    assert snaps.containers() == []
    assert mounts_under(tmp_path) == []


def test_failed_unpack_leaves_nothing(tmp_path: Path) -> None:
    snaps = Snapshots(tmp_path / "root", "overlay")
    good = TarBuilder().file("a", b"a").bytes()
    with pytest.raises(DigestMismatch):
        snaps.ensure([source(good, diff_id="sha256:" + "0" * 64)])
    bad = gz(TarBuilder().file("a", b"x" * 5000).bytes())[:-30]
    src = LayerSource(diff_id=sha(b"?"), digest=sha(bad), media_type=OCI_LAYER_GZIP, open=lambda: io.BytesIO(bad))
    with pytest.raises(InvalidArchive):
        snaps.ensure([src])
    layers_dir = tmp_path / "root" / "layers"
    assert [p for p in layers_dir.iterdir() if len(p.name) == 64] == []
    assert os.listdir(layers_dir / "tmp") == []
    assert os.listdir(layers_dir / "l") == []


def test_failed_mount_leaves_no_mountpoint(tmp_path: Path) -> None:
    snaps = Snapshots(tmp_path / "root", "overlay")
    ids = snaps.ensure([source(TarBuilder().file("a", b"a").bytes())])
    os.rename(snaps.diff_path(ids[0]), snaps.layer_dir(ids[0]) / "moved")  # break the lowerdir
    with pytest.raises(PalletError, match="overlay"):
        snaps.mount_image("sha256:" + "2" * 64, ids)
    assert os.listdir(tmp_path / "root" / "layers" / "mnt") == []
    assert mounts_under(tmp_path) == []


def test_pushed_unpack_publishes_atomically(tmp_path: Path) -> None:
    snaps = Snapshots(tmp_path / "root", "overlay")
    tar = TarBuilder().file("big", os.urandom(200_000)).bytes()
    blob = gz(tar)
    cid = sha(tar)
    w = snaps.unpack_writer(cid, None, OCI_LAYER_GZIP, expected_digest=sha(blob), expected_diff_id=cid)
    for i in range(0, len(blob), 4096):
        w.feed(blob[i:i + 4096])
        assert not snaps.has(cid)
    w.commit()
    assert snaps.has(cid) and (snaps.diff_path(cid) / "big").stat().st_size == 200_000


@pytest.mark.slow
def test_seventy_layers_fit_one_mount(tmp_path: Path) -> None:
    root = tmp_path / ("deep-" + "r" * 100)  # a long storage root must not matter
    snaps = Snapshots(root, "overlay")
    layers = [source(TarBuilder().file(f"f{i:03d}", str(i).encode()).file("top", str(i).encode()).bytes())
              for i in range(70)]
    ids = snaps.ensure(layers, parallel=False)
    view = snaps.mount_image("sha256:" + "3" * 64, ids)
    try:
        assert len(os.listdir(view)) == 71 and (view / "top").read_text() == "69"
    finally:
        snaps.unmount_image("sha256:" + "3" * 64)


def test_gc_keeps_what_is_used(tmp_path: Path) -> None:
    snaps = Snapshots(tmp_path / "root", "overlay")
    a = snaps.ensure([source(TarBuilder().file("a", b"a").bytes())])
    b = snaps.ensure([source(TarBuilder().file("b", b"b").bytes())])
    c = snaps.ensure([source(TarBuilder().file("c", b"c").bytes())])
    snaps.create_container("uses-b", b)
    removed = snaps.gc(keep=set(a))
    assert removed == [c[0]] and snaps.has(a[0]) and snaps.has(b[0]) and not snaps.has(c[0])


def test_driver_detection_and_info(tmp_path: Path) -> None:
    snaps = Snapshots(tmp_path / "root")
    info = snaps.info()
    assert info["Driver"] == "overlay" and "overlay" in info["Reason"]
    assert Snapshots(tmp_path / "root", "copy").info()["Driver"] == "copy"


def test_diff_roundtrip_from_overlay_upper(tmp_path: Path) -> None:
    """Container changes -> layer tar (deterministic) -> unpacked on top -> the same tree."""
    from pallet.layers.diff import write_layer

    snaps = Snapshots(tmp_path / "root", "overlay")
    base = TarBuilder().dir("etc").file("etc/a", b"a").file("etc/b", b"b").dir("opt").dir("opt/x") \
        .file("opt/x/1", b"1").bytes()
    ids = snaps.ensure([source(base)])
    c = snaps.create_container("c", ids)
    root = c.mount()
    try:
        os.unlink(root / "etc" / "a")
        (root / "etc" / "b").write_text("changed")
        import shutil

        shutil.rmtree(root / "opt" / "x")
        (root / "opt" / "x").mkdir()
        (root / "opt" / "x" / "2").write_text("2")
        (root / "new").write_text("new")
        os.link(root / "new", root / "new-link")
        os.setxattr(root / "new", "user.k", b"v")
        base_dir = root / "etc"
        shutil.copytree(base_dir, root / "etc-copy", symlinks=True)
        os.rename(root / "etc-copy", root / "etc2")
        try:
            os.rename(root / "opt", root / "opt-renamed")  # a lower dir: EXDEV with redirect_dir=off
        except OSError:
            shutil.copytree(root / "opt", root / "opt-renamed", symlinks=True)
            shutil.rmtree(root / "opt")
        expected = describe_tree(root)
    finally:
        c.unmount()
    out1, out2 = io.BytesIO(), io.BytesIO()
    r1 = write_layer(out1, upper=str(c.upper))
    r2 = write_layer(out2, upper=str(c.upper))
    assert r1.diff_id == r2.diff_id and r1.digest == r2.digest  # deterministic
    layer = LayerSource(diff_id=r1.diff_id, digest=r1.digest, media_type=r1.media_type,
                        open=lambda: io.BytesIO(out1.getvalue()))
    ids2 = snaps.ensure([source(base), layer])
    for driver in ("overlay", "copy"):
        s = Snapshots(tmp_path / "root", driver)
        view = s.mount_image("sha256:" + "4" * 64, ids2)
        try:
            got = describe_tree(view)
        finally:
            s.unmount_image("sha256:" + "4" * 64)
        assert got == expected, driver


def test_diff_of_two_trees(tmp_path: Path) -> None:
    from pallet.layers.diff import write_layer
    from pallet.layers.stream import apply_layer

    lower, upper = tmp_path / "lower", tmp_path / "upper"
    t = TarBuilder().dir("d").file("d/keep", b"k").file("d/change", b"1").dir("gone").file("gone/x", b"x") \
        .file("f", b"f").bytes()
    for d in (lower, upper):
        d.mkdir()
        apply_layer(io.BytesIO(t), d, "application/vnd.oci.image.layer.v1.tar")
    (upper / "d" / "change").write_text("2")
    import shutil

    shutil.rmtree(upper / "gone")
    (upper / "added").write_text("a")
    out = io.BytesIO()
    write_layer(out, lower=str(lower), upper=str(upper), compression="")
    import tarfile

    names = tarfile.open(fileobj=io.BytesIO(out.getvalue())).getnames()
    assert names == [".wh.gone", "added", "d/change"]  # unchanged parents are not repeated
    apply_layer(io.BytesIO(out.getvalue()), lower, "application/vnd.oci.image.layer.v1.tar", mode="flat")
    assert describe_tree(lower) == describe_tree(upper)
