"""The monitor: one process per running container, conmon's role.

Forked from the CLI (no exec), it leaves the CLI's session, makes itself a child
subreaper, asks the runtime to create and start the container (so the
container's init is its child), then:

- copies the container's stdout/stderr (pipes, or a pty master with -t) into
  the json-file log and to every attached client;
- serves an attach socket (`<runroot>/containers/<id>/attach`, SOCK_SEQPACKET):
  clients send stdin, stdin-EOF, window sizes and signals to forward;
- when init exits: records exit code (128+N for a signal), finish time and
  OOM kill in the database, deletes the runtime's state, unmounts the
  snapshot, applies --rm, tells the clients the code, and exits.

Wire format (one message per datagram; first byte is the type):
  monitor -> client: b"1"+data stdout, b"2"+data stderr, b"S"+json started, b"E"+json failed, b"X"+json exited
  client -> monitor: b"0"+data stdin, b"C" close stdin, b"W"+rows,cols (2x u16), b"K"+signal number (ascii)

Debugging: the monitor's stderr is `<runroot>/containers/<id>/monitor.log`; PALLET_TRACE_MONITOR=1 adds
phase timings there, PALLET_PROFILE_MONITOR=FILE dumps a cProfile of the monitor.
"""

from __future__ import annotations

import errno
import os
import selectors
import signal
import socket
import struct
import time
from pathlib import Path

from pallet import jsonfast, long_lived
from pallet.engine import exitwatch

CHUNK = 32 * 1024
LOG_MAX_SIZE = 10 * 1024 * 1024
LOG_MAX_FILES = 2


class JsonLog:
    """docker's json-file driver: one {"log","stream","time"} object per line, size-rotated."""

    def __init__(self, path: Path, max_size: int = LOG_MAX_SIZE, max_files: int = LOG_MAX_FILES) -> None:
        self.path = path
        self.max_size = max_size
        self.max_files = max_files
        self.f = open(path, "ab", buffering=0)
        self.size = self.f.tell()
        self.partial = {"stdout": b"", "stderr": b""}

    def _emit(self, stream: str, data: bytes) -> None:
        from pallet.engine.model import rfc3339

        line = jsonfast.dumps({"log": data.decode("utf-8", "replace"), "stream": stream,
                               "time": rfc3339(time.time())}, ensure_ascii=False).encode() + b"\n"
        if self.size + len(line) > self.max_size and self.size > 0:
            self.rotate()
        self.f.write(line)
        self.size += len(line)

    def rotate(self) -> None:
        self.f.close()
        for i in range(self.max_files - 1, 0, -1):
            src = self.path.with_name(self.path.name + (f".{i - 1}" if i > 1 else ""))
            if src.exists():
                os.replace(src, self.path.with_name(self.path.name + f".{i}"))
        if self.max_files <= 1:
            self.path.unlink(missing_ok=True)
        self.f = open(self.path, "ab", buffering=0)
        self.size = 0

    def write(self, stream: str, data: bytes) -> None:
        buf = self.partial[stream] + data
        while True:
            i = buf.find(b"\n")
            if i < 0:
                break
            self._emit(stream, buf[: i + 1])
            buf = buf[i + 1:]
        if len(buf) >= 16 * 1024:
            self._emit(stream, buf)
            buf = b""
        self.partial[stream] = buf

    def flush(self) -> None:
        for stream, buf in self.partial.items():
            if buf:
                self._emit(stream, buf)
                self.partial[stream] = b""

    def close(self) -> None:
        self.flush()
        self.f.close()


def bind_unix(sock: socket.socket, path: Path) -> None:
    """bind() even when the path is longer than sun_path allows, through /proc/self/fd of its directory."""
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    if len(str(path)) < 100:
        sock.bind(str(path))
        return
    dfd = os.open(path.parent, os.O_PATH | os.O_DIRECTORY)
    try:
        sock.bind(f"/proc/self/fd/{dfd}/{path.name}")
    finally:
        os.close(dfd)


def connect_unix(sock: socket.socket, path: Path) -> None:
    if len(str(path)) < 100:
        sock.connect(str(path))
        return
    dfd = os.open(path.parent, os.O_PATH | os.O_DIRECTORY)
    try:
        sock.connect(f"/proc/self/fd/{dfd}/{path.name}")
    finally:
        os.close(dfd)


