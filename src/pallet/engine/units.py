"""Sizes and durations as docker writes and reads them (RAMInBytes, Go durations, HumanSize)."""

from __future__ import annotations

import re

from pallet.errors import PalletError

_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def parse_bytes(text: str | int, what: str) -> int:
    """docker's RAMInBytes: 64m, 1.5g, 512k, 1024 (binary units)."""
    if isinstance(text, int):
        return text
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgtpb]?)i?b?\s*", str(text), re.IGNORECASE)
    if not m:
        raise PalletError(f"invalid {what} {text!r}: give a size such as 64m, 1g or 512k")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def parse_duration(text: str, what: str) -> int:
    """Go durations (30s, 1m30s, 500ms, 2h) -> nanoseconds."""
    t = str(text).strip()
    if t == "0":
        return 0
    parts = re.findall(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)", t)
    if not parts or "".join(a + b for a, b in parts) != t:
        raise PalletError(f"invalid {what} {text!r}: give a duration such as 30s, 1m30s or 500ms")
    mult = {"ns": 1, "us": 1e3, "µs": 1e3, "ms": 1e6, "s": 1e9, "m": 60e9, "h": 3600e9}
    return int(sum(float(n) * mult[u] for n, u in parts))


def human_size(n: float) -> str:
    """Docker's units.HumanSize: decimal units, 3 significant digits (e.g. 4.26MB)."""
    units = ["B", "kB", "MB", "GB", "TB", "PB"]
    i = 0
    while n >= 1000 and i < len(units) - 1:
        n /= 1000.0
        i += 1
    return f"{n:.4g}{units[i]}"
