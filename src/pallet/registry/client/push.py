"""Push: an image from the store (or a multi-platform index with all its manifests) to a registry.

For each blob: `HEAD` first (skip what the registry has), then a cross-repository
mount from another repository of the same registry that the image came from or
was pushed to, else an upload: `POST /blobs/uploads/` then either one `PUT
?digest=` with the whole body (monolithic) or `PATCH` chunks with
`Content-Range` and a final `PUT` (chunked, `Options.chunk_size`). `Location`
may be relative or absolute. Manifests go last, children before their index.
"""

from __future__ import annotations

import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from pallet.errors import NotFound, RegistryError
from pallet.oci import mediatypes as mt
from pallet.oci.digest import Digest
from pallet.oci.documents import Descriptor, Index, Manifest, parse_manifest_or_index
from pallet.registry.client.pull import Client, Progress
from pallet.registry.client.transport import Registry, TransportFailure, error_for, scope

READ = 1 << 20


@dataclass
class PushResult:
    digest: str
    name: str
    pushed: int = 0      # blobs uploaded
    skipped: int = 0     # blobs the registry already had
    mounted: int = 0     # blobs mounted from another repository


class _FileBody:
    """A blob file as a streaming request body (a fresh one per attempt)."""

    def __init__(self, path, start: int = 0, length: int | None = None, progress=None, key: str = "") -> None:
        self.path, self.start, self.length = path, start, length
        self.progress, self.key = progress, key

    def __iter__(self):
        left = self.length
        with open(self.path, "rb") as f:
            f.seek(self.start)
            while left is None or left > 0:
                chunk = f.read(READ if left is None else min(READ, left))
                if not chunk:
                    break
                if left is not None:
                    left -= len(chunk)
                if self.progress:
                    self.progress.advance(self.key, len(chunk))
                yield chunk


def _location(reg: Registry, resp, what: str) -> str:
    loc = resp.headers.get("location")
    if not loc:
        raise RegistryError(f"{what}: {reg.domain} answered {resp.status_code} without a Location header")
    return urllib.parse.urljoin(str(resp.request.url), loc)


def _with_query(url: str, **params: str) -> str:
    parts = urllib.parse.urlsplit(url)
    q = urllib.parse.parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(q)))