def _send(sock: socket.socket, msg: bytes) -> bool:
    try:
        sock.send(msg)
        return True
    except OSError:
        return False


_T0 = time.monotonic()


def kstage(name: str) -> None:
    """The stage of the kernel trace (`pallet run --trace`) the following calls belong to."""
    from pallet.linux import trace as T

    T.stage(name)


def _trace(what: str) -> None:
    if os.environ.get("PALLET_TRACE_MONITOR"):
        os.write(2, f"{(time.monotonic() - _T0) * 1000:8.1f} ms {what}\n".encode())


class Monitor:
    def __init__(self, engine, container, sync: socket.socket | None) -> None:
        self.engine = engine
        self.c = container
        self.sync = sync
        self.clients: list[socket.socket] = []
        self.sel = selectors.DefaultSelector()
        self.stdin_w: int | None = None
        self.master: int | None = None
        self.init_pid: int | None = None
        self.status: int | None = None
        self.outputs: dict[int, str] = {}
        self.exit_fd: int | None = None   # engine.exitwatch: held while the container runs

    # -- set-up ---------------------------------------------------------------------------------
    def run(self) -> int:
        try:
            self._setup_and_start()
        except BaseException as e:  # noqa: BLE001 - report any failure to the starter, then exit
            from pallet.errors import PalletError

            long_lived()   # (a restart policy may keep this process trying)

            code = e.exit_code if isinstance(e, PalletError) else 125
            msg = e.message if isinstance(e, PalletError) else f"{type(e).__name__}: {e}"
            try:
                self.engine.start_failed(self.c, msg, self.init_pid)
            finally:
                self._fire_exit()
                if self.sync is not None:
                    _send(self.sync, b"E" + jsonfast.dumps({"message": msg, "code": code}).encode())
            return code
        return self._loop()

    def _setup_and_start(self) -> None:
        from pallet.linux.prctl import set_child_subreaper

        set_child_subreaper()
        _trace("monitor up")
        c, eng = self.c, self.engine
        rundir = eng.run_dir(c.id)
        rundir.mkdir(parents=True, exist_ok=True)
        # SIGCHLD -> wake-up pipe; the loop reaps
        self.wake_r, self.wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(self.wake_w, warn_on_full_buffer=False)
        signal.signal(signal.SIGCHLD, lambda *a: None)
        for s in (signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU):
            signal.signal(s, signal.SIG_IGN)
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
        bind_unix(self.listener, rundir / "attach")
        self.listener.listen(16)
        self.listener.setblocking(False)

        self.log = JsonLog(eng.log_path(c.id))
        _trace("setup")
        rt = eng.runtime(c.runtime)
        kstage("bundle")
        bundle = eng.prepare_bundle(c, c.extra.pop("rootfs", None))   # (set by `pallet run`: first start only)
        kstage("runtime create")
        _trace("bundle")
        pid_file = rundir / "pidfile"
        pid_file.unlink(missing_ok=True)
        tty = bool(c.Config.get("Tty"))
        open_stdin = bool(c.Config.get("OpenStdin"))
        child_fds: list[int] = []
        if tty:
            from pallet.engine.consolesock import ConsoleSocket

            cs = ConsoleSocket()
            try:
                devnull = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
                child_fds.append(devnull)
                self.init_pid = rt.create(c.id, bundle, pid_file=pid_file, console_socket=cs.path,
                                          stdio=(devnull, devnull, devnull), log=rundir / "runtime.log")
                fd, err = cs.wait(10)
                if fd is None:
                    raise RuntimeError(f"the runtime sent no terminal: {err}")
                self.master = fd
                os.set_inheritable(self.master, False)
            finally:
                cs.close()
            rows, cols = c.extra.get("winsize", (0, 0)) if c.extra else (0, 0)
            if rows and cols:
                self._resize(rows, cols)
            os.set_blocking(self.master, False)
            self.outputs[self.master] = "stdout"
            self.sel.register(self.master, selectors.EVENT_READ, "out")
        else:
            out_r, out_w = os.pipe2(os.O_CLOEXEC)
            err_r, err_w = os.pipe2(os.O_CLOEXEC)
            if open_stdin:
                in_r, in_w = os.pipe2(os.O_CLOEXEC)
                self.stdin_w = in_w
            else:
                in_r = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
            child_fds += [in_r, out_w, err_w]
            self.init_pid = rt.create(c.id, bundle, pid_file=pid_file, stdio=(in_r, out_w, err_w),
                                      log=rundir / "runtime.log")
            for fd, stream in ((out_r, "stdout"), (err_r, "stderr")):
                os.set_blocking(fd, False)
                self.outputs[fd] = stream
                self.sel.register(fd, selectors.EVENT_READ, "out")
        for fd in child_fds:
            os.close(fd)
        _trace("created")
        kstage("network")
        eng.network_up(c, self.init_pid)    # (nothing for none/host: pallet.network is not imported)
        _trace("network")
        kstage("start")
        rt.start(c.id)
        _trace("started")
        self._write_trace(complete=False)
        self.exit_fd = exitwatch.hold(rundir)
        eng.mark_running(self.c, self.init_pid, rt.init_starttime)
        _trace("marked running")
        self.sel.register(self.wake_r, selectors.EVENT_READ, "wake")
        self.sel.register(self.listener, selectors.EVENT_READ, "listen")
        if self.sync is not None:
            self._add_client(self.sync)
            _send(self.sync, b"S" + jsonfast.dumps({"pid": self.init_pid, "id": c.id}).encode())
        long_lived()

    def _fire_exit(self) -> None:
        if self.exit_fd is not None:
            os.close(self.exit_fd)
            self.exit_fd = None

    # -- the loop -------------------------------------------------------------------------------
    def _add_client(self, s: socket.socket) -> None:
        s.setblocking(True)
        s.settimeout(5)   # a stuck client must not stall the container's output forever
        self.clients.append(s)
        self.sel.register(s, selectors.EVENT_READ, "client")

    def _drop_client(self, s: socket.socket) -> None:
        if s in self.clients:
            self.clients.remove(s)
            try:
                self.sel.unregister(s)
            except (KeyError, ValueError):
                pass
            s.close()
            if self.stdin_w is not None and self.c.Config.get("StdinOnce") and not self.c.Config.get("Tty"):
                self._close_stdin()

    def _close_stdin(self) -> None:
        if self.stdin_w is not None:
            os.close(self.stdin_w)
            self.stdin_w = None

    def _resize(self, rows: int, cols: int) -> None:
        import fcntl
        import termios

        if self.master is not None:
            try:
                fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
            except OSError:
                pass

    def _broadcast(self, msg: bytes) -> None:
        for s in list(self.clients):
            if not _send(s, msg):
                self._drop_client(s)

    def _read_output(self, fd: int) -> bool:
        try:
            data = os.read(fd, CHUNK)
        except BlockingIOError:
            return True
        except OSError as e:
            if e.errno != errno.EIO:  # EIO: the pty's last slave closed
                raise
            data = b""
        if not data:
            self.sel.unregister(fd)
            del self.outputs[fd]
            if fd != self.master:
                os.close(fd)
            return False
        stream = self.outputs[fd]
        self.log.write(stream, data)
        self._broadcast((b"1" if stream == "stdout" else b"2") + data)
        return True

    def _client_msg(self, s: socket.socket) -> None:
        try:
            msg = s.recv(CHUNK + 1)
        except OSError:
            msg = b""
        if not msg:
            self._drop_client(s)
            return
        kind, body = msg[:1], msg[1:]
        if kind == b"0":
            target = self.master if self.master is not None else self.stdin_w
            if target is not None:
                try:
                    os.set_blocking(target, True)
                    os.write(target, body)
                    if target == self.master:
                        os.set_blocking(target, False)
                except OSError:
                    pass
        elif kind == b"C":
            if self.master is not None:
                try:
                    os.write(self.master, b"\x04")
                except OSError:
                    pass
            else:
                self._close_stdin()
        elif kind == b"W" and len(body) == 4:
            rows, cols = struct.unpack("HH", body)
            self._resize(rows, cols)
        elif kind == b"K":
            try:
                os.kill(self.init_pid, int(body))
            except (ValueError, OSError):
                pass

    def _reap(self) -> None:
        while True:
            try:
                pid, st = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid == self.init_pid:
                self.status = st

    def _loop(self) -> int:
        self._reap()
        deadline = None
        while True:
            if self.status is not None:
                if not self.outputs:
                    break
                if deadline is None:
                    deadline = time.monotonic() + 2.0   # orphans holding the pipes: do not wait forever
                elif time.monotonic() > deadline:
                    break
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            for key, _ in self.sel.select(timeout):
                what = key.data
                if what == "out":
                    self._read_output(key.fd)
                elif what == "wake":
                    try:
                        while os.read(self.wake_r, 512):
                            pass
                    except BlockingIOError:
                        pass
                    self._reap()
                elif what == "listen":
                    try:
                        conn, _ = self.listener.accept()
                    except OSError:
                        continue
                    self._add_client(conn)
                elif what == "client":
                    self._client_msg(key.fileobj)
        return self._finish()

    def _finish(self) -> int:
        _trace("init exited, output drained")
        kstage("teardown")
        st = self.status
        if os.WIFEXITED(st):
            code = os.WEXITSTATUS(st)
        elif os.WIFSIGNALED(st):
            code = 128 + os.WTERMSIG(st)
        else:
            code = 255
        try:
            self.listener.close()
            (self.engine.run_dir(self.c.id) / "attach").unlink(missing_ok=True)
        except OSError:
            pass
        self.log.close()
        told = []

        def notify(removed: bool) -> None:
            _trace("settled")
            told.append(True)
            kstage("teardown")
            self._write_trace(complete=False, at_exit=True)
            self._fire_exit()   # the row has the exit: waiters (stop, wait, rm -f) go on
            self._broadcast(b"X" + jsonfast.dumps({"code": code, "removed": removed}).encode())
            for s in list(self.clients):
                self._drop_client(s)

        try:
            self.engine.container_exited(self.c, code, notify)
        finally:
            _trace("cleaned up")
            if not told:
                notify(False)
            self._write_trace(complete=True)
        return code

    def _write_trace(self, *, complete: bool, at_exit: bool = False) -> None:
        """`pallet run --trace`: the records so far, written where the CLI said (c.extra["trace"]). A
        file the CLI prints and removes at the exit (`--rm --trace`) is written only then."""
        from pallet.linux import trace as T

        meta = (self.c.extra or {}).get("trace")
        if T.recorder is None or not meta:
            return
        meta["records"] = meta.get("records", []) + T.recorder.take()
        c = self.c
        doc_meta = {"container": {"id": c.id, "name": c.name, "image": c.Config.get("Image")}, "runtime": c.runtime,
                    "t0_ns": meta.get("t0_ns"), "complete": complete, "unseen": meta.get("unseen")}
        try:
            if complete:   # the run's time per stage, for `pallet explain run --cost`
                T.record_costs(str(self.engine.root), T.document(meta["records"], doc_meta))
            if meta.get("done") or (meta.get("at_exit_only") and not at_exit):
                return
            if complete or meta.get("at_exit_only"):
                meta["done"] = True
            T.write(meta["path"], meta["records"], doc_meta)
        except OSError as e:
            os.write(2, f"trace: cannot write {meta['path']}: {e}\n".encode())


