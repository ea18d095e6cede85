"""`run` as engine calls: `Engine.run` (create, then start attached or not) for a caller that runs
threads (a daemon), and the early-fork fast path of a single-threaded one (the CLI):

    pre = running.prefork(lambda: Engine(store(), runroot), network=False)  # the monitor, forked now
    c = eng.create(opts)                     # meanwhile the monitor imports what it needs
    pre.go(eng, c, winsize=ws)               # "G": its container
    sock = pre.started(eng, c, opts)         # "S" (running) or the start error; `sock` is attached

The monitor is forked before the store is opened (no SQLite state may cross a fork). If creating
fails, `pre.close()` ends it (EOF before "G": nothing to undo) and `abandon` takes back what was
created. The protocol is `monitor.preforked`'s (docs/engine.md).
"""

from __future__ import annotations

from pallet.errors import PalletError


def prefork(make_engine, network: bool | str):
    """Fork the monitor of a container not created yet (it never returns in the child); `network`: it
    will join a network (the monitor imports the network layer meanwhile), "ports": and publish ports
    (the monitor loads libnftables too)."""
    import _socket  # `socket` (enums, selectors) is imported after the fork, by whoever needs it

    from pallet.linux.proc import fork

    ours, theirs = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)
    if fork("monitor") == 0:
        from pallet.engine.monitor import preforked

        ours.close()
        preforked(make_engine, theirs, network)   # never returns
    return Prefork(ours, theirs)


class Prefork:
    """The starter's side of a preforked monitor."""

    def __init__(self, ours, theirs) -> None:
        self.ours, self.theirs = ours, theirs

    def go(self, engine, c, *, winsize: tuple[int, int] | None = None, **extra) -> None:
        """Hand the created container to the monitor ("G" + its id, the terminal's size, the mounted
        rootfs, and `extra`: what else the monitor is told, e.g. a trace's handoff)."""
        from pallet import jsonfast  # (after the fork: `pallet run` imports nothing before it but the parser)

        engine.run_dir(c.id).mkdir(parents=True, exist_ok=True)
        self.theirs.close()
        self.ours.send(b"G" + jsonfast.dumps({"id": c.id, "winsize": winsize, "rootfs": c.extra.get("rootfs"),
                                               **extra}).encode())

    def close(self) -> None:
        """Creating failed: the monitor sees EOF instead of "G" and ends with nothing to undo."""
        self.ours.close()
        self.theirs.close()

    def started(self, engine, c, opts):
        """Wait for the monitor's "S" (the container runs) and return the socket, a bare `_socket.socket`
        (`socket` is not imported for a detached run): the attach stream of a foreground run
        (`socket.socket(fileno=sock.detach())` for `engine.attach`), else the caller closes it. Its "E"
        raises the start error (the monitor recorded it and unmounted); its silent death raises one
        line and takes back the container."""
        first = self.ours.recv(65536)
        if first[:1] == b"S":
            return self.ours
        self.ours.close()
        said = first[:1] == b"E"
        if opts.host_options.AutoRemove or not said:   # else nobody else cleans up
            abandon(engine, c, opts)
        if not said:
            raise PalletError(f"container {c.name} failed to start (its monitor exited)")
        from pallet.engine.lifecycle import raise_start_error

        raise_start_error(first[1:])


def abandon(engine, c, opts) -> None:
    """A container `run` created that did not start: removed with --rm, else (no monitor got it) left
    Created with its snapshot unmounted, as a failed start leaves it."""
    try:
        if opts.host_options.AutoRemove:
            engine.remove(engine.get(c.id), force=True)
        else:
            engine.start_failed(c, "its monitor was not started", None)
    except Exception:  # noqa: BLE001 - the original error is the one to report
        pass


class Runs:
    """Engine methods (a mixin of `core.Engine`)."""

    def run(self, opts, *, winsize: tuple[int, int] | None = None):
        """docker's `run` in one call: create the container, then start it; returns (container, the
        attach socket or None with `opts.detach`): attached since before the container started, so no
        output is missed (`engine.attach` reads and writes it). A start failure removes a --rm
        container and raises."""
        c = self.create(opts)
        try:
            sock = self.start(c, attach=not opts.detach, winsize=winsize)
        except BaseException:
            if opts.host_options.AutoRemove:
                abandon(self, c, opts)
            raise
        return self.get(c.id), sock
