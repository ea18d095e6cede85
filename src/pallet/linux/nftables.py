"""nftables: one JSON batch, one `nft -j -f -`, one kernel transaction (all of it or none of it).

The batch is a list of libnftables JSON commands (`{"add": {"rule": ...}}`); `family`/`table` are
filled in by the helpers below for pallet's own table, so no command here can name another table.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

FAMILY = "inet"
TABLE = "pallet"


class NftError(OSError):
    """nft refused a batch (its first error line) or is not installed."""


def nft_binary() -> str:
    path = shutil.which("nft") or next((p for p in ("/usr/sbin/nft", "/sbin/nft") if os.path.exists(p)), None)
    if path is None:
        raise NftError("nft is not installed (apt-get install nftables)")
    return path


def run(commands: list[dict]) -> None:
    """Apply `commands` as one transaction."""
    if not commands:
        return
    doc = json.dumps({"nftables": [{"metainfo": {"json_schema_version": 1}}, *commands]})
    from pallet.linux import trace as T

    r = T.recorder
    t = T.now() if r else 0
    cp = subprocess.run(argv := [nft_binary(), "-j", "-f", "-"], input=doc, capture_output=True, text=True)
    if r:
        r.done("nft transaction", t, {"argv": argv, "commands": len(commands), "objects": sorted({
            f"{verb} {kind}" for c in commands for verb, o in c.items() for kind in o}),
            "json": doc if len(doc) < 20000 else doc[:20000] + "..."},
            None if cp.returncode == 0 else f"nft exit status {cp.returncode}")
    if cp.returncode != 0:
        lines = [ln for ln in cp.stderr.splitlines() if ln.strip()]
        first = next((ln for ln in lines if ln.startswith("Error")), lines[0] if lines else "")
        raise NftError(f"nft refused the firewall transaction: {first or f'exit {cp.returncode}'}")


def list_table() -> list[dict]:
    """pallet's table as nft's JSON objects ([] when it does not exist)."""
    cp = subprocess.run([nft_binary(), "-j", "list", "table", FAMILY, TABLE], capture_output=True, text=True)
    if cp.returncode != 0:
        return []
    return [o for o in json.loads(cp.stdout).get("nftables", []) if "metainfo" not in o]


# ---- builders for objects of pallet's table ---------------------------------------------------
def _obj(kind: str, **fields) -> dict:
    return {kind: {"family": FAMILY, "table": TABLE, **fields}}


def table() -> dict:
    return {"table": {"family": FAMILY, "name": TABLE}}


def chain(name: str, **hook) -> dict:
    return _obj("chain", name=name, **hook)


def set_(name: str, type: str, **extra) -> dict:
    return _obj("set", name=name, type=type, **extra)


def map_(name: str, type: str, map: str, **extra) -> dict:
    return _obj("map", name=name, type=type, map=map, **extra)


def rule(chain: str, *expr: dict) -> dict:
    return _obj("rule", chain=chain, expr=list(expr))


def element(name: str, *elem) -> dict:
    return _obj("element", name=name, elem=list(elem))


def add(obj: dict) -> dict:
    return {"add": obj}


def flush(obj: dict) -> dict:
    return {"flush": obj}


def delete(obj: dict) -> dict:
    return {"delete": obj}


# expressions
def meta(key: str) -> dict:
    return {"meta": {"key": key}}


def payload(protocol: str, field: str) -> dict:
    return {"payload": {"protocol": protocol, "field": field}}


def match(left: dict, right, op: str = "==") -> dict:
    return {"match": {"op": op, "left": left, "right": right}}


def prefix(addr: str, length: int) -> dict:
    return {"prefix": {"addr": addr, "len": length}}


def vmap(key: dict, data: str) -> dict:
    return {"vmap": {"key": key, "data": data}}


def jump(target: str) -> dict:
    return {"jump": {"target": target}}


ACCEPT: dict = {"accept": None}
DROP: dict = {"drop": None}
MASQUERADE: dict = {"masquerade": None}
