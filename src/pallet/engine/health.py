"""Health checks (docker's HEALTHCHECK / --health-*), and the extra State fields (Paused, Restarting, Health).

A container whose Config.Healthcheck has a test gets a checker process, forked by its
monitor at every start: it waits `StartInterval`/`Interval`, runs the test through
`pallet exec` with the `Timeout`, and records docker's State.Health (Status
starting|healthy|unhealthy, FailingStreak, the last 5 results) in the row's `health`
column. Failures during `StartPeriod` do not count (a success there ends it);
`Retries` consecutive failures make it unhealthy. `pallet healthcheck run` runs one
check now, the same way.
"""

from __future__ import annotations

import sys
import time

from pallet import jsonfast
from pallet.engine.events import container_event
from pallet.engine.freezer import paused

DEFAULT_INTERVAL = 30e9
DEFAULT_TIMEOUT = 30e9
DEFAULT_START_INTERVAL = 5e9
DEFAULT_RETRIES = 3
MAX_LOG = 5
MAX_OUTPUT = 4096


def config(c) -> dict | None:
    hc = c.Config.get("Healthcheck") or None
    if not hc or not hc.get("Test") or hc["Test"][0] == "NONE":
        return None
    return hc


def _argv(test: list[str]) -> list[str]:
    if test[0] == "CMD-SHELL":
        return ["/bin/sh", "-c", " ".join(test[1:])]
    if test[0] == "CMD":
        return list(test[1:])
    return list(test)


def read_health(engine, cid: str) -> dict | None:
    rows = engine.db.query("SELECT health FROM containers WHERE id = ?", (cid,))
    if not rows or not rows[0]["health"]:
        return None
    try:
        return jsonfast.loads(rows[0]["health"])
    except ValueError:
        return None


def _write(engine, cid: str, h: dict | None) -> None:
    with engine.db.transaction() as conn:
        conn.execute("UPDATE containers SET health = ? WHERE id = ?", (jsonfast.dumps(h) if h else None, cid))


def reset(engine, c) -> None:
    """At start: health 'starting' with no results."""
    if config(c):
        _write(engine, c.id, {"Status": "starting", "FailingStreak": 0, "Log": []})


def health_status(engine, c) -> str | None:
    if c.status != "running" or not config(c):
        return None
    h = read_health(engine, c.id)
    return (h or {}).get("Status") or "starting"


def extend_state(engine, c, state: dict) -> None:
    """Engine.inspect's State: Paused, Restarting, Health."""
    if paused(c):
        state["Paused"] = True
        state["Status"] = "paused"
    if c.status == "restarting":
        state["Restarting"] = True
    if config(c):
        h = read_health(engine, c.id) or {"Status": "starting", "FailingStreak": 0, "Log": []}
        if c.status != "running":
            h = dict(h, Status="unhealthy" if h.get("Status") == "unhealthy" else h.get("Status", "starting"))
        state["Health"] = h


def status_suffix(engine, c) -> str:
    """For ps: ' (Paused)' / ' (healthy)' etc."""
    if paused(c):
        return " (Paused)"
    hs = health_status(engine, c)
    if hs == "starting":
        return " (health: starting)"
    return f" ({hs})" if hs else ""


def _ts() -> str:
    from pallet.engine.model import rfc3339

    return rfc3339(time.time())


def exec_check(engine, c, hc: dict) -> tuple[int, str]:
    """Run the test once in the container: (exit code, output); -1 for a timeout."""
    import subprocess

    timeout = (hc.get("Timeout") or DEFAULT_TIMEOUT) / 1e9
    argv = [sys.executable, "-m", "pallet.cli.main", "--root", str(engine.root), "--runroot", str(engine.runroot)]
    if engine.storage_driver:
        argv += ["--storage-driver", engine.storage_driver]
    argv += ["exec", c.id, *_argv(hc["Test"])]
    try:
        cp = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"") + (e.stderr or b"")
        return -1, f"Health check exceeded timeout ({timeout:g}s)" + (": " + out.decode(errors="replace")
                                                                      if out else "")
    out = (cp.stdout + cp.stderr).decode(errors="replace")
    return cp.returncode, out[:MAX_OUTPUT]


