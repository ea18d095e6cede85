"""Processes: fork(2) (a clone without namespace flags) and execve(2), through the kernel layer so they are traced."""

from __future__ import annotations

import os
import sys


def _tracer():
    """The trace module when a trace is being recorded, else None. Tracing starts with an import of
    `pallet.linux.trace` (`trace.start`), so one that was never imported records nothing: `pallet run`
    forks its monitor before it imports the trace module, which the monitor and the CLI then import
    in parallel."""
    T = sys.modules.get("pallet.linux.trace")
    return T if T is not None and T.recorder is not None else None


def fork(child_proc: str | None = None) -> int:
    """os.fork(); with tracing on, the child records as `child_proc` (its own list) and the parent
    records the fork with the child's pid."""
    T = _tracer()
    if T is None:
        return os.fork()
    r = T.recorder
    t = T.now()
    pid = os.fork()
    if pid == 0:
        if child_proc:
            T.child(child_proc)
        return 0
    r.done("fork", t, {"child": pid, "child_proc": child_proc})
    return pid


def execve(path: str, argv: list[str], env: dict[str, str], *, flush=None) -> None:
    """os.execve. The record is made before the call (after it there is no one left to make it), then
    `flush()` sends it on; its result is the receiver's to confirm (a close-on-exec channel reads EOF
    once the exec succeeded)."""
    T = _tracer()
    if T is None:
        os.execve(path, argv, env)
    r = T.recorder
    t = T.now()
    args = {"path": path, "argv": list(argv), "env": len(env)}
    r.done("execve", t, args)
    if flush is not None:
        flush()
    try:
        os.execve(path, argv, env)
    except OSError as e:
        r.done("execve", t, args, e)   # replaces the record sent before the call (trace.add)
        raise
