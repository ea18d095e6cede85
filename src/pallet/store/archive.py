"""Image archives: docker-archive (`docker save`) and oci-archive (a tar of an OCI image layout).

Reading streams the tar once: members named `blobs/<alg>/<hex>` go straight into
the blob store, verified against their names while written; other large members
(docker-archive layer tars) go in too under their computed digests; small ones
(manifest.json, index.json, configs) are kept in memory. Then the archive's own
index decides what the images are, each layer is checked against the config's
diff ids, and only then are the images registered -- see `pallet.store.ingest`.
Gzip, zstd, bzip2 and xz compressed archives are recognised by their first bytes.

Writing streams too (stdout works): oci-archive holds the stored blobs as they
are, named in index.json by `org.opencontainers.image.ref.name` = the full
reference (as podman writes it); docker-archive holds the config, one
uncompressed tar per layer named by its diff id, and manifest.json with
docker's familiar RepoTags.
"""

from __future__ import annotations

import io
import json
import os
import posixpath
import re
import stat
import tarfile
from collections.abc import Iterable
from typing import BinaryIO

from pallet.errors import InvalidArchive, InvalidDigest, InvalidDocument, PalletError, UnsafePath
from pallet.oci import mediatypes as mt
from pallet.oci.digest import Digest
from pallet.oci.documents import Descriptor, ImageConfig, Manifest, canonical_json
from pallet.store.blobs import CHUNK
from pallet.store.ingest import Ingest, Loaded, merge_loaded
from pallet.store.layout import load_oci_index, oci_entries, oci_manifest

FORMATS = ("docker-archive", "oci-archive")
SMALL = 1 << 20              # members up to this size (and not blobs/…) are kept in memory
SMALL_TOTAL = 256 << 20      # ... up to this much in all
_BLOB_PATH = re.compile(r"^blobs/([a-z0-9]+)/([a-zA-Z0-9=_-]+)$")


# ---- reading ---------------------------------------------------------------------------------

def clean_path(name: str, what: str) -> str:
    """An archive-relative path, normalized; UnsafePath for absolute paths and `..` escapes."""
    if not isinstance(name, str) or not name:
        raise InvalidArchive(f"{what} is not a path")
    if name.startswith("/"):
        raise UnsafePath(f"{what} {name!r} is an absolute path, outside the archive")
    norm = posixpath.normpath(name)
    if norm == ".." or norm.startswith("../"):
        raise UnsafePath(f"{what} {name!r} points outside the archive")
    return norm


class _Decompressed(io.RawIOBase):
    """A readable stream of the decompressed bytes of a gzip/zstd stream (push decoder from pallet.layers)."""

    def __init__(self, raw: BinaryIO, kind: str, what: str) -> None:
        from pallet.layers.compression import decoder

        self.raw = raw
        self.dec = decoder(kind)
        self.buf = b""
        self.done = False
        self.what = what

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        while not self.buf and not self.done:
            chunk = self.raw.read(CHUNK)
            try:
                if chunk:
                    self.buf = self.dec.feed(chunk)
                else:
                    self.buf = self.dec.finish()
                    self.done = True
            except PalletError as e:
                msg = e.message.replace("the layer's", "its").replace("the layer", "it")
                raise InvalidArchive(f"{self.what} is corrupt or truncated: {msg}") from None
        n = min(len(b), len(self.buf))
        b[:n] = self.buf[:n]
        self.buf = self.buf[n:]
        return n


def open_maybe_compressed(stream: BinaryIO, what: str = "the input") -> BinaryIO:
    """`stream`, decompressed if its first bytes say gzip, zstd, bzip2 or xz."""
    buffered = stream if hasattr(stream, "peek") else io.BufferedReader(stream, CHUNK)
    head = buffered.peek(8)[:8]
    if head.startswith(b"\x1f\x8b"):
        return io.BufferedReader(_Decompressed(buffered, "gzip", what), CHUNK)
    if head.startswith(b"\x28\xb5\x2f\xfd"):
        return io.BufferedReader(_Decompressed(buffered, "zstd", what), CHUNK)
    if head.startswith(b"BZh"):
        import bz2

        return bz2.BZ2File(buffered)
    if head.startswith(b"\xfd7zXZ\x00"):
        import lzma

        return lzma.LZMAFile(buffered)
    return buffered


