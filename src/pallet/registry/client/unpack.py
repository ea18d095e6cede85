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
import os
from functools import partial

from pallet import errors
from pallet.layers.forked import ForkedWorker

F_SETPIPE_SZ = 1031
PIPE_SIZE = 1 << 20


class ForkedUnpack:
    """Same interface as the in-process targets of `pull`: feed(bytes), finish() -> (diff_id, size), abort()."""

    def __init__(self, snaps, chain_id: str, parent: str | None, media_type: str, digest: str,
                 diff_id: str) -> None:
        data_r, data_w = os.pipe()
        try:
            fcntl.fcntl(data_w, F_SETPIPE_SZ, PIPE_SIZE)
        except OSError:
            pass
        # the child: unpack what arrives on data_r; only that pipe end is kept open in it (an
        # inherited write end of another layer's pipe would keep that layer's process from ever
        # seeing the end of its stream)
        self._worker = ForkedWorker(partial(_child, snaps, chain_id, parent, media_type, digest, diff_id, data_r),
                                    (data_r,))
        os.close(data_r)
        self.pid = self._worker.pid
        self._w: int | None = data_w

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

    def _result_error(self) -> errors.PalletError:
        return _error(self._worker.collect())

    def finish(self) -> tuple[str, int]:
        self._w_close()
        res = self._worker.collect()
        if "diff_id" not in res:
            raise _error(res)
        return res["diff_id"], int(res["size"])

    def abort(self) -> None:
        if self._worker.done:
            return
        self._w_close()
        self._worker.kill()
        self._worker.collect()


def _error(res: dict) -> errors.PalletError:
    cls = getattr(errors, res.get("type", ""), None)
    if not (isinstance(cls, type) and issubclass(cls, errors.PalletError)):
        cls = errors.PalletError
    return cls(res.get("message") or "the layer unpack process failed")


def _child(snaps, chain_id, parent, media_type, digest, diff_id, data_r: int) -> dict:
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
        return {"diff_id": r.diff_id, "size": r.size}
    except BaseException:
        if pending is not None:
            try:
                pending.abort()
            except BaseException:  # noqa: BLE001
                pass
        raise   # reported to the parent by ForkedWorker
