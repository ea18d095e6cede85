"""pallet's unpack against `umoci unpack`: the trees must not differ.

Compared per path: type, mode, uid/gid, size, sha256 of content, symlink
target, device numbers, hardlink groups and xattrs -- in the overlayfs merged
view and in the copy driver's flattened tree.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from layers.layer_helpers import RawLayout, TarBuilder, describe_tree, diff_trees
from pallet.layers.snapshots import Snapshots

pytestmark = [pytest.mark.root, pytest.mark.slow]

CAP = "\x01\x00\x00\x02\x00\x20\x00\x00" + "\x00" * 12


def special_layers() -> list[bytes]:
    l1 = (TarBuilder()
          .dir("bin").dir("etc").dir("dev").dir("tmp", mode=0o1777).dir("srv", mode=0o2775, gid=50)
          .file("bin/su", b"su", mode=0o4755).file("bin/wall", b"wall", mode=0o2755, gid=5)
          .file("bin/ping", b"ping", mode=0o755, xattrs={"security.capability": CAP})
          .file("etc/conf", b"conf", xattrs={"user.origin": "layer1", "user.other": "x"})
          .hardlink("bin/su-hard", "bin/su").hardlink("etc/conf-hard", "etc/conf")
          .symlink("bin/sh", "busybox").symlink("etc/abs", "/etc/conf")
          .device("dev/null", "c", 1, 3, mode=0o666).device("dev/sda", "b", 8, 0, mode=0o660).fifo("dev/fifo")
          .file("srv/data", b"d" * 5000, uid=1000, gid=1000)
          .dir("opt").dir("opt/app").file("opt/app/a", b"a").file("opt/app/b", b"b").dir("opt/app/sub")
          .file("opt/app/sub/c", b"c")
          .dir("var").dir("var/lib").file("var/lib/x", b"x").file("var/lib/y", b"y")
          .file("replace-me", b"file").dir("dir-to-file").file("dir-to-file/inner", b"i")
          .file("long/" + "p" * 180, b"long")
          .bytes())
    l2 = (TarBuilder()
          .dir("opt").dir("opt/app").whiteout("opt/app/.wh..wh..opq").file("opt/app/new", b"new")
          .dir("var").dir("var/lib").whiteout("var/lib/.wh.x")
          .dir("etc").whiteout("etc/.wh.abs")
          .file("etc/conf", b"conf v2", xattrs={"user.origin": "layer2"})
          .dir("replace-me").file("replace-me/now-dir", b"n")
          .whiteout(".wh.dir-to-file").file("dir-to-file", b"now a file")
          .dir("bin").file("bin/su", b"su v2", mode=0o4750).hardlink("bin/su-hard2", "bin/su")
          .bytes())
    l3 = (TarBuilder()
          .whiteout(".wh.var").dir("srv").whiteout("srv/.wh.data").file("srv/data2", b"2", mode=0o600)
          .dir("opt").dir("opt/app").file("opt/app/sub2", b"s")
          .bytes())
    return [l1, l2, l3]


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from conftest import make_busybox_rootfs

    base = tmp_path_factory.mktemp("umoci")
    lay = base / "oci"
    subprocess.run(["umoci", "init", "--layout", str(lay)], check=True)
    subprocess.run(["umoci", "new", "--image", f"{lay}:busybox"], check=True)
    bundle = base / "bb-bundle"
    subprocess.run(["umoci", "unpack", "--image", f"{lay}:busybox", str(bundle)], check=True, capture_output=True)
    make_busybox_rootfs(bundle / "rootfs")
    subprocess.run(["umoci", "repack", "--image", f"{lay}:busybox", str(bundle)], check=True, capture_output=True)
    shutil.rmtree(bundle)
    RawLayout(lay).image("special", special_layers())
    return lay


def umoci_tree(layout: Path, tag: str, dest: Path) -> dict:
    subprocess.run(["umoci", "unpack", "--image", f"{layout}:{tag}", str(dest)], check=True, capture_output=True)
    return describe_tree(dest / "rootfs")


@pytest.mark.parametrize("tag", ["busybox", "special"])
@pytest.mark.parametrize("driver", ["overlay", "copy"])
def test_same_tree_as_umoci(layout: Path, tmp_path: Path, tag: str, driver: str) -> None:
    from pallet.layers import images
    from pallet.store import Store
    from pallet.store.layout import load_layout

    expected = umoci_tree(layout, tag, tmp_path / "umoci")
    store = Store(tmp_path / "root")
    rec = load_layout(store, layout, tag)[0].record
    path = images.mount(store, rec.id, driver)
    try:
        got = describe_tree(path)
    finally:
        images.unmount(store, rec.id, driver)
    problems = diff_trees(expected, got)
    assert not problems, "\n".join(problems)
    if tag == "special":
        assert got["/bin/su"][6] == () and got["/bin/ping"][6][0][0] == "security.capability"
        assert set(got["/bin/su"][7]) == {"/bin/su", "/bin/su-hard2"}
        assert "/var" not in got and "/opt/app/a" not in got and "/opt/app/new" in got
    assert Snapshots(tmp_path / "root").mounted_images() == []


@pytest.mark.skipif(not Path("/tmp/anchors/oci/index.json").exists(),
                    reason="the 4-layer debootstrap fixture is built by ../shared/tools/fixtures/make-fixtures.sh")
def test_debootstrap_fixture_same_as_umoci(tmp_path: Path) -> None:
    from pallet.layers import images
    from pallet.store import Store
    from pallet.store.layout import load_layout

    expected = umoci_tree(Path("/tmp/anchors/oci"), "real", tmp_path / "umoci")
    store = Store(tmp_path / "root")
    rec = load_layout(store, "/tmp/anchors/oci", "real")[0].record
    path = images.mount(store, rec.id)
    try:
        got = describe_tree(path)
    finally:
        images.unmount(store, rec.id)
    problems = diff_trees(expected, got)
    assert not problems, "\n".join(problems)
