"""The image store: an OCI image layout (`oci-layout`, `index.json`, `blobs/`) plus SQLite metadata.

    store = Store(root)
    store.blobs.put(data) / .writer(expected_digest) / .path(digest)
    rec = store.register_image(manifest, config, size=..., names=["docker.io/library/x:latest"])
    rec = store.resolve_image("busybox")       # a reference, an image ID or a unique ID prefix
    store.manifest(rec), store.config(rec)
    store.tag(rec, "localhost/x:1"); store.remove_image("busybox", force=False); store.gc()

Writers that add blobs hold `store.shared_lock()` until their image is
registered; garbage collection holds the exclusive lock, so it never sweeps a
blob that a concurrent pull or load has written but not yet registered.
"""

from __future__ import annotations

import fcntl
import importlib
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from pallet.errors import Conflict, InvalidReference, NotFound, PalletError
from pallet.fsutil import atomic_write
from pallet.oci import mediatypes as mt
from pallet.oci.digest import Digest
from pallet.oci.documents import ImageConfig, Index, Manifest, canonical_json, parse_manifest_or_index
from pallet.store.blobs import BlobStore
from pallet.store.db import Database

REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name"


@dataclass
class ImageRecord:
    id: str                       # config digest
    manifest_digest: str
    manifest_media_type: str
    size: int
    created: str | None
    added: float
    tags: list[str] = field(default_factory=list)          # full names, e.g. docker.io/library/busybox:latest
    repo_digests: list[str] = field(default_factory=list)  # name@digest

    @property
    def short_id(self) -> str:
        return Digest.parse(self.id).short


