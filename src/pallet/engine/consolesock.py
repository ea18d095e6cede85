"""The receiving end of an OCI runtime's --console-socket: the pty master fd it sends over SCM_RIGHTS."""

from __future__ import annotations

import os
import socket


class ConsoleSocket:
    """A unix socket in a fresh temp dir, listening, with a thread that accepts one connection and
    keeps the first fd sent over it.  Pass `path` to the runtime, then `wait()`, then `close()`."""

    def __init__(self) -> None:
        import tempfile
        import threading

        self._dir = tempfile.mkdtemp(prefix="pallet-cs-")
        self.path = os.path.join(self._dir, "c.sock")
        self._srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            self._srv.bind(self.path)
            self._srv.listen(1)
        except BaseException:
            self.close()
            raise
        self._got: dict = {}
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        try:
            conn, _ = self._srv.accept()
            _msg, fds, _flags, _addr = socket.recv_fds(conn, 4096, 4)
            self._got["fd"] = fds[0]
            conn.close()
        except OSError as e:
            self._got["err"] = e

    def wait(self, timeout: float = 10) -> tuple[int | None, OSError | None]:
        """The received fd (None if none came within `timeout`) and the error that stopped the receiver, if any."""
        self._thread.join(timeout)
        return self._got.get("fd"), self._got.get("err")

    def close(self) -> None:
        self._srv.close()
        try:
            os.unlink(self.path)
        except OSError:
            pass
        try:
            os.rmdir(self._dir)
        except OSError:
            pass
