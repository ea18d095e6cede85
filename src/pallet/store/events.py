"""The event log: what happened to containers, images, networks and volumes, in the order it happened,
from whichever process did it (the CLI, a monitor, a daemon).

    events.record(root, "container", "start", cid, {"image": "busybox", "name": "x"})
    for msg in events.read(root, since_ns=..., until_ns=..., follow=True): ...

One file, `<root>/events/events.jsonl`: one JSON line per event in docker's message shape (Type, Action,
Actor{ID, Attributes}, scope, time, timeNano), each appended by one `write()` to an O_APPEND descriptor
(so the lines of concurrent writers never interleave), without fsync: an event is a record of what
happened, not a part of it, and a failure to write one never fails the operation. Past `MAX_SIZE` the
file is renamed `events.jsonl.1` (one older generation is kept) and the next writer starts a new one.
Readers follow new lines through inotify on the directory (no polling).
"""

from __future__ import annotations

import os
import time

from pallet import jsonfast

NAME = "events.jsonl"
MAX_SIZE = 4 << 20


def directory(root) -> str:
    return os.path.join(os.fspath(root), "events")


def record(root, type_: str, action: str, actor_id: str, attributes: dict | None = None) -> None:
    """Append one event (now) to the log of the store at `root`."""
    try:
        now = time.time_ns()
        line = jsonfast.dumps({"Type": type_, "Action": action,
                               "Actor": {"ID": actor_id, "Attributes": {k: str(v) for k, v in
                                                                        (attributes or {}).items()}},
                               "scope": "local", "time": now // 1_000_000_000, "timeNano": now},
                              ensure_ascii=False) + "\n"
        d = directory(root)
        path = os.path.join(d, NAME)
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
        try:
            fd = os.open(path, flags, 0o600)
        except FileNotFoundError:
            os.makedirs(d, mode=0o700, exist_ok=True)
            fd = os.open(path, flags, 0o600)
        try:
            os.write(fd, line.encode())
            st = os.fstat(fd)
        finally:
            os.close(fd)
        if st.st_size > MAX_SIZE:
            _rotate(path, st.st_ino)
    except OSError:
        pass   # (a full or read-only disk: the operation itself goes on)


def _rotate(path: str, ino: int) -> None:
    try:
        if os.stat(path).st_ino == ino:   # not rotated by another writer meanwhile
            os.replace(path, path + ".1")
    except OSError:
        pass


def _ino(path: str) -> int | None:
    try:
        return os.stat(path).st_ino
    except FileNotFoundError:
        return None


class _Tail:
    """One generation of the log, read line by line from where it was left."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        self.ino = os.fstat(self.fd).st_ino
        self.rest = b""

    def lines(self):
        while True:
            chunk = os.read(self.fd, 1 << 16)
            if not chunk:
                return
            data = self.rest + chunk
            *whole, self.rest = data.split(b"\n")
            for line in whole:
                if line:
                    try:
                        yield jsonfast.loads(line)
                    except ValueError:
                        continue   # (a torn line of a writer that died mid-write)

    def close(self) -> None:
        os.close(self.fd)


def _generation(p: str, wanted, past_until):
    """The wanted events of one whole file (a rotated generation); returns True at one past `until`."""
    try:
        t = _Tail(p)
    except FileNotFoundError:
        return False
    try:
        for msg in t.lines():
            if past_until(msg):
                return True
            if wanted(msg):
                yield msg
    finally:
        t.close()
    return False


def read(root, *, since_ns: int | None = None, until_ns: int | None = None, follow: bool = False,
         cancel=None):
    """The events between `since_ns` and `until_ns` (nanoseconds since the epoch), oldest first; with
    `follow`, then each new one as it is written, until `until_ns` (forever without it) or until
    `cancel()` is true (a threading.Event's is_set: looked at between events and twice a second)."""
    d = directory(root)
    path = os.path.join(d, NAME)

    def wanted(msg) -> bool:
        t = msg.get("timeNano", 0)
        return since_ns is None or t >= since_ns

    def past_until(msg) -> bool:
        return until_ns is not None and msg.get("timeNano", 0) > until_ns

    watch = tail = None
    if follow:
        from pallet.linux.inotify import IN_CREATE, IN_MODIFY, IN_MOVED_TO, Watch

        os.makedirs(d, mode=0o700, exist_ok=True)
        watch = Watch([d], IN_MODIFY | IN_CREATE | IN_MOVED_TO)   # before reading: nothing is missed
    seen = set()
    try:
        for p in (path + ".1", path):
            try:
                t = _Tail(p)
            except FileNotFoundError:
                continue
            seen.add(t.ino)
            if p == path:
                tail = t
            for msg in t.lines():
                if past_until(msg):
                    return
                if wanted(msg):
                    yield msg
            if p != path:
                t.close()
        if not follow:
            return
        while True:
            if tail is not None:
                for msg in tail.lines():
                    if past_until(msg):
                        return
                    if wanted(msg):
                        yield msg
            older = _ino(path + ".1")
            if older is not None and older not in seen:   # rotated while the first read went on: a
                seen.add(older)                          # generation that was never read, read it now
                if (yield from _generation(path + ".1", wanted, past_until)):
                    return
            ino = _ino(path)
            if ino != (tail.ino if tail is not None else None):   # rotated (maybe twice), or first written
                if tail is not None:
                    for msg in tail.lines():   # what the old generation got after we read it
                        if past_until(msg):
                            return
                        if wanted(msg):
                            yield msg
                    tail.close()
                    tail = None
                older = _ino(path + ".1")
                if older is not None and older not in seen:   # a whole generation written meanwhile
                    seen.add(older)
                    if (yield from _generation(path + ".1", wanted, past_until)):
                        return
                if ino is not None:
                    try:
                        tail = _Tail(path)
                        seen.add(tail.ino)
                    except FileNotFoundError:
                        pass
                    continue
            timeout = None
            if until_ns is not None:
                timeout = (until_ns - time.time_ns()) / 1e9
                if timeout <= 0:
                    return
            if cancel is not None:
                if cancel():
                    return
                timeout = 0.5 if timeout is None else min(timeout, 0.5)
            watch.wait(timeout)
    finally:
        if tail is not None:
            try:
                tail.close()
            except OSError:
                pass
        if watch is not None:
            watch.close()
