"""Images as the engine serves them: the image of a new container (resolved in the store, short names
through their candidates, else pulled) and docker's image inspect object."""

from __future__ import annotations

from pallet.errors import InvalidReference, NotFound

TYPE_CHECKING = False  # typing is not imported at run time (start-up)
if TYPE_CHECKING:
    from typing import Any

    from pallet.engine.options import CreateOptions


_CONFIG_KEYS = ("User", "ExposedPorts", "Env", "Cmd", "Volumes", "WorkingDir", "Entrypoint", "Labels",
                "StopSignal")


def familiar(name: str) -> str:
    """`docker.io/library/busybox:latest` → `busybox:latest`; `…/x@sha256:…` → `x@sha256:…`."""
    from pallet import reference

    try:
        return reference.familiar_string(reference.parse(name))
    except InvalidReference:
        return name


def inspect_image(store, rec) -> dict[str, Any]:
    """docker image inspect's object for one image (the store's record `rec`)."""
    config = store.config(rec)
    cfg = dict(config.config)
    for k in _CONFIG_KEYS:
        cfg.setdefault(k, "" if k in ("User", "WorkingDir") else None)
    cfg.pop("StopSignal", None) if cfg.get("StopSignal") is None else None
    doc: dict[str, Any] = {
        "Id": rec.id,
        "RepoTags": [familiar(t) for t in rec.tags],
        "RepoDigests": [familiar(d) for d in rec.repo_digests],
        "Parent": "",
        "Comment": config.doc.get("comment", "") or "",
        "Created": config.created or "",
        "DockerVersion": config.doc.get("docker_version", "") or "",
        "Author": config.author or "",
        "Config": cfg,
        "Architecture": config.architecture,
    }
    if config.variant:
        doc["Variant"] = config.variant
    doc["Os"] = config.os
    if config.doc.get("os.version"):
        doc["OsVersion"] = config.doc["os.version"]
    doc.update({
        "Size": rec.size,
        "RootFS": {"Type": "layers", "Layers": list(config.diff_ids)},
        "History": [dict(h) for h in config.history],
        "Descriptor": {"mediaType": rec.manifest_media_type, "digest": rec.manifest_digest,
                       "size": store.blobs.size(rec.manifest_digest)},
    })
    return doc


class Images:
    """Engine methods (a mixin of `core.Engine`: `self.store`)."""

    def inspect_image(self, ref: str) -> dict[str, Any]:
        """`image inspect REF` (and `inspect` of an image): by name, id or id prefix in the store."""
        return inspect_image(self.store, self.store.resolve_image(ref))

    def resolve_image(self, opts: CreateOptions):
        from pallet.errors import InvalidReference

        store = self.store
        if opts.pull == "always":
            return self.pull(opts.config.Image, opts.platform, missing=False)
        try:
            return store.resolve_image(opts.config.Image)
        except NotFound:
            local = self._short_name_in_store(opts.config.Image)
            if local is not None:
                return local
            if opts.pull == "never":
                raise NotFound(f"No such image: {opts.config.Image} (and --pull=never)") from None
            return self.pull(opts.config.Image, opts.platform)
        except InvalidReference:
            raise

    def _short_name_in_store(self, image: str):
        """A short name pulled earlier through a search registry or an alias: look for its candidates."""
        from pallet.registry.client import shortnames

        if not shortnames.is_short(image):
            return None
        for cand in shortnames.resolve(image, shortnames.load()).candidates:
            try:
                return self.store.resolve_image(cand)
            except NotFound:
                continue
        return None

    def pull(self, image: str, platform: str | None, *, missing: bool = True):
        """Pull through pallet.registry.client (docker run's 'Unable to find image locally' path)."""
        import sys

        from pallet import long_lived

        long_lived()   # a pull is long work

        try:
            from pallet.registry.client.pull import Client
        except ImportError:
            raise NotFound(f"No such image: {image} (pulling is not available in this build)") from None
        from pallet.oci.documents import Platform
        from pallet.registry.client.platforms import normalize
        from pallet.registry.client.settings import load_settings
        from pallet.registry.client.transport import Options

        if missing:
            sys.stderr.write(f"Unable to find image '{image}' locally\n")
        settings = load_settings(None)
        opts = Options(settings=settings, max_parallel=settings.max_parallel, retries=settings.retries,
                       backoff=settings.retry_delay)
        plat = normalize(Platform.parse(platform)) if platform else None
        from pallet.registry.client.shortnames import pull_first

        with Client(opts) as client:
            res = pull_first(image, lambda ref: client.pull(self.store, ref, platform=plat),
                             tty=sys.stdin.isatty() and sys.stderr.isatty())
        return self.store.get_image(res.image_id)