class ArchiveContents:
    """What the tar pass saw: small files in memory, big ones and blobs as digests in the store."""

    def __init__(self, ing: Ingest, what: str) -> None:
        self.ing = ing
        self.what = what
        self.files: dict[str, bytes] = {}
        self.blobs: dict[str, str] = {}
        self.links: dict[str, str] = {}
        self.small_total = 0

    def resolve(self, path: str) -> str:
        for _ in range(40):
            if path not in self.links:
                return path
            path = self.links[path]
        raise InvalidArchive(f"{self.what}: too many levels of links at {path!r}")

    def has(self, path: str) -> bool:
        p = self.resolve(path)
        return p in self.files or p in self.blobs

    def read(self, path: str, what: str) -> bytes:
        p = self.resolve(path)
        if p in self.files:
            return self.files[p]
        if p in self.blobs:
            self.ing.sync()
            return self.ing.store.blobs.read(self.blobs[p])
        raise InvalidArchive(f"{what} names {path!r}, which is not in the archive")

    def blob(self, path: str, what: str) -> str:
        """The digest of the member at `path`, putting a small in-memory one into the store."""
        p = self.resolve(path)
        if p in self.blobs:
            return self.blobs[p]
        if p in self.files:
            d = self.ing.put_bytes(self.files[p], what=f"{self.what}: {p}")
            self.blobs[p] = d
            return d
        raise InvalidArchive(f"{what} names {path!r}, which is not in the archive")

    @property
    def digests(self) -> set[str]:
        out = set(self.blobs.values())
        for p in self.files:
            m = _BLOB_PATH.match(p)
            if m:
                out.add(f"{m.group(1)}:{m.group(2)}")
        return out


class _Counted:
    """A member's data stream that counts what it gave (a short member means a truncated archive)."""

    def __init__(self, f: BinaryIO) -> None:
        self.f = f
        self.n = 0

    def read(self, n: int = -1) -> bytes:
        data = self.f.read(n)
        self.n += len(data)
        return data


class _FileSlice:
    """A member's data read straight from the archive file with pread (one copy instead of the
    several tarfile's stream mode makes); a short read at the end means a truncated archive."""

    def __init__(self, fd: int, offset: int, size: int) -> None:
        self.fd = fd
        self.pos = offset
        self.left = size

    def read(self, n: int = -1) -> bytes:
        n = self.left if n is None or n < 0 else min(n, self.left)
        if n <= 0:
            return b""
        data = os.pread(self.fd, n, self.pos)
        self.pos += len(data)
        self.left = self.left - len(data) if data else 0
        return data


def _regular_file(src) -> int | None:
    """The fd of `src` when it is a seekable regular file (read with pread), else None."""
    try:
        fd = src.fileno()
        return fd if stat.S_ISREG(os.fstat(fd).st_mode) and src.seekable() else None
    except (AttributeError, OSError, ValueError):
        return None


def _header_watcher():
    """A TarInfo class that records the last header block read: a proper archive ends with a zero block."""

    class Watched(tarfile.TarInfo):
        last: bytes = b""

        @classmethod
        def frombuf(cls, buf, encoding, errors):
            Watched.last = buf
            return super().frombuf(buf, encoding, errors)

    return Watched


def read_tar(ing: Ingest, stream: BinaryIO, what: str) -> ArchiveContents:
    c = ArchiveContents(ing, what)
    src = open_maybe_compressed(stream, what)
    watched = _header_watcher()
    # a plain archive file is read with seeks, member data with pread; anything else as a stream
    fd = _regular_file(src)
    try:
        with tarfile.open(fileobj=src, mode="r:" if fd is not None else "r|", tarinfo=watched,
                          bufsize=CHUNK) as tf:
            for m in tf:
                name = clean_path(m.name, f"{what}: member")
                if name == "." or m.isdir():
                    continue
                if m.issym():
                    if m.linkname.startswith("/"):
                        raise UnsafePath(f"{what}: member {m.name!r} is a symlink to the absolute path "
                                         f"{m.linkname!r}, outside the archive")
                    c.links[name] = clean_path(posixpath.join(posixpath.dirname(name), m.linkname),
                                               f"{what}: symlink {m.name!r} ->")
                    continue
                if m.islnk():
                    c.links[name] = clean_path(m.linkname, f"{what}: hard link {m.name!r} ->")
                    continue
                if not m.isreg():
                    continue
                f = _Counted(_FileSlice(fd, m.offset_data, m.size) if fd is not None and m.sparse is None
                             else tf.extractfile(m))
                bm = _BLOB_PATH.match(name)
                if bm:
                    try:
                        digest = str(Digest.parse(f"{bm.group(1)}:{bm.group(2)}"))
                    except InvalidDigest as e:
                        raise InvalidArchive(f"{what}: member {name!r} is not named by a valid digest: "
                                             f"{e.message}") from None
                    try:
                        c.blobs[name] = ing.put_stream(f, expected=digest, size=m.size,
                                                       what=f"{what}: {name}").digest
                    except PalletError:
                        if f.n < m.size:
                            raise InvalidArchive(f"{what} is truncated (in member {name!r})") from None
                        raise
                elif m.size <= SMALL and c.small_total + m.size <= SMALL_TOTAL:
                    data = f.read()
                    if len(data) != m.size:
                        raise InvalidArchive(f"{what} is truncated (in member {name!r})")
                    c.files[name] = data
                    c.small_total += m.size
                else:
                    try:
                        c.blobs[name] = ing.put_stream(f, size=m.size, what=f"{what}: {name}").digest
                    except PalletError:
                        if f.n < m.size:
                            raise InvalidArchive(f"{what} is truncated (in member {name!r})") from None
                        raise
        if watched.last != tarfile.NUL * tarfile.BLOCKSIZE:
            raise InvalidArchive(f"{what} is truncated (it ends without the tar end-of-archive marker)")
    except PalletError:
        raise
    except (tarfile.ReadError, EOFError) as e:
        msg = str(e)
        if "empty file" in msg or "bad checksum" in msg or "invalid header" in msg or not c.files and not c.blobs:
            raise InvalidArchive(f"{what} is not a tar archive ({msg or 'no tar header'})") from None
        raise InvalidArchive(f"{what} is truncated or corrupt ({msg or 'unexpected end of data'})") from None
    except tarfile.TarError as e:
        raise InvalidArchive(f"{what} is not a readable tar archive ({e})") from None
    except (OSError, ValueError) as e:  # a broken compressed stream (bz2/xz/zlib)
        raise InvalidArchive(f"{what} cannot be read: {e}") from None
    return c


