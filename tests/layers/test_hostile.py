"""Hostile layers: nothing outside the target directory may change, and the refusal names the entry."""

from __future__ import annotations

import io
import os
import struct
from pathlib import Path

import pytest

from layers.layer_helpers import OCI_LAYER, OCI_LAYER_GZIP, OCI_LAYER_ZSTD, TarBuilder, fingerprint, gz, zst
from pallet.errors import InvalidArchive, PalletError, UnsafePath
from pallet.layers.stream import apply_layer

pytestmark = pytest.mark.root

MODES = ["overlay", "flat"]


def run(sb: Path, tar: bytes, mode: str, media: str = OCI_LAYER):
    before = fingerprint(sb, skip=sb / "root")
    try:
        return apply_layer(io.BytesIO(tar), sb / "root", media, mode=mode)
    finally:
        assert fingerprint(sb, skip=sb / "root") == before, "something outside the root changed"


def corpus(sb: Path) -> dict[str, tuple[bytes, type | None, str | None]]:
    """name -> (tar, expected error class or None when confining is the answer, entry named in the error)."""
    out = str(sb / "outside")
    c: dict[str, tuple[bytes, type | None, str | None]] = {}
    c["dotdot"] = (TarBuilder().file("../outside/pwned", b"x").bytes(), UnsafePath, "../outside/pwned")
    c["dotdot-deep"] = (TarBuilder().file("a/b/../../../sibling", b"x").bytes(), UnsafePath, "a/b/../../../sibling")
    c["absolute"] = (TarBuilder().file(out + "/secret", b"overwritten").bytes(), None, None)
    c["abs-symlink-write"] = (TarBuilder().symlink("evil", out).file("evil/secret", b"overwritten")
                              .file("evil/new", b"x").bytes(), None, None)
    c["rel-symlink-write"] = (TarBuilder().symlink("evil", "../../outside").file("evil/secret", b"o").bytes(),
                              None, None)
    c["symlink-chain"] = (TarBuilder().symlink("a", "b").symlink("b", "../..").dir("a/outside")
                          .file("a/outside/secret", b"o").bytes(), None, None)
    c["symlink-then-file-same-name"] = (TarBuilder().symlink("f", out + "/secret").file("f", b"o").bytes(),
                                        None, None)
    c["symlink-dir-replace"] = (TarBuilder().dir("d").symlink("d", out).file("d/secret", b"o").bytes(), None, None)
    c["hardlink-dotdot"] = (TarBuilder().hardlink("h", "../outside/secret").bytes(), UnsafePath, "h")
    c["hardlink-absolute"] = (TarBuilder().hardlink("h", out + "/secret").bytes(), InvalidArchive, "h")
    c["hardlink-through-symlink"] = (TarBuilder().symlink("evil", out).hardlink("h", "evil/secret")
                                     .file("h", b"o").bytes(), InvalidArchive, "h")
    c["whiteout-dotdot"] = (TarBuilder().whiteout("../outside/.wh.secret").bytes(), UnsafePath, "../outside/.wh.secret")
    c["whiteout-through-symlink"] = (TarBuilder().symlink("evil", out).whiteout("evil/.wh.secret")
                                     .whiteout("evil/.wh.dir").bytes(), None, None)
    c["opaque-through-symlink"] = (TarBuilder().symlink("evil", out).whiteout("evil/.wh..wh..opq").bytes(), None, None)
    c["whiteout-dotdot-name"] = (TarBuilder().whiteout(".wh...").bytes(), UnsafePath, ".wh...")
    c["root-opaque-file"] = (TarBuilder().whiteout(".wh..wh..opq").file("kept", b"k").bytes(), None, None)
    c["device-through-symlink"] = (TarBuilder().symlink("evil", out).device("evil/null").fifo("evil/fifo").bytes(),
                                   None, None)
    return c


NAMES = sorted(corpus(Path("/x")))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", NAMES)
def test_hostile_corpus(sandbox: Path, name: str, mode: str) -> None:
    tar, err, entry = corpus(sandbox)[name]
    if err is None:
        run(sandbox, tar, mode)
    else:
        with pytest.raises(err) as ei:
            run(sandbox, tar, mode)
        assert repr(entry)[1:-1] in ei.value.message, ei.value.message


def test_confined_writes_land_inside(sandbox: Path) -> None:
    out = str(sandbox / "outside")
    run(sandbox, TarBuilder().symlink("evil", out).file("evil/new", b"x").bytes(), "overlay")
    assert (sandbox / "root" / out.lstrip("/") / "new").read_bytes() == b"x"
    assert os.readlink(sandbox / "root" / "evil") == out  # the link itself is kept as data


def test_whiteout_in_flat_mode_deletes_only_inside(sandbox: Path) -> None:
    root = sandbox / "root"
    (root / "etc").mkdir()
    (root / "etc" / "gone").write_text("x")
    run(sandbox, TarBuilder().whiteout("etc/.wh.gone").bytes(), "flat")
    assert not (root / "etc" / "gone").exists()


