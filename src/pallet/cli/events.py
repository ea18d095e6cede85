"""`pallet events`: docker's event stream, rendered (the engine's `Engine.events` iterator)."""

from __future__ import annotations

import sys
import time

import click

from pallet.cli.common import state
from pallet.errors import PalletError


def event_time(ns: int) -> str:
    """docker's RFC3339NanoFixed in the local time zone (`Z` for UTC)."""
    secs, frac = divmod(ns, 1_000_000_000)
    t = time.localtime(secs)
    off = t.tm_gmtoff or 0
    zone = "Z" if off == 0 else f"{'+' if off > 0 else '-'}{abs(off) // 3600:02d}:{abs(off) % 3600 // 60:02d}"
    return time.strftime("%Y-%m-%dT%H:%M:%S", t) + f".{frac:09d}" + zone


def pretty(ev: dict) -> str:
    """docker's prettyPrintEvent: TIME TYPE ACTION ID (k=v, ... sorted by key)."""
    line = f"{event_time(ev['timeNano'])} {ev['Type']} {ev['Action']} {ev['Actor']['ID']}"
    attrs = ev["Actor"].get("Attributes") or {}
    if attrs:
        line += " (" + ", ".join(f"{k}={attrs[k]}" for k in sorted(attrs)) + ")"
    return line


def parse_filters(values) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for v in values:
        k, eq, val = v.partition("=")
        if not eq or not k:
            raise PalletError(f"bad format of filter (expected name=value): {v}")
        out.setdefault(k.strip().lower(), []).append(val)
    return out


@click.command("events")
@click.option("--since", help="Show all events created since timestamp.")
@click.option("--until", help="Stream events until this timestamp.")
@click.option("-f", "--filter", "filters", multiple=True, help="Filter output based on conditions provided.")
@click.option("--format", "fmt", help="Format output using a custom template ('json': one JSON object a line).")
def events_cmd(since: str | None, until: str | None, filters: tuple[str, ...], fmt: str | None) -> None:
    """Get real time events from the engine."""
    from pallet.cli.containerrun import engine

    eng = engine(state())
    stream = eng.events(since=since, until=until, filters=parse_filters(filters))
    if fmt in ("json", "{{json .}}", "{{ json . }}"):
        import json

        def render(ev):
            return json.dumps(ev, ensure_ascii=False, separators=(",", ":"))
    elif fmt:
        from pallet.cli.images import render_template

        def render(ev):
            return render_template(fmt, ev)
    else:
        render = pretty
    out = sys.stdout
    try:
        for ev in stream:
            out.write(render(ev) + "\n")
            out.flush()
    except KeyboardInterrupt:
        pass
    except BrokenPipeError:
        pass
