"""The parent <-> container-init message channel: newline-delimited JSON over two pipes.

Both pipes are close-on-exec, so a successful execve in the child closes its end:
the parent reads EOF without an error message and knows the exec happened.
"""

from __future__ import annotations

import os

from pallet.jsonfast import dumps, loads


class Channel:
    def __init__(self, rfd: int, wfd: int) -> None:
        self.r = rfd
        self.w = wfd
        self._buf = b""

    def send(self, **msg: object) -> None:
        data = (dumps(msg) + "\n").encode()
        while data:
            n = os.write(self.w, data)
            data = data[n:]

    def try_send(self, **msg: object) -> bool:
        """send(), but a peer that has already exited is not an error here: its last message
        (usually the reason it exited) is still waiting to be read."""
        try:
            self.send(**msg)
            return True
        except BrokenPipeError:
            return False

    def recv(self) -> dict | None:
        """The next message, or None at EOF (the other side exited or exec'd)."""
        while b"\n" not in self._buf:
            try:
                chunk = os.read(self.r, 65536)
            except InterruptedError:
                continue
            if not chunk:
                return None
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        return loads(line)  # type: ignore[return-value]

    def close(self) -> None:
        for fd in (self.r, self.w):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.r = self.w = -1


def pair() -> tuple[Channel, Channel]:
    """(parent side, child side)."""
    p2c_r, p2c_w = os.pipe()
    c2p_r, c2p_w = os.pipe()
    return Channel(c2p_r, p2c_w), Channel(p2c_r, c2p_w)