def _docker_tag(text: str, what: str) -> str:
    from pallet import reference

    try:
        ref = reference.normalize(text)
    except PalletError as e:
        raise InvalidArchive(f"{what} has an invalid RepoTag {text!r}: {e.message}") from None
    if ref.digest:
        raise InvalidArchive(f"{what} has a RepoTag with a digest, {text!r}; a tag is needed")
    return str(ref)


_DOCKER_LAYER_TYPES = {"": mt.DOCKER_LAYER, "gzip": mt.DOCKER_LAYER_GZIP, "zstd": mt.DOCKER_LAYER_ZSTD}


def _load_docker(ing: Ingest, c: ArchiveContents) -> list[tuple[object, list[str]]]:
    what = f"{c.what}: manifest.json"
    try:
        entries = json.loads(c.read("manifest.json", "the archive"))
    except ValueError as e:
        raise InvalidArchive(f"{what} is not valid JSON: {e}") from None
    if not isinstance(entries, list) or not entries:
        raise InvalidArchive(f"{what} must be a non-empty list of images")
    out = []
    for i, e in enumerate(entries):
        w = f"{what} entry {i}"
        if not isinstance(e, dict) or not isinstance(e.get("Config"), str) or not isinstance(e.get("Layers"), list):
            raise InvalidArchive(f"{w} lacks Config or Layers")
        tags = e.get("RepoTags") or []
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise InvalidArchive(f"{w} has a RepoTags that is not a list of strings")
        cfg_path = clean_path(e["Config"], f"{w} Config")
        layer_paths = [clean_path(p, f"{w} Layers[{j}]") for j, p in enumerate(e["Layers"])]
        names = [_docker_tag(t, w) for t in tags]
        cfg_raw = c.read(cfg_path, f"{w} Config")
        config = ImageConfig.parse(cfg_raw)
        cfg_digest = c.blob(cfg_path, f"{w} Config")
        layers = []
        for j, p in enumerate(layer_paths):
            d = c.blob(p, f"{w} Layers[{j}]")
            info = ing.infos[d]
            media = _DOCKER_LAYER_TYPES.get(info.compression)
            if media is None:
                raise InvalidArchive(f"{w} Layers[{j}] {p!r} is compressed in a way pallet cannot store")
            layers.append(Descriptor(media, d, info.size))
        manifest = Manifest.build(Descriptor(mt.DOCKER_CONFIG, cfg_digest, len(cfg_raw)), layers,
                                  media_type=mt.DOCKER_MANIFEST)
        # docker-archive carries no manifest: the one built here has no registry digest, so
        # (as with `docker load`) the image gets no RepoDigests.
        ing.add_image(manifest, config, names=names, what=w)
        out.append((config.digest, names))
    return out


def load_archive(store, stream: BinaryIO, *, what: str = "the archive") -> list[Loaded]:
    """Load every image of a docker-archive or oci-archive (possibly compressed) into the store."""
    with Ingest(store, unpack=True) as ing:
        c = read_tar(ing, stream, what)
        if c.has("manifest.json"):
            found = _load_docker(ing, c)
        elif c.has("index.json"):
            digests = c.digests

            def fetch(digest: str, size: int | None, w: str) -> None:
                if digest not in digests:
                    raise InvalidArchive(f"{w} names blob {digest}, which is not in the archive")

            found = load_oci_index(ing, c.read("index.json", "the archive"), fetch, what=f"{what}: index.json")
        else:
            raise InvalidArchive(f"{what} is neither a docker-archive (no manifest.json) nor an oci-archive "
                                 f"(no index.json)")
        records = ing.commit()
    return merge_loaded(found, records)


