"""Pull: a reference's manifest (choosing a platform from an index), config and layers into the store.

Every blob is streamed into a verified store writer (size and digest checked
before it is published) while, in the same pass, the layer is unpacked into
the store's layer snapshots (`pallet.layers`: decompress, hash, untar), which
yields its diff id; it must equal the config's `rootfs.diff_ids` entry.
An interrupted download resumes with `Range`; layers download in parallel.
A blob another process is downloading at the same moment is waited for, not
downloaded twice. The image is registered only when everything checked out;
until then the store's shared lock keeps GC away from the new blobs.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx

from pallet.errors import (
    DigestMismatch,
    InvalidDocument,
    NotFound,
    PalletError,
    RegistryError,
)
from pallet.oci import mediatypes as mt
from pallet.oci.digest import Digest, chain_ids
from pallet.oci.documents import Descriptor, ImageConfig, Index, Manifest, Platform, parse_manifest_or_index
from pallet.registry.client import platforms
from pallet.registry.client.transport import Options, Registry, error_for, scope

CHUNK = 1 << 20
MAX_MANIFEST = 4 << 20
MANIFEST_ACCEPT = ", ".join([*mt.MANIFEST_ACCEPT, f"{mt.DOCKER_SCHEMA1_SIGNED};q=0.1"])


class Progress:
    """Receives pull/push events; the CLI renders them (bars on a terminal, lines otherwise)."""

    def message(self, text: str) -> None: ...
    def start(self, key: str, label: str, total: int) -> None: ...
    def advance(self, key: str, n: int) -> None: ...
    def reset(self, key: str, done: int) -> None: ...
    def finish(self, key: str, status: str) -> None: ...


@dataclass
class Source:
    """Where a repository was found: the registry (maybe a mirror) and the repository path in it."""

    registry: Registry
    path: str

    @property
    def name(self) -> str:
        return f"{self.registry.domain}/{self.path}"


@dataclass
class PullResult:
    image_id: str
    manifest_digest: str          # the platform manifest registered
    digest: str                   # what the reference resolved to (index digest for a multi-platform image)
    names: list[str]
    platform: str
    images: list[str] = field(default_factory=list)   # every image id registered (--all-platforms)
    downloaded: int = 0           # bytes fetched from the network
    source: str = ""


class Client:
    """Registry sessions for one command, keyed by registry domain."""

    def __init__(self, opts: Options, *, unpack: bool = True) -> None:
        self.opts = opts
        self.unpack = unpack          # unpack layers into the snapshots while downloading
        self.fork_unpack = True       # ... each layer in a process of its own (see `unpack`)
        self._registries: dict[str, Registry] = {}

    def registry(self, domain: str) -> Registry:
        reg = self._registries.get(domain)
        if reg is None:
            reg = self._registries[domain] = Registry(domain, self.opts)
        return reg

    def close(self) -> None:
        for r in self._registries.values():
            r.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- manifests ------------------------------------------------------------------------
    def sources(self, domain: str, path: str) -> list[Source]:
        """Mirrors from the settings (in order), then the registry itself."""
        out = [Source(self.registry(m), path) for m in self.opts.settings.for_host(domain).mirrors]
        return out + [Source(self.registry(domain), path)]

    def get_manifest(self, src: Source, ref: str, *, expected: str | None = None) -> tuple[bytes, str]:
        """(raw bytes, media type) of a manifest by tag or digest, digest-checked when known."""
        reg = src.registry
        resp = reg.request("GET", f"/v2/{src.path}/manifests/{ref}", scopes={scope(src.path, "pull")},
                           headers={"Accept": MANIFEST_ACCEPT})
        what = f"manifest {src.name}:{ref}" if not ref.startswith("sha256:") else f"manifest {src.name}@{ref}"
        if resp.status_code != 200:
            raise error_for(resp, f"cannot get {what}", reg.domain)
        raw = resp.content
        if len(raw) > MAX_MANIFEST:
            raise RegistryError(f"{what} is larger than {MAX_MANIFEST} bytes; refusing it")
        ctype = resp.headers.get("content-type", "").split(";")[0].strip()
        if ctype in mt.SCHEMA1:
            raise InvalidDocument(f"{what} is a Docker schema 1 manifest ({ctype}), which is deprecated and not "
                                  f"supported; re-push the image with a current client")
        want = expected or (ref if ref.startswith(("sha256:", "sha512:")) else None)
        if want and not Digest.parse(want).verify(raw):
            raise DigestMismatch(f"{what}: the registry sent a manifest whose content does not match its digest")
        return raw, ctype

    def resolve(self, domain: str, path: str, ref: str) -> tuple[Source, bytes, str]:
        """Find the manifest on the first source that has it (mirrors first)."""
        errors = []
        srcs = self.sources(domain, path)
        for i, src in enumerate(srcs):
            try:
                raw, ctype = self.get_manifest(src, ref)
                return src, raw, ctype
            except RegistryError as e:
                if i == len(srcs) - 1:
                    if errors:
                        raise RegistryError(f"{e.message} (mirrors tried first: {'; '.join(errors)})") from None
                    raise
                errors.append(f"{src.registry.domain}: {e.message}")
        raise AssertionError("unreachable")

    # ---- blobs ------------------------------------------------------------------------------
    def fetch_blob(self, src: Source, desc: Descriptor, sink: BlobSink, progress: Progress | None = None,
                   key: str = "") -> int:
        """Stream a blob into `sink`, resuming with Range after a dropped connection. Returns bytes fetched."""
        reg = src.registry
        url = f"/v2/{src.path}/blobs/{desc.digest}"
        offset = 0
        failures = 0
        fetched = 0
        while True:
            headers = {"Range": f"bytes={offset}-"} if offset else {}
            try:
                with reg.stream("GET", url, scopes={scope(src.path, "pull")}, headers=headers) as resp:
                    if resp.status_code == 206 and offset:
                        cr = resp.headers.get("content-range", "")
                        if not cr.startswith(f"bytes {offset}-"):
                            raise RegistryError(f"blob {desc.digest}: the registry answered a resume from "
                                                f"byte {offset} with Content-Range {cr!r}")
                    elif resp.status_code == 200:
                        if offset:  # the server ignored Range: start over
                            sink.reset()
                            if progress:
                                progress.reset(key, 0)
                            offset = 0
                    elif resp.status_code == 416 and offset == desc.size:
                        break
                    else:
                        raise error_for(resp, f"cannot get blob {desc.digest} of {src.name}", reg.domain)
                    for chunk in resp.iter_raw():  # as the bytes arrive (a chunk size would buffer them)
                        if offset + len(chunk) > desc.size:
                            raise DigestMismatch(f"blob {desc.digest} of {src.name} is larger than the "
                                                 f"{desc.size} bytes its descriptor declares")
                        sink.write(chunk)
                        offset += len(chunk)
                        fetched += len(chunk)
                        if progress:
                            progress.advance(key, len(chunk))
                if offset < desc.size:
                    raise _Short(f"connection closed after {offset} of {desc.size} bytes")
                break
            except (httpx.TransportError, _Short) as e:
                failures += 1
                if failures > reg.opts.retries:
                    raise RegistryError(f"downloading blob {desc.digest} of {src.name} failed after "
                                        f"{failures} attempts: {e or e.__class__.__name__}") from None
                reg._sleep(failures - 1, None)
        return fetched

    # ---- pull ---------------------------------------------------------------------------------
    def pull(self, store, text: str, *, platform: Platform | None = None, all_platforms: bool = False,
             progress: Progress | None = None) -> PullResult:
        from pallet import reference

        ref = reference.normalize(text)
        progress = progress or Progress()
        tag_or_digest = ref.digest or ref.tag or "latest"
        progress.message(f"Trying to pull {ref}...")
        src, raw, ctype = self.resolve(ref.domain, ref.path, tag_or_digest)
        if src.registry.domain != ref.domain:
            progress.message(f"Using mirror {src.registry.domain} for {ref.domain}")
        top = parse_manifest_or_index(raw, ctype or None)
        top_digest = ref.digest or top.digest
        names = [str(ref)] if ref.tag and not ref.digest else []
        repo_digests = [f"{ref.name}@{top_digest}"]
        downloaded = [0]

        with store.shared_lock():
            chosen: list[tuple[Manifest, str]] = []  # (manifest, platform string)
            if isinstance(top, Index):
                if all_platforms:
                    # image manifests only (not buildx's attestation manifests, platform unknown/unknown)
                    entries = [d for d in top.manifests if d.media_type in mt.MANIFESTS
                               and not (d.platform and d.platform.os == "unknown")]
                    if not entries:
                        raise NotFound(f"{ref} is an index without image manifests")
                    # register the host's platform (or the first) under the tag
                    try:
                        first = platforms.select(entries, platform, what=str(ref))
                    except NotFound:
                        first = entries[0]
                    entries = [first] + [d for d in entries if d is not first]
                else:
                    entries = [platforms.select(top.manifests, platform, what=str(ref))]
                for d in entries:
                    mraw, mtype = self.get_manifest(src, d.digest, expected=d.digest)
                    doc = parse_manifest_or_index(mraw, mtype or d.media_type)
                    if not isinstance(doc, Manifest):
                        raise InvalidDocument(f"{ref}: index entry {d.digest} is not an image manifest")
                    chosen.append((doc, str(d.platform) if d.platform else ""))
                store.blobs.put(raw, top_digest)
            else:
                if all_platforms:
                    progress.message(f"{ref} is a single-platform image; pulling it")
                chosen.append((top, ""))

            records = []
            for manifest, plat in chosen:
                config, size = self._pull_image(store, src, manifest, progress, downloaded,
                                                check_platform=None if (all_platforms or isinstance(top, Index))
                                                else platform)
                records.append((manifest, config, size, plat or str(config.platform)))
            # everything is verified: register (the first under the names)
            ids = []
            for i, (manifest, config, size, _plat) in enumerate(records):
                rec = store.register_image(manifest, config, size=size, names=names if i == 0 else [],
                                           target_digest=top_digest if i == 0 else manifest.digest,
                                           repo_digests=repo_digests if i == 0 else
                                           [f"{ref.name}@{manifest.digest}"])
                ids.append(rec.id)
        m0, _, _, plat0 = records[0]
        from pallet.store import events

        events.record(store.root, "image", "pull", str(ref), {"name": ref.name})
        return PullResult(ids[0], m0.digest, top_digest, names, plat0, ids, downloaded[0], src.registry.domain)

    def _pull_image(self, store, src: Source, manifest: Manifest, progress: Progress, downloaded: list[int],
                    *, check_platform: Platform | None) -> tuple[ImageConfig, int]:
        if manifest.config.media_type not in mt.CONFIGS:
            raise InvalidDocument(f"manifest {manifest.digest} is not an image (config media type "
                                  f"{manifest.config.media_type}); pallet pulls container images only")
        for layer in manifest.layers:
            if mt.layer_compression(layer.media_type) is None:
                raise InvalidDocument(f"manifest {manifest.digest} has a layer of unsupported media type "
                                      f"{layer.media_type}")
        # config first: it names the diff ids the layers must have
        cfg_desc = manifest.config
        if not store.blobs.has(cfg_desc.digest):
            with _blob_lock(store, cfg_desc.digest):
                if not store.blobs.has(cfg_desc.digest):
                    sink = BlobSink(store, cfg_desc, None)
                    downloaded[0] += self.fetch_blob(src, cfg_desc, sink)
                    sink.commit()
        config = ImageConfig.parse(store.blobs.read(cfg_desc.digest))
        if check_platform is not None and not platforms.matches(config.platform, check_platform):
            raise NotFound(f"{src.name}@{manifest.digest} is for platform {config.platform}, not {check_platform}")
        if len(config.diff_ids) != len(manifest.layers):
            raise InvalidDocument(f"manifest {manifest.digest} has {len(manifest.layers)} layers but its config "
                                  f"lists {len(config.diff_ids)} diff ids")
        sizes = [0] * len(manifest.layers)
        errors: list[BaseException] = []
        cancel = threading.Event()
        snaps = _snapshots(store) if self.unpack else None
        chains = chain_ids(config.diff_ids)

        forked: dict[int, object] = {}

        def target_for(i: int, layer: Descriptor):
            if snaps is None:
                return lambda: _Decode(layer.media_type)

            def make():
                t = forked.pop(i, None)   # the process forked for this layer, used once
                return t if t is not None else \
                    _Unpack(snaps, chains[i], chains[i - 1] if i else None, layer, config.diff_ids[i])
            return make

        def unpacked(i: int, layer: Descriptor) -> int | None:
            """Size of layer i when its snapshot is already there, made from this very blob."""
            if snaps is None or not snaps.has(chains[i]):
                return None
            meta = snaps.layer_meta(chains[i])
            if meta.get("digest") == layer.digest and meta.get("diff_id") == config.diff_ids[i]:
                return int(meta.get("size") or 0)
            return None

        def one(i: int, layer: Descriptor) -> None:
            if cancel.is_set():
                return
            key = layer.digest
            label = Digest.parse(layer.digest).short
            progress.start(key, label, layer.size)
            try:
                with _blob_lock(store, layer.digest):
                    if store.blobs.has(layer.digest):
                        done = unpacked(i, layer)
                        if done is not None:
                            t = forked.pop(i, None)
                            if t is not None:
                                t.abort()  # type: ignore[attr-defined]
                        sizes[i] = done if done is not None else \
                            _stored_layer(store, layer, config.diff_ids[i], target_for(i, layer)())
                        progress.finish(key, "Already exists")
                        return
                    sink = BlobSink(store, layer, config.diff_ids[i], target_for(i, layer))
                    try:
                        t0 = time.monotonic()
                        downloaded[0] += self.fetch_blob(src, layer, sink, progress, key)
                        sizes[i] = sink.commit()
                    except BaseException:
                        sink.abort()
                        raise
                progress.finish(key, f"done in {time.monotonic() - t0:.1f}s")
            except BaseException as e:
                cancel.set()
                errors.append(e)
                progress.finish(key, "failed")

        if snaps is not None and self.fork_unpack and 1 < len(manifest.layers) <= 32 and \
                threading.active_count() == 1:
            # one unpack process per layer, forked now, while this process has no other thread
            # (a caller with threads of its own, e.g. a daemon, gets the in-process unpack)
            from pallet.registry.client.unpack import ForkedUnpack

            for i, layer in enumerate(manifest.layers):
                if unpacked(i, layer) is None:
                    forked[i] = ForkedUnpack(snaps, chains[i], chains[i - 1] if i else None, layer.media_type,
                                             layer.digest, config.diff_ids[i])
        workers = max(1, min(self.opts.max_parallel, len(manifest.layers)))
        try:
            if workers == 1:
                for i, layer in enumerate(manifest.layers):
                    one(i, layer)
                    if errors:
                        break
            else:
                with ThreadPoolExecutor(workers, thread_name_prefix="pull") as pool:
                    for f in [pool.submit(one, i, layer) for i, layer in enumerate(manifest.layers)]:
                        f.result()
        finally:
            for t in forked.values():   # not used (a failure elsewhere, or nothing left to unpack)
                t.abort()  # type: ignore[attr-defined]
        if errors:
            e = errors[0]
            raise e
        store.blobs.put(manifest.raw, manifest.digest)
        return config, sum(sizes)


class _Short(Exception):
    pass


class _Decode:
    """Diff id by decompressing in the same pass (when layers are not unpacked here)."""

    def __init__(self, media_type: str) -> None:
        from pallet.layers.compression import DigestingDecoder

        self.dec = DigestingDecoder(media_type)

    def feed(self, data: bytes) -> None:
        self.dec.feed(data)

    def finish(self) -> tuple[str, int]:
        self.dec.finish()
        return self.dec.diff_id, self.dec.size

    def abort(self) -> None:
        pass


class _Unpack:
    """Unpack into the layer snapshots in the same pass as the download (pallet.layers)."""

    def __init__(self, snaps, chain_id: str, parent: str | None, layer: Descriptor, diff_id: str) -> None:
        self.pending = snaps.unpack_writer(chain_id, parent, layer.media_type, expected_digest=layer.digest,
                                           expected_diff_id=diff_id)

    def feed(self, data: bytes) -> None:
        self.pending.feed(data)

    def finish(self) -> tuple[str, int]:
        r = self.pending.commit()
        return r.diff_id, r.size

    def abort(self) -> None:
        self.pending.abort()


class BlobSink:
    """A blob arriving from the network: the store writer (digest + size checked) and, for a layer,
    a target that computes its diff id (decompressing, or unpacking it) from the same bytes."""

    def __init__(self, store, desc: Descriptor, diff_id: str | None, target=None) -> None:
        self.store = store
        self.desc = desc
        self.diff_id = diff_id
        self._make_target = target
        self._open()

    def _open(self) -> None:
        self.writer = self.store.blobs.writer(self.desc.digest, self.desc.size)
        self.target = self._make_target() if self._make_target else None
        self.error: PalletError | None = None

    def write(self, data: bytes) -> None:
        self.writer.write(data)
        if self.target is not None and self.error is None:
            try:
                self.target.feed(data)
            except PalletError as e:  # reported after the digest check: corrupt bytes are a digest error
                self.error = e

    def reset(self) -> None:
        self.abort()
        self._open()

    def abort(self) -> None:
        self.writer.abort()
        if self.target is not None:
            self.target.abort()

    def commit(self) -> int:
        """Verify and publish; returns the uncompressed size (the blob size for a non-layer)."""
        got = self.writer.hasher.digest()
        if self.writer.size != self.desc.size or str(got) != self.desc.digest:
            self.abort()
            raise DigestMismatch(f"blob {self.desc.digest}: the registry sent {self.writer.size} bytes whose "
                                 f"digest is {got} (expected {self.desc.size} bytes with digest {self.desc.digest}); "
                                 f"nothing was stored")
        size = self.desc.size
        if self.target is not None:
            try:
                if self.error is not None:
                    raise self.error
                diff_id, size = self.target.finish()
            except PalletError as e:
                self.abort()
                raise type(e)(f"layer {self.desc.digest}: {e.message} (the image config says its diff id is "
                              f"{self.diff_id}); nothing was registered") from None
            if diff_id != self.diff_id:
                self.abort()
                raise DigestMismatch(f"layer {self.desc.digest} uncompresses to {diff_id}, but the "
                                     f"image config says its diff id is {self.diff_id}; nothing was registered")
        self.writer.commit()
        return size


def _stored_layer(store, layer: Descriptor, diff_id: str, target) -> int:
    """A layer blob already in the store: feed it to the target (unpack, or just check its diff id)."""
    try:
        with store.blobs.open(layer.digest) as f:
            while chunk := f.read(CHUNK):
                target.feed(chunk)
        got, size = target.finish()
    except PalletError as e:
        target.abort()
        raise type(e)(f"layer {layer.digest}: {e.message} (the image config says its diff id is {diff_id}); "
                      f"nothing was registered") from None
    if got != diff_id:
        raise DigestMismatch(f"layer {layer.digest} uncompresses to {got}, but the image config says "
                             f"its diff id is {diff_id}; nothing was registered")
    return size


def _snapshots(store):
    """The store's layer snapshots (pallet.layers), or None where that part of pallet is missing."""
    try:
        from pallet.layers.snapshots import Snapshots
    except ImportError:
        return None
    return Snapshots(store.root)


