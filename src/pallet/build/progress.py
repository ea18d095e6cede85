"""Progress lines like BuildKit's plain output: `#N [stage i/n] INSTRUCTION`, output lines with the
time since the step started, then `#N CACHED`, `#N DONE 0.3s` or `#N ERROR: ...`.

One printer for all stages of a build (stages run two at once): every line is written whole under
a lock. `quiet` prints nothing (`-q`).
"""

from __future__ import annotations

import sys
import threading
import time

__all__ = ["Progress", "Vertex"]


class Vertex:
    def __init__(self, progress: Progress, number: int, name: str) -> None:
        self.p = progress
        self.n = number
        self.name = name
        self.start = time.monotonic()

    def line(self, text: str) -> None:
        self.p.emit(f"#{self.n} {time.monotonic() - self.start:.3f} {text}")

    def cached(self) -> None:
        self.p.emit(f"#{self.n} CACHED")

    def done(self) -> None:
        self.p.emit(f"#{self.n} DONE {time.monotonic() - self.start:.1f}s")

    def error(self, message: str) -> None:
        self.p.emit(f"#{self.n} ERROR: {message}")


class Progress:
    def __init__(self, out=None, *, quiet: bool = False) -> None:
        self.out = out or sys.stderr
        self.quiet = quiet
        self._lock = threading.Lock()
        self._n = 0
        self.log: list[str] = []

    def emit(self, line: str) -> None:
        with self._lock:
            self.log.append(line)
            if not self.quiet:
                self.out.write(line + "\n")
                self.out.flush()

    def vertex(self, name: str) -> Vertex:
        with self._lock:
            self._n += 1
            n = self._n
        v = Vertex(self, n, name)
        self.emit(f"#{n} {name}")
        return v
