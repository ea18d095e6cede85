"""Images of the store -> unpacked snapshots. The only module of `pallet.layers` that knows the store.

Layers are unpacked lazily: the first `prepare()` (mount, container create)
of an image unpacks the layers not unpacked yet, several at once. The pull
path may unpack eagerly while it downloads (`Snapshots.unpack_writer`); this
module then finds them present.
"""

from __future__ import annotations

import functools
from pathlib import Path

from pallet.layers.snapshots import LayerSource, Snapshots


def layer_sources(store, rec) -> list[LayerSource]:
    manifest = store.manifest(rec)
    config = store.config(rec)
    out = []
    for desc, diff_id in zip(manifest.layers, config.diff_ids, strict=True):
        # The blob store verified the blob's digest when it wrote it, and load/pull recorded the
        # diff id after checking it against the config: unpacking need not hash either again.
        known = store.layer_info(desc.digest)
        out.append(LayerSource(diff_id=diff_id, digest=desc.digest, media_type=desc.media_type,
                               open=functools.partial(store.blobs.open, desc.digest), size=desc.size,
                               trusted=True, diff_verified=known is not None and known[0] == diff_id))
    return out


def snapshots(store, driver: str | None = None) -> Snapshots:
    return Snapshots(store.root, driver)


def prepare(store, rec, driver: str | None = None) -> tuple[Snapshots, list[str]]:
    """Make sure every layer of image `rec` is unpacked; returns the snapshots and the chain ids."""
    snaps = snapshots(store, driver)
    with store.shared_lock():  # gc must not remove blobs or layers while we unpack
        ids = snaps.ensure(layer_sources(store, rec))
    return snaps, ids


def mount(store, ref: str, driver: str | None = None) -> Path:
    """`pallet image mount`: a read-only merged view of an image; returns its path."""
    rec = store.resolve_image(ref)
    snaps, ids = prepare(store, rec, driver)
    return snaps.mount_image(rec.id, ids)


def unmount(store, ref: str, driver: str | None = None) -> bool:
    rec = store.resolve_image(ref)
    return snapshots(store, driver).unmount_image(rec.id)


def storage_info(root, driver: str | None = None) -> dict:
    """The storage driver section of `pallet system info`."""
    return Snapshots(root, driver).info()
