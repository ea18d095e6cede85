"""Reading the json-file log: --tail, --since/--until and -f (follow across rotation until exit).

`iter_logs` yields docker's log records, (stream, time, bytes), and writes nowhere: the caller renders
them (the CLI to its stdout and stderr, with `-t` the time in front; a daemon into its API stream)."""

from __future__ import annotations

import json
import os
import time
from collections import deque

TYPE_CHECKING = False  # typing is not imported at run time (start-up)
if TYPE_CHECKING:
    from collections.abc import Iterator


def _parse_ts(text: str) -> float:
    from datetime import datetime

    frac = 0.0
    if "." in text:
        head, _, rest = text.partition(".")
        digits = rest.rstrip("Z")
        frac = float("0." + digits) if digits.isdigit() else 0.0
        text = head + "Z"
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() + frac


def _decoded(raws) -> Iterator[dict]:
    """The json-file records among raw lines (a partial or damaged line is skipped)."""
    for raw in raws:
        try:
            yield json.loads(raw)
        except ValueError:
            continue


def _record(rec: dict) -> tuple[str, str, bytes]:
    return ("stderr" if rec.get("stream") == "stderr" else "stdout", rec.get("time", ""),
            rec.get("log", "").encode())


def iter_logs(engine, c, *, follow: bool = False, tail: int | None = None, since: str | None = None,
              until: str | None = None) -> Iterator[tuple[str, str, bytes]]:
    """The container's log records as (stream: "stdout" or "stderr", RFC 3339 time, the bytes): the last
    `tail` ones, between `since` and `until`; with `follow`, then what it writes until it stops."""
    from pallet.engine.model import parse_time

    t_since = parse_time(since) if since else None
    t_until = parse_time(until) if until else None
    path = engine.log_path(c.id)
    files = [path.with_name(path.name + ".1"), path]

    def keep(rec: dict) -> bool:
        if t_since is None and t_until is None:
            return True
        ts = _parse_ts(rec.get("time", "1970-01-01T00:00:00Z"))
        return (t_since is None or ts >= t_since) and (t_until is None or ts <= t_until)

    lines: deque | list = deque(maxlen=tail) if tail is not None else []
    if tail != 0:
        for p in files:
            try:
                with open(p, "rb") as f:
                    lines.extend(rec for rec in _decoded(f) if keep(rec))
            except FileNotFoundError:
                continue
    for rec in lines:
        yield _record(rec)
    if not follow:
        return
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return
    f.seek(0, os.SEEK_END)
    ino = os.fstat(f.fileno()).st_ino
    buf = b""
    idle = 0
    while True:
        chunk = f.read(65536)
        if chunk:
            idle = 0
            buf += chunk
            *complete, buf = buf.split(b"\n")
            yield from (_record(rec) for rec in _decoded(complete) if keep(rec))
            continue
        try:
            st = os.stat(path)
            if st.st_ino != ino:   # rotated: continue with the new file
                f.close()
                f = open(path, "rb")
                ino = os.fstat(f.fileno()).st_ino
                continue
        except FileNotFoundError:
            pass
        idle += 1
        if idle % 5 == 0:
            try:
                cur = engine.get(c.id)
            except Exception:  # noqa: BLE001 - removed
                return
            if cur.status != "running":
                yield from (_record(rec) for rec in _decoded((buf + f.read()).split(b"\n")) if keep(rec))
                return
        time.sleep(0.05)
