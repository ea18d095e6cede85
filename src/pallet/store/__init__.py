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

Load and import-layout (`pallet.store.ingest`, `unpack=True`) also unpack each
layer while its blob is written, in a forked process per layer that reads the
blob's temp file (`pallet.layers.staged`); the trees move into the layer
snapshots only after the images are registered, so a mount unpacks nothing.
"""

from __future__ import annotations

import _sqlite3 as sqlite3  # (not the `sqlite3` package: its dbapi2 imports datetime, ~2 ms at start-up)
import fcntl
import importlib
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pallet.errors import Conflict, InvalidReference, NotFound, PalletError
from pallet.fsutil import atomic_write
from pallet.oci import mediatypes as mt
from pallet.oci.digest import Digest
from pallet.oci.documents import ImageConfig, Index, Manifest, canonical_json, parse_manifest_or_index
from pallet.records import field, record
from pallet.store.blobs import BlobStore
from pallet.store.db import Database

REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name"


@record
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
        try:
            for d in (self.root / "blobs" / "sha256", self.tmp):
                d.mkdir(parents=True, exist_ok=True)
            layout = self.root / "oci-layout"
            if not layout.exists():
                atomic_write(layout, canonical_json({"imageLayoutVersion": mt.OCI_LAYOUT_VERSION}))
            if not (self.root / "index.json").exists():
                atomic_write(self.root / "index.json", canonical_json({"schemaVersion": 2, "manifests": []}))
            self.blobs = BlobStore(self.root / "blobs", self.tmp)
            self.db = Database(self.root / "pallet.db")
        except OSError as e:
            raise PalletError(f"cannot use {self.root} as pallet's storage root: "
                              f"{e.strerror or e}{f' ({e.filename})' if e.filename else ''}") from None
        except sqlite3.Error as e:
            raise PalletError(f"cannot open pallet's database {self.root / 'pallet.db'}: {e}") from None

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
        from pallet.store import events

        events.record(self.root, "image", "tag", rec.id, {"name": name})

    def add_repo_digest(self, repo: str, digest: str, image_id: str) -> None:
        """Record that the image is known as `repo@digest` (docker's RepoDigests), e.g. after a push."""
        with self.db.transaction() as c:
            c.execute("INSERT OR IGNORE INTO repo_digests(repo, digest, image_id) VALUES (?, ?, ?)",
                      (repo, digest, image_id))

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
        """docker rmi semantics. Returns [("Untagged", name) | ("Deleted", id), ...].

        By name (`busybox`, `x@sha256:…`): that name goes; when it was a tag and no other
        tag of the same repository is left, that repository's digest references go too;
        the image itself goes only when no name is left.
        By ID: an image named in one repository (at most one tag) loses its names and is
        deleted; one named in several repositories or by several tags needs `force`.
        """
        from pallet import reference

        rec = self.resolve_image(text)
        refs = [*rec.tags, *rec.repo_digests]
        by_name = None
        try:
            ref = reference.normalize(text)
            if str(ref) in rec.tags:
                by_name = str(ref)
            elif ref.digest and f"{ref.name}@{ref.digest}" in rec.repo_digests:
                by_name = f"{ref.name}@{ref.digest}"
        except InvalidReference:
            pass
        out: list[tuple[str, str]] = []
        why = self.image_in_use(rec.id)
        if by_name:
            if why and not force and len(refs) == 1:
                raise Conflict(f"unable to remove repository reference {text!r} (must force) - {why}")
            gone = [by_name]
            if "@" not in by_name:
                repo = _repo_of(by_name)
                if not any(_repo_of(t) == repo for t in rec.tags if t != by_name):
                    gone += [d for d in rec.repo_digests if _repo_of(d) == repo]
            self._drop_names(gone)
            out += [("Untagged", n) for n in gone]
            if [r for r in refs if r not in gone]:
                self._image_events(rec, out)
                return out
        else:
            if refs and not force and not _single_reference(refs):
                raise Conflict(f"unable to delete {rec.short_id} (must be forced) - image is referenced in "
                               f"multiple repositories")
            if why and not force:
                raise Conflict(f"unable to delete {rec.short_id} (must be forced) - {why}")
            out += [("Untagged", n) for n in refs]
        with self.db.transaction() as c:
            c.execute("DELETE FROM tags WHERE image_id = ?", (rec.id,))
            c.execute("DELETE FROM repo_digests WHERE image_id = ?", (rec.id,))
            c.execute("DELETE FROM images WHERE id = ?", (rec.id,))
        out.append(("Deleted", rec.id))
        self.write_index()
        self.gc()
        self._image_events(rec, out)
        return out

    def _image_events(self, rec: ImageRecord, out: list[tuple[str, str]]) -> None:
        """docker's untag (one a name) and delete events of an rmi (the image's ID as actor and name)."""
        from pallet.store import events

        for what, _ in out:
            action = "untag" if what == "Untagged" else "delete"
            events.record(self.root, "image", action, rec.id, {"name": rec.id})

    def _drop_names(self, names: list[str]) -> None:
        with self.db.transaction() as c:
            for n in names:
                if "@" in n:
                    repo, _, dg = n.partition("@")
                    c.execute("DELETE FROM repo_digests WHERE repo = ? AND digest = ?", (repo, dg))
                else:
                    c.execute("DELETE FROM tags WHERE name = ?", (n,))
        self.write_index()

    # ---- layer blobs -----------------------------------------------------------------------
    def record_layer(self, digest: str, diff_id: str, size: int) -> None:
        """Remember a layer blob's diff id and uncompressed size (so nobody decompresses it again)."""
        with self.db.transaction() as c:
            c.execute("INSERT OR REPLACE INTO layer_blobs(digest, diff_id, size) VALUES (?, ?, ?)",
                      (digest, diff_id, size))

    def layer_info(self, digest: str) -> tuple[str, int] | None:
        """(diff id, uncompressed size) of a layer blob, if recorded."""
        rows = self.db.query("SELECT diff_id, size FROM layer_blobs WHERE digest = ?", (digest,))
        return (rows[0][0], rows[0][1]) if rows else None

    def discard_blobs(self, digests) -> list[str]:
        """Remove the given blobs unless an image reaches them (cleanup after a failed load or pull).

        Call it without holding the shared lock: it takes the exclusive one, so it waits
        for concurrent writers that may have written the same blobs to register them.
        """
        digests = set(digests)
        if not digests:
            return []
        with self.exclusive_lock():
            keep = self.reachable()
            gone = [d for d in digests if d not in keep and self.blobs.delete(d)]
            if gone:
                with self.db.transaction() as c:
                    for d in gone:
                        c.execute("DELETE FROM layer_blobs WHERE digest = ?", (d,))
        return gone

    # ---- layout index & gc -----------------------------------------------------------------
    def write_index(self) -> None:
        """Regenerate `index.json` so OCI tools see every image, tagged ones under their names.

        Serialized by its own lock: each writer reads the database after its own commit, so
        the last one to write sees every commit and no stale index.json overwrites a newer one.
        """
        fd = os.open(self.root / "index.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._write_index()
        finally:
            os.close(fd)

    def _write_index(self) -> None:
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
        """Every blob an image reaches. Only manifests and indexes are read; configs and layers are leaves."""
        seen: set[str] = set()
        q = ("SELECT manifest_digest FROM images UNION SELECT target_digest FROM tags "
             "WHERE target_digest IS NOT NULL UNION SELECT digest FROM repo_digests")
        todo = [r[0] for r in self.db.query(q)]
        while todo:
            d = todo.pop()
            if d in seen or not self.blobs.has(d):
                continue
            seen.add(d)
            try:
                doc = self.read_document(d)
            except PalletError:
                continue
            if isinstance(doc, Index):
                todo.extend(x.digest for x in doc.manifests)
            else:
                seen.update(x for x in (doc.config.digest, *(y.digest for y in doc.layers)) if self.blobs.has(x))
        seen.update(r[0] for r in self.db.query("SELECT id FROM images") if self.blobs.has(r[0]))
        return seen

    def gc(self, *, dry_run: bool = False) -> list[str]:
        """Remove blobs no image reaches. Returns the removed (or, dry run, removable) digests."""
        with self.exclusive_lock():
            keep = self.reachable()
            gone = [d for d in self.blobs if d not in keep]
            if not dry_run:
                for d in gone:
                    self.blobs.delete(d)
                if gone:
                    with self.db.transaction() as c:
                        for d in gone:
                            c.execute("DELETE FROM layer_blobs WHERE digest = ?", (d,))
                for target in GC_HOOKS:
                    module, _, attr = target.partition(":")
                    try:
                        hook = getattr(importlib.import_module(module), attr)
                    except (ModuleNotFoundError, AttributeError):
                        continue  # that part of pallet is not built yet
                    hook(self)
                self.blobs.clean_tmp()
        return gone


def _repo_of(name: str) -> str:
    """The repository of a full tag (`docker.io/library/x:1`) or digest reference (`…/x@sha256:…`)."""
    if "@" in name:
        return name.partition("@")[0]
    i = name.rfind(":")
    return name[:i] if i > name.rfind("/") else name


def _single_reference(refs: list[str]) -> bool:
    """docker's isSingleReference: at most one tag, and every name in one repository."""
    tags = [r for r in refs if "@" not in r]
    if len(tags) > 1:
        return False
    return len({_repo_of(r) for r in refs}) == 1


# "module:function" hooks called with the store after blob GC, under the exclusive lock
# (e.g. the layers package removes unpacked layers that no image uses any more).
GC_HOOKS: list[str] = [
    "pallet.layers.snapshots:gc_hook",
]
