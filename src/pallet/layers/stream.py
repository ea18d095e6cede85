"""One pass per layer: read -> hash -> decompress -> hash -> parse tar -> write files.

`apply_layer()` pulls from a file object or an iterable of byte chunks (a
download's `iter_bytes()`); `LayerWriter` is the push-style form for a caller
that receives the bytes itself (`feed()` ... `close()`). Both return a
`LayerResult` with the blob digest and the diff id computed from the bytes as
they passed, and verify them when the caller knows what to expect.

Reading, hashing and decompressing run in a helper thread (hashlib, ISA-L and
zstd release the GIL), tar parsing and file creation in the caller's thread,
with a small bounded queue between them: the two overlap on two cores and the
memory in flight stays at a few MB.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from pallet.errors import DigestMismatch, InvalidArchive, PalletError
from pallet.layers.apply import Applier, IdMap, Mode
from pallet.layers.compression import DigestingDecoder
from pallet.layers.tarstream import TarReader

CHUNK = 1 << 18
_DONE = object()


@dataclass
class LayerResult:
    diff_id: str            # sha256 of the uncompressed tar stream
    digest: str             # sha256 of the bytes as given (the blob digest)
    compressed_size: int
    size: int               # uncompressed tar bytes
    entries: int
    warnings: list[str] = field(default_factory=list)


def _chunks_of(source: BinaryIO | Iterable[bytes], chunk: int) -> Iterator[bytes]:
    read = getattr(source, "read", None)
    if read is None:
        yield from source  # type: ignore[misc]
        return
    while True:
        b = read(chunk)
        if not b:
            return
        yield b


class _Cancelled(Exception):
    pass


def _decoded(compressed: Iterator[bytes], dec: DigestingDecoder) -> Iterator[bytes]:
    for piece in compressed:
        out = dec.feed(piece)
        if out:
            yield out
    out = dec.finish()
    if out:
        yield out


def _threaded(gen: Iterator[bytes], depth: int = 8) -> Iterator[bytes]:
    """Run `gen` in a helper thread; yield its items here. Errors are re-raised in this thread."""
    q: queue.Queue = queue.Queue(depth)
    stop = threading.Event()

    def run() -> None:
        try:
            for item in gen:
                while True:
                    if stop.is_set():
                        return
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
            q.put(_DONE)
        except BaseException as e:  # noqa: BLE001 - handed to the consumer
            q.put(e)

    t = threading.Thread(target=run, name="layer-decode", daemon=True)
    t.start()
    try:
        while True:
            item = q.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        t.join()


def apply_layer(source: BinaryIO | Iterable[bytes], dest: str | os.PathLike, media_type: str, *,
                mode: Mode = "overlay", id_map: IdMap | None = None, expected_digest: str | None = None,
                expected_diff_id: str | None = None, threaded: bool = True, what: str = "layer",
                hash_blob: bool = True, hash_diff: bool = True) -> LayerResult:
    """Unpack one layer from `source` into the existing directory `dest`; see the module docstring.

    `hash_blob=False` skips hashing the compressed bytes (for blobs the store verified when it
    wrote them; `LayerResult.digest` is then ''); `hash_diff=False` likewise the uncompressed
    stream (for layers whose diff id the store checked at load or pull).
    On any error `dest` is left half-written: callers unpack into a temp dir (`snapshots` does).
    """
    dec = DigestingDecoder(media_type, what=what, hash_compressed=hash_blob or bool(expected_digest),
                           hash_uncompressed=hash_diff or bool(expected_diff_id))
    data = _decoded(_chunks_of(source, CHUNK), dec)
    if threaded:
        data = _threaded(data)
    applier = Applier(dest, mode=mode, id_map=id_map)
    reader = TarReader(data)
    try:
        applier.apply(reader)
        applier.finish()
        reader.drain()  # the diff id covers the whole stream, padding included
    finally:
        close = getattr(data, "close", None)
        if close:
            close()
    result = LayerResult(dec.diff_id, dec.digest, dec.compressed_size, dec.size, applier.entries,
                         applier.warnings)
    if expected_digest and expected_digest != result.digest:
        raise DigestMismatch(f"{what} has digest {result.digest}, expected {expected_digest}")
    if expected_diff_id and expected_diff_id != result.diff_id:
        raise DigestMismatch(f"{what} unpacks to diff id {result.diff_id}, expected {expected_diff_id}")
    return result


class LayerWriter:
    """Push-style unpack for a caller that receives the layer bytes itself (e.g. a download loop).

        w = LayerWriter(dest, media_type, expected_digest=desc.digest)
        for chunk in response.iter_bytes():
            w.feed(chunk)
        result = w.close()          # LayerResult; raises what the unpack raised
        # on failure/cancel: w.abort()

    The unpack runs in a worker thread reading from a bounded queue, so `feed()` blocks
    when the disk falls behind (back-pressure) and raises as soon as the unpack failed.
    """

    def __init__(self, dest: str | os.PathLike, media_type: str, *, mode: Mode = "overlay",
                 id_map: IdMap | None = None, expected_digest: str | None = None,
                 expected_diff_id: str | None = None, depth: int = 16, what: str = "layer") -> None:
        self._q: queue.Queue = queue.Queue(depth)
        self._result: LayerResult | None = None
        self._error: BaseException | None = None
        self._aborted = False
        kwargs = dict(mode=mode, id_map=id_map, expected_digest=expected_digest,
                      expected_diff_id=expected_diff_id, threaded=False, what=what)

        def run() -> None:
            try:
                self._result = apply_layer(self._incoming(), dest, media_type, **kwargs)  # type: ignore[arg-type]
            except BaseException as e:  # noqa: BLE001 - re-raised by feed/close
                self._error = e
                # unblock a producer waiting on a full queue
                while True:
                    try:
                        self._q.get_nowait()
                    except queue.Empty:
                        break

        self._thread = threading.Thread(target=run, name="layer-unpack", daemon=True)
        self._thread.start()

    def _incoming(self) -> Iterator[bytes]:
        while True:
            item = self._q.get()
            if item is _DONE:
                return
            if item is _Cancelled:
                raise _Cancelled()
            yield item

    def _put(self, item: object) -> None:
        while True:
            if self._error is not None:
                self._raise()
            try:
                self._q.put(item, timeout=0.1)
                return
            except queue.Full:
                if not self._thread.is_alive():
                    self._raise()

    def _raise(self) -> None:
        err = self._error
        if isinstance(err, PalletError):
            raise err
        if err is None:
            raise InvalidArchive("the layer unpack stopped before the stream ended")
        raise PalletError(f"unpacking the layer failed: {err}") from err

    def feed(self, data: bytes) -> None:
        if data:
            self._put(bytes(data))

    def close(self) -> LayerResult:
        self._put(_DONE)
        self._thread.join()
        if self._error is not None or self._result is None:
            self._raise()
        return self._result  # type: ignore[return-value]

    def abort(self) -> None:
        if self._thread.is_alive():
            try:
                self._q.put(_Cancelled, timeout=1)
            except queue.Full:
                pass
            self._thread.join(timeout=10)

    def __enter__(self) -> LayerWriter:
        return self

    def __exit__(self, exc_type, *_: object) -> None:
        if exc_type is not None:
            self.abort()
