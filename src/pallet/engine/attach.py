"""The client side of a monitor's attach socket: a terminal or pipes on one side, the container on the other.

Used by a foreground `run`, `start -a` and `attach`. Returns the container's exit
code, or None when the user detached (ctrl-p ctrl-q) or the stream ended early.
"""

from __future__ import annotations

import os
import selectors
import signal
import socket
import struct
import sys

from pallet import jsonfast

DETACH = b"\x10\x11"   # ctrl-p ctrl-q


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except BlockingIOError:
            selectors.DefaultSelector().register(fd, selectors.EVENT_WRITE).selector.select(1)
            continue
        view = view[n:]


def winsize(fd: int = 0) -> tuple[int, int] | None:
    import fcntl
    import termios

    try:
        rows, cols, _, _ = struct.unpack("HHHH", fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8))
        return rows, cols
    except OSError:
        return None


def attach(sock: socket.socket, *, stdin: bool, tty: bool, sig_proxy: bool = True,
           stdout: bool = True, stderr: bool = True) -> tuple[str, int | None]:
    """Pump until the container exits ("exited", code), the user detaches ("detached", None)
    or the monitor goes away ("lost", None)."""
    in_fd, out_fd, err_fd = 0, 1, 2
    saved_tc = None
    old_handlers = {}
    is_term = tty and stdin and os.isatty(in_fd)
    if is_term:
        import termios
        import tty as ttymod

        saved_tc = termios.tcgetattr(in_fd)
        ttymod.setraw(in_fd)

    def send(msg: bytes) -> None:
        try:
            sock.send(msg)
        except OSError:
            pass

    if sig_proxy and not is_term:
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2):
            old_handlers[s] = signal.signal(s, lambda n, f: send(b"K" + str(n).encode()))
    if tty:
        def on_winch(n, f) -> None:
            ws = winsize(in_fd if os.isatty(in_fd) else out_fd)
            if ws:
                send(b"W" + struct.pack("HH", *ws))
        old_handlers[signal.SIGWINCH] = signal.signal(signal.SIGWINCH, on_winch)
        on_winch(0, None)
    sel = selectors.DefaultSelector()
    sel.register(sock, selectors.EVENT_READ, "sock")
    stdin_open = stdin
    if stdin:
        try:
            sel.register(in_fd, selectors.EVENT_READ, "stdin")
        except (ValueError, PermissionError, OSError):
            # a regular file or /dev/null: selectors cannot poll it; feed it whole
            stdin_open = False
            data = sys.stdin.buffer.read()
            for i in range(0, len(data), 32 * 1024):
                send(b"0" + data[i:i + 32 * 1024])
            send(b"C")
    escape = b""
    try:
        while True:
            for key, _ in sel.select():
                if key.data == "sock":
                    try:
                        msg = sock.recv(65536)
                    except InterruptedError:
                        continue
                    except OSError:
                        msg = b""
                    if not msg:
                        return "lost", None
                    kind = msg[:1]
                    if kind == b"1":
                        if stdout:
                            _write_all(out_fd, msg[1:])
                    elif kind == b"2":
                        if stderr:
                            _write_all(err_fd, msg[1:])
                    elif kind == b"X":
                        return "exited", jsonfast.loads(msg[1:])["code"]
                elif key.data == "stdin" and stdin_open:
                    data = os.read(in_fd, 32 * 1024)
                    if not data:
                        sel.unregister(in_fd)
                        stdin_open = False
                        send(b"C")
                        continue
                    if tty:
                        data = escape + data
                        escape = b""
                        i = data.find(DETACH)
                        if i >= 0:
                            if i:
                                send(b"0" + data[:i])
                            return "detached", None
                        if data.endswith(DETACH[:1]):
                            escape, data = DETACH[:1], data[:-1]
                    if data:
                        send(b"0" + data)
    finally:
        for s, h in old_handlers.items():
            signal.signal(s, h)
        if saved_tc is not None:
            import termios

            termios.tcsetattr(in_fd, termios.TCSADRAIN, saved_tc)


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

    def __iter__(self):
        while True:
            try:
                msg = self.sock.recv(65536)
            except InterruptedError:
                continue
            except OSError:
                msg = b""
            if not msg:
                return   # the monitor went away
            kind = msg[:1]
            if kind == b"1":
                yield "stdout", msg[1:]
            elif kind == b"2":
                yield "stderr", msg[1:]
            elif kind == b"X":
                info = jsonfast.loads(msg[1:])
                self.exit_code, self.removed = info["code"], bool(info.get("removed"))
                return

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
