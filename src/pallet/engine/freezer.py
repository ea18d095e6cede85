"""Pause and resume: whether a container's cgroup is frozen, and freezing or thawing it through its runtime.

One module for what `pause`, `unpause`, `commit --pause`, `stop`/`kill`/`rm -f` of a paused container
and inspect's State.Paused all need (it used to sit between health and files, which imported each other).
"""

from __future__ import annotations

from pallet.engine.events import container_event
from pallet.errors import Conflict, PalletError, RuntimeFailure


def paused(c) -> bool:
    if c.status != "running" or not c.pid:
        return False
    from pallet.linux import cgroups  # (at the package boundary: not on run's path)

    cg = cgroups.of_pid(c.pid)
    return bool(cg) and cg.frozen()


def freeze(engine, c, on: bool) -> None:
    """Freeze (`on`) or thaw the container through its runtime; a refusal is the runtime's one line."""
    rt = engine.runtime(c.runtime)
    try:
        (rt.pause if on else rt.resume)(c.id)
    except RuntimeFailure as e:
        raise PalletError(e.message) from None


def thaw_if_paused(engine, c) -> None:
    """After signalling a paused container (stop, kill, rm -f): thaw it so the signal is acted on."""
    if paused(c):
        try:
            freeze(engine, c, False)
        except Exception:  # noqa: BLE001
            pass


def pause(engine, c) -> None:
    """`pause`: freeze a running container that is not paused (docker's checks, then the runtime)."""
    if c.status != "running":
        raise Conflict(f"container {c.name} is not running")
    if paused(c):
        raise Conflict(f"container {c.name} is already paused")
    _runtime_call(engine, c, "pause")
    container_event(engine, c, "pause")


def unpause(engine, c) -> None:
    """`unpause`: thaw a paused container."""
    if not paused(c):
        raise Conflict(f"container {c.name} is not paused")
    _runtime_call(engine, c, "resume")
    container_event(engine, c, "unpause")


def _runtime_call(engine, c, verb: str) -> None:
    rt = engine.runtime(c.runtime)
    try:
        (rt.pause if verb == "pause" else rt.resume)(c.id)
    except RuntimeFailure as e:
        raise PalletError(f"cannot {verb} container {c.name}: {e.message}") from None
