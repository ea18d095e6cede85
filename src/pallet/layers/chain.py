"""Chain ids, per the OCI image spec (config.md, "Layer ChainID").

    ChainID(L0)        = DiffID(L0)
    ChainID(L0|...|Ln) = sha256(ChainID(L0|...|Ln-1) + " " + DiffID(Ln))

A chain id names a layer *together with everything below it*, which is what an
unpacked snapshot depends on (a whiteout means nothing without its parents).
"""

from __future__ import annotations

from collections.abc import Sequence

from pallet.oci.digest import hexdigest


def chain_ids(diff_ids: Sequence[str]) -> list[str]:
    out: list[str] = []
    for d in diff_ids:
        if not out:
            out.append(d)
        else:
            out.append("sha256:" + hexdigest("sha256", f"{out[-1]} {d}".encode()))
    return out


def chain_id(diff_ids: Sequence[str]) -> str:
    ids = chain_ids(diff_ids)
    if not ids:
        raise ValueError("an empty layer list has no chain id")
    return ids[-1]