class Pusher:
    def __init__(self, client: Client, store, dest_domain: str, dest_path: str, *,
                 mount_from: list[str] = (), progress: Progress | None = None) -> None:
        self.client = client
        self.store = store
        self.reg = client.registry(dest_domain)
        self.path = dest_path
        self.name = f"{dest_domain}/{dest_path}"
        self.mount_from = [m for m in dict.fromkeys(mount_from) if m != dest_path]
        self.progress = progress or Progress()
        self.result = PushResult("", self.name)
        self._done: set[str] = set()
        self._lock = threading.Lock()
        scopes = {scope(dest_path, "pull", "push")} | {scope(m, "pull") for m in self.mount_from}
        self.scopes = frozenset(scopes)

    # ---- blobs ------------------------------------------------------------------------------
    def has_blob(self, digest: str) -> bool:
        resp = self.reg.request("HEAD", f"/v2/{self.path}/blobs/{digest}", scopes=self.scopes)
        resp.close()
        if resp.status_code == 200:
            return True
        if resp.status_code == 404:
            return False
        raise error_for(resp, f"cannot check blob {digest} in {self.name}", self.reg.domain)

    def push_blob(self, desc: Descriptor) -> None:
        with self._lock:
            if desc.digest in self._done:
                return
            self._done.add(desc.digest)
        key = desc.digest
        self.progress.start(key, Digest.parse(desc.digest).short, desc.size)
        t0 = time.monotonic()
        if self.has_blob(desc.digest):
            self.result.skipped += 1
            self.progress.finish(key, "Already exists")
            return
        path = self.store.blobs.path(desc.digest)
        if not path.is_file():
            raise NotFound(f"blob {desc.digest} is not in the store; cannot push it")
        base = f"/v2/{self.path}/blobs/uploads/"
        location = None
        for src in self.mount_from:
            url = f"{base}?{urllib.parse.urlencode({'mount': desc.digest, 'from': src})}"
            resp = self.reg.request("POST", url, scopes=self.scopes)
            resp.close()
            if resp.status_code == 201:
                self.result.mounted += 1
                self.progress.finish(key, f"Mounted from {src}")
                return
            if resp.status_code == 202:
                location = _location(self.reg, resp, f"upload of {desc.digest}")
                break
        for attempt in range(self.reg.opts.retries + 1):
            try:
                if location is None:
                    resp = self.reg.request("POST", base, scopes=self.scopes)
                    resp.close()
                    if resp.status_code != 202:
                        raise error_for(resp, f"cannot start the upload of {desc.digest} to {self.name}",
                                        self.reg.domain)
                    location = _location(self.reg, resp, f"upload of {desc.digest}")
                self._upload(location, desc, path, key)
                break
            except (_UploadFailed, TransportFailure) as e:
                location = None
                self.progress.reset(key, 0)
                if attempt >= self.reg.opts.retries:
                    raise RegistryError(str(e)) from None
                self.reg._sleep(attempt, None)
        self.result.pushed += 1
        self.progress.finish(key, f"done in {time.monotonic() - t0:.1f}s")

    def _upload(self, location: str, desc: Descriptor, path, key: str) -> None:
        chunk = self.reg.opts.chunk_size
        hdr = {"Content-Type": "application/octet-stream"}
        if chunk > 0 and desc.size > 0:
            offset = 0
            while offset < desc.size:
                n = min(chunk, desc.size - offset)
                resp = self.reg.request(
                    "PATCH", location, scopes=self.scopes, retry=False,
                    headers={**hdr, "Content-Range": f"{offset}-{offset + n - 1}", "Content-Length": str(n)},
                    content=lambda o=offset, n=n: _FileBody(path, o, n, self.progress, key))
                resp.close()
                if resp.status_code != 202:
                    raise _UploadFailed(str(error_for(resp, f"uploading {desc.digest} to {self.name} "
                                                            f"(chunk at {offset})", self.reg.domain)))
                location = _location(self.reg, resp, f"upload of {desc.digest}")
                offset += n
            resp = self.reg.request("PUT", _with_query(location, digest=desc.digest), scopes=self.scopes,
                                    retry=False, headers={"Content-Length": "0"}, content=b"")
        else:
            resp = self.reg.request("PUT", _with_query(location, digest=desc.digest), scopes=self.scopes,
                                    retry=False, headers={**hdr, "Content-Length": str(desc.size)},
                                    content=lambda: _FileBody(path, 0, None, self.progress, key))
        resp.close()
        if resp.status_code not in (201, 204):
            err = error_for(resp, f"uploading {desc.digest} to {self.name}", self.reg.domain)
            if resp.status_code >= 500 or resp.status_code in (408, 429):
                raise _UploadFailed(str(err))
            raise err

    # ---- manifests ------------------------------------------------------------------------------
    def put_manifest(self, raw: bytes, media_type: str, ref: str) -> str:
        resp = self.reg.request("PUT", f"/v2/{self.path}/manifests/{ref}", scopes=self.scopes,
                                headers={"Content-Type": media_type}, content=raw)
        resp.close()
        if resp.status_code not in (200, 201, 202):
            raise error_for(resp, f"cannot push the manifest to {self.name}:{ref}", self.reg.domain)
        digest = "sha256:" + Digest.of(raw).hex
        got = resp.headers.get("docker-content-digest")
        if got and got != digest:
            raise RegistryError(f"{self.reg.domain} stored the manifest as {got}, but its digest is {digest}")
        return digest

    def push_manifest(self, manifest: Manifest, ref: str) -> str:
        blobs = [manifest.config, *manifest.layers]
        errors: list[BaseException] = []
        workers = max(1, min(self.reg.opts.max_parallel, len(blobs)))
        self.reg.ping()

        def one(d: Descriptor) -> None:
            if errors:
                return
            try:
                self.push_blob(d)
            except BaseException as e:
                errors.append(e)

        with ThreadPoolExecutor(workers, thread_name_prefix="push") as pool:
            list(pool.map(one, sorted(blobs, key=lambda d: -d.size)))
        if errors:
            raise errors[0]
        return self.put_manifest(manifest.raw, manifest.media_type, ref)

    def push_index(self, index: Index, ref: str) -> str:
        for d in index.manifests:
            doc = parse_manifest_or_index(self.store.blobs.read(d.digest), d.media_type)
            if isinstance(doc, Index):
                self.push_index(doc, d.digest)
            else:
                self.push_manifest(doc, d.digest)
        return self.put_manifest(index.raw, index.media_type, ref)