def spawn(engine, container, *, sync: socket.socket | None) -> int:
    """Fork the monitor and return its pid at once.

    One fork, no exec: the child leaves our session (setsid) so the terminal's signals and hang-up
    do not reach it, and outlives us (reparented to init or the nearest subreaper when we exit).
    A long-lived caller must reap it (a short-lived CLI need not).
    """
    import sys

    if "threading" in sys.modules:
        import threading

        if threading.active_count() > 1:
            return spawn_exec(engine, container, sync=sync)
    global _T0
    _T0 = time.monotonic()
    engine.before_fork()
    from pallet.linux.proc import fork

    pid = fork("monitor")
    if pid:
        engine.after_fork_parent()
        return pid
    code = 125
    try:
        _detach(sync.fileno() if sync is not None else -1)
        _log_to(engine, container.id)
        engine.after_fork()
        code = _supervise(engine, container, sync)
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        os._exit(code & 0xFF)


def spawn_exec(engine, container, *, sync: socket.socket | None) -> int:
    """The monitor as a new program (`python -m pallet.engine.monitorproc`), for a caller that runs threads.

    Forking a threaded process copies locks other threads may hold (the sqlite connection's, the
    allocator's, logging's); subprocess forks and execs at once, in C, so the monitor starts from a
    clean interpreter and opens its own engine. It leaves our session as the forked one does. The
    caller must reap it (returned: its pid)."""
    import subprocess
    import sys

    fd = sync.fileno() if sync is not None else -1
    argv = [sys.executable, "-m", "pallet.engine.monitorproc", str(engine.root), str(engine.runroot),
            engine.storage_driver or "", container.id, str(fd),
            jsonfast.dumps({k: container.extra[k] for k in ("winsize", "rootfs") if container.extra.get(k)})]
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         pass_fds=(fd,) if fd >= 0 else (), start_new_session=True)
    return p.pid


