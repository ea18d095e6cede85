"""The distribution-spec v1.1 HTTP API as an aiohttp application.

One catch-all route dispatches on the path (repository names contain `/`, so
the endpoint is found from the right), checks the name and reference grammar,
asks the authorizer, and calls the storage. Blocking work that may take long
(hashing, fsync) runs in a thread; blob GETs are `FileResponse`s (sendfile).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from pallet.errors import DigestMismatch, InvalidDigest, InvalidDocument, PalletError
from pallet.oci import Digest, Index, Manifest
from pallet.oci import mediatypes as mt
from pallet.registry.server.auth import Authorizer, Scope
from pallet.registry.server.errors import APIError
from pallet.registry.server.names import UPLOAD_ID_RE, valid_name, valid_tag
from pallet.registry.server.storage import Storage

log = logging.getLogger("pallet.registry")
API_VERSION = ("Docker-Distribution-API-Version", "registry/2.0")
MAX_MANIFEST = 4 * 1024 * 1024
CHUNK = 1 << 20
ACCEPTED_MANIFESTS = mt.MANIFESTS | mt.INDEXES

_ROUTES = [
    ("tags", re.compile(r"^(?P<name>.+)/tags/list$")),
    ("manifest", re.compile(r"^(?P<name>.+)/manifests/(?P<ref>[^/]+)$")),
    ("uploads", re.compile(r"^(?P<name>.+)/blobs/uploads/?$")),
    ("upload", re.compile(r"^(?P<name>.+)/blobs/uploads/(?P<id>[^/]+)$")),
    ("blob", re.compile(r"^(?P<name>.+)/blobs/(?P<digest>[^/]+)$")),
    ("referrers", re.compile(r"^(?P<name>.+)/referrers/(?P<digest>[^/]+)$")),
]
_METHODS = {
    "base": {"GET", "HEAD"},
    "catalog": {"GET"},
    "tags": {"GET"},
    "manifest": {"GET", "HEAD", "PUT", "DELETE"},
    "uploads": {"POST"},
    "upload": {"GET", "PATCH", "PUT", "DELETE"},
    "blob": {"GET", "HEAD", "DELETE"},
    "referrers": {"GET"},
}
_WRITES = {"PUT", "POST", "PATCH", "DELETE"}


def _accepts(request: web.Request, media_type: str) -> bool:
    """Whether the Accept header allows `media_type` (no header, or */*, allows everything)."""
    values = request.headers.getall("Accept", ())
    types = {v.split(";")[0].strip() for h in values for v in h.split(",")} - {""}
    return not types or media_type in types or "*/*" in types or "application/*" in types


def _route(tail: str) -> tuple[str, re.Match[str] | None]:
    for kind, rx in _ROUTES:
        m = rx.match(tail)
        if m:
            return kind, m
    return "", None


def _parse_digest(text: str, code: str = "DIGEST_INVALID") -> Digest:
    try:
        return Digest.parse(text)
    except InvalidDigest as e:
        raise APIError(code, e.message, {"digest": text}) from None


def _parse_n(request: web.Request) -> int | None:
    n = request.query.get("n")
    if n is None:
        return None
    if not n.isdigit():
        raise APIError("PAGINATION_NUMBER_INVALID", f"invalid page size n={n!r}", {"n": n})
    return int(n)


def _paginate(items: list[str], request: web.Request, base: str) -> tuple[list[str], str | None]:
    n = _parse_n(request)
    last = request.query.get("last")
    if last:
        items = [x for x in items if x > last]
    if n is None or n >= len(items):
        return items, None
    page = items[:n]
    if not page:
        return page, None
    return page, f'<{base}?{urlencode({"last": page[-1], "n": n})}>; rel="next"'


class _CountedFileResponse(web.FileResponse):
    """A sendfile response that counts as in flight until the last byte is written (for draining)."""

    def __init__(self, registry: RegistryApp, path: Any, **kw: Any) -> None:
        super().__init__(path, **kw)
        self._registry = registry

    async def prepare(self, request: web.BaseRequest) -> Any:
        self._registry.in_flight += 1
        try:
            return await super().prepare(request)
        finally:
            self._registry.in_flight -= 1


class RegistryApp:
    def __init__(self, storage: Storage, *, authorizer: Authorizer | None = None, read_only: bool = False,
                 no_delete: bool = False, proxy: Any = None) -> None:
        self.storage = storage
        self.auth = authorizer or Authorizer()
        self.read_only = read_only
        self.no_delete = no_delete
        self.proxy = proxy
        self._manifest_cache: dict[Digest, bytes] = {}
        self.in_flight = 0

    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_MANIFEST + 1)
        app.router.add_route("*", "/v2", self.handle)
        app.router.add_route("*", "/v2/{tail:.*}", self.handle)
        return app

    # ---- dispatch --------------------------------------------------------------------------
    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.in_flight += 1
        try:
            resp = await self._dispatch(request)
        except APIError as e:
            resp = web.Response(status=e.status, body=e.body(), content_type="application/json",
                                headers=e.headers)
        except (OSError, PalletError) as e:  # disk full, a damaged storage file, ...
            log.exception("%s %s failed", request.method, request.path)
            err = APIError("UNKNOWN", f"internal error: {getattr(e, 'message', None) or e}", status=500)
            resp = web.Response(status=500, body=err.body(), content_type="application/json")
        finally:
            self.in_flight -= 1
        resp.headers[API_VERSION[0]] = API_VERSION[1]
        return resp

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        tail = path[4:] if path.startswith("/v2/") else ""
        method = request.method
        if tail == "":
            kind, m = "base", None
        elif tail == "_catalog":
            kind, m = "catalog", None
        else:
            kind, m = _route(tail)
            if m is None:
                raise APIError("NAME_UNKNOWN", "no such endpoint", {"path": path}, status=404)
        if method not in _METHODS[kind]:
            raise APIError("UNSUPPORTED", f"{method} is not supported on this endpoint", status=405)
        if method in _WRITES and self.read_only:
            raise APIError("UNSUPPORTED", "the registry is read-only", status=405)
        if method == "DELETE" and self.no_delete and kind != "upload":
            raise APIError("UNSUPPORTED", "deletes are disabled on this registry", status=405)

        if kind == "base":
            self.auth.check(request.headers.get("Authorization"), Scope("", "", ()))
            return web.json_response({})
        if kind == "catalog":
            self.auth.check(request.headers.get("Authorization"), Scope("registry", "catalog", ("*",)))
            return self.catalog(request)
        assert m is not None
        name = m["name"]
        if not valid_name(name):
            raise APIError("NAME_INVALID", "invalid repository name", {"name": name})
        if kind == "upload":
            actions: tuple[str, ...] = ("pull", "push")
        elif method in ("GET", "HEAD"):
            actions = ("pull",)
        elif method == "DELETE":
            actions = ("delete",)
        else:
            actions = ("pull", "push")
        self.auth.check(request.headers.get("Authorization"), Scope("repository", name, actions))
        if kind == "manifest":
            ref = m["ref"]
            if method in ("GET", "HEAD"):
                return await self.get_manifest(request, name, ref)
            if method == "PUT":
                return await self.put_manifest(request, name, ref)
            return self.delete_manifest(name, ref)
        if kind == "blob":
            digest = _parse_digest(m["digest"])
            if method == "DELETE":
                return self.delete_blob(name, digest)
            return await self.get_blob(request, name, digest)
        if kind == "uploads":
            return await self.start_upload(request, name)
        if kind == "upload":
            upload_id = m["id"]
            if not UPLOAD_ID_RE.match(upload_id):
                raise APIError("BLOB_UPLOAD_UNKNOWN", "unknown upload session", {"uuid": upload_id})
            if method == "GET":
                return self.upload_status(name, upload_id)
            if method == "PATCH":
                return await self.patch_upload(request, name, upload_id)
            if method == "PUT":
                return await self.finish_upload(request, name, upload_id)
            return self.cancel_upload(name, upload_id)
        if kind == "tags":
            return self.tags_list(request, name)
        return self.referrers(request, name, _parse_digest(m["digest"]))

    # ---- discovery -------------------------------------------------------------------------
    def catalog(self, request: web.Request) -> web.Response:
        repos, link = _paginate(self.storage.list_repositories(), request, "/v2/_catalog")
        resp = web.json_response({"repositories": repos})
        if link:
            resp.headers["Link"] = link
        return resp

    def tags_list(self, request: web.Request, name: str) -> web.Response:
        tags = self.storage.list_tags(name)
        if tags is None:
            raise APIError("NAME_UNKNOWN", "repository name not known to registry", {"name": name})
        page, link = _paginate(tags, request, f"/v2/{name}/tags/list")
        resp = web.json_response({"name": name, "tags": page})
        if link:
            resp.headers["Link"] = link
        return resp

    def referrers(self, request: web.Request, name: str, subject: Digest) -> web.Response:
        items = self.storage.referrers(name, subject)
        headers = {}
        wanted = request.query.get("artifactType")
        if wanted:
            items = [x for x in items if x.get("artifactType") == wanted]
            headers["OCI-Filters-Applied"] = "artifactType"
        body = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": items}).encode()
        return web.Response(body=body, headers={"Content-Type": mt.OCI_INDEX, **headers})

    # ---- manifests -------------------------------------------------------------------------
    def _resolve(self, name: str, ref: str) -> Digest | None:
        if ":" in ref:
            return _parse_digest(ref)
        if not valid_tag(ref):
            raise APIError("TAG_INVALID", "invalid tag", {"tag": ref})
        return self.storage.resolve_tag(name, ref)

    def _load_manifest(self, name: str, digest: Digest) -> tuple[bytes, str] | None:
        media_type = self.storage.manifest_media_type(name, digest)
        if media_type is None:
            return None
        raw = self._manifest_cache.get(digest)
        if raw is None:
            raw = self.storage.read_blob(digest)
            if raw is None:
                return None
            if len(self._manifest_cache) > 2048:
                self._manifest_cache.clear()
            self._manifest_cache[digest] = raw
        return raw, media_type

    async def get_manifest(self, request: web.Request, name: str, ref: str) -> web.Response:
        digest = self._resolve(name, ref)
        found = self._load_manifest(name, digest) if digest is not None else None
        if self.proxy is not None and (found is None or ":" not in ref):
            # a tag follows the upstream; the cached copy answers when no upstream does
            fetched = await self.proxy.fetch_manifest(self, name, ref)
            if fetched is not None:
                digest = fetched
                found = self._load_manifest(name, digest)
        if found is None or digest is None:
            if self.storage.list_tags(name) is None:
                raise APIError("NAME_UNKNOWN", "repository name not known to registry", {"name": name})
            raise APIError("MANIFEST_UNKNOWN", "manifest unknown", {"reference": ref})
        raw, media_type = found
        if ":" not in ref and not _accepts(request, media_type):
            raw, media_type, digest = self._negotiate(request, name, ref, raw, media_type)
        headers = {"Content-Type": media_type, "Docker-Content-Digest": str(digest), "ETag": f'"{digest}"'}
        return web.Response(body=raw, headers=headers)

    def _negotiate(self, request: web.Request, name: str, ref: str, raw: bytes,
                   media_type: str) -> tuple[bytes, str, Digest]:
        """A tag whose manifest type the client does not accept (distribution's behaviour).

        For an index, the linux/amd64 image in it when the client accepts that one's type;
        otherwise MANIFEST_UNKNOWN, naming the type the client would have to accept.
        """
        if media_type in mt.INDEXES:
            try:
                index = Index.parse(raw, media_type)
            except (InvalidDocument, InvalidDigest):
                index = None
            for desc in index.manifests if index else ():
                p = desc.platform
                if p and p.os == "linux" and p.architecture == "amd64" and _accepts(request, desc.media_type):
                    child = Digest.parse(desc.digest)
                    found = self._load_manifest(name, child)
                    if found is not None:
                        return found[0], found[1], child
        raise APIError("MANIFEST_UNKNOWN", f"the manifest for {ref!r} is a {media_type}, which the request's "
                       "Accept header does not include", {"reference": ref, "mediaType": media_type})

    async def _read_limited(self, request: web.Request, limit: int) -> bytes:
        if request.content_length is not None and request.content_length > limit:
            raise APIError("MANIFEST_INVALID", f"manifest is larger than {limit} bytes", status=413,
                           detail={"limit": limit, "size": request.content_length})
        buf = bytearray()
        async for chunk in request.content.iter_chunked(CHUNK):
            buf += chunk
            if len(buf) > limit:
                raise APIError("MANIFEST_INVALID", f"manifest is larger than {limit} bytes", status=413,
                               detail={"limit": limit})
        return bytes(buf)

    async def put_manifest(self, request: web.Request, name: str, ref: str) -> web.Response:
        tag: str | None = None
        ref_digest: Digest | None = None
        if ":" in ref:
            ref_digest = _parse_digest(ref)
        elif valid_tag(ref):
            tag = ref
        else:
            raise APIError("TAG_INVALID", "invalid tag", {"tag": ref})
        raw = await self._read_limited(request, MAX_MANIFEST)
        content_type = (request.headers.get("Content-Type") or "").split(";")[0].strip()
        try:
            doc = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as e:
            raise APIError("MANIFEST_INVALID", f"manifest is not valid JSON: {e}") from None
        if not isinstance(doc, dict):
            raise APIError("MANIFEST_INVALID", "manifest must be a JSON object")
        declared = doc.get("mediaType")
        if declared is not None and not isinstance(declared, str):
            raise APIError("MANIFEST_INVALID", "mediaType must be a string")
        if declared and content_type and declared != content_type:
            raise APIError("MANIFEST_INVALID", f"manifest mediaType {declared} does not match "
                           f"Content-Type {content_type}")
        media_type = declared or content_type
        if media_type not in ACCEPTED_MANIFESTS:
            raise APIError("MANIFEST_INVALID", f"unsupported manifest media type {media_type or '(none)'!r}",
                           {"mediaType": media_type})
        try:
            parsed: Manifest | Index = (Index.parse(raw, media_type) if media_type in mt.INDEXES
                                        else Manifest.parse(raw, media_type))
        except (InvalidDocument, InvalidDigest) as e:
            raise APIError("MANIFEST_INVALID", e.message) from None
        digest = Digest.of(raw, ref_digest.algorithm if ref_digest else "sha256")
        if ref_digest is not None and digest != ref_digest:
            raise APIError("DIGEST_INVALID", f"manifest digest is {digest}, not {ref_digest}",
                           {"digest": str(ref_digest)})
        if isinstance(parsed, Manifest):
            for desc in (parsed.config, *parsed.layers):
                if desc.urls:
                    continue
                d = Digest.parse(desc.digest)
                if not self.storage.repo_has_blob(name, d):
                    raise APIError("MANIFEST_BLOB_UNKNOWN", f"blob unknown to registry: {d}", {"digest": str(d)})
                self.storage.touch_blob(name, d)
            artifact_type = parsed.artifact_type or parsed.config.media_type
        else:
            for desc in parsed.manifests:
                d = Digest.parse(desc.digest)
                if self.storage.manifest_media_type(name, d) is None:
                    raise APIError("MANIFEST_BLOB_UNKNOWN", f"manifest unknown to the repository: {d}",
                                   {"digest": str(d)})
            artifact_type = doc.get("artifactType") if isinstance(doc.get("artifactType"), str) else ""
        subject = Digest.parse(parsed.subject.digest) if parsed.subject else None
        referrer = None
        if subject is not None:
            referrer = {"mediaType": media_type, "digest": str(digest), "size": len(raw)}
            if artifact_type:
                referrer["artifactType"] = artifact_type
            if parsed.annotations:
                referrer["annotations"] = parsed.annotations
        await asyncio.to_thread(self.storage.put_manifest, name, digest, raw, media_type, tag=tag,
                                subject=subject, referrer=referrer)
        headers = {"Location": f"/v2/{name}/manifests/{digest}", "Docker-Content-Digest": str(digest)}
        if subject is not None:
            headers["OCI-Subject"] = str(subject)
        return web.Response(status=201, headers=headers)

    def delete_manifest(self, name: str, ref: str) -> web.Response:
        if ":" in ref:
            digest = _parse_digest(ref)
            if not self.storage.delete_manifest(name, digest):
                raise APIError("MANIFEST_UNKNOWN", "manifest unknown", {"reference": ref})
            self._manifest_cache.pop(digest, None)
        else:
            if not valid_tag(ref):
                raise APIError("TAG_INVALID", "invalid tag", {"tag": ref})
            if not self.storage.delete_tag(name, ref):
                raise APIError("MANIFEST_UNKNOWN", "tag unknown", {"reference": ref})
        return web.Response(status=202)

    # ---- blobs -----------------------------------------------------------------------------
    async def get_blob(self, request: web.Request, name: str, digest: Digest) -> web.StreamResponse:
        if not self.storage.repo_has_blob(name, digest):
            if self.proxy is None or not await self.proxy.fetch_blob(self, name, digest):
                raise APIError("BLOB_UNKNOWN", "blob unknown to registry", {"digest": str(digest)})
        headers = {"Docker-Content-Digest": str(digest), "Content-Type": "application/octet-stream",
                   "Accept-Ranges": "bytes", "ETag": f'"{digest}"'}
        if request.method == "HEAD":
            size = self.storage.blob_size(digest)
            self.storage.touch_blob(name, digest)
            resp = web.StreamResponse(headers=headers)
            resp.content_length = size or 0
            return resp
        path = self.storage.blob_path(digest)
        if path is None:
            data = self.storage.read_blob(digest)
            if data is None:
                raise APIError("BLOB_UNKNOWN", "blob unknown to registry", {"digest": str(digest)})
            return web.Response(body=data, headers=headers)
        return _CountedFileResponse(self, path, headers=headers)

    def delete_blob(self, name: str, digest: Digest) -> web.Response:
        if not self.storage.unlink_blob(name, digest):
            raise APIError("BLOB_UNKNOWN", "blob unknown to registry", {"digest": str(digest)})
        return web.Response(status=202)

    # ---- uploads ---------------------------------------------------------------------------
    def _upload_headers(self, name: str, upload_id: str, size: int) -> dict[str, str]:
        return {"Location": f"/v2/{name}/blobs/uploads/{upload_id}",
                "Range": f"0-{max(size - 1, 0)}", "Docker-Upload-UUID": upload_id}

    async def start_upload(self, request: web.Request, name: str) -> web.Response:
        mount = request.query.get("mount")
        if mount is not None:
            digest = _parse_digest(mount)
            source = request.query.get("from")
            if source and valid_name(source) and self.storage.repo_has_blob(source, digest):
                try:
                    self.auth.check(request.headers.get("Authorization"), Scope("repository", source, ("pull",)))
                    allowed = True
                except APIError:
                    allowed = False
                if allowed:
                    self.storage.link_blob(name, digest)
                    self.storage.touch_blob(name, digest)
                    return web.Response(status=201, headers={"Location": f"/v2/{name}/blobs/{digest}",
                                                             "Docker-Content-Digest": str(digest)})
        digest_param = request.query.get("digest")
        if digest_param is not None:
            digest = _parse_digest(digest_param)
            info = self.storage.new_upload(name)
            await self._receive(request, name, info.id)
            return await self._commit(name, info.id, digest)
        info = self.storage.new_upload(name)
        return web.Response(status=202, headers=self._upload_headers(name, info.id, 0))

    def _session(self, name: str, upload_id: str):
        info = self.storage.upload_info(name, upload_id)
        if info is None:
            raise APIError("BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry", {"uuid": upload_id})
        return info

    def upload_status(self, name: str, upload_id: str) -> web.Response:
        info = self._session(name, upload_id)
        return web.Response(status=204, headers=self._upload_headers(name, upload_id, info.size))

    async def _receive(self, request: web.Request, name: str, upload_id: str) -> int:
        writer = self.storage.upload_writer(name, upload_id)
        try:
            async for chunk in request.content.iter_chunked(CHUNK):
                writer.write(chunk)
        finally:
            writer.close()
        return writer.size

    def _check_range(self, request: web.Request, name: str, upload_id: str, size: int) -> None:
        cr = request.headers.get("Content-Range")
        if not cr:
            return
        text = cr.strip()
        for prefix in ("bytes=", "bytes "):
            if text.startswith(prefix):
                text = text[len(prefix):]
        start_s, _, end_s = text.partition("-")
        end_s = end_s.split("/")[0]
        if not (start_s.isdigit() and end_s.isdigit()) or int(end_s) < int(start_s):
            raise APIError("BLOB_UPLOAD_INVALID", f"invalid Content-Range {cr!r}", status=416,
                           headers=self._upload_headers(name, upload_id, size))
        start, end = int(start_s), int(end_s)
        if start != size:
            raise APIError("BLOB_UPLOAD_INVALID", f"chunk starts at {start}, the upload has {size} bytes",
                           status=416, headers=self._upload_headers(name, upload_id, size))
        if request.content_length is not None and request.content_length != end - start + 1:
            raise APIError("SIZE_INVALID", "Content-Length does not match Content-Range",
                           status=416, headers=self._upload_headers(name, upload_id, size))

    async def patch_upload(self, request: web.Request, name: str, upload_id: str) -> web.Response:
        info = self._session(name, upload_id)
        self._check_range(request, name, upload_id, info.size)
        size = await self._receive(request, name, upload_id)
        return web.Response(status=202, headers=self._upload_headers(name, upload_id, size))

    async def finish_upload(self, request: web.Request, name: str, upload_id: str) -> web.Response:
        info = self._session(name, upload_id)
        digest_param = request.query.get("digest")
        if digest_param is None:
            raise APIError("DIGEST_INVALID", "the digest query parameter is required to finish an upload")
        digest = _parse_digest(digest_param)
        if request.content_length or request.headers.get("Transfer-Encoding"):
            self._check_range(request, name, upload_id, info.size)
            await self._receive(request, name, upload_id)
        return await self._commit(name, upload_id, digest)

    async def _commit(self, name: str, upload_id: str, digest: Digest) -> web.Response:
        try:
            await asyncio.to_thread(self.storage.commit_upload, name, upload_id, digest)
        except DigestMismatch as e:
            raise APIError("DIGEST_INVALID", e.message, {"digest": str(digest)}) from None
        return web.Response(status=201, headers={"Location": f"/v2/{name}/blobs/{digest}",
                                                 "Docker-Content-Digest": str(digest)})

    def cancel_upload(self, name: str, upload_id: str) -> web.Response:
        self._session(name, upload_id)
        self.storage.cancel_upload(name, upload_id)
        return web.Response(status=204)


def purge_loop_interval(age: float) -> float:
    return max(60.0, min(3600.0, age / 4))


async def purge_uploads_forever(storage: Storage, age: float) -> None:
    while True:
        try:
            await asyncio.to_thread(storage.purge_uploads, time.time() - age)
        except OSError:
            pass
        await asyncio.sleep(purge_loop_interval(age))


__all__ = ["RegistryApp", "purge_uploads_forever"]
