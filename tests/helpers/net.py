"""Loopback helpers for tests that start servers: a free port, and a server run as a process.

A server that can be told port 0 should be: it binds a port nobody can take between the choice and the
bind, and reports it (RegistryProcess reads it from the server's "listening on" line). `free_port()`
is for a server that cannot (its port is in a config file written before it starts)."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (for a server that cannot be told port 0)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """A test server as a process: `start()` runs `argv()` with its output (stdout and stderr) appended
    to `log_path` and returns once `ready(offset)` (offset: where this start's output begins in the
    log); `stop()` ends it by its pid (the signal, then SIGKILL after `timeout`). A context manager."""

    name = "server"

    def __init__(self, log_path: str | Path) -> None:
        self.log_path = Path(log_path)
        self.proc: subprocess.Popen | None = None

    def argv(self) -> list[str]:
        raise NotImplementedError

    def ready(self, offset: int) -> bool:
        raise NotImplementedError

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def start(self, timeout: float = 20):
        offset = len(self.log())
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.argv(), stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited {self.proc.returncode}:\n{self.log()[-2000:]}")
            if self.ready(offset):
                return self
            time.sleep(0.05)
        self.stop()
        raise AssertionError(f"{self.name} did not start:\n{self.log()[-2000:]}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class ThreadedServer:
    """An HTTP server in this process, in a daemon thread on 127.0.0.1 port 0 (the kernel's choice, no
    race): a subclass gives `_handler()` (a BaseHTTPRequestHandler class). A context manager."""

    _server = None

    def _handler(self):
        raise NotImplementedError

    def start(self):
        import threading
        from http.server import ThreadingHTTPServer

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def port(self) -> int:
        assert self._server is not None, "start() the server first"
        return self._server.server_address[1]

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
