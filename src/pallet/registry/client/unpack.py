"""Unpacking layers while they download, each in a process of its own.

Untarring is Python code (tar headers, one `open`/`write`/`utime` per file) that
holds the GIL; several layers unpacked by threads of one process take turns.
So the pull forks one unpack process per layer *before* it starts its download
threads (a fork from the single-threaded main thread is safe), and each
download thread pipes the layer's bytes, as they arrive, to its process, which
runs `pallet.layers` (decompress, hash, untar into the snapshots' temp dir,
verify digest and diff id, publish). The result or the error comes back as one
JSON line on a second pipe.

If the parent dies, the pipe closes early: the child's unpack sees a truncated
stream, fails, and exits without publishing anything.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal

from pallet import errors

F_SETPIPE_SZ = 1031
PIPE_SIZE = 1 << 20


class ForkedUnpack:
    """Same interface as the in-process targets of `pull`: feed(bytes), finish() -> (diff_id, size), abort()."""

    def __init__(self, snaps, chain_id: str, parent: str | None, media_type: str, digest: str,
                 diff_id: str) -> None:
        data_r, data_w = os.pipe()
        res_r, res_w = os.pipe()
        try:
            fcntl.fcntl(data_w, F_SETPIPE_SZ, PIPE_SIZE)
        except OSError:
            pass
        pid = os.fork()
        if pid == 0:  # the child: unpack what arrives on data_r, report on res_w
            code = 1
            try:
                # keep only our two pipe ends: an inherited write end of another layer's pipe would
                # keep that layer's process from ever seeing the end of its stream
                lo, hi = sorted((data_r, res_w))
                os.closerange(3, lo)
                os.closerange(lo + 1, hi)
                os.closerange(hi + 1, _max_fd())
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                code = _child(snaps, chain_id, parent, media_type, digest, diff_id, data_r, res_w)
            finally:
                os._exit(code)
        os.close(data_r)
        os.close(res_w)
        self.pid = pid
        self._w: int | None = data_w
        self._r = res_r
        self._done = False

    def feed(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                n = os.write(self._w, view)  # type: ignore[arg-type]
            except BrokenPipeError:
                self._w_close()
                raise self._result_error() from None
            view = view[n:]

    def _w_close(self) -> None:
        if self._w is not None:
            os.close(self._w)
            self._w = None

    def _collect(self) -> dict:
        chunks = []
        while True:
            b = os.read(self._r, 65536)
            if not b:
                break
            chunks.append(b)
        os.close(self._r)
        os.waitpid(self.pid, 0)
        self._done = True
        try:
            return json.loads(b"".join(chunks) or b"{}")
        except ValueError:
            return {}

    def _result_error(self) -> errors.PalletError:
        res = self._collect()
        return _error(res)

    def finish(self) -> tuple[str, int]:
        self._w_close()
        res = self._collect()
        if "diff_id" not in res:
            raise _error(res)
        return res["diff_id"], int(res["size"])

    def abort(self) -> None:
        if self._done:
            return
        self._w_close()
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self._collect()


def _max_fd() -> int:
    try:
        return max(int(x) for x in os.listdir("/proc/self/fd")) + 1
    except (OSError, ValueError):
        return os.sysconf("SC_OPEN_MAX")


def _error(res: dict) -> errors.PalletError:
    cls = getattr(errors, res.get("type", ""), None)
    if not (isinstance(cls, type) and issubclass(cls, errors.PalletError)):
        cls = errors.PalletError
    return cls(res.get("message") or "the layer unpack process failed")


def _child(snaps, chain_id, parent, media_type, digest, diff_id, data_r: int, res_w: int) -> int:
    pending = None
    try:
        pending = snaps.unpack_writer(chain_id, parent, media_type, expected_digest=digest,
                                      expected_diff_id=diff_id)
        with os.fdopen(data_r, "rb", buffering=0) as f:
            while True:
                chunk = f.read(PIPE_SIZE)
                if not chunk:
                    break
                pending.feed(chunk)
        r = pending.commit()
        out = {"diff_id": r.diff_id, "size": r.size}
        code = 0
    except BaseException as e:  # noqa: BLE001 - reported to the parent
        if pending is not None:
            try:
                pending.abort()
            except BaseException:  # noqa: BLE001
                pass
        out = {"type": type(e).__name__, "message": getattr(e, "message", None) or str(e) or type(e).__name__}
        code = 1
    data = json.dumps(out).encode()
    while data:
        data = data[os.write(res_w, data):]
    os.close(res_w)
    return code
