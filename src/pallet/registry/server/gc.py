"""Mark and sweep garbage collection of a registry's storage.

Mark: in each repository, every tagged manifest (and, without
`delete_untagged`, every manifest), every manifest written within the grace
period, and everything they reach: an index's children, a manifest's config and
layers, the referrers of a kept manifest. Sweep: untagged unreachable manifests
(only with `delete_untagged`), then repository links and blobs nobody marked.

Safe while the server runs: a blob or link touched within `grace` seconds is
never removed, and the server touches every blob a manifest push references
(and every blob a client HEADs to skip its upload) before accepting the
manifest. So a push racing with gc keeps all of its blobs.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from pallet.errors import PalletError
from pallet.oci import Digest, Index, Manifest, parse_manifest_or_index
from pallet.registry.server.storage import Storage


@dataclass
class Report:
    manifests: int = 0
    blobs: int = 0
    bytes: int = 0
    links: int = 0
    kept_blobs: int = 0
    uploads: int = 0


def _mark_repo(storage: Storage, name: str, roots: set[Digest]) -> tuple[set[Digest], set[Digest]]:
    """(manifests, blobs) reachable in repository `name` from `roots`."""
    manifests: set[Digest] = set()
    blobs: set[Digest] = set()
    queue = list(roots)
    while queue:
        d = queue.pop()
        if d in manifests:
            continue
        found = storage.get_manifest(name, d)
        if found is None:
            continue
        manifests.add(d)
        raw, media_type = found
        try:
            doc = parse_manifest_or_index(raw, media_type)
        except PalletError:
            continue
        if isinstance(doc, Index):
            queue.extend(Digest.parse(m.digest) for m in doc.manifests)
        elif isinstance(doc, Manifest):
            for desc in (doc.config, *doc.layers):
                blobs.add(Digest.parse(desc.digest))
        for ref in storage.referrers(name, d):
            queue.append(Digest.parse(ref["digest"]))
    return manifests, blobs


def collect(storage: Storage, *, grace: float = 3600.0, dry_run: bool = False, delete_untagged: bool = False,
            upload_age: float = 7 * 24 * 3600.0, log: Callable[[str], None] = lambda _m: None) -> Report:
    report = Report()
    now = time.time()
    cutoff = now - grace
    marked: set[Digest] = set()
    for name in storage.list_repositories():
        revisions = storage.list_manifests(name)
        if delete_untagged:
            roots = set(storage.list_tag_targets(name).values())
            roots |= {d for d in revisions if (storage.manifest_mtime(name, d) or now) >= cutoff}
        else:
            roots = set(revisions)
        manifests, blobs = _mark_repo(storage, name, roots)
        for d in revisions:
            if d not in manifests:
                log(f"{'would delete' if dry_run else 'delete'} manifest {name}@{d}")
                report.manifests += 1
                if not dry_run:
                    storage.delete_manifest(name, d)
        for d, mtime in storage.list_repo_blobs(name):
            if d in blobs or d in manifests:
                continue
            if mtime >= cutoff:
                blobs.add(d)
                continue
            report.links += 1
            if not dry_run:
                storage.unlink_blob(name, d)
        marked |= manifests | blobs
    for d, mtime in storage.iter_blobs():
        if d in marked or mtime >= cutoff:
            report.kept_blobs += 1
            continue
        path = storage.blob_path(d)
        try:
            st = os.stat(path) if path else None
        except FileNotFoundError:
            continue
        if st is not None and st.st_mtime >= cutoff:  # touched since the listing
            report.kept_blobs += 1
            continue
        log(f"{'would delete' if dry_run else 'delete'} blob {d}")
        report.blobs += 1
        report.bytes += st.st_size if st else 0
        if not dry_run:
            storage.delete_blob(d)
    if not dry_run:
        report.uploads = storage.purge_uploads(now - upload_age)
    return report
