"""Restart policies, carried out by the container's monitor (docker's restartmanager).

`supervise` runs one `Monitor` per start of the container. When the container exits
and its policy says so (always / unless-stopped: any exit; on-failure[:N]: a non-zero
code, at most N times), the row turns "restarting", the monitor waits and starts it
again: 100 ms, doubling each time up to a minute, back to 100 ms once a run lasted
10 s. A user's stop (stopped_by_user) or rm ends it; so does --rm (which docker
refuses together with a policy).
"""

from __future__ import annotations

import os
import time

from pallet import jsonfast
from pallet.engine.model import proc_start_time

BACKOFF_START = 0.1
BACKOFF_MAX = 60.0
RESET_AFTER = 10.0


def should_restart(policy: dict | None, code: int, restart_count: int, stopped_by_user: bool) -> bool:
    name = (policy or {}).get("Name") or "no"
    if stopped_by_user or name == "no":
        return False
    if name in ("always", "unless-stopped"):
        return True
    if name == "on-failure":
        n = int((policy or {}).get("MaximumRetryCount") or 0)
        return code != 0 and (n == 0 or restart_count < n)
    return False


def _row(engine, cid: str):
    rows = engine.db.query("SELECT status, restart_count, stopped_by_user, config FROM containers WHERE id = ?",
                           (cid,))
    return rows[0] if rows else None


def supervise(engine, c, sync, run_monitor) -> int:
    """Run the container (`run_monitor(sync)`: a Monitor's run, passed in by the monitor module) again
    and again while its restart policy says so; returns the last exit code."""
    from pallet.engine import health

    delay = BACKOFF_START
    while True:
        health.spawn_checker(engine, c, (sync.fileno(),) if sync is not None else ())
        t0 = time.monotonic()
        code = run_monitor(sync)
        sync = None
        ran = time.monotonic() - t0
        if c.HostConfig.get("AutoRemove"):
            return code
        row = _row(engine, c.id)
        if row is None:
            return code
        policy = jsonfast.loads(row["config"])["HostConfig"].get("RestartPolicy")   # `update --restart` counts
        if (policy or {}).get("Name", "no") == "no":
            return code
        if row is None or row["status"] not in ("exited", "created"):
            return code
        if not should_restart(policy, code, row["restart_count"], bool(row["stopped_by_user"])):
            return code
        if ran >= RESET_AFTER:
            delay = BACKOFF_START
        count = row["restart_count"] + 1
        me = os.getpid()
        with engine.db.transaction() as conn:
            cur = conn.execute("UPDATE containers SET status = 'restarting', restart_count = ?, monitor_pid = ?, "
                               "monitor_start = ? WHERE id = ? AND status IN ('exited', 'created') "
                               "AND stopped_by_user = 0", (count, me, proc_start_time(me), c.id))
            if cur.rowcount != 1:
                return code
        end = time.monotonic() + delay
        while time.monotonic() < end:
            time.sleep(min(0.05, max(0.0, end - time.monotonic())))
            row = _row(engine, c.id)
            if row is None or row["stopped_by_user"] or row["status"] != "restarting":
                if row is not None and row["status"] == "restarting":
                    engine._update(c.id, status="exited")
                return code
        delay = min(delay * 2, BACKOFF_MAX)
        try:
            fresh = engine.get(c.id, refresh=False)
        except Exception:  # noqa: BLE001 - removed meanwhile
            return code
        fresh.extra = c.extra
        c = fresh
