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
    """Records a child sent over the channel join this process's list. A failed execve's record replaces
    the one its process sent just before the call (when it could not know the result yet)."""
    r = recorder
    if r is None or not records:
        return
    for rec in records:
        if rec[5] == "execve" and rec[7] is not None:
            for i in range(len(r.records) - 1, -1, -1):
                old = r.records[i]
                if old[5] == "execve" and old[2] == rec[2] and old[7] is None and old[6] == rec[6]:
                    r.records[i] = rec
                    break
            else:
                r.records.append(rec)
        else:
            r.records.append(rec)


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


def write(path: str, records: list[list], meta: dict) -> dict:
    """Write the document atomically (a reader never sees half a file); returns it."""
    from pallet.jsonfast import dumps

    d = os.path.dirname(path)
    if d:
        os.makedirs(d, exist_ok=True)
    doc = document(records, meta)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        f.write(dumps(doc))
    os.replace(tmp, path)
    return doc


PROCESS_ORDER = ("cli", "monitor", "runtime-parent", "runtime-child", "init")


def _proc_key(p: str) -> int:
    return PROCESS_ORDER.index(p) if p in PROCESS_ORDER else len(PROCESS_ORDER)


def segments(doc: dict) -> list[dict]:
    """The stages of each process, in order: process, stage, start and time (ms), calls."""
    by_proc: dict[str, list[dict]] = {}
    for e in doc.get("events") or ():
        by_proc.setdefault(e["process"], []).append(e)
    out = []
    for proc in sorted(by_proc, key=_proc_key):
        evs = by_proc[proc]
        end = max(e["t_ms"] + e["dur_ms"] for e in evs)
        cur: dict | None = None
        for e in evs:
            if cur is None or e["stage"] != cur["stage"]:
                if cur is not None:
                    cur["ms"] = round(e["t_ms"] - cur["start_ms"], 3)
                cur = {"process": proc, "stage": e["stage"] or "-", "start_ms": e["t_ms"], "ms": 0.0, "calls": 0}
                out.append(cur)
            if e["op"] != "stage":
                cur["calls"] += 1
        if cur is not None:
            cur["ms"] = round(end - cur["start_ms"], 3)
    return out


COSTS = "trace-costs.jsonl"   # in the store's root: one line per traced run, the last KEEP_COSTS kept
KEEP_COSTS = 50


def record_costs(root: str, doc: dict) -> None:
    """Append this run's time per stage to the store's rolling record (`pallet explain run --cost`)."""
    import time

    from pallet.jsonfast import dumps

    segs = segments(doc)
    evs = doc.get("events") or ()
    line = dumps({"at": time.time(), "runtime": doc.get("runtime"), "image": (doc.get("container") or {}).get("image"),
                  "total_ms": round(max((e["t_ms"] + e["dur_ms"] for e in evs), default=0.0), 3),
                  "stages": [[s["process"], s["stage"], s["ms"]] for s in segs if s["stage"] != "teardown"]})
    path = os.path.join(root, COSTS)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, (line + "\n").encode())   # one write with O_APPEND: concurrent monitors do not interleave
    finally:
        os.close(fd)
    if os.path.getsize(path) > 400 * KEEP_COSTS:   # trim now and then, keeping the last runs
        with open(path) as f:
            lines = f.readlines()[-KEEP_COSTS:]
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w") as f:
            f.writelines(lines)
        os.replace(tmp, path)


def recent_costs(root: str) -> list[dict]:
    from pallet.jsonfast import loads

    try:
        with open(os.path.join(root, COSTS)) as f:
            lines = f.readlines()[-KEEP_COSTS:]
    except OSError:
        return []
    out = []
    for line in lines:
        try:
            out.append(loads(line))
        except ValueError:
            continue   # (a line cut by a crash)
    return out
