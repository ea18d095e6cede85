"""Layers: safe streaming unpack of OCI layer tars, whiteouts, diffs, snapshots.

Unpack one layer (the pull path calls this while downloading)::

    from pallet.layers import apply_layer, LayerWriter
    r = apply_layer(fileobj_or_iterable_of_bytes, dest_dir, media_type, mode="overlay" | "flat",
                    id_map=None, expected_digest=None, expected_diff_id=None)
    r.diff_id, r.digest, r.size, r.compressed_size, r.entries, r.warnings

    w = LayerWriter(dest_dir, media_type, expected_digest=..., expected_diff_id=...)
    w.feed(chunk) ...; r = w.close()          # or w.abort(); push-style, unpacks in a worker thread

Snapshots of a storage root (unpack once per chain id, mount, containers)::

    snaps = Snapshots(root, driver=None | "overlay" | "copy")   # None: detect (probe mount)
    ids = snaps.ensure([LayerSource(diff_id, digest, media_type, open, size), ...])  # bottom first
    w = snaps.unpack_writer(chain_id, parent_chain_id, media_type, expected_digest=..., expected_diff_id=...)
    w.feed(chunk) ...; w.commit()             # pull: unpack into tmp while downloading, publish atomically
    path = snaps.mount_image(key, ids); snaps.unmount_image(key)          # read-only merged view
    c = snaps.create_container(key, ids); rootfs = c.mount(); c.unmount(); c.remove()
    c.upper                                   # overlay upper dir (None with the copy driver)
    snaps.info()                              # for `pallet system info`: Driver, Reason, Root, ...

Unpack while a store writes a blob, chain id not known yet (`pallet load`, via `pallet.store.ingest`)::

    s = StagedUnpack(blob_writer.tmp_path, media_type, staging_dir)   # forks; reads the file as it grows
    s.grown(n) ...; s.end(size); r = s.wait()   # LayerResult or None (s.error)
    s.publish(snaps, chain_id, parent, digest); s.discard()

Store images (`pallet.layers.images`): `mount(store, ref, driver)`, `unmount(...)`,
`prepare(store, rec, driver) -> (snaps, chain_ids)` (lazy unpack), `storage_info(root, driver)`.

The other direction (`pallet.layers.diff`): `write_layer(out, upper=DIR)` for an overlay upper
dir or `write_layer(out, lower=A, upper=B)` for two trees -> deterministic OCI layer + digests.

Chain ids: `chain_ids(diff_ids)`. Image analysis (`tree`, `efficiency`): `pallet.layers.analysis`.
"""

# Exports are resolved on first use, so that importing one submodule (e.g. `compression`, used by
# the store and the registry client) does not import the snapshot machinery too.
_EXPORTS = {
    "chain_id": "pallet.layers.chain", "chain_ids": "pallet.layers.chain",
    "ContainerSnapshot": "pallet.layers.snapshots", "LayerSource": "pallet.layers.snapshots",
    "Snapshots": "pallet.layers.snapshots",
    "LayerResult": "pallet.layers.stream", "LayerWriter": "pallet.layers.stream",
    "apply_layer": "pallet.layers.stream",
    "StagedUnpack": "pallet.layers.staged",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'pallet.layers' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
