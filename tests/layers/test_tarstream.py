"""The tar reader against tarfile-written archives (PAX, GNU, ustar) and hand-made edge cases."""

from __future__ import annotations

import io
import tarfile

import pytest

from layers.layer_helpers import TarBuilder
from pallet.errors import InvalidArchive
from pallet.layers.compression import DigestingDecoder, sniff
from pallet.layers.tarstream import DIR, LNK, REG, SYM, TarReader, parse_pax


def entries(tar: bytes, chunk: int = 7000) -> list:
    r = TarReader(iter([tar[i:i + chunk] for i in range(0, len(tar), chunk)]))
    out = []
    for e in r.entries():
        data = b"".join(bytes(p) for p in r.data())
        out.append((e, data))
    return out


@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT])
@pytest.mark.parametrize("chunk", [1, 511, 512, 7000, 1 << 20])
def test_formats_and_chunkings(fmt: int, chunk: int) -> None:
    name = "a/" + ("n" * 90 if fmt == tarfile.USTAR_FORMAT else "n" * 200)
    b = TarBuilder(fmt=fmt)
    b.dir("a").file(name, b"x" * 1234, uid=1000, gid=100, mode=0o4755).symlink("l", "target")
    b.hardlink("h", name)
    got = entries(b.bytes(), chunk)
    assert [(e.name.rstrip("/"), e.type) for e, _ in got] == [("a", DIR), (name, REG), ("l", SYM), ("h", LNK)]
    e, data = got[1]
    assert data == b"x" * 1234 and (e.uid, e.gid, e.mode, e.size) == (1000, 100, 0o4755, 1234)
    assert got[2][0].linkname == "target" and got[3][0].linkname == name


def test_pax_records_xattrs_times_and_big_ids() -> None:
    ti = tarfile.TarInfo("f")
    ti.size = 3
    ti.uid = 3_000_000_000
    ti.mtime = 1700000000.25
    ti.pax_headers = {"SCHILY.xattr.user.a": "1", "LIBARCHIVE.xattr.user.b": "Mg==", "atime": "12.5"}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        tf.addfile(ti, io.BytesIO(b"abc"))
    (e, data), = entries(buf.getvalue())
    assert e.uid == 3_000_000_000 and e.mtime_ns == 1_700_000_000_250_000_000 and e.atime_ns == 12_500_000_000
    assert e.xattrs == {"user.a": b"1", "user.b": b"2"} and data == b"abc"


def test_gnu_base256_numbers() -> None:
    ti = tarfile.TarInfo("big-uid")
    ti.uid = 8**8 + 5  # does not fit 7 octal digits: GNU writes base-256
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tf:
        tf.addfile(ti)
    (e, _), = entries(buf.getvalue())
    assert e.uid == 8**8 + 5


def test_global_pax_header_applies_to_following_entries() -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT,
                      pax_headers={"SCHILY.xattr.user.g": "global"}) as tf:
        tf.addfile(tarfile.TarInfo("x"))
    (e, _), = entries(buf.getvalue())
    assert e.xattrs == {"user.g": b"global"}


def test_bad_pax_and_bad_checksum() -> None:
    with pytest.raises(InvalidArchive, match="PAX"):
        parse_pax(b"99 path=x\n", "e")
    tar = bytearray(TarBuilder().file("f", b"1").bytes())
    tar[0] ^= 0x20
    with pytest.raises(InvalidArchive, match="checksum"):
        entries(bytes(tar))


def test_missing_end_marker_is_accepted_but_mid_header_is_not() -> None:
    tar = TarBuilder().file("f", b"1").bytes()
    assert len(entries(tar[:1024])) == 1
    with pytest.raises(InvalidArchive, match="middle of a header"):
        entries(tar[:1024 + 100])


def test_sniff_and_multi_frame_zstd() -> None:
    import zstandard

    assert sniff(b"\x1f\x8b\x08\x00") == "gzip" and sniff(b"\x28\xb5\x2f\xfd") == "zstd" and sniff(b"ustar") == ""
    a, b = b"first part " * 100, b"second part " * 100
    blob = zstandard.ZstdCompressor().compress(a) + zstandard.ZstdCompressor().compress(b)
    d = DigestingDecoder("application/vnd.oci.image.layer.v1.tar+zstd")
    out = d.feed(blob[:10]) + d.feed(blob[10:]) + d.finish()
    assert out == a + b and d.size == len(a + b)
