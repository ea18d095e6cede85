"""Unpacking a layer while the store writes its blob, before its chain id is known.

`pallet load` (`pallet.store.ingest`) streams every blob of an archive into a
temp file of the blob store, hashing it. For a blob that looks like a layer it
starts a `StagedUnpack`: a forked process that reads that same temp file as it
grows (the writer says how many bytes are valid after each chunk it wrote, on a
pipe) and runs `apply_layer` over it -- decompress, hash the diff id, untar --
into a staging dir of its own. Which diff id and chain id the layer must have
is only known from the image config, which may come later in the archive (and
a blob may turn out to be no layer at all), so the unpacked tree waits,
unpublished, until the store has checked and registered the image:

    s = StagedUnpack(writer.tmp_path, media_type, staging_dir)
    ... writer.write(chunk); writer.flush(); s.grown(writer.size) ...
    s.end(writer.size)
    r = s.wait()                                  # LayerResult (digest ''), or None: `s.error`
    s.publish(snaps, chain_id, parent, digest)    # rename into <root>/layers/<chain>, as a pull does
    s.discard()                                   # anything not published: kill, remove

Why a process per layer that reads the file rather than a pipe of the bytes:
untarring is Python code holding the GIL, and a pipe (1 MB at most) would tie
the archive reader to the slowest unpacker, so layers would unpack one after
the other. Reading the blob's own temp file (from the page cache) lets the
reader go on to the next layer while earlier ones are still unpacking, on
every core. The bytes unpacked are the bytes the blob writer hashed: the file
is the store's own temp file, and only what the writer flushed is read.

If the writer dies, the progress pipe closes before the end was announced:
the child's unpack sees a truncated stream, fails and removes its staging dir.
Forking is only safe from a single-threaded process: the caller checks.
"""

from __future__ import annotations

import os
import shutil
import struct
from functools import partial

from pallet.errors import InvalidArchive, PalletError
from pallet.layers.forked import ForkedWorker
from pallet.layers.stream import CHUNK, LayerResult

_NOTE = struct.Struct("<q")   # n >= 0: the first n bytes are valid; n < 0: the blob ends at -n - 1


class StagedUnpack:
    """A layer unpacked by a forked process from a blob file being written; see the module docstring."""

    def __init__(self, path: str, media_type: str, staging_dir: str, *, what: str = "layer") -> None:
        from pallet.layers.snapshots import mark_topdir

        mark_topdir(staging_dir)   # each layer tree in an ext4 block group of its own (see there)
        self.dir = os.path.join(staging_dir, f"unpack-{os.urandom(12).hex()}")
        self.published = False
        self.error: PalletError | None = None
        self._result: LayerResult | None = None
        src = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        fds = [src]
        try:
            note_r, note_w = os.pipe()
            fds += [note_r, note_w]
            # the child: unpack from `src` as far as the notes on note_r allow
            self._worker = ForkedWorker(partial(_child, src, note_r, self.dir, media_type, what), (src, note_r))
        except OSError:
            for fd in fds:
                os.close(fd)
            raise
        for fd in (src, note_r):
            os.close(fd)
        os.set_blocking(note_w, False)
        self.pid = self._worker.pid
        self._w: int | None = note_w

    # ---- the writer's side -----------------------------------------------------------------
    def grown(self, size: int) -> None:
        """The blob file now holds `size` valid bytes."""
        if self._w is None:
            return
        try:
            os.write(self._w, _NOTE.pack(size))
        except BlockingIOError:
            pass   # the child is far behind; a later note says more
        except BrokenPipeError:
            self._close_w()   # the child gave up; wait() tells why

    def end(self, size: int) -> None:
        """The blob is complete at `size` bytes."""
        if self._w is None:
            return
        os.set_blocking(self._w, True)
        try:
            os.write(self._w, _NOTE.pack(-size - 1))
        except BrokenPipeError:
            pass
        self._close_w()

    def _close_w(self) -> None:
        if self._w is not None:
            os.close(self._w)
            self._w = None

    # ---- results ---------------------------------------------------------------------------
    def fileno(self) -> int:
        """Readable (at EOF) once the child has finished: for select()."""
        return self._worker.fd

    @property
    def running(self) -> bool:
        return not self._worker.done

    def wait(self) -> LayerResult | None:
        """The unpack's result (its `digest` is ''), or None when it failed (`self.error` says why)."""
        if not self._worker.done:
            self._collect()
        return self._result

    def _collect(self) -> None:
        self._close_w()
        res = self._worker.collect()
        if "result" in res:
            self._result = LayerResult(**res["result"])
        else:
            self.error = PalletError(res.get("message") or "the layer unpack process failed")

    def publish(self, snaps, chain_id: str, parent: str | None, digest: str) -> bool:
        """Move the unpacked layer into `snaps` under `chain_id` (blob `digest`); False when it failed.

        When the chain id is there already (another unpacker won), this copy is dropped."""
        r = self.wait()
        if r is None or self.published:
            return False
        try:
            snaps._publish(self.dir, chain_id, parent, {**r.__dict__, "digest": digest})
            self.published = True
            return True
        except (OSError, PalletError):
            return False
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def discard(self) -> None:
        """Stop the child (if it still runs) and remove what it unpacked, unless published."""
        if not self._worker.done:
            self._close_w()
            self._worker.kill()
            self._collect()
        if not self.published:
            shutil.rmtree(self.dir, ignore_errors=True)


def _grown(src: int, note_r: int):
    """The blob's bytes, as the writer declares them valid."""
    off = avail = 0
    end = False
    pending = b""
    while True:
        while off < avail:
            b = os.pread(src, min(CHUNK, avail - off), off)
            if not b:
                raise InvalidArchive("the layer's blob file is shorter than its writer said")
            off += len(b)
            yield b
        if end:
            return
        data = os.read(note_r, 65536)
        if not data:
            raise InvalidArchive("the layer's data stopped before its end (the writer went away)")
        pending += data
        n = len(pending) - len(pending) % _NOTE.size
        for (v,) in _NOTE.iter_unpack(pending[:n]):
            if v < 0:
                avail, end = -v - 1, True
            elif not end:
                avail = max(avail, v)
        pending = pending[n:]


def _child(src: int, note_r: int, staging: str, media_type: str, what: str) -> dict:
    from pallet.layers.stream import apply_layer

    try:
        os.mkdir(staging)
        os.mkdir(staging + "/diff")
        # the blob writer hashes the blob: only the diff id is computed here
        r = apply_layer(_grown(src, note_r), staging + "/diff", media_type, what=what, hash_blob=False)
        return {"result": r.__dict__}
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise   # reported to the parent by ForkedWorker
