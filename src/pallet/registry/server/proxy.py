"""Pull-through cache: fetch what a pull misses from upstream registries, verify, store, serve.

`--proxy-remote URL` may be given several times; upstreams are tried in order
and the repository path is the same upstream as here. Talking to an upstream
goes through pallet's registry client (`pallet.registry.client`: auth, TLS,
retries), called in a thread because it is synchronous. A manifest by digest or
a blob is fetched once and then served from storage; a tag is asked upstream on
every pull (so it follows the upstream), falling back to the cached copy when no
upstream answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pallet.errors import PalletError
from pallet.oci import Digest
from pallet.oci import mediatypes as mt
from pallet.registry.server.config import Upstream

if TYPE_CHECKING:
    from pallet.registry.server.app import RegistryApp

log = logging.getLogger("pallet.registry")
MAX_MANIFEST = 4 * 1024 * 1024
ACCEPT = ", ".join(mt.MANIFEST_ACCEPT)


class PullThrough:
    def __init__(self, upstreams: list[Upstream]) -> None:
        self.upstreams = upstreams
        self._registries: list[Any] | None = None
        self._inflight: dict[tuple[str, str], asyncio.Future[Any]] = {}

    def _clients(self) -> list[Any]:
        if self._registries is None:
            from pallet.registry.client.auth import Credentials
            from pallet.registry.client.transport import Options, Registry

            regs = []
            for u in self.upstreams:
                parts = urlsplit(u.url)
                creds = Credentials(u.username, u.password) if u.username else None
                opts = Options(tls_verify=None if parts.scheme == "https" else False, creds=creds, retries=1,
                               backoff=0.1)
                regs.append(Registry(parts.netloc, opts))
            self._registries = regs
        return self._registries

    async def close(self) -> None:
        for reg in self._registries or []:
            with contextlib.suppress(Exception):
                reg.close()

    async def _once(self, key: tuple[str, str], fn, *args: Any) -> Any:
        """Run `fn` in a thread, once for concurrent requests of the same thing."""
        fut = self._inflight.get(key)
        if fut is not None:
            return await asyncio.shield(fut)
        fut = asyncio.get_running_loop().create_future()
        self._inflight[key] = fut
        try:
            result = await asyncio.to_thread(fn, *args)
            fut.set_result(result)
            return result
        except BaseException as e:
            fut.set_exception(e)
            fut.exception()  # mark retrieved
            raise
        finally:
            del self._inflight[key]

    # ---- manifests -------------------------------------------------------------------------
    def _get_manifest(self, app: RegistryApp, name: str, ref: str) -> Digest | None:
        from pallet.registry.client.transport import scope

        want = Digest.parse(ref) if ":" in ref else None
        for reg in self._clients():
            try:
                resp = reg.request("GET", f"/v2/{name}/manifests/{ref}", scopes={scope(name, "pull")},
                                   headers={"Accept": ACCEPT})
            except PalletError as e:
                log.warning("proxy: %s: %s", reg.domain, e.message)
                continue
            if resp.status_code != 200:
                continue
            raw = resp.content
            media_type = resp.headers.get("content-type", "").split(";")[0].strip()
            if len(raw) > MAX_MANIFEST or media_type not in (mt.MANIFESTS | mt.INDEXES):
                log.warning("proxy: %s sent an unusable manifest for %s:%s (%s)", reg.domain, name, ref, media_type)
                continue
            digest = Digest.of(raw, want.algorithm if want else "sha256")
            if want is not None and digest != want:
                log.warning("proxy: %s sent %s:%s with digest %s; discarded", reg.domain, name, ref, digest)
                continue
            app.storage.put_manifest(name, digest, raw, media_type, tag=None if want else ref)
            log.info("proxy: cached manifest %s@%s from %s", name, digest, reg.domain)
            return digest
        return None

    async def fetch_manifest(self, app: RegistryApp, name: str, ref: str) -> Digest | None:
        return await self._once((name, ref), self._get_manifest, app, name, ref)

    # ---- blobs -----------------------------------------------------------------------------
    def _get_blob(self, app: RegistryApp, name: str, digest: Digest) -> bool:
        from pallet.registry.client.transport import scope

        storage = app.storage
        for reg in self._clients():
            info = storage.new_upload(name)
            try:
                with reg.stream("GET", f"/v2/{name}/blobs/{digest}", scopes={scope(name, "pull")}) as resp:
                    if resp.status_code != 200:
                        storage.cancel_upload(name, info.id)
                        continue
                    writer = storage.upload_writer(name, info.id)
                    try:
                        for chunk in resp.iter_raw():
                            writer.write(chunk)
                    finally:
                        writer.close()
                storage.commit_upload(name, info.id, digest)  # verifies the digest
                log.info("proxy: cached blob %s@%s from %s", name, digest, reg.domain)
                return True
            except Exception as e:  # noqa: BLE001 - any upstream failure: try the next one
                log.warning("proxy: blob %s@%s from %s: %s", name, digest, reg.domain,
                            getattr(e, "message", None) or e)
                storage.cancel_upload(name, info.id)
        return False

    async def fetch_blob(self, app: RegistryApp, name: str, digest: Digest) -> bool:
        return await self._once((name, str(digest)), self._get_blob, app, name, digest)
