"""`--cache-to/--cache-from type=registry,ref=REF`: the step cache as an image in a registry.

The layout is BuildKit's registry cache with `image-manifest=true`: an OCI image manifest whose
config has the media type `application/vnd.buildkit.cacheconfig.v0` and whose layers are the
cache's layer blobs (annotated with their `containerd.io/uncompressed` diff id). The config is
BuildKit's shape — `layers` (blob, parent) and `records` (digest, results with a layerIndex) —
and each record carries pallet's step entry (`pallet.entry`: the image state after the step), so
the records are pallet's keys, not BuildKit's (a BuildKit cache gives pallet no hits, nor the
other way round).

`mode=min` exports the steps of the final stage (and the stages it is FROM), `mode=max` every step
of the build. An import reads the manifest and config once, at the start of the build; a layer
blob is fetched (digest-checked) only when its step is hit. A reference that does not exist yet
is a warning, as BuildKit's: the build runs without that cache.
"""

from __future__ import annotations

import json

from pallet.errors import PalletError
from pallet.oci import mediatypes as mt
from pallet.oci.documents import Descriptor, canonical_json

__all__ = ["CACHE_CONFIG", "RegistryCache", "parse_cache_option"]

CACHE_CONFIG = "application/vnd.buildkit.cacheconfig.v0"


def parse_cache_option(value: str, key: str) -> dict[str, str]:
    """`type=local,src=DIR` / `type=registry,ref=REF[,mode=min|max]` -> its fields (type filled in).
    A bare value is a registry reference for --cache-from (docker's `--cache-from IMAGE`)."""
    if "=" not in value:
        return {"type": "registry", "ref": value}
    fields = {}
    for f in value.split(","):
        k, eq, v = f.partition("=")
        if not eq:
            raise PalletError(f"invalid cache option {value!r}: {f!r} is not KEY=VALUE")
        fields[k.strip()] = v.strip()
    kind = fields.setdefault("type", "local")
    if kind == "local":
        if not fields.get(key):
            raise PalletError(f"invalid cache option {value!r}: type=local,{key}=DIR")
    elif kind == "registry":
        if not fields.get("ref"):
            raise PalletError(f"invalid cache option {value!r}: type=registry,ref=REGISTRY/NAME[:TAG]")
        from pallet import reference

        try:
            reference.normalize(fields["ref"])
        except PalletError as e:
            raise PalletError(f"invalid cache reference {fields['ref']!r}: {e.message}") from None
    else:
        raise PalletError(f"cache type {kind!r} is not supported (local, registry)")
    mode = fields.get("mode", "min")
    if mode not in ("min", "max"):
        raise PalletError(f"invalid cache mode {mode!r}: min or max")
    return fields


class RegistryCache:
    """One registry client for the build's registry caches (imports and the export)."""

    def __init__(self, client, store) -> None:
        self.client = client
        self.store = store

    # ---- export ---------------------------------------------------------------------------------
    def export(self, ref_text: str, entries: dict[str, dict]) -> str:
        """Push `entries` (key -> step entry) as a cache manifest to `ref_text`; its digest."""
        from pallet import reference
        from pallet.registry.client.push import Pusher

        ref = reference.normalize(ref_text)
        layers: dict[str, dict] = {}
        for entry in entries.values():
            for x in entry.get("layers", []):
                layers.setdefault(x["digest"], x)
        order = list(layers)
        index = {d: i for i, d in enumerate(order)}
        records = []
        for key, entry in entries.items():
            top = entry.get("layers") or []
            results = [{"layerIndex": index[top[-1]["digest"]]}] if top else []
            records.append({"digest": key, "results": results, "pallet.entry": entry})
        config = canonical_json({"layers": [{"blob": d, "parent": index[order[i - 1]] if i else -1}
                                            for i, d in enumerate(order)], "records": records})
        cdig = self.store.blobs.put(config)
        descs = [Descriptor(CACHE_CONFIG, cdig, len(config))]
        man_layers = []
        for d in order:
            x = layers[d]
            descs.append(Descriptor(x["media_type"], d, x["size"]))
            man_layers.append({"mediaType": x["media_type"], "digest": d, "size": x["size"],
                               "annotations": {"containerd.io/uncompressed": x["diff_id"]}})
        manifest = canonical_json({"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
                                   "config": {"mediaType": CACHE_CONFIG, "digest": cdig, "size": len(config)},
                                   "layers": man_layers})
        pusher = Pusher(self.client, self.store, ref.domain, ref.path)
        pusher.reg.ping()
        for desc in descs:
            pusher.push_blob(desc)
        return pusher.put_manifest(manifest, mt.OCI_MANIFEST, ref.digest or ref.tag or "latest")

    # ---- import ---------------------------------------------------------------------------------
    def load(self, ref_text: str) -> RemoteEntries | None:
        """The entries of the cache at `ref_text`; None when the registry has no such manifest."""
        from pallet import reference
        from pallet.errors import NotFound, RegistryError
        from pallet.registry.client.pull import BlobSink

        ref = reference.normalize(ref_text)
        try:
            src, raw, _ctype = self.client.resolve(ref.domain, ref.path, ref.digest or ref.tag or "latest")
        except NotFound:
            return None
        except RegistryError as e:
            if "not found" in e.message.lower() or "unknown" in e.message.lower():
                return None
            raise
        try:
            man = json.loads(raw)
            cfg = Descriptor.from_dict(man["config"], "the cache manifest's config")
            if cfg.media_type != CACHE_CONFIG:
                raise PalletError(f"{ref_text} is not a build cache (its config is {cfg.media_type})")
            if not self.store.blobs.has(cfg.digest):
                sink = BlobSink(self.store, cfg, None)
                try:
                    self.client.fetch_blob(src, cfg, sink)
                    sink.commit()
                except BaseException:
                    sink.abort()
                    raise
            doc = json.loads(self.store.blobs.read(cfg.digest))
            entries = {r["digest"]: r["pallet.entry"] for r in doc.get("records", []) if "pallet.entry" in r}
        except (ValueError, KeyError, TypeError) as e:
            raise PalletError(f"the build cache {ref_text} is malformed: {e}") from None
        return RemoteEntries(self.client, src, self.store, entries)


class RemoteEntries:
    """The entries of one imported registry cache; `layer(x)` brings a layer blob into the store."""

    def __init__(self, client, src, store, entries: dict[str, dict]) -> None:
        self.client, self.src, self.store, self.entries = client, src, store, entries

    def fetch(self, layer: dict) -> None:
        from pallet.registry.client.pull import BlobSink

        desc = Descriptor(layer["media_type"], layer["digest"], layer["size"])
        sink = BlobSink(self.store, desc, None)
        try:
            self.client.fetch_blob(self.src, desc, sink)
            sink.commit()
        except BaseException:
            sink.abort()
            raise