class Store:
    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        self.tmp = self.root / "tmp"
        for d in (self.root / "blobs" / "sha256", self.tmp):
            d.mkdir(parents=True, exist_ok=True)
        layout = self.root / "oci-layout"
        if not layout.exists():
            atomic_write(layout, canonical_json({"imageLayoutVersion": mt.OCI_LAYOUT_VERSION}))
        if not (self.root / "index.json").exists():
            atomic_write(self.root / "index.json", canonical_json({"schemaVersion": 2, "manifests": []}))
        self.blobs = BlobStore(self.root / "blobs", self.tmp)
        self.db = Database(self.root / "pallet.db")

    # ---- locking -------------------------------------------------------------------------
    @contextmanager
    def _flock(self, kind: int) -> Iterator[None]:
        fd = os.open(self.root / "store.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, kind)
            yield
        finally:
            os.close(fd)

    def shared_lock(self):
        """Held by anything that writes blobs it has not registered yet (pull, load, import)."""
        return self._flock(fcntl.LOCK_SH)

    def exclusive_lock(self):
        """Held by garbage collection."""
        return self._flock(fcntl.LOCK_EX)

    # ---- documents -----------------------------------------------------------------------
    def read_document(self, digest: str, media_type: str | None = None) -> Manifest | Index:
        return parse_manifest_or_index(self.blobs.read(digest), media_type)

    def manifest(self, rec: ImageRecord) -> Manifest:
        return Manifest.parse(self.blobs.read(rec.manifest_digest), rec.manifest_media_type)

    def config(self, rec: ImageRecord) -> ImageConfig:
        return ImageConfig.parse(self.blobs.read(rec.id))

    # ---- registering -----------------------------------------------------------------------
    def register_image(self, manifest: Manifest, config: ImageConfig, *, size: int,
                       names: list[str] = (), target_digest: str | None = None,
                       repo_digests: list[str] = ()) -> ImageRecord:
        """Record an image whose manifest, config and layer blobs are already in the blob store.

        `names` are full references to tag (the tag moves if it named another image);
        `repo_digests` are `repo@digest` strings (docker's RepoDigests).
        """
        if manifest.config.digest != config.digest:
            raise PalletError(f"manifest names config {manifest.config.digest} but the config is {config.digest}")
        for d in [manifest.digest, config.digest, *(x.digest for x in manifest.layers)]:
            if not self.blobs.has(d):
                raise NotFound(f"cannot register image: blob {d} is missing from the store")
        if len(manifest.layers) != len(config.diff_ids):
            raise PalletError(f"manifest has {len(manifest.layers)} layers but the config lists "
                              f"{len(config.diff_ids)} diff ids")
        image_id = config.digest
        with self.db.transaction() as c:
            row = c.execute("SELECT manifest_digest FROM images WHERE id = ?", (image_id,)).fetchone()
            if row is None:
                c.execute("INSERT INTO images(id, manifest_digest, manifest_media_type, size, created, added) "
                          "VALUES (?, ?, ?, ?, ?, ?)",
                          (image_id, manifest.digest, manifest.media_type, size, config.created, time.time()))
            for name in names:
                c.execute("INSERT OR REPLACE INTO tags(name, image_id, target_digest) VALUES (?, ?, ?)",
                          (name, image_id, target_digest or manifest.digest))
            for rd in repo_digests:
                repo, _, dg = rd.partition("@")
                c.execute("INSERT OR REPLACE INTO repo_digests(repo, digest, image_id) VALUES (?, ?, ?)",
                          (repo, dg, image_id))
        self.write_index()
        return self.get_image(image_id)

    # ---- queries ---------------------------------------------------------------------------
    def _record(self, row) -> ImageRecord:
        rec = ImageRecord(row["id"], row["manifest_digest"], row["manifest_media_type"], row["size"],
                          row["created"], row["added"])
        rec.tags = [r[0] for r in self.db.query("SELECT name FROM tags WHERE image_id = ? ORDER BY name", (rec.id,))]
        rec.repo_digests = [f"{r[0]}@{r[1]}" for r in self.db.query(
            "SELECT repo, digest FROM repo_digests WHERE image_id = ? ORDER BY repo, digest", (rec.id,))]
        return rec

    def get_image(self, image_id: str) -> ImageRecord:
        row = self.db.query("SELECT * FROM images WHERE id = ?", (image_id,))
        if not row:
            raise NotFound(f"No such image: {image_id}")
        return self._record(row[0])

    def images(self) -> list[ImageRecord]:
        return [self._record(r) for r in self.db.query("SELECT * FROM images ORDER BY added DESC, id")]

    def resolve_image(self, text: str) -> ImageRecord:
        """An image by reference (`busybox`, `x:1`, `x@sha256:…`), full ID, or unique ID prefix."""
        from pallet import reference

        ref = None
        try:
            ref = reference.normalize(text)
        except InvalidReference:
            if not reference.looks_like_id(text):
                raise
        if ref is not None:
            if ref.digest:
                rows = self.db.query("SELECT image_id FROM repo_digests WHERE repo = ? AND digest = ?",
                                     (ref.name, ref.digest))
                if not rows:  # an image stored under another name, or by the manifest digest itself
                    rows = self.db.query("SELECT id FROM images WHERE manifest_digest = ?", (ref.digest,))
                    rows = rows if rows and ref.tag is None else []
                if rows:
                    return self.get_image(rows[0][0])
            else:
                rows = self.db.query("SELECT image_id FROM tags WHERE name = ?", (str(ref),))
                if rows:
                    return self.get_image(rows[0][0])
        if reference.looks_like_id(text):
            hexpart = text.removeprefix("sha256:")
            rows = self.db.query("SELECT id FROM images WHERE id LIKE ?", (f"sha256:{hexpart}%",))
            if len(rows) == 1:
                return self.get_image(rows[0][0])
            if len(rows) > 1:
                raise Conflict(f"image ID prefix {text!r} is ambiguous: {len(rows)} images match")
        raise NotFound(f"No such image: {text}")

    # ---- tags ------------------------------------------------------------------------------
    def tag(self, rec: ImageRecord, name: str) -> None:
        with self.db.transaction() as c:
            c.execute("INSERT OR REPLACE INTO tags(name, image_id, target_digest) VALUES (?, ?, ?)",
                      (name, rec.id, rec.manifest_digest))
        self.write_index()

    def untag(self, name: str) -> None:
        with self.db.transaction() as c:
            c.execute("DELETE FROM tags WHERE name = ?", (name,))
        self.write_index()

    def image_in_use(self, image_id: str) -> str | None:
        """Why an image may not be removed (e.g. a container uses it); None when free.

        The container engine extends this; the store itself has no users of images.
        """
        try:
            rows = self.db.query("SELECT name FROM containers WHERE image_id = ? LIMIT 1", (image_id,))
        except Exception:
            return None
        return f"container {rows[0][0]} uses it" if rows else None

    def remove_image(self, text: str, *, force: bool = False) -> list[tuple[str, str]]:
        """docker rmi semantics. Returns [("Untagged", name) | ("Deleted", id), ...]."""
        from pallet import reference

        rec = self.resolve_image(text)
        out: list[tuple[str, str]] = []
        by_name = None
        try:
            ref = reference.normalize(text)
            if str(ref) in rec.tags:
                by_name = str(ref)
            elif ref.digest and f"{ref.name}@{ref.digest}" in rec.repo_digests:
                by_name = f"{ref.name}@{ref.digest}"
        except InvalidReference:
            pass
        if by_name and (len(rec.tags) + len(rec.repo_digests) > 1) and not force:
            # another name still refers to the image: only this name goes
            if "@" in by_name:
                repo, _, dg = by_name.partition("@")
                with self.db.transaction() as c:
                    c.execute("DELETE FROM repo_digests WHERE repo = ? AND digest = ?", (repo, dg))
            else:
                self.untag(by_name)
            self.write_index()
            return [("Untagged", by_name)]
        if not by_name and len(rec.tags) > 1 and not force:
            raise Conflict(f"unable to delete {rec.short_id} (must be forced) - image is referenced in "
                           f"multiple repositories")
        why = self.image_in_use(rec.id)
        if why and not force:
            raise Conflict(f"unable to remove image {text} ({rec.short_id}): {why}")
        with self.db.transaction() as c:
            for name in rec.tags:
                out.append(("Untagged", name))
            for rd in rec.repo_digests:
                out.append(("Untagged", rd))
            c.execute("DELETE FROM tags WHERE image_id = ?", (rec.id,))
            c.execute("DELETE FROM repo_digests WHERE image_id = ?", (rec.id,))
            c.execute("DELETE FROM images WHERE id = ?", (rec.id,))
        out.append(("Deleted", rec.id))
        self.write_index()
        self.gc()
        return out

    # ---- layout index & gc -----------------------------------------------------------------
    def write_index(self) -> None:
        """Regenerate `index.json` so OCI tools see every image, tagged ones under their names."""
        entries = []
        for r in self.db.query("SELECT i.id, i.manifest_digest, i.manifest_media_type, t.name "
                               "FROM images i LEFT JOIN tags t ON t.image_id = i.id ORDER BY t.name, i.id"):
            try:
                size = self.blobs.size(r["manifest_digest"])
            except NotFound:
                continue
            desc = {"mediaType": r["manifest_media_type"], "digest": r["manifest_digest"], "size": size}
            if r["name"]:
                desc["annotations"] = {REF_NAME_ANNOTATION: r["name"]}
            entries.append(desc)
        atomic_write(self.root / "index.json", canonical_json({"schemaVersion": 2, "mediaType": mt.OCI_INDEX,
                                                              "manifests": entries}))

    def roots(self) -> set[str]:
        """Digests that keep blobs alive: images' manifests, tag targets and repo digests."""
        q = ("SELECT manifest_digest FROM images UNION SELECT target_digest FROM tags "
             "WHERE target_digest IS NOT NULL UNION SELECT digest FROM repo_digests")
        return {r[0] for r in self.db.query(q)} | {r[0] for r in self.db.query("SELECT id FROM images")}

    def reachable(self) -> set[str]:
        seen: set[str] = set()
        todo = list(self.roots())
        while todo:
            d = todo.pop()
            if d in seen or not self.blobs.has(d):
                continue
            seen.add(d)
            try:
                doc = self.read_document(d)
            except PalletError:
                continue  # a config or layer blob
            if isinstance(doc, Index):
                todo.extend(x.digest for x in doc.manifests)
            else:
                todo.append(doc.config.digest)
                todo.extend(x.digest for x in doc.layers)
        return seen

    def gc(self, *, dry_run: bool = False) -> list[str]:
        """Remove blobs no image reaches. Returns the removed (or, dry run, removable) digests."""
        with self.exclusive_lock():
            keep = self.reachable()
            gone = [d for d in self.blobs if d not in keep]
            if not dry_run:
                for d in gone:
                    self.blobs.delete(d)
                for target in GC_HOOKS:
                    module, _, attr = target.partition(":")
                    try:
                        hook = getattr(importlib.import_module(module), attr)
                    except (ModuleNotFoundError, AttributeError):
                        continue  # that part of pallet is not built yet
                    hook(self)
                self.blobs.clean_tmp()
        return gone


# "module:function" hooks called with the store after blob GC, under the exclusive lock
# (e.g. the layers package removes unpacked layers that no image uses any more).
GC_HOOKS: list[str] = [
    "pallet.layers.snapshots:gc_hook",
]