def preforked(make_engine, sync, network: bool = False) -> None:
    """The monitor of `pallet run`, forked before the container exists (never returns).

    `pallet run` forks first and creates the container afterwards: meanwhile this process, on the
    other CPU, imports what a monitor needs to start a container and opens its own database connection
    (so the CLI's is never the last one: closing it does not checkpoint the WAL). Then it waits on
    `sync` for b"G" + {"id", "winsize", "rootfs"}; EOF instead (the CLI failed to create the container)
    ends it quietly, with nothing to undo. Then it is the monitor `spawn` starts. `network`: the
    container will join a network, so the network layer is imported here too; "ports": it publishes
    ports, so libnftables is loaded too (without, its firewall is not touched: 2.5 ms saved).
    """
    global _T0
    _T0 = time.monotonic()
    code = 0
    try:
        sync = socket.socket(fileno=sync.detach())  # (the CLI made the pair with _socket)
        _detach(sync.fileno())
        engine = make_engine()
        _warm_up()
        if network:
            _warm_up_network(firewall=network == "ports")
        warmed = (time.monotonic() - _T0) * 1000
        msg = sync.recv(65536)
        if msg[:1] != b"G":
            return
        info = jsonfast.loads(msg[1:])
        code = 125
        _log_to(engine, info["id"])
        _trace(f"go (warmed up at {warmed:.1f} ms)")
        container = engine.get(info["id"])
        for key in ("winsize", "rootfs"):
            if info.get(key):
                container.extra[key] = info[key]
        if info.get("trace"):   # `pallet run --trace`: the CLI's records so far, and where the trace goes
            from pallet.linux import trace as T

            T.start("monitor", "bundle")
            container.extra["trace"] = info["trace"]
        code = _supervise(engine, container, sync)
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        os._exit(code & 0xFF)


