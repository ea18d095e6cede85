"""JSON on the hot path without importing `json` (which pulls in `re` and `enum`).

`loads` and `dumps` use the C accelerator `_json` directly; the results equal
`json.loads` / compact `json.dumps`. Anything fancier (indentation) uses `json`.
"""

from __future__ import annotations

import _json


class _Ctx:
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    memo: dict = {}

    @staticmethod
    def parse_constant(name: str) -> float:
        return float(name.replace("Infinity", "inf"))


_scan = _json.make_scanner(_Ctx)
_WS = " \t\n\r"


def loads(s: str | bytes) -> object:
    if isinstance(s, bytes):
        s = s.decode()
    start = len(s) - len(s.lstrip(_WS))
    try:
        obj, end = _scan(s, start)
    except (StopIteration, SystemError):
        import json  # only on bad input: let json produce its precise message

        return json.loads(s)
    if s[end:].strip(_WS):
        raise ValueError(f"invalid JSON: extra data at offset {end}")
    return obj


def _default(o: object) -> object:
    raise TypeError(f"{type(o).__name__} is not JSON serializable")


_encode = _json.make_encoder(None, _default, _json.encode_basestring_ascii, None, ":", ",", False, False, True)


def dumps(obj: object) -> str:
    return "".join(_encode(obj, 0))