# ---- writing ---------------------------------------------------------------------------------

def _info(name: str, size: int, mode: int = 0o644) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.size = size
    ti.mode = mode
    ti.mtime = 0
    ti.uname = ti.gname = ""
    return ti


def _add_dir(tf: tarfile.TarFile, name: str) -> None:
    ti = _info(name, 0, 0o755)
    ti.type = tarfile.DIRTYPE
    tf.addfile(ti)


def _add_bytes(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    tf.addfile(_info(name, len(data)), io.BytesIO(data))


def save_archive(store, items: Iterable[tuple[object, list[str]]], out: BinaryIO, fmt: str) -> None:
    """Write images (ImageRecord, full names to record) as a docker-archive or oci-archive to `out`."""
    if fmt not in FORMATS:
        raise PalletError(f"unknown archive format {fmt!r} (docker-archive, oci-archive)")
    items = list(items)
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tf:
        if fmt == "oci-archive":
            _save_oci(store, items, tf)
        else:
            _save_docker(store, items, tf)


def _save_oci(store, items, tf: tarfile.TarFile) -> None:
    _add_bytes(tf, "oci-layout", canonical_json({"imageLayoutVersion": mt.OCI_LAYOUT_VERSION}))
    _add_dir(tf, "blobs")
    dirs: set[str] = set()
    written: set[str] = set()
    for rec, _names in items:
        manifest = oci_manifest(store, rec)
        for d in [manifest.digest, manifest.config.digest, *(x.digest for x in manifest.layers)]:
            if d in written:
                continue
            dg = Digest.parse(d)
            if dg.algorithm not in dirs:
                _add_dir(tf, f"blobs/{dg.algorithm}")
                dirs.add(dg.algorithm)
            if d == manifest.digest:
                _add_bytes(tf, f"blobs/{dg.algorithm}/{dg.hex}", manifest.raw)
            else:
                with store.blobs.open(d) as f:
                    tf.addfile(_info(f"blobs/{dg.algorithm}/{dg.hex}", os.fstat(f.fileno()).st_size), f)
            written.add(d)
    index = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": oci_entries(store, items)}
    _add_bytes(tf, "index.json", canonical_json(index))


def _uncompressed_layer(store, desc: Descriptor, diff_id: str):
    """An open file of the layer as a plain tar (the blob itself, or a decompressed temp copy)."""
    if mt.layer_compression(desc.media_type) == "":
        return store.blobs.open(desc.digest)
    import tempfile

    from pallet.layers.compression import DigestingDecoder

    tmp = tempfile.TemporaryFile(dir=store.tmp)
    dec = DigestingDecoder(desc.media_type, what=f"layer {desc.digest}")
    with store.blobs.open(desc.digest) as f:
        while chunk := f.read(CHUNK):
            tmp.write(dec.feed(chunk))
    tmp.write(dec.finish())
    if dec.diff_id != diff_id:
        tmp.close()
        raise InvalidDocument(f"layer {desc.digest} unpacks to {dec.diff_id}, but the config lists {diff_id}")
    tmp.seek(0)
    return tmp


def _save_docker(store, items, tf: tarfile.TarFile) -> None:
    from pallet import reference

    written: set[str] = set()
    entries = []
    repositories: dict[str, dict[str, str]] = {}
    for rec, names in items:
        manifest = store.manifest(rec)
        config = store.config(rec)
        cfg_path = f"{Digest.parse(config.digest).hex}.json"
        if cfg_path not in written:
            _add_bytes(tf, cfg_path, config.raw)
            written.add(cfg_path)
        layer_paths = []
        for desc, diff_id in zip(manifest.layers, config.diff_ids, strict=True):
            path = f"{Digest.parse(diff_id).hex}.tar"
            if path not in written:
                with _uncompressed_layer(store, desc, diff_id) as f:
                    tf.addfile(_info(path, os.fstat(f.fileno()).st_size), f)
                written.add(path)
            layer_paths.append(path)
        tags = []
        for n in names:
            ref = reference.normalize(n)
            tags.append(ref.familiar_string)
            if layer_paths:
                repositories.setdefault(ref.familiar, {})[ref.tag] = layer_paths[-1][:-4]
        entries.append({"Config": cfg_path, "RepoTags": tags or None, "Layers": layer_paths})
    _add_bytes(tf, "manifest.json", canonical_json(entries))
    if repositories:
        _add_bytes(tf, "repositories", canonical_json(repositories))
