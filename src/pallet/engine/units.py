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


def human_size(n: float, precision: int = 4) -> str:
    """Docker's units.HumanSizeWithPrecision: decimal units, `precision` significant digits (HumanSize:
    4, e.g. 4.257MB; stats' NET I/O and BLOCK I/O: 3, 4.26MB)."""
    units = ["B", "kB", "MB", "GB", "TB", "PB"]
    i = 0
    while n >= 1000 and i < len(units) - 1:
        n /= 1000.0
        i += 1
    return f"{n:.{precision}g}{units[i]}"


def human_duration(seconds: float) -> str:
    """Docker's units.HumanDuration ("About a minute", "3 hours", ...)."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    minutes = s // 60
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(seconds / 3600 + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(seconds / 3600) // 24 // 365} years"


def human_ago(ts: float, now: float | None = None) -> str:
    """Docker's 'N units ago' for a past unix time."""
    import time

    return human_duration(max(0.0, (now or time.time()) - ts)) + " ago"
