"""runc-style logging: text or JSON lines ({"level","msg","time"}) that conmon/podman read."""

from __future__ import annotations

import os
import sys

from pallet.jsonfast import dumps
from pallet.runtime.state import now_rfc3339


class Log:
    def __init__(self, path: str | None = None, fmt: str = "text", debug: bool = False) -> None:
        self.path = path
        self.fmt = fmt
        self.debug_on = debug

    def _emit(self, level: str, msg: str) -> None:
        if self.fmt == "json":
            line = dumps({"level": level, "msg": msg, "time": now_rfc3339()})
        else:
            line = f'time="{now_rfc3339()}" level={level} msg="{msg}"'
        if self.path:
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
                try:
                    os.write(fd, (line + "\n").encode())
                finally:
                    os.close(fd)
                return
            except OSError:
                pass
        if level != "error":  # errors are printed by the CLI itself
            sys.stderr.write(line + "\n")

    def error(self, msg: str) -> None:
        self._emit("error", msg)

    def warn(self, msg: str) -> None:
        self._emit("warning", msg)

    def debug(self, msg: str) -> None:
        if self.debug_on:
            self._emit("debug", msg)
