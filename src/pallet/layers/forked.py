"""A layer worker in a forked process that reports one JSON result on a pipe.

Shared by `pallet.layers.staged` (load: unpack from a blob file as it grows) and
`pallet.registry.client.unpack` (pull: unpack what a download thread pipes in).
The caller makes the pipes/fds its child reads from and passes them as `keep`;
`ForkedWorker` forks, and in the child closes every other fd, runs `body` and
writes what it returned -- or the exception it raised, as {"type", "message"} --
to the result pipe. The parent reads that back with `collect()`.

Forking is only safe from a single-threaded process: the callers see to that.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable


class ForkedWorker:
    """`body()` run in a forked child; its dict result (or error) comes back from `collect()`."""

    def __init__(self, body: Callable[[], dict], keep: tuple[int, ...]) -> None:
        from pallet.linux.proc import fork

        res_r, res_w = os.pipe()
        try:
            pid = fork()
        except OSError:
            os.close(res_r)
            os.close(res_w)
            raise
        if pid == 0:  # the child: run body with only `keep` and res_w open, report on res_w
            code = 1
            try:
                close_all_but(*keep, res_w)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                code = _run(body, res_w)
            finally:
                os._exit(code)
        os.close(res_w)
        self.pid = pid
        self.fd = res_r   # readable (at EOF) once the child has finished
        self.done = False

    def collect(self) -> dict:
        """Read the child's report, reap it: its dict, or {} when it reported nothing readable."""
        chunks = []
        while True:
            b = os.read(self.fd, 65536)
            if not b:
                break
            chunks.append(b)
        os.close(self.fd)
        os.waitpid(self.pid, 0)
        self.done = True
        try:
            return json.loads(b"".join(chunks) or b"{}")
        except ValueError:
            return {}

    def kill(self) -> None:
        """SIGKILL the child (if it is still there); `collect()` still has to reap it."""
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def close_all_but(*keep: int) -> None:
    """Close every fd above 2 but `keep`: an inherited write end of another layer's pipe would
    keep that layer's process from seeing its writer go away, an inherited lock fd would
    keep the store's lock alive."""
    lo = 3
    for fd in sorted(keep):
        os.closerange(lo, fd)
        lo = fd + 1
    os.closerange(lo, _max_fd())


def _max_fd() -> int:
    try:
        return max(int(x) for x in os.listdir("/proc/self/fd")) + 1
    except (OSError, ValueError):
        return os.sysconf("SC_OPEN_MAX")


def _run(body: Callable[[], dict], res_w: int) -> int:
    try:
        out = body()
        code = 0
    except BaseException as e:  # noqa: BLE001 - reported to the parent
        out = {"type": type(e).__name__, "message": getattr(e, "message", None) or str(e) or type(e).__name__}
        code = 1
    data = json.dumps(out).encode()
    while data:
        data = data[os.write(res_w, data):]
    os.close(res_w)
    return code
