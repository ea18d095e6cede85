"""Waiting for a container's exit without polling: the monitor holds a FIFO open while it runs.

The monitor opens `<run dir>/exit.fifo` for writing just before it records the container running,
and closes it once the exit is recorded (for --rm: once the row says "removing"). A waiter opens the
FIFO for reading (non-blocking), then reads the row: while it says running, the close is still to
come, and the kernel wakes the waiter's poll() with POLLHUP when it happens — or when the monitor
dies, which the waiter then reconciles. Linux suppresses POLLHUP for a reader that opened a FIFO with
no writer until a writer has come and gone, so a waiter that opens between two runs (a restart
policy; `wait --condition next-exit`) is woken by the next run's exit, not by the previous one.

A monitor that has exited (its --rm removal included) is waited for with a pidfd.
"""

from __future__ import annotations

import os
import select
import stat
import time
from pathlib import Path

FIFO_NAME = "exit.fifo"


def _fifo(run_dir: Path) -> Path:
    return run_dir / FIFO_NAME


def hold(run_dir: Path) -> int:
    """In the monitor: make the FIFO if needed and hold it open (O_RDWR: no reader needed); close to fire."""
    path = _fifo(run_dir)
    try:
        os.mkfifo(path, 0o600)
    except FileExistsError:
        pass
    return os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)


def open_watch(run_dir: Path, *, create: bool = False) -> int | None:
    """A reader's end, to open before reading the row; None if no monitor made the FIFO (and not `create`)."""
    path = _fifo(run_dir)
    try:
        if create:
            run_dir.mkdir(parents=True, exist_ok=True)
            try:
                os.mkfifo(path, 0o600)
            except FileExistsError:
                pass
        if not stat.S_ISFIFO(os.lstat(path).st_mode):
            return None
        return os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None


def wait_hangup(fd: int, deadline: float | None) -> bool:
    """Block until the writer side closes (True) or the deadline passes (False)."""
    p = select.poll()
    p.register(fd, select.POLLHUP | select.POLLIN)
    while True:
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        events = p.poll(None if left is None else int(left * 1000) + 1)
        for _, ev in events:
            if ev & select.POLLHUP:
                return True
            if ev & select.POLLIN:   # nobody writes data; drain whatever came, keep waiting
                try:
                    os.read(fd, 4096)
                except BlockingIOError:
                    pass
        if deadline is not None and time.monotonic() >= deadline:
            return False


def wait_process(pid: int, deadline: float | None) -> bool:
    """Block until process `pid` exits (True) or the deadline passes (False); a pid gone already is True."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    except OSError:   # no pidfds (kernel < 5.3): look now and then
        while deadline is None or time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return True
            time.sleep(0.01)
        return False
    try:
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        return bool(select.select([fd], [], [], left)[0])
    finally:
        os.close(fd)
