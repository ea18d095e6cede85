"""`pallet image mount|unmount|tree|efficiency` through the real console script."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from helpers.mounts import mounts_under
from layers.layer_helpers import RawLayout, TarBuilder

pytestmark = pytest.mark.root


@pytest.fixture
def image(tmp_path: Path, pallet) -> str:
    lay = RawLayout(tmp_path / "layout")
    lay.image("localhost/demo:1", [
        TarBuilder().dir("etc").file("etc/a", b"a" * 1000).file("etc/b", b"b" * 2000).dir("big")
        .file("big/blob", b"x" * 50_000).bytes(),
        TarBuilder().dir("etc").file("etc/a", b"A" * 1500).file("etc/c", b"c").bytes(),
        TarBuilder().whiteout(".wh.big").dir("etc").whiteout("etc/.wh.b").bytes(),
    ], history=["base files", "edit a, add c", "remove big and b"])
    pallet("image", "import-layout", str(lay.root), "localhost/demo:1", check=True)
    return "localhost/demo:1"


def test_mount_unmount(pallet, image: str, pallet_root: Path, tmp_path: Path) -> None:
    cp = pallet("image", "mount", image, check=True)
    path = Path(cp.stdout.strip())
    assert sorted(os.listdir(path / "etc")) == ["a", "c"] and (path / "etc" / "a").read_bytes() == b"A" * 1500
    assert pallet("image", "mount", image, check=True).stdout.strip() == str(path)  # idempotent
    with pytest.raises(OSError):
        (path / "etc" / "new").write_text("read-only")
    pallet("image", "unmount", image, check=True)
    assert mounts_under(pallet_root) == [] and not path.exists()


def test_mount_copy_driver(pallet, image: str, pallet_root: Path) -> None:
    cp = pallet("--storage-driver", "copy", "image", "mount", image, check=True)
    path = Path(cp.stdout.strip())
    assert sorted(os.listdir(path / "etc")) == ["a", "c"]
    with pytest.raises(OSError):
        (path / "etc" / "new").write_text("read-only")
    pallet("--storage-driver", "copy", "image", "unmount", image, check=True)
    assert mounts_under(pallet_root) == []


def test_mount_unknown_image(pallet) -> None:
    cp = pallet("image", "mount", "nope:1")
    assert cp.returncode == 125 and "No such image" in cp.stderr


def test_tree(pallet, image: str) -> None:
    cp = pallet("image", "tree", image, check=True)
    lines = cp.stdout.splitlines()
    assert lines[0].split()[:6] == ["LAYER", "DIGEST", "SIZE", "+", "~", "-"]
    assert lines[1].split()[3:6] == ["5", "0", "0"] and "base files" in lines[1]
    assert lines[2].split()[3:6] == ["1", "1", "0"]  # etc/c added; etc/a changed (etc dir is not a change)
    assert lines[3].split()[3:6] == ["0", "0", "3"]  # /big, /big/blob, /etc/b
    assert lines[4].startswith("total")
    data = json.loads(pallet("image", "tree", image, "--format", "json", check=True).stdout)
    assert [x["created_by"] for x in data["layers"]] == ["base files", "edit a, add c", "remove big and b"]
    assert data["totals"] == {"size": 54501, "added": 6, "changed": 1, "deleted": 3}
    one = json.loads(pallet("image", "tree", image, "--layer", "1", "--path", "/etc", "--format", "json",
                            check=True).stdout)
    assert [(c["op"], c["path"]) for c in one["layers"][0]["changes"]] == [("~", "/etc/a"), ("+", "/etc/c")]
    cp = pallet("image", "tree", image, "--layer", "7")
    assert cp.returncode == 125 and "--layer" in cp.stderr


def test_efficiency(pallet, image: str) -> None:
    data = json.loads(pallet("image", "efficiency", image, "--format", "json", check=True).stdout)
    assert data["wasted_bytes"] == 50_000 + 2000 + 1000
    assert data["top"][0] == {"path": "/big/blob", "count": 1, "wasted_bytes": 50_000}
    assert 0 < data["efficiency"] < 0.05
    out = pallet("image", "efficiency", image, check=True).stdout
    assert "EFFICIENCY" in out and "/big/blob" in out