def test_truncated_mid_file(sandbox: Path) -> None:
    tar = TarBuilder().file("a", b"A" * 10000).file("b", b"B" * 10000).bytes()
    with pytest.raises(InvalidArchive, match="'b'.*truncated|truncated.*'b'|middle of 'b'"):
        run(sandbox, tar[:512 * 3 + 10000 + 700], "overlay")
    with pytest.raises(InvalidArchive, match="truncated|ends early"):
        run(sandbox, gz(TarBuilder().file("r", os.urandom(20000)).bytes())[:-100], "overlay", OCI_LAYER_GZIP)


def test_gzip_with_garbage_after(sandbox: Path) -> None:
    tar = TarBuilder().file("a", b"hello").bytes()
    with pytest.raises(InvalidArchive, match="after the end of its gzip stream"):
        run(sandbox, gz(tar) + b"GARBAGE-NOT-GZIP", "overlay", OCI_LAYER_GZIP)
    # a second gzip member is fine (gzip -d reads it too)
    half = len(tar) // 1024 * 512
    r = run(sandbox, gz(tar[:half]) + gz(tar[half:]), "overlay", OCI_LAYER_GZIP)
    assert (sandbox / "root" / "a").read_bytes() == b"hello" and r.size == len(tar)


def test_zstd_frame_lying_about_its_size(sandbox: Path) -> None:
    tar = TarBuilder().file("a", b"z" * 5000).bytes()
    frame = bytearray(zst(tar))
    fhd = frame[4]
    fcs_flag, single = fhd >> 6, (fhd >> 5) & 1
    size_len = {0: 1 if single else 0, 1: 2, 2: 4, 3: 8}[fcs_flag]
    assert size_len, "zstandard wrote no content size"
    pos = 5 + (0 if single else 1) + [0, 1, 2, 4][fhd & 3]
    declared = int.from_bytes(frame[pos:pos + size_len], "little")
    lie = (declared - 1024).to_bytes(size_len, "little") if size_len != 2 else \
        struct.pack("<H", declared - 1024)
    frame[pos:pos + size_len] = lie
    with pytest.raises(InvalidArchive, match="zstd"):
        run(sandbox, bytes(frame), "overlay", OCI_LAYER_ZSTD)


def test_media_type_checked_against_magic(sandbox: Path) -> None:
    tar = TarBuilder().file("a", b"x").bytes()
    with pytest.raises(InvalidArchive, match="media type says gzip"):
        run(sandbox, tar, "overlay", OCI_LAYER_GZIP)
    with pytest.raises(InvalidArchive, match="gzip but its media type says plain tar"):
        run(sandbox, gz(tar), "overlay", OCI_LAYER)
    with pytest.raises(InvalidArchive, match="media type says zstd"):
        run(sandbox, gz(tar), "overlay", OCI_LAYER_ZSTD)


def test_not_a_tar(sandbox: Path) -> None:
    with pytest.raises(InvalidArchive, match="checksum"):
        run(sandbox, os.urandom(4096), "overlay")


def test_sparse_and_unknown_types_refused(sandbox: Path) -> None:
    b = TarBuilder()
    import tarfile

    ti = tarfile.TarInfo("weird")
    ti.type = b"V"
    b.tf.addfile(ti)
    with pytest.raises(InvalidArchive, match="'weird'"):
        run(sandbox, b.bytes(), "overlay")


def test_overlay_xattrs_from_tar_are_dropped(sandbox: Path) -> None:
    tar = TarBuilder().dir("d", xattrs={"trusted.overlay.opaque": "y", "user.ok": "1"}).bytes()
    r = run(sandbox, tar, "overlay")
    names = os.listxattr(sandbox / "root" / "d")
    assert "trusted.overlay.opaque" not in names and "user.ok" in names
    assert any("trusted.overlay.opaque" in w for w in r.warnings)


def _ustar(name: str, typeflag: bytes, mode: int = 0o644) -> bytes:
    """One ustar header without data (fast enough to write 100k of them)."""
    h = bytearray(512)
    h[0:len(name)] = name.encode()
    h[100:108] = b"%07o\0" % mode
    h[108:116] = h[116:124] = b"0000000\0"
    h[124:136] = b"00000000000\0"
    h[136:148] = b"14000000000\0"
    h[148:156] = b" " * 8
    h[156:157] = typeflag
    h[257:265] = b"ustar\x0000"
    h[148:156] = b"%06o\0 " % sum(h)
    return bytes(h)


@pytest.mark.slow
def test_100k_entries(sandbox: Path) -> None:
    parts = []
    for d in range(100):
        parts.append(_ustar(f"d{d:03d}/", b"5", 0o755))
        parts.extend(_ustar(f"d{d:03d}/f{i:04d}", b"0") for i in range(1000))
    tar = b"".join(parts) + bytes(1024)
    r = run(sandbox, tar, "overlay")
    assert r.entries == 100_100 and r.size == len(tar)
    assert len(os.listdir(sandbox / "root" / "d042")) == 1000


def test_errors_are_pallet_errors(sandbox: Path) -> None:
    with pytest.raises(PalletError):
        run(sandbox, b"\0" * 100, "overlay")
