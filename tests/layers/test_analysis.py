"""Per-layer changes and wasted bytes, straight from layer tars."""

from __future__ import annotations

import io

from layers.layer_helpers import OCI_LAYER, TarBuilder
from pallet.layers.analysis import analyze, efficiency


def layers(*tars: bytes):
    return [(f"sha256:{i:064x}", f"sha256:{i:064x}", OCI_LAYER, f"step {i}", lambda t=t: io.BytesIO(t))
            for i, t in enumerate(tars)]


def test_opaque_whiteout_overwrite_and_waste() -> None:
    l0 = TarBuilder().dir("app").file("app/a", b"a" * 100).file("app/b", b"b" * 200).file("x", b"x" * 50).bytes()
    l1 = TarBuilder().dir("app").whiteout("app/.wh..wh..opq").file("app/c", b"c" * 10).file("x", b"X" * 60).bytes()
    l2 = TarBuilder().whiteout(".wh.x").file("app/c", b"C" * 5).bytes()
    reports, waste = analyze(layers(l0, l1, l2))
    ops = [[(c.op, c.path) for c in r.changes] for r in reports]
    assert ops[0] == [("+", "/app"), ("+", "/app/a"), ("+", "/app/b"), ("+", "/x")]
    assert ("-", "/app/a") in ops[1] and ("-", "/app/b") in ops[1] and ("~", "/x") in ops[1] and ("+", "/app/c") in ops[1]
    assert ops[2] == [("-", "/x"), ("~", "/app/c")]
    assert {w.path: w.wasted for w in waste} == {"/app/a": 100, "/app/b": 200, "/x": 110, "/app/c": 10}
    eff = efficiency(reports, waste)
    assert eff["total_bytes"] == 425 and eff["wasted_bytes"] == 420
    assert waste[0].path == "/app/b" and [r.created_by for r in reports] == ["step 0", "step 1", "step 2"]
