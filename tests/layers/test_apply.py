"""Applying layers: file types, metadata, whiteouts and opaque dirs in overlay and flat mode."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import pytest

from layers.layer_helpers import OCI_LAYER, OCI_LAYER_GZIP, OCI_LAYER_ZSTD, TarBuilder, gz, sha, zst
from pallet.errors import DigestMismatch
from pallet.layers.stream import LayerWriter, apply_layer

pytestmark = pytest.mark.root


def apply(dest: Path, tar: bytes, mode: str = "overlay", media: str = OCI_LAYER, **kw):
    dest.mkdir(parents=True, exist_ok=True)
    return apply_layer(io.BytesIO(tar), dest, media, mode=mode, **kw)


def test_types_and_metadata(tmp_path: Path) -> None:
    long = "deep/" + "x" * 120 + "/" + "y" * 150
    tar = (TarBuilder()
           .dir("bin", mode=0o755, mtime=1000)
           .file("bin/su", b"#!", mode=0o4755, uid=0, gid=0)
           .file("bin/sg", b"#!", mode=0o2711, uid=1000, gid=50)
           .dir("tmp", mode=0o1777)
           .file("bin/ping", b"ELF", mode=0o755, xattrs={"security.capability": "\x01\x00\x00\x02\x00\x20\x00\x00"
                                                          "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"})
           .file("user.txt", b"u", xattrs={"user.note": "hello"}, uid=1234, gid=5678, mtime=1234567890)
           .symlink("bin/sh", "busybox", uid=7, gid=8)
           .hardlink("bin/su2", "bin/su")
           .fifo("run/fifo", mode=0o600)
           .device("dev/null", "c", 1, 3, mode=0o666)
           .device("dev/loop9", "b", 7, 9, mode=0o660)
           .file(long, b"long name")
           .symlink("longlink", "/" + long)
           .bytes())
    d = tmp_path / "d"
    r = apply(d, tar)
    assert r.diff_id == sha(tar) and r.digest == sha(tar) and r.size == len(tar)
    st = os.lstat(d / "bin/su")
    assert stat.S_IMODE(st.st_mode) == 0o4755
    st = os.lstat(d / "bin/sg")
    assert stat.S_IMODE(st.st_mode) == 0o2711 and (st.st_uid, st.st_gid) == (1000, 50)
    assert stat.S_IMODE(os.lstat(d / "tmp").st_mode) == 0o1777
    assert os.getxattr(d / "bin/ping", "security.capability")[:4] == b"\x01\x00\x00\x02"
    assert os.getxattr(d / "user.txt", "user.note") == b"hello"
    st = os.lstat(d / "user.txt")
    assert (st.st_uid, st.st_gid, st.st_mtime_ns) == (1234, 5678, 1234567890 * 10**9)
    st = os.lstat(d / "bin/sh")
    assert os.readlink(d / "bin/sh") == "busybox" and (st.st_uid, st.st_gid) == (7, 8)
    assert os.lstat(d / "bin/su2").st_ino == os.lstat(d / "bin/su").st_ino
    assert stat.S_ISFIFO(os.lstat(d / "run/fifo").st_mode)
    st = os.lstat(d / "dev/null")
    assert stat.S_ISCHR(st.st_mode) and os.major(st.st_rdev) == 1 and os.minor(st.st_rdev) == 3
    assert stat.S_ISBLK(os.lstat(d / "dev/loop9").st_mode)
    assert (d / long).read_bytes() == b"long name"
    assert os.readlink(d / "longlink") == "/" + long
    assert os.lstat(d / "bin").st_mtime_ns == 1000 * 10**9  # dir mtimes are set after their contents


def test_gnu_long_names(tmp_path: Path) -> None:
    import tarfile

    name = "g/" + "n" * 200
    tar = TarBuilder(fmt=tarfile.GNU_FORMAT).file(name, b"gnu").symlink("l", "t" * 150).bytes()
    apply(tmp_path / "d", tar)
    assert (tmp_path / "d" / name).read_bytes() == b"gnu"
    assert os.readlink(tmp_path / "d" / "l") == "t" * 150


@pytest.mark.parametrize("media,enc", [(OCI_LAYER_GZIP, gz), (OCI_LAYER_ZSTD, zst), (OCI_LAYER, lambda b: b)])
def test_compressions_and_digests(tmp_path: Path, media: str, enc) -> None:
    tar = TarBuilder().file("a", os.urandom(300_000)).bytes()
    blob = enc(tar)
    r = apply(tmp_path / "d", blob, media=media, expected_digest=sha(blob), expected_diff_id=sha(tar))
    assert (r.digest, r.diff_id, r.compressed_size, r.size) == (sha(blob), sha(tar), len(blob), len(tar))
    with pytest.raises(DigestMismatch, match="diff id"):
        apply(tmp_path / "e", blob, media=media, expected_diff_id="sha256:" + "0" * 64)


def test_push_writer(tmp_path: Path) -> None:
    tar = TarBuilder().file("a", os.urandom(500_000)).file("b", b"b").bytes()
    blob = gz(tar)
    (tmp_path / "d").mkdir()
    w = LayerWriter(tmp_path / "d", OCI_LAYER_GZIP, expected_digest=sha(blob))
    for i in range(0, len(blob), 1000):
        w.feed(blob[i:i + 1000])
    r = w.close()
    assert r.diff_id == sha(tar) and (tmp_path / "d" / "b").read_bytes() == b"b"


def test_push_writer_failure_surfaces(tmp_path: Path) -> None:
    from pallet.errors import InvalidArchive

    (tmp_path / "d").mkdir()
    w = LayerWriter(tmp_path / "d", OCI_LAYER_GZIP)
    with pytest.raises(InvalidArchive):
        w.feed(b"definitely not gzip data")
        for _ in range(100):
            w.feed(b"x" * 1000)
        w.close()
    w.abort()


# ---- whiteouts --------------------------------------------------------------------------
LOWER = (TarBuilder().dir("etc").file("etc/keep", b"k").file("etc/gone", b"g")
         .dir("opt").file("opt/old1", b"1").dir("opt/sub").file("opt/sub/old2", b"2")
         .dir("var").file("var/x", b"x").bytes())
UPPER = (TarBuilder().whiteout("etc/.wh.gone").dir("opt").whiteout("opt/.wh..wh..opq")
         .file("opt/new", b"n").whiteout(".wh.var").file("etc/added", b"a")
         .whiteout(".wh.nonexistent").bytes())


def test_whiteouts_flat(tmp_path: Path) -> None:
    d = tmp_path / "flat"
    apply(d, LOWER, "flat")
    apply(d, UPPER, "flat")
    got = sorted(str(p.relative_to(d)) for p in d.rglob("*"))
    assert got == ["etc", "etc/added", "etc/keep", "opt", "opt/new"]


def test_whiteouts_overlay_form(tmp_path: Path) -> None:
    d = tmp_path / "diff"
    apply(d, UPPER, "overlay")
    for name in ("etc/gone", "var", "nonexistent"):
        st = os.lstat(d / name)
        assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0, name
    assert os.getxattr(d / "opt", "trusted.overlay.opaque") == b"y"
    assert (d / "opt/new").read_bytes() == b"n"


def test_whiteouts_through_overlayfs(tmp_path: Path) -> None:
    """The overlay-form diffs, stacked by the kernel, show what flat mode computes."""
    from pallet.layers.snapshots import _mount_overlay, _umount

    lo, up, m = tmp_path / "lo", tmp_path / "up", tmp_path / "m"
    apply(lo, LOWER, "overlay")
    apply(up, UPPER, "overlay")
    m.mkdir()
    _mount_overlay([str(up), str(lo)], str(m), readonly=True)
    try:
        got = sorted(str(p.relative_to(m)) for p in m.rglob("*"))
    finally:
        _umount(str(m))
    assert got == ["etc", "etc/added", "etc/keep", "opt", "opt/new"]


def test_same_layer_whiteout_does_not_hide_own_file(tmp_path: Path) -> None:
    tar = TarBuilder().file("a", b"mine").whiteout(".wh.a").bytes()
    for mode in ("overlay", "flat"):
        d = tmp_path / mode
        apply(d, tar, mode)
        assert (d / "a").read_bytes() == b"mine"


def test_whiteout_then_dir_in_same_layer_is_opaque(tmp_path: Path) -> None:
    tar = TarBuilder().whiteout(".wh.opt").dir("opt").file("opt/n", b"n").bytes()
    d = tmp_path / "d"
    apply(d, tar)
    assert os.getxattr(d / "opt", "trusted.overlay.opaque") == b"y"


def test_opaque_marker_in_root(tmp_path: Path) -> None:
    d = tmp_path / "flat"
    apply(d, LOWER, "flat")
    apply(d, TarBuilder().whiteout(".wh..wh..opq").file("only", b"o").bytes(), "flat")
    assert sorted(os.listdir(d)) == ["only"]
    o = tmp_path / "ovl"
    apply(o, TarBuilder().whiteout(".wh..wh..opq").bytes())
    assert os.getxattr(o, "trusted.overlay.opaque") == b"y" and os.listdir(o) == []


def test_replacements(tmp_path: Path) -> None:
    d = tmp_path / "d"
    apply(d, TarBuilder().dir("x").file("x/f", b"f").file("y", b"y").symlink("z", "/etc").bytes(), "flat")
    apply(d, TarBuilder().file("x", b"now a file").dir("y").file("z", b"file").bytes(), "flat")
    assert (d / "x").read_bytes() == b"now a file" and (d / "y").is_dir() and not (d / "z").is_symlink()


def test_duplicate_entries_last_wins(tmp_path: Path) -> None:
    d = tmp_path / "d"
    apply(d, TarBuilder().file("a", b"1").file("a", b"2", mode=0o600).bytes())
    assert (d / "a").read_bytes() == b"2" and stat.S_IMODE(os.lstat(d / "a").st_mode) == 0o600


def test_id_map_hook(tmp_path: Path) -> None:
    d = tmp_path / "d"
    apply(d, TarBuilder().file("a", b"1", uid=5, gid=6).bytes(), id_map=lambda u, g: (u + 100000, g + 100000))
    st = os.lstat(d / "a")
    assert (st.st_uid, st.st_gid) == (100005, 100006)


def test_setgid_parent_does_not_leak_gid(tmp_path: Path) -> None:
    d = tmp_path / "d"
    apply(d, TarBuilder().dir("s", mode=0o2775, gid=50).file("s/f", b"").dir("s/sub").bytes())
    assert os.lstat(d / "s/f").st_gid == 0
    st = os.lstat(d / "s/sub")
    assert st.st_gid == 0 and stat.S_IMODE(st.st_mode) == 0o755