def _warm_up() -> None:
    """Import (and load) what starting a container will need, while the CLI is busy creating it."""
    from pallet.engine import health, hostconfig, limits, restart, spec, users, volumes  # noqa: F401
    from pallet.engine.palletrt import PalletRuntime  # noqa: F401
    from pallet.linux import cgroups, seccomp  # noqa: F401
    from pallet.runtime import init, runtime  # noqa: F401

    cgroups.warm_up()
    try:
        from pallet.engine.seccomp import _profile

        _profile()  # docker's default profile, parsed once (cached)
        seccomp.version()  # loads libseccomp (the BPF cache's key)
    except Exception:  # noqa: BLE001 - a missing profile or library is reported where it is used
        pass


def _warm_up_network(firewall: bool = True) -> None:
    try:
        from pallet import network  # noqa: F401
        from pallet.engine import networking  # noqa: F401
        from pallet.linux import netlink
        from pallet.network import bridge, networks  # noqa: F401

        netlink.Netlink().close()   # (what its first socket needs)
        if firewall:
            from pallet.linux import nftables

            nftables.warm_up()      # libnftables loaded and its context made (2.5 ms or more)
    except Exception:  # noqa: BLE001 - reported where it is used
        pass


def _detach(keep: int) -> None:
    """A new monitor's first steps: its own session, stdio on /dev/null, every other fd but `keep` closed."""
    os.setsid()
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    if devnull > 2:
        os.close(devnull)
    if keep > 3:
        os.closerange(3, keep)
    os.closerange(max(3, keep + 1), 65536)


def _log_to(engine, cid: str) -> None:
    """The monitor's own complaints (tracebacks, PALLET_TRACE_MONITOR) go to a file beside its socket."""
    try:
        errfd = os.open(engine.run_dir(cid) / "monitor.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    except OSError:
        return
    os.dup2(errfd, 2)
    os.close(errfd)


def _supervise(engine, container, sync) -> int:
    prof = os.environ.get("PALLET_PROFILE_MONITOR")
    if prof:
        import cProfile

        pr = cProfile.Profile()
        code = pr.runcall(Monitor(engine, container, sync).run)
        pr.dump_stats(prof)
        return code
    from pallet.engine.restart import supervise

    return supervise(engine, container, sync, lambda s: Monitor(engine, container, s).run())

