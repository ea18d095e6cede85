"""The store's event log: one line a record from concurrent writers, rotation, torn lines, and a
follower that reads across a rotation and wakes on new lines (inotify, no polling)."""

from __future__ import annotations

import json
import multiprocessing
import os
import threading
import time

from engine.engine_support import wait_for
from pallet.store import events


def _actions(root, **kw):
    return [m["Action"] for m in events.read(root, **kw)]


def _writer(root, tag, n):
    for i in range(n):
        events.record(root, "container", f"{tag}{i}", "x" * 64, {"pad": "y" * 200})


def test_concurrent_writers_never_interleave(tmp_path):
    procs = [multiprocessing.get_context("fork").Process(target=_writer, args=(tmp_path, t, 300)) for t in "abcd"]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    lines = (tmp_path / "events" / "events.jsonl").read_text().splitlines()
    assert len(lines) == 1200
    recs = [json.loads(x) for x in lines]   # every line whole
    for t in "abcd":   # each writer's records in its own order
        mine = [r["Action"] for r in recs if r["Action"].startswith(t)]
        assert mine == [f"{t}{i}" for i in range(300)]


def test_rotation_keeps_one_older_generation_and_reads_both(tmp_path, monkeypatch):
    monkeypatch.setattr(events, "MAX_SIZE", 2000)
    for i in range(30):
        events.record(tmp_path, "image", f"a{i}", "id")
    names = sorted(os.listdir(tmp_path / "events"))
    assert names == ["events.jsonl", "events.jsonl.1"]
    assert (tmp_path / "events" / "events.jsonl").stat().st_size <= 2000 + 200
    got = _actions(tmp_path)
    assert got == sorted(got, key=lambda a: int(a[1:])) and got[-1] == "a29"   # oldest first, the newest kept


def test_torn_line_is_skipped_and_since_until(tmp_path):
    events.record(tmp_path, "container", "one", "id")
    with open(tmp_path / "events" / "events.jsonl", "ab") as f:
        f.write(b'{"Type": "container", "Act\n')   # a writer that died mid-line
    mid = time.time_ns()
    events.record(tmp_path, "container", "two", "id")
    assert _actions(tmp_path) == ["one", "two"]
    assert _actions(tmp_path, since_ns=mid) == ["two"]
    assert _actions(tmp_path, until_ns=mid) == ["one"]


def test_follow_across_a_rotation_until(tmp_path, monkeypatch):
    events.record(tmp_path, "container", "old", "id")
    start = time.time_ns()
    got = []
    stream = events.read(tmp_path, since_ns=start, follow=True)

    def consume():
        for m in stream:
            got.append(m["Action"])
            if m["Action"] == "last":
                return

    t = threading.Thread(target=consume, daemon=True)
    t.start()
    monkeypatch.setattr(events, "MAX_SIZE", 300)   # the writes below rotate the file
    for a in ("b1", "b2", "b3", "last"):
        events.record(tmp_path, "container", a, "id")
    t.join(30)
    assert not t.is_alive() and got == ["b1", "b2", "b3", "last"]
    # with an until in the future, a follower returns by itself at that time, having seen what came
    until = time.time_ns() + 300_000_000
    late = threading.Thread(target=lambda: events.record(tmp_path, "container", "late", "id"))
    later = events.read(tmp_path, since_ns=until - 300_000_000, until_ns=until, follow=True)
    late.start()
    assert [m["Action"] for m in later] == ["late"]
    late.join()


def test_a_follower_is_cancelled(tmp_path):
    stop = threading.Event()
    got = []

    def consume():
        for m in events.read(tmp_path, since_ns=0, follow=True, cancel=stop.is_set):
            got.append(m["Action"])

    t = threading.Thread(target=consume, daemon=True)
    t.start()
    events.record(tmp_path, "container", "one", "id")
    assert wait_for(lambda: got == ["one"])
    stop.set()
    t.join(10)
    assert not t.is_alive()

