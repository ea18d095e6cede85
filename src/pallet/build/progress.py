"""Progress lines like BuildKit's plain output: `#N [stage i/n] INSTRUCTION`, output lines with the
time since the step started, then `#N CACHED`, `#N DONE 0.3s` or `#N ERROR: ...`.

One printer for all stages of a build (stages run two at once): every line is written whole under
a lock. `quiet` prints nothing (`-q`).
"""

from __future__ import annotations

import json
import sys
import threading
import time

__all__ = ["Progress", "RawJsonProgress", "TtyProgress", "Vertex"]


class Vertex:
    def __init__(self, progress: Progress, number: int, name: str) -> None:
        self.p = progress
        self.n = number
        self.name = name
        self.start = time.monotonic()

    def line(self, text: str) -> None:
        self.p.emit(f"#{self.n} {time.monotonic() - self.start:.3f} {text}")

    def status(self, name: str) -> None:
        """A finished sub-task of the step (BuildKit's VertexStatus): `writing image sha256:… done`."""
        self.line(f"{name} done")

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

    def close(self) -> None:
        pass

    def vertex(self, name: str) -> Vertex:
        with self._lock:
            self._n += 1
            n = self._n
        v = Vertex(self, n, name)
        self.emit(f"#{n} {name}")
        return v


class TtyProgress(Progress):
    """The live view on a terminal (BuildKit's tty mode): a `[+] Building 1.2s (3/5)` header, one line
    per step with its time or CACHED/DONE/ERROR, and the last lines of output of the running steps,
    redrawn in place ten times a second. The plain lines are kept in `log` for errors."""

    TAIL = 6

    def __init__(self, out=None) -> None:
        super().__init__(out)
        self.start = time.monotonic()
        self.rows: list[dict] = []
        self._by_n: dict[int, dict] = {}
        self._drawn = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def emit(self, line: str) -> None:
        with self._lock:
            self.log.append(line)
            parts = line.split(" ", 1)
            if not parts[0].startswith("#") or not parts[0][1:].isdigit():
                self._extra(line)
                return
            n = int(parts[0][1:])
            rest = parts[1] if len(parts) > 1 else ""
            row = self._by_n.get(n)
            if row is None:
                row = {"name": rest, "start": time.monotonic(), "end": None, "status": "", "tail": []}
                self._by_n[n] = row
                self.rows.append(row)
            elif rest == "CACHED" or rest.startswith("DONE") or rest.startswith("ERROR"):
                row["status"] = rest.split(" ", 1)[0].rstrip(":")
                row["end"] = time.monotonic()
            else:
                row["tail"] = (row["tail"] + [rest.split(" ", 1)[-1]])[-self.TAIL:]

    def _extra(self, line: str) -> None:
        self.rows.append({"name": line, "start": time.monotonic(), "end": time.monotonic(), "status": "TEXT",
                          "tail": []})

    def _render(self) -> list[str]:
        done = sum(1 for r in self.rows if r["end"] is not None and r["status"] != "TEXT")
        total = sum(1 for r in self.rows if r["status"] != "TEXT")
        lines = [f"[+] Building {time.monotonic() - self.start:.1f}s ({done}/{total})"]
        for r in self.rows:
            if r["status"] == "TEXT":
                lines.append(r["name"])
                continue
            took = (r["end"] or time.monotonic()) - r["start"]
            mark = " CACHED" if r["status"] == "CACHED" else (" ERROR" if r["status"] == "ERROR" else "")
            lines.append(f" => {r['name'][:100]:<100} {took:5.1f}s{mark}")
            if r["end"] is None or r["status"] == "ERROR":
                lines += [f" => => # {t[:110]}" for t in r["tail"]]
        return lines

    def _draw(self) -> None:
        with self._lock:
            lines = self._render()
        buf = (f"\x1b[{self._drawn}A" if self._drawn else "") + "".join(f"\x1b[2K{x}\n" for x in lines)
        self.out.write(buf)
        self.out.flush()
        self._drawn = len(lines)

    def _loop(self) -> None:
        while not self._stop.wait(0.1):
            self._draw()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._draw()


def _rfc3339(t: float) -> str:
    import datetime

    d = datetime.datetime.fromtimestamp(t, datetime.UTC)
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{d.microsecond:06d}000Z"


class _JsonVertex(Vertex):
    """A vertex of `--progress rawjson`: each change is one SolveStatus line."""

    def __init__(self, progress: RawJsonProgress, number: int, name: str) -> None:
        import hashlib

        super().__init__(progress, number, name)
        self.digest = "sha256:" + hashlib.sha256(f"{number} {name}".encode()).hexdigest()
        self.started = _rfc3339(time.time())

    def _vertex(self, **extra) -> dict:
        return {"digest": self.digest, "name": self.name, "started": self.started, **extra}

    def line(self, text: str) -> None:
        self.p.status(logs=[self.p.log_record(self.digest, text + "\n")])

    def status(self, name: str) -> None:
        now = _rfc3339(time.time())
        self.p.status(statuses=[{"id": name, "vertex": self.digest, "name": name, "timestamp": now,
                                 "started": now, "completed": now}])

    def cached(self) -> None:
        now = _rfc3339(time.time())
        self.p.status(vertexes=[self._vertex(completed=now, cached=True)])

    def done(self) -> None:
        self.p.status(vertexes=[self._vertex(completed=_rfc3339(time.time()))])

    def error(self, message: str) -> None:
        self.p.status(vertexes=[self._vertex(completed=_rfc3339(time.time()), error=message)])


class RawJsonProgress(Progress):
    """`--progress rawjson`: BuildKit's SolveStatus documents, one JSON object a line — `vertexes`
    (digest, name, started, completed, cached, error), `statuses` (id, vertex, name, timestamp,
    started, completed: `writing image sha256:…`), `logs` (vertex, stream, base64 data, timestamp)
    and `warnings`. A vertex's first line has only `started`; its last has `completed`."""

    def status(self, **parts) -> None:
        line = json.dumps({k: v for k, v in parts.items() if v}, separators=(",", ":"))
        with self._lock:
            self.out.write(line + "\n")
            self.out.flush()

    def log_record(self, digest: str | None, text: str, stream: int = 1) -> dict:
        import base64

        rec = {"vertex": digest, "stream": stream, "data": base64.b64encode(text.encode()).decode(),
               "timestamp": _rfc3339(time.time())}
        return {k: v for k, v in rec.items() if v is not None}

    def emit(self, line: str) -> None:
        """A line of no vertex: a warning, or a log line (a failed RUN's last output)."""
        import base64

        with self._lock:
            self.log.append(line)
        if line.startswith("WARNING: "):
            self.status(warnings=[{"level": 1, "short": base64.b64encode(line[9:].encode()).decode()}])
        else:
            self.status(logs=[self.log_record(None, line + "\n", stream=2)])

    def vertex(self, name: str) -> Vertex:
        with self._lock:
            self._n += 1
            n = self._n
            self.log.append(f"#{n} {name}")
        v = _JsonVertex(self, n, name)
        self.status(vertexes=[v._vertex()])
        return v
