"""Signals by name or number as docker reads them (`--stop-signal`, `kill -s`, a StopSignal)."""

from __future__ import annotations

import signal

from pallet.errors import PalletError

SIGNALS = {s.name[3:]: int(s) for s in signal.Signals if s.name.startswith("SIG") and not s.name.startswith("SIG_")}


def parse_signal(text: str | int | None, default: int = signal.SIGTERM) -> int:
    if text in (None, ""):
        return int(default)
    if isinstance(text, int):
        return text
    t = text.upper().removeprefix("SIG")
    if t.isdigit() and 0 < int(t) < 65:
        return int(t)
    if t in SIGNALS:
        return SIGNALS[t]
    raise PalletError(f"invalid signal: {text}")
