"""pallet's own OCI runtime (pallet.runtime), called in-process with the same interface as ExternalRuntime."""

from __future__ import annotations

import os
from pathlib import Path

from pallet.errors import PalletError, RuntimeFailure, classify


class PalletRuntime:
    name = "pallet"

    def __init__(self, state_root: Path) -> None:
        self.state_root = state_root
        self._rt = None
        # the start time (/proc/PID/stat) of the init the last create made, read by the runtime before
        # the init ran anything: read again once it is released, it would wait for its execve
        self.init_starttime: int | None = None

    @property
    def rt(self):
        if self._rt is None:
            from pallet.runtime import Runtime

            # the seccomp BPF compiled for a profile is kept in the run dir for the next container
            self._rt = Runtime(str(self.state_root), seccomp_cache=str(self.state_root.parent / "seccomp-cache"))
        return self._rt

    def create(self, cid: str, bundle: Path, *, pid_file: Path, console_socket: str | None = None,
               stdio: tuple[int, int, int] | None = None, log: Path | None = None, pass_fds=()) -> int:
        try:
            st = self.rt.create(cid, str(bundle), console_socket=console_socket, pid_file=str(pid_file),
                                stdio=stdio)
        except RuntimeFailure as e:
            raise classify(e.message) from None
        self.init_starttime = (self.rt._last or {}).get("starttime")
        return int(st["pid"])

    def start(self, cid: str) -> None:
        # back once the init is released, not after its execve: its monitor sees it exit either way
        # (the runtime still waits for the execve when poststart hooks must follow it)
        self.rt.start(cid, _until_exec=False)

    def kill(self, cid: str, sig: int, *, all: bool = False) -> None:
        self.rt.kill(cid, sig, all=all)

    def delete(self, cid: str, *, force: bool = False) -> None:
        from pallet.runtime.state import ContainerNotFound

        try:
            self.rt.delete(cid, force=force)
        except ContainerNotFound:
            pass

    def state(self, cid: str) -> dict | None:
        try:
            return self.rt.state(cid)
        except PalletError:
            return None

    def pause(self, cid: str) -> None:
        self.rt.pause(cid)

    def resume(self, cid: str) -> None:
        self.rt.resume(cid)

    def update(self, cid: str, resources: dict) -> None:
        self.rt.update(cid, resources)

    def exec_in(self, cid: str, process: dict, *, tty: bool, interactive: bool, detach: bool,
                scratch: Path | None = None) -> int:
        """Foreground (or -d) exec from the CLI process; -t proxies a pty between the terminal and the process."""
        stdin = 0 if (interactive or tty) else os.open(os.devnull, os.O_RDONLY)
        try:
            if not tty:
                try:
                    code = self.rt.exec(cid, process, detach=detach, stdio=(stdin, 1, 2))
                    return 0 if detach else code
                except RuntimeFailure as e:
                    raise classify(e.message) from None
            return _exec_tty(self.rt, cid, process, detach=detach)
        finally:
            if stdin != 0:
                os.close(stdin)


def _exec_tty(rt, cid: str, process: dict, *, detach: bool) -> int:
    import threading

    from pallet.engine.consolesock import ConsoleSocket

    cs = ConsoleSocket()
    result: dict = {}

    def run() -> None:
        try:
            result["code"] = rt.exec(cid, process, console_socket=cs.path, detach=detach)
        except BaseException as e:  # noqa: BLE001
            result["err"] = e

    runner = threading.Thread(target=run, daemon=True)
    runner.start()
    fd, err = cs.wait(10)
    cs.close()
    if fd is None:
        runner.join(5)
        if "err" in result and isinstance(result["err"], RuntimeFailure):
            raise classify(result["err"].message)
        raise PalletError(f"exec: no terminal from the runtime ({err})")
    master = fd
    if detach:
        runner.join()
        os.close(master)
        return 0
    _pump_pty(master, lambda: not runner.is_alive())
    runner.join()
    os.close(master)
    if "err" in result:
        e = result["err"]
        if isinstance(e, RuntimeFailure):
            raise classify(e.message)
        raise e
    return result["code"]


def _pump_pty(master: int, done) -> None:
    import selectors
    import signal
    import struct

    from pallet.engine.attach import winsize

    saved = None
    if os.isatty(0):
        import fcntl
        import termios
        import tty

        saved = termios.tcgetattr(0)
        tty.setraw(0)

        def on_winch(*_a) -> None:
            ws = winsize(0)
            if ws:
                fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", ws[0], ws[1], 0, 0))

        signal.signal(signal.SIGWINCH, on_winch)
        on_winch()
    sel = selectors.DefaultSelector()
    sel.register(master, selectors.EVENT_READ, "m")
    stdin_open = True
    try:
        sel.register(0, selectors.EVENT_READ, "i")
    except (ValueError, OSError):
        stdin_open = False
    try:
        while True:
            for key, _ in sel.select(0.2):
                if key.data == "m":
                    try:
                        data = os.read(master, 65536)
                    except OSError:
                        data = b""
                    if not data:
                        return
                    os.write(1, data)
                elif stdin_open:
                    data = os.read(0, 65536)
                    if not data:
                        sel.unregister(0)
                        stdin_open = False
                        continue
                    os.write(master, data)
            if done():
                # drain what is left
                try:
                    while True:
                        data = os.read(master, 65536)
                        if not data:
                            break
                        os.write(1, data)
                except OSError:
                    pass
                return
    finally:
        if saved is not None:
            import termios

            termios.tcsetattr(0, termios.TCSADRAIN, saved)
