"""Engine.wait: docker's conditions, woken by the monitor's exit FIFO and pidfds rather than by polling."""

from __future__ import annotations

import threading
import time

import pytest

from engine.engine_support import IMAGE
from pallet.errors import PalletError

pytestmark = pytest.mark.root


def _count_reads(engine, monkeypatch) -> list[int]:
    calls = [0]
    real = engine._rows

    def counting(*a, **kw):
        calls[0] += 1
        return real(*a, **kw)

    monkeypatch.setattr(engine, "_rows", counting)
    return calls


def test_not_running_is_woken_by_the_exit_not_by_polling(pallet_env, engine, monkeypatch):
    cid = pallet_env("run", "-d", IMAGE, "sh", "-c", "sleep 1; exit 3", check=True).stdout.strip()
    reads = _count_reads(engine, monkeypatch)
    t0 = time.monotonic()
    c = engine.wait(engine.get(cid), "not-running")
    took = time.monotonic() - t0
    assert c.status == "exited" and c.exit_code == 3
    assert 0.5 < took < 10
    assert reads[0] <= 6, f"{reads[0]} reads of the row while waiting ~1 s: polling"


def test_not_running_returns_at_once_and_timeout_gives_the_running_container(pallet_env, engine):
    pallet_env("create", "--name", "made", IMAGE, "true", check=True)
    assert engine.wait(engine.get("made")).status == "created"
    cid = pallet_env("run", "-d", IMAGE, "sleep", "100", check=True).stdout.strip()
    t0 = time.monotonic()
    assert engine.wait(engine.get(cid), "not-running", timeout=0.3).status == "running"
    assert 0.25 < time.monotonic() - t0 < 5
    pallet_env("rm", "-f", cid, check=True)


def test_next_exit_waits_for_the_next_run(pallet_env, engine):
    pallet_env("run", "--name", "again", IMAGE, "sh", "-c", "exit 2")
    assert engine.get("again").exit_code == 2
    got = {}

    def waiter():
        got["c"] = engine_copy().wait(engine_copy().get("again"), "next-exit", timeout=30)

    def engine_copy():     # the thread's own engine (its own database connection)
        if "eng" not in got:
            from pallet.engine.core import Engine
            from pallet.store import Store

            got["eng"] = Engine(Store(pallet_env.root), pallet_env.runroot)
        return got["eng"]

    t = threading.Thread(target=waiter)
    t.start()
    time.sleep(0.5)
    assert t.is_alive(), "next-exit returned for a container that had not run again"
    pallet_env("start", "again", check=True)
    t.join(30)
    assert not t.is_alive()
    assert got["c"].status == "exited"
    got["eng"].store.db.close()


def test_removed_waits_for_an_auto_removed_container(pallet_env, engine):
    cid = pallet_env("run", "-d", "--rm", IMAGE, "sh", "-c", "sleep 0.5; exit 4", check=True).stdout.strip()
    c = engine.wait(engine.get(cid), "removed", timeout=30)
    assert c.exit_code == 4
    assert pallet_env.ids() == []


def test_unknown_condition_is_refused(pallet_env, engine):
    pallet_env("create", "--name", "c1", IMAGE, "true", check=True)
    with pytest.raises(PalletError, match="invalid condition 'later'"):
        engine.wait(engine.get("c1"), "later")


def test_stop_of_a_killed_monitor_still_waits_for_the_process(pallet_env, engine):
    """With its monitor SIGKILLed, nobody closes the FIFO: the wait falls back to the init's pidfd."""
    import os
    import signal

    cid = pallet_env("run", "-d", IMAGE, "sleep", "100", check=True).stdout.strip()
    c = engine.get(cid)
    os.kill(c.monitor_pid, signal.SIGKILL)
    time.sleep(0.2)
    threading.Timer(0.5, lambda: os.kill(c.pid, signal.SIGKILL)).start()
    t0 = time.monotonic()
    c = engine.wait(engine.get(cid), "not-running", timeout=20)
    assert c.status == "exited" and time.monotonic() - t0 < 10


def test_a_threaded_caller_starts_the_monitor_as_a_new_program(pallet_env, engine):
    """From a process running threads (a daemon), start execs the monitor instead of forking the caller."""
    stop = threading.Event()
    busy = threading.Thread(target=stop.wait)
    busy.start()
    try:
        pallet_env("create", "--name", "threaded", IMAGE, "sh", "-c", "echo hello; sleep 0.5; exit 5", check=True)
        engine.start(engine.get("threaded"))
        c = engine.get("threaded")
        assert c.status in ("running", "exited")
        with open(f"/proc/{c.monitor_pid}/cmdline", "rb") as f:
            assert b"pallet.engine.monitorproc" in f.read()
        c = engine.wait(c, "not-running", timeout=20)
        assert c.exit_code == 5
        assert pallet_env("logs", "threaded", check=True).stdout == "hello\n"
    finally:
        stop.set()
        busy.join()