def _index_complete(store, index: Index) -> bool:
    for d in index.manifests:
        if not store.blobs.has(d.digest):
            return False
        if d.media_type in mt.MANIFESTS:
            m = Manifest.parse(store.blobs.read(d.digest), d.media_type)
            if not all(store.blobs.has(x.digest) for x in [m.config, *m.layers]):
                return False
        elif d.media_type in mt.INDEXES and not _index_complete(store, Index.parse(store.blobs.read(d.digest))):
            return False
    return True


def push(client: Client, store, src_text: str, dest_text: str | None = None, *,
         progress: Progress | None = None) -> PushResult:
    """Push the image `src_text` names to `dest_text` (default: the same name)."""
    from pallet import reference
    from pallet.errors import InvalidReference

    rec = store.resolve_image(src_text)
    src_ref = None
    try:
        src_ref = reference.normalize(src_text)
    except InvalidReference:
        pass
    if dest_text is None:
        if src_ref is None:
            raise InvalidReference(f"{src_text!r} is an image ID: give a destination, "
                                   f"e.g. pallet push {src_text} 127.0.0.1:5000/name:tag")
        dest = src_ref
    else:
        dest = reference.normalize(dest_text)
    if dest.digest and not dest.tag:
        tag = dest.digest
    else:
        tag = dest.tag or "latest"
    # what the source name points at: an index (multi-platform) when all of it is here
    target = rec.manifest_digest
    if src_ref is not None and not src_ref.digest:
        rows = store.db.query("SELECT target_digest FROM tags WHERE name = ?", (str(src_ref),))
        if rows and rows[0][0]:
            target = rows[0][0]
    elif src_ref is not None and src_ref.digest:
        target = src_ref.digest if store.blobs.has(src_ref.digest) else rec.manifest_digest
    doc = parse_manifest_or_index(store.blobs.read(target)) if store.blobs.has(target) else store.manifest(rec)
    if isinstance(doc, Index) and not _index_complete(store, doc):
        doc = store.manifest(rec)
    # repositories of the same registry the image is known in: mount sources
    mount_from = []
    for name in [*rec.tags, *rec.repo_digests]:
        try:
            r = reference.normalize(name)
        except InvalidReference:
            continue
        if r.domain == dest.domain and r.path != dest.path:
            mount_from.append(r.path)
    pusher = Pusher(client, store, dest.domain, dest.path, mount_from=mount_from, progress=progress)
    if isinstance(doc, Index):
        digest = pusher.push_index(doc, tag)
    else:
        digest = pusher.push_manifest(doc, tag)
    if dest.digest and digest != dest.digest:
        raise RegistryError(f"pushed manifest has digest {digest}, not {dest.digest} as the destination says")
    pusher.result.digest = digest
    # remember where the image now lives (a later push to a sibling repository can mount from it)
    store.add_repo_digest(dest.name, digest, rec.id)
    return pusher.result


class _UploadFailed(Exception):
    pass
