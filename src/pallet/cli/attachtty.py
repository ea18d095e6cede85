"""The terminal side of an attach: renders the engine's `AttachStream` on this process's stdin, stdout
and stderr (foreground `run`, `start -a`, `attach`): raw mode for a tty, SIGWINCH as resizes, the
detach keys (ctrl-p ctrl-q), signals proxied to the container, a regular file or /dev/null on stdin
fed whole."""

from __future__ import annotations

import os
import selectors
import signal
import sys

from pallet.engine.attach import AttachStream, winsize

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


def attach(sock, *, stdin: bool, tty: bool, sig_proxy: bool = True, stdout: bool = True,
           stderr: bool = True) -> tuple[str, int | None]:
    """Render the attach stream over `sock` until the container exits ("exited", code), the user
    detaches ("detached", None) or the monitor goes away ("lost", None)."""
    stream = AttachStream(sock)
    in_fd, out_fd, err_fd = 0, 1, 2
    saved_tc = None
    old_handlers = {}
    is_term = tty and stdin and os.isatty(in_fd)
    if is_term:
        import termios
        import tty as ttymod

        saved_tc = termios.tcgetattr(in_fd)
        ttymod.setraw(in_fd)

    def send(call, *args) -> None:
        try:
            call(*args)
        except OSError:
            pass   # the monitor is gone: the stream's end says so

    if sig_proxy and not is_term:
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2):
            old_handlers[s] = signal.signal(s, lambda n, f: send(stream.kill, n))
    if tty:
        def on_winch(n, f) -> None:
            ws = winsize(in_fd if os.isatty(in_fd) else out_fd)
            if ws:
                send(stream.resize, *ws)
        old_handlers[signal.SIGWINCH] = signal.signal(signal.SIGWINCH, on_winch)
        on_winch(0, None)
    sel = selectors.DefaultSelector()
    sel.register(stream, selectors.EVENT_READ, "stream")
    stdin_open = stdin
    if stdin:
        try:
            sel.register(in_fd, selectors.EVENT_READ, "stdin")
        except (ValueError, PermissionError, OSError):
            # a regular file or /dev/null: selectors cannot poll it; feed it whole
            stdin_open = False
            send(stream.write, sys.stdin.buffer.read())
            send(stream.close_stdin)
    escape = b""
    try:
        while True:
            for key, _ in sel.select():
                if key.data == "stream":
                    rec = stream.next_record()
                    if rec is None:
                        continue   # (interrupted, or a record of no interest)
                    kind, data = rec
                    if kind == "stdout":
                        if stdout:
                            _write_all(out_fd, data)
                    elif kind == "stderr":
                        if stderr:
                            _write_all(err_fd, data)
                    elif kind == "exit":
                        return "exited", stream.exit_code
                    else:
                        return "lost", None
                elif key.data == "stdin" and stdin_open:
                    data = os.read(in_fd, 32 * 1024)
                    if not data:
                        sel.unregister(in_fd)
                        stdin_open = False
                        send(stream.close_stdin)
                        continue
                    if tty:
                        data = escape + data
                        escape = b""
                        i = data.find(DETACH)
                        if i >= 0:
                            if i:
                                send(stream.write, data[:i])
                            return "detached", None
                        if data.endswith(DETACH[:1]):
                            escape, data = DETACH[:1], data[:-1]
                    if data:
                        send(stream.write, data)
    finally:
        for s, h in old_handlers.items():
            signal.signal(s, h)
        if saved_tc is not None:
            import termios

            termios.tcsetattr(in_fd, termios.TCSADRAIN, saved_tc)