def run_once(engine, c, *, started_at: float | None = None) -> dict:
    """One check, recorded; returns the new State.Health."""
    hc = config(c)
    if hc is None:
        from pallet.errors import PalletError

        raise PalletError(f"container {c.name} has no defined healthcheck")
    start = _ts()
    code, out = exec_check(engine, c, hc)
    end = _ts()
    h = read_health(engine, c.id) or {"Status": "starting", "FailingStreak": 0, "Log": []}
    before = h.get("Status")
    h["Log"] = (h.get("Log") or [])[-(MAX_LOG - 1):] + [{"Start": start, "End": end, "ExitCode": code,
                                                          "Output": out}]
    retries = hc.get("Retries") or DEFAULT_RETRIES
    in_start = started_at is not None and time.time() < started_at + (hc.get("StartPeriod") or 0) / 1e9
    if code == 0:
        h["Status"] = "healthy"
        h["FailingStreak"] = 0
    elif in_start and h.get("Status") == "starting":
        pass   # failures in the start period do not count
    else:
        h["FailingStreak"] = int(h.get("FailingStreak") or 0) + 1
        if h["FailingStreak"] >= retries:
            h["Status"] = "unhealthy"
    _write(engine, c.id, h)
    if h["Status"] != before:
            container_event(engine, c, f"health_status: {h['Status']}")
    return h


def checker(engine, cid: str, since: float) -> None:
    """The checker process: wait for the start after `since`, then check until that init is gone."""
    from pallet.engine.model import alive

    deadline = time.monotonic() + 120
    while True:
        try:
            c = engine.get(cid, refresh=False)
        except Exception:  # noqa: BLE001 - removed
            return
        if c.status == "running" and c.pid and (c.started_at or 0) >= since:
            break
        if c.status not in ("created", "running", "restarting", "exited") or time.monotonic() > deadline:
            return
        if c.status == "exited" and (c.finished_at or 0) >= since:
            return
        time.sleep(0.05)
    pid, pid_start = c.pid, c.pid_start
    hc = config(c)
    if hc is None:
        return
    started = c.started_at or time.time()
    interval = (hc.get("Interval") or DEFAULT_INTERVAL) / 1e9
    start_interval = (hc.get("StartInterval") or DEFAULT_START_INTERVAL) / 1e9
    start_period = (hc.get("StartPeriod") or 0) / 1e9
    while True:
        h = read_health(engine, cid) or {}
        in_start = time.time() < started + start_period and h.get("Status", "starting") == "starting"
        wait = min(start_interval, interval) if in_start else interval
        end = time.monotonic() + wait
        while time.monotonic() < end:
            if not alive(pid, pid_start):
                return
            time.sleep(min(0.2, max(0.0, end - time.monotonic())))
        if not alive(pid, pid_start):
            return
        try:
            c = engine.get(cid, refresh=False)
        except Exception:  # noqa: BLE001 - removed
            return
        if c.pid != pid:
            return
        if paused(c):
            continue
        try:
            run_once(engine, c, started_at=started)
        except Exception:  # noqa: BLE001
            time.sleep(interval)


def spawn_checker(engine, c, close_fds: tuple[int, ...] = ()) -> int | None:
    """In the monitor, before it starts the container: start the checker, a fresh process (not a fork:
    SQLite's in-process state must not cross fork). It exits with the container."""
    if config(c) is None:
        return None
    import subprocess  # only now: most containers have no health check, and it costs ms to import

    reset(engine, c)
    since = time.time() - 0.001
    argv = [sys.executable, "-m", "pallet.engine.healthproc", str(engine.root), str(engine.runroot),
            engine.storage_driver or "", c.id, repr(since)]
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, close_fds=True)
    return p.pid