@contextmanager
def _blob_lock(store, digest: str):
    """One downloader per blob across processes: the second waits, then finds the blob stored."""
    path = store.tmp / f"pull-{Digest.parse(digest).hex}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def remote_tags(client: Client, text: str) -> tuple[str, list[str]]:
    """(repository name, tags) with pagination (`Link: <…?n=…&last=…>; rel="next"`)."""
    from pallet import reference

    ref = reference.normalize(text)
    reg = client.registry(ref.domain)
    url = f"/v2/{ref.path}/tags/list?n=1000"
    tags: list[str] = []
    for _ in range(1000):
        resp = reg.request("GET", url, scopes={scope(ref.path, "pull")})
        if resp.status_code != 200:
            raise error_for(resp, f"cannot list the tags of {ref.name}", reg.domain)
        try:
            doc = resp.json()
        except ValueError:
            raise RegistryError(f"{reg.domain} sent a tag list for {ref.name} that is not JSON") from None
        tags.extend(doc.get("tags") or [])
        link = resp.headers.get("link", "")
        if 'rel="next"' not in link:
            break
        url = link.split(";")[0].strip().strip("<>")
    return ref.name, tags


def inspect_remote(client: Client, text: str) -> tuple[bytes, str, str]:
    """(raw manifest bytes, media type, digest) of a remote reference, without pulling."""
    from pallet import reference

    ref = reference.normalize(text)
    src, raw, ctype = client.resolve(ref.domain, ref.path, ref.digest or ref.tag or "latest")
    doc = parse_manifest_or_index(raw, ctype or None)
    return raw, doc.media_type, ref.digest or doc.digest


ProgressFactory = Callable[[], Progress]
__all__ = ["Client", "PullResult", "Progress", "PalletError", "inspect_remote", "remote_tags"]
