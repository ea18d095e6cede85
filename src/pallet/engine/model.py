"""Containers as rows of the store's `containers` table, and the truth about their processes.

The monitor writes state transitions; every reader reconciles a row that says
"running" against the kernel (is that pid still the process we started, is its
monitor alive?), so a SIGKILLed monitor or a reboot never leaves a lie in `ps`.
"""

from __future__ import annotations

import os
import time

from pallet import jsonfast
from pallet.records import field, record

TYPE_CHECKING = False  # typing is not imported at run time (start-up)
if TYPE_CHECKING:
    from typing import Any

UNKNOWN_EXIT = 255   # what docker reports when the process is gone and nobody saw its status


@record
class Container:
    id: str
    name: str
    image_id: str
    image_name: str
    created: float
    runtime: str
    config: dict[str, Any]          # {"Config": {...}, "HostConfig": {...}, "User": {...}, ...}
    status: str
    pid: int | None = None
    pid_start: int | None = None
    monitor_pid: int | None = None
    monitor_start: int | None = None
    exit_code: int | None = None
    started_at: float | None = None
    finished_at: float | None = None
    oom_killed: bool = False
    error: str | None = None
    restart_count: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def short_id(self) -> str:
        return self.id[:12]

    @property
    def Config(self) -> dict:
        return self.config["Config"]

    @property
    def HostConfig(self) -> dict:
        return self.config["HostConfig"]

    @property
    def running(self) -> bool:
        return self.status == "running"

    @classmethod
    def from_row(cls, r) -> Container:
        return cls(r["id"], r["name"], r["image_id"], r["image_name"], r["created"], r["runtime"],
                   jsonfast.loads(r["config"]), r["status"], r["pid"], r["pid_start"], r["monitor_pid"],
                   r["monitor_start"], r["exit_code"], r["started_at"], r["finished_at"], bool(r["oom_killed"]),
                   r["error"], r["restart_count"])


def proc_start_time(pid: int | None) -> int | None:
    """Field 22 of /proc/PID/stat (start time in clock ticks since boot), or None if gone/zombie."""
    if not pid:
        return None
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    rest = data[data.rfind(b")") + 2:].split()
    if rest[0] in (b"Z", b"X"):
        return None
    return int(rest[19])


def alive(pid: int | None, start: int | None) -> bool:
    st = proc_start_time(pid)
    return st is not None and (start is None or st == start)


def pidfd_if_same(pid: int | None, start: int | None) -> int | None:
    """A pidfd for `pid` if it is still the process that started at `start` (no pid-reuse race)."""
    if not pid:
        return None
    try:
        fd = os.pidfd_open(pid)
    except OSError:
        return None
    if not alive(pid, start):
        os.close(fd)
        return None
    return fd


def send_signal(pid: int | None, start: int | None, sig: int) -> bool:
    import signal

    fd = pidfd_if_same(pid, start)
    if fd is None:
        return False
    try:
        signal.pidfd_send_signal(fd, sig)
        return True
    except ProcessLookupError:
        return False
    finally:
        os.close(fd)


def rfc3339(ts: float | None) -> str:
    if not ts:
        return "0001-01-01T00:00:00Z"
    t = time.gmtime(ts)
    return time.strftime("%Y-%m-%dT%H:%M:%S", t) + f".{int((ts % 1) * 1e9):09d}Z"


def parse_time(text: str) -> float:
    """--since/--until: unix seconds, RFC 3339, or a duration like 10m / 1h30m before now."""
    import re
    from datetime import datetime

    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    m = re.fullmatch(r"((?:\d+(?:\.\d+)?(?:h|m|s|ms))+)", text)
    if m:
        total = 0.0
        for num, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", text):
            total += float(num) * {"h": 3600, "m": 60, "s": 1, "ms": 0.001}[unit]
        return time.time() - total
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        from pallet.errors import PalletError

        raise PalletError(f"invalid time {text!r}: give unix seconds, RFC 3339 or a duration like 10m") from None
