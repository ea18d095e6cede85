"""The client side of a monitor's attach socket as a stream its caller renders: `AttachStream` yields the
container's output as (stream, bytes) records and takes stdin, resizes, signals and the close of stdin.
The CLI's terminal pump (raw mode, detach keys, SIGWINCH, signal proxy) is `pallet.cli.attachtty`; a
daemon renders the same records on its hijacked connection.
"""

from __future__ import annotations

import struct

from pallet import jsonfast

TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket


def winsize(fd: int = 0) -> tuple[int, int] | None:
    import fcntl
    import termios

    try:
        rows, cols, _, _ = struct.unpack("HHHH", fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8))
        return rows, cols
    except OSError:
        return None


class AttachStream:
    """The attach socket as a stream its caller renders (a daemon's hijacked connection, a test): the
    container's output as (stream, bytes) pairs, until its exit; input, resizes and signals to it.

        for stream, data in AttachStream(sock): ...     # "stdout" / "stderr"
        s.exit_code                                      # set once the container exited (None: lost)
    """

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.exit_code: int | None = None
        self.removed = False

    def fileno(self) -> int:
        """The socket's descriptor: readable when `next_record` has something (for a caller's select)."""
        return self.sock.fileno()

    def next_record(self) -> tuple[str, bytes] | None:
        """One record: ("stdout" | "stderr", bytes), ("exit", b"") once the container exited (then
        `exit_code`, `removed`), ("lost", b"") when the monitor went away; None when interrupted or the
        message was of no interest (call again)."""
        try:
            msg = self.sock.recv(65536)
        except InterruptedError:
            return None
        except OSError:
            msg = b""
        if not msg:
            return "lost", b""
        kind = msg[:1]
        if kind == b"1":
            return "stdout", msg[1:]
        if kind == b"2":
            return "stderr", msg[1:]
        if kind == b"X":
            info = jsonfast.loads(msg[1:])
            self.exit_code, self.removed = info["code"], bool(info.get("removed"))
            return "exit", b""
        return None

    def __iter__(self):
        """The output records until the container exits or the monitor goes away."""
        while True:
            rec = self.next_record()
            if rec is None:
                continue
            if rec[0] in ("exit", "lost"):
                return
            yield rec

    def write(self, data: bytes) -> None:
        """To the container's stdin (with -i)."""
        for i in range(0, len(data), 32 * 1024):
            self.sock.send(b"0" + data[i:i + 32 * 1024])

    def close_stdin(self) -> None:
        self.sock.send(b"C")

    def resize(self, rows: int, cols: int) -> None:
        self.sock.send(b"W" + struct.pack("HH", rows, cols))

    def kill(self, sig: int) -> None:
        self.sock.send(b"K" + str(int(sig)).encode())

    def close(self) -> None:
        self.sock.close()
