"""nftables: one JSON batch, one kernel transaction (all of it or none of it).

The batch is a list of libnftables JSON commands (`{"add": {"rule": ...}}`); `family`/`table` are
filled in by the helpers below for pallet's own table, so no command here can name another table.
It goes to libnftables in this process (Debian's libnftables1, by ctypes: ~0.5 ms a transaction),
or, without the library, to one `nft -j -f -` (~15 ms: a process, its start-up and its cache).
PALLET_NFT_LOG=FILE appends each transaction to FILE as one JSON line (the tests count them).
"""

from __future__ import annotations

import os

from pallet import jsonfast as json  # (not `json`: 1 ms of the monitor's warm-up)

FAMILY = "inet"
TABLE = "pallet"


class NftError(OSError):
    """nft refused a batch (its first error line) or is not installed."""


def nft_binary() -> str:
    import shutil  # (shutil and subprocess only for the nft program: not on the libnftables path)

    path = shutil.which("nft") or next((p for p in ("/usr/sbin/nft", "/sbin/nft") if os.path.exists(p)), None)
    if path is None:
        raise NftError("nft is not installed (apt-get install nftables)")
    return path


NFT_CTX_OUTPUT_JSON = 1 << 4


class _Lib:
    """One libnftables context for the process (JSON in and out, both buffered), behind a lock."""

    def __init__(self, lib) -> None:
        import threading
        from ctypes import c_char_p, c_int, c_uint, c_uint32, c_void_p

        for name, res, args in (("nft_ctx_new", c_void_p, [c_uint32]),
                                ("nft_ctx_output_set_flags", None, [c_void_p, c_uint]),
                                ("nft_ctx_buffer_output", c_int, [c_void_p]),
                                ("nft_ctx_buffer_error", c_int, [c_void_p]),
                                ("nft_ctx_get_output_buffer", c_char_p, [c_void_p]),
                                ("nft_ctx_get_error_buffer", c_char_p, [c_void_p]),
                                ("nft_run_cmd_from_buffer", c_int, [c_void_p, c_char_p])):
            fn = getattr(lib, name)
            fn.restype, fn.argtypes = res, args
        self.lib, self.lock, self.pid = lib, threading.Lock(), os.getpid()
        self.ctx = lib.nft_ctx_new(0)
        if not self.ctx:
            raise OSError("nft_ctx_new failed")
        lib.nft_ctx_output_set_flags(self.ctx, NFT_CTX_OUTPUT_JSON)
        lib.nft_ctx_buffer_output(self.ctx)
        lib.nft_ctx_buffer_error(self.ctx)

    def run(self, text: str) -> tuple[int, str, str]:
        """(0 or not, output, error text) of one command buffer."""
        with self.lock:
            rc = self.lib.nft_run_cmd_from_buffer(self.ctx, text.encode())
            out = self.lib.nft_ctx_get_output_buffer(self.ctx) or b""
            err = self.lib.nft_ctx_get_error_buffer(self.ctx) or b""
        return rc, out.decode(errors="replace"), err.decode(errors="replace")


_lib: _Lib | None | bool = None


def _libnftables() -> _Lib | None:
    """The process's libnftables context (made again in a forked child), None without the library
    (or with PALLET_NFT_COMMAND=1: the nft program instead)."""
    global _lib
    if _lib is False:
        return None
    if _lib is None or _lib.pid != os.getpid():
        try:
            if os.environ.get("PALLET_NFT_COMMAND"):
                raise OSError("the nft command was asked for")
            import ctypes

            _lib = _Lib(ctypes.CDLL("libnftables.so.1"))
        except OSError:
            _lib = False
            return None
    return _lib


def warm_up() -> None:
    """Load libnftables and make the process's context now (3 ms or more), before a transaction."""
    _libnftables()


def _nft(args: list[str], stdin: str | None = None) -> tuple[int, str, str, list[str] | None]:
    """libnftables (`args` as one command line, or the JSON in `stdin`), else the nft program; the
    last item is the program's argv (None: in this process)."""
    lib = _libnftables()
    if lib is not None:
        return (*lib.run(stdin if stdin is not None else " ".join(args)), None)
    import subprocess

    argv = [nft_binary(), "-j", *(["-f", "-"] if stdin is not None else args)]
    cp = subprocess.run(argv, input=stdin, capture_output=True, text=True)
    return cp.returncode, cp.stdout, cp.stderr, argv


def run(commands: list[dict]) -> None:
    """Apply `commands` as one transaction."""
    if not commands:
        return
    doc = json.dumps({"nftables": [{"metainfo": {"json_schema_version": 1}}, *commands]})
    from pallet.linux import trace as T

    r = T.recorder
    t = T.now() if r else 0
    rc, _, err, argv = _nft([], doc)
    log = os.environ.get("PALLET_NFT_LOG")
    if log:     # (tests count the transactions: one JSON line each, the batch and its result, appended)
        with open(log, "a") as f:
            f.write(json.dumps({"pid": os.getpid(), "rc": rc, "commands": commands}) + "\n")
    if r:
        r.done("nft transaction", t, {**({"argv": argv} if argv else {"library": "libnftables"}),
                                      "commands": len(commands), "objects": sorted({
            f"{verb} {kind}" for c in commands for verb, o in c.items() for kind in o}),
            "json": doc if len(doc) < 20000 else doc[:20000] + "..."},
            None if rc == 0 else f"nft exit status {rc}")
    if rc != 0:
        lines = [ln for ln in err.splitlines() if ln.strip()]
        first = next((ln for ln in lines if ln.startswith("Error")), lines[0] if lines else "")
        raise NftError(f"nft refused the firewall transaction: {first or f'exit {rc}'}")


def list_table() -> list[dict]:
    """pallet's table as nft's JSON objects ([] when it does not exist)."""
    rc, out, _, _ = _nft(["list", "table", FAMILY, TABLE])
    if rc != 0 or not out.strip():
        return []
    return [o for o in json.loads(out).get("nftables", []) if "metainfo" not in o]


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
