"""JSON without importing `json`, for what `pallet run` and the runtime load (one place for it).

Importing `json` compiles its regexes (~2-3 ms in every process on the run path). `loads` and `dumps`
call the C accelerator `_json` that `json` itself uses: `loads(s)` equals `json.loads(s)`, and
`dumps(obj, ensure_ascii=...)` equals `json.dumps(obj, separators=(",", ":"), ensure_ascii=...)`, byte
for byte. A document the fast path cannot read is handed to `json`: its precise error
(json.JSONDecodeError, a ValueError), or its reading of UTF-16/32 bytes. Unlike `json.dumps`, a
circular structure is not detected (RecursionError). Anything fancier (indentation, sorted keys)
uses `json`.
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
    if isinstance(s, (bytes, bytearray)):
        try:
            text = s.decode()
        except UnicodeDecodeError:
            return _slow_loads(s)   # (json also reads UTF-16 and UTF-32)
    else:
        text = s
    start = len(text) - len(text.lstrip(_WS))
    try:
        obj, end = _scan(text, start)
    except (StopIteration, ValueError, SystemError):   # (ValueError: json.JSONDecodeError from inside)
        return _slow_loads(s)
    if text[end:].strip(_WS):
        return _slow_loads(s)
    return obj


def _slow_loads(s: str | bytes) -> object:
    """Only for input the fast path refused: `json` says precisely what is wrong (or reads it)."""
    import json

    return json.loads(s)


def _default(o: object) -> object:
    raise TypeError(f"Object of type {type(o).__name__} is not JSON serializable")


# markers None: no check for circular structures (json's check_circular); none are made here
_ASCII = _json.make_encoder(None, _default, _json.encode_basestring_ascii, None, ":", ",", False, False, True)
_UTF8 = _json.make_encoder(None, _default, _json.encode_basestring, None, ":", ",", False, False, True)


def dumps(obj: object, *, ensure_ascii: bool = True) -> str:
    return "".join((_ASCII if ensure_ascii else _UTF8)(obj, 0))
