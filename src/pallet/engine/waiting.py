"""docker's wait conditions (`not-running`, `next-exit`, `removed`), woken by the monitor's exit FIFO and
by pidfds (engine.exitwatch), not by polling."""

from __future__ import annotations

import os
import time

from pallet.engine import exitwatch
from pallet.engine.model import Container, alive
from pallet.errors import NotFound, PalletError

WAIT_CONDITIONS = ("not-running", "next-exit", "removed")


class Waiting:
    """Engine methods (a mixin of `core.Engine`)."""

    def wait_exit(self, c: Container, timeout: float | None = None) -> Container:
        return self.wait(c, "not-running", timeout)

    def wait(self, c: Container, condition: str = "not-running", timeout: float | None = None) -> Container:
        """docker's wait conditions: `not-running` (now, if it is not running), `next-exit` (the end of
        the run under way or of the next one), `removed` (until its row is gone). Woken by the monitor's
        exit FIFO and by pidfds (engine.exitwatch), not by polling. Returns the container as last seen
        (after `timeout` seconds: whatever it is then)."""
        if condition not in WAIT_CONDITIONS:
            raise PalletError(f"invalid condition {condition!r}: give one of {', '.join(WAIT_CONDITIONS)}")
        deadline = None if timeout is None else time.monotonic() + timeout
        if condition == "next-exit":
            fd = exitwatch.open_watch(self.run_dir(c.id), create=True)
            try:
                c = self.get(c.id)
                if fd is not None:
                    exitwatch.wait_hangup(fd, deadline)
            finally:
                if fd is not None:
                    os.close(fd)
        c = self._wait_not_running(c, deadline)
        if condition == "removed":
            while self._rows("WHERE id = ?", (c.id,)):
                if deadline is not None and time.monotonic() >= deadline:
                    break
                if alive(c.monitor_pid, c.monitor_start):    # --rm: its monitor removes it, then exits
                    exitwatch.wait_process(c.monitor_pid, deadline)
                else:
                    time.sleep(0.05)   # only another `rm` can remove it now
        return c

    def _wait_not_running(self, c: Container, deadline: float | None) -> Container:
        while True:
            fd = exitwatch.open_watch(self.run_dir(c.id))
            try:
                try:
                    c = self.get(c.id)
                except NotFound:
                    return c
                if c.status != "running" or (deadline is not None and time.monotonic() >= deadline):
                    return c
                if fd is not None and alive(c.monitor_pid, c.monitor_start):
                    exitwatch.wait_hangup(fd, deadline)
                else:   # no monitor to close the FIFO (killed): the init's own exit, by its pidfd
                    exitwatch.wait_process(c.pid, deadline)
            finally:
                if fd is not None:
                    os.close(fd)
