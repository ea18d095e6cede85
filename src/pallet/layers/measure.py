"""Reproduce the `tarfile` vs `pallet.layers.tarstream` measurement (docs/layers.md has the results).

    python -m pallet.layers.measure BLOB [BLOB ...] [--runs N] [--media-type T] [--dir SCRATCH]

For each layer blob (gzip unless --media-type says otherwise) and each run,
alternating the two readers:

1. *read*: decompress into memory once, then iterate all entries reading every
   file's content (tarfile 'r|' + extractfile().read() vs TarReader + data());
2. *unpack*: stream from the blob into a fresh directory (tarfile 'r|' over
   isal's igzip reader + extractall vs pallet's apply_layer, single-threaded).

Both CPU time (process_time) and wall time are printed: on a shared machine the
CPU time is the steadier number.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import tarfile
import time
import uuid

from pallet.layers.compression import decoder
from pallet.layers.stream import apply_layer
from pallet.layers.tarstream import TarReader
from pallet.oci import mediatypes


def _decompress(path: str, kind: str) -> bytes:
    dec = decoder(kind)
    with open(path, "rb") as f:
        out = [dec.feed(f.read())]
    out.append(dec.finish())
    return b"".join(out)


def _read_tarfile(raw: bytes) -> int:
    n = 0
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r|") as tf:
        for m in tf:
            n += 1
            if m.isreg():
                tf.extractfile(m).read()
    return n


def _read_own(raw: bytes) -> int:
    chunks = [raw[i:i + (1 << 18)] for i in range(0, len(raw), 1 << 18)]
    r = TarReader(iter(chunks))
    n = 0
    for _ in r.entries():
        n += 1
        for _piece in r.data():
            pass
    return n


def _unpack_tarfile(path: str, dest: str, kind: str) -> None:
    if kind == "gzip":
        from isal import igzip

        f = igzip.open(path, "rb")
    elif kind == "zstd":
        import zstandard

        f = zstandard.ZstdDecompressor().stream_reader(open(path, "rb"))  # noqa: SIM115
    else:
        f = open(path, "rb")  # noqa: SIM115
    with f, tarfile.open(fileobj=f, mode="r|") as tf:
        # (extraction filters exist from Python 3.11.4 on; before, extraction is "fully trusted")
        trusted = {"filter": "fully_trusted"} if hasattr(tarfile, "fully_trusted_filter") else {}
        tf.extractall(dest, numeric_owner=True, **trusted)


def _unpack_own(path: str, dest: str, media_type: str) -> None:
    with open(path, "rb") as f:
        apply_layer(f, dest, media_type, threaded=False)


def _timed(fn, *args) -> tuple[float, float]:
    c, w = time.process_time(), time.perf_counter()
    fn(*args)
    return time.process_time() - c, time.perf_counter() - w


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("blobs", nargs="+")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--media-type", default=mediatypes.OCI_LAYER_GZIP)
    ap.add_argument("--dir", default="/tmp", help="scratch dir for the unpack runs (left in place)")
    a = ap.parse_args(argv)
    kind = mediatypes.layer_compression(a.media_type) or ""
    scratch = os.path.join(a.dir, f"tar-measure-{uuid.uuid4().hex[:8]}")
    os.makedirs(scratch)
    print(f"scratch dir {scratch} (not deleted: remove it when done)")
    for blob in a.blobs:
        raw = _decompress(blob, kind)
        res: dict[str, list[tuple[float, float]]] = {k: [] for k in ("read-tarfile", "read-own",
                                                                     "unpack-tarfile", "unpack-own")}
        n = _read_own(raw)
        for i in range(a.runs):
            res["read-tarfile"].append(_timed(_read_tarfile, raw))
            res["read-own"].append(_timed(_read_own, raw))
            d1, d2 = f"{scratch}/{i}-tf-{os.path.basename(blob)[:8]}", f"{scratch}/{i}-own-{os.path.basename(blob)[:8]}"
            os.makedirs(d1)
            os.makedirs(d2)
            res["unpack-tarfile"].append(_timed(_unpack_tarfile, blob, d1, kind))
            res["unpack-own"].append(_timed(_unpack_own, blob, d2, a.media_type))
        med = {k: (statistics.median(c for c, _ in v), statistics.median(w for _, w in v)) for k, v in res.items()}
        print(f"{os.path.basename(blob)[:12]}: {n} entries, {len(raw) / 1e6:.1f} MB uncompressed")
        for what in ("read", "unpack"):
            t, o = med[f"{what}-tarfile"], med[f"{what}-own"]
            print(f"  {what:6}  tarfile cpu {t[0]:.3f}s wall {t[1]:.3f}s | own cpu {o[0]:.3f}s wall {o[1]:.3f}s"
                  f" | tarfile/own cpu {t[0] / o[0]:.2f}x wall {t[1] / o[1]:.2f}x")


if __name__ == "__main__":
    main()
