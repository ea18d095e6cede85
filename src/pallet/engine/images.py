"""The image of a new container: resolved in the store (short names through their candidates), else pulled."""

from __future__ import annotations

from pallet.errors import NotFound

TYPE_CHECKING = False  # typing is not imported at run time (start-up)
if TYPE_CHECKING:
    from pallet.engine.options import CreateOptions


class Images:
    """Engine methods (a mixin of `core.Engine`: `self.store`)."""

    def resolve_image(self, opts: CreateOptions):
        from pallet.errors import InvalidReference

        store = self.store
        if opts.pull == "always":
            return self.pull(opts.image, opts.platform, missing=False)
        try:
            return store.resolve_image(opts.image)
        except NotFound:
            local = self._short_name_in_store(opts.image)
            if local is not None:
                return local
            if opts.pull == "never":
                raise NotFound(f"No such image: {opts.image} (and --pull=never)") from None
            return self.pull(opts.image, opts.platform)
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
