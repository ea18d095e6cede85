"""The kernel layer's trace recorder: each wrapper in `pallet.linux` reports its call here when tracing is on.

`recorder` is None unless a `pallet run --trace` set one up in this process: every wrapper checks it
first (one global lookup, nothing allocated), so tracing off costs nothing measurable. When it is set,
a wrapper takes the time before the call and hands (operation, start, arguments, result) to `done()`.

A record is a list, cheap to build and to send over the runtime's parent/child channel as JSON:

    [start_ns, duration_ns, pid, process, stage, op, args, error]

`start_ns` is CLOCK_MONOTONIC (one clock for every process on the host: the parent and its children
can be merged by time); `error` is None or "EPERM: Operation not permitted". `stage` is whatever the
code path last named with `stage()` ("snapshot", "mounts", "seccomp", ...). `pallet.explain.trace`
turns a list of these into the documented trace document (docs/trace.md).
"""

from __future__ import annotations

import os
from time import monotonic_ns as now  # noqa: F401 - the wrappers' clock

recorder: Recorder | None = None


class Recorder:
    """The records of one process (`proc`: cli, monitor, runtime-child, init)."""

    __slots__ = ("proc", "pid", "stage", "records")

    def __init__(self, proc: str, stage: str = "") -> None:
        self.proc = proc
        self.pid = os.getpid()
        self.stage = stage
        self.records: list[list] = []

    def done(self, op: str, start: int, args: dict, err: BaseException | int | None = None) -> None:
        """Record one finished call. `err`: an exception, an errno, or None (it succeeded)."""
        if err is None:
            e = None
        elif isinstance(err, int):
            e = f"{_errname(err)}: {os.strerror(err)}"
        else:
            no = getattr(err, "errno", None)
            e = f"{_errname(no)}: {os.strerror(no)}" if no else str(err)
        self.records.append([start, now() - start, self.pid, self.proc, self.stage, op, args, e])

    def take(self) -> list[list]:
        """The records so far, handed over (to the channel, or to a file); the list starts anew."""
        out, self.records = self.records, []
        return out


def _errname(no: int | None) -> str:
    import errno

    return errno.errorcode.get(no or 0, str(no))


def start(proc: str, stage: str = "") -> Recorder:
    """Turn tracing on in this process."""
    global recorder
    recorder = Recorder(proc, stage)
    if stage:
        recorder.records.append([now(), 0, recorder.pid, proc, stage, "stage", {}, None])
    return recorder


def child(proc: str) -> None:
    """In a forked child of a traced process: its own records from here on (the parent keeps its own)."""
    global recorder
    if recorder is not None:
        recorder = Recorder(proc, recorder.stage)


def stop() -> list[list]:
    global recorder
    r, recorder = recorder, None
    return r.take() if r is not None else []


def stage(name: str) -> None:
    """Name the stage the following calls belong to (a no-op when tracing is off)."""
    r = recorder
    if r is not None and r.stage != name:
        r.stage = name
        r.records.append([now(), 0, r.pid, r.proc, name, "stage", {}, None])   # where the stage begins


def note(op: str, **args: object) -> None:
    """Record an engine step that is not one system call (an image resolved, a layer list)."""
    r = recorder
    if r is not None:
        r.done(op, now(), args)


def add(records: list) -> None:
    """Records a child sent over the channel join this process's list."""
    if recorder is not None and records:
        recorder.records.extend(records)


def document(records: list[list], meta: dict) -> dict:
    """The trace document (docs/trace.md) of `records` from every process, ordered by time.

    `meta`: container (id, name, image), runtime, t0_ns (the `pallet run`'s start), complete (the
    teardown is in), unseen (what this trace cannot show: another runtime's own calls)."""
    t0 = meta.get("t0_ns") or (min(r[0] for r in records) if records else 0)
    events = []
    for i, (start, dur, pid, proc, stg, op, args, err) in enumerate(sorted(records, key=lambda r: r[0])):
        events.append({"seq": i, "t_ms": round((start - t0) / 1e6, 3), "dur_ms": round(dur / 1e6, 3), "pid": pid,
                       "process": proc, "stage": stg, "op": op, "args": args,
                       "result": "ok" if err is None else "error", "error": err})
    return {"version": 1, "container": meta.get("container") or {}, "runtime": meta.get("runtime") or "pallet",
            "t0_ns": t0, "complete": bool(meta.get("complete")), "unseen": meta.get("unseen"), "events": events}


def write(path: str, records: list[list], meta: dict) -> None:
    """Write the document atomically (a reader never sees half a file)."""
    from pallet.jsonfast import dumps

    d = os.path.dirname(path)
    if d:
        os.makedirs(d, exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        f.write(dumps(document(records, meta)))
    os.replace(tmp, path)
