"""OCI image layouts (a directory with `oci-layout`, `index.json`, `blobs/<alg>/<hex>`): read and write.

Naming follows podman: an index entry's name is its `io.containerd.image.name`
or `org.opencontainers.image.ref.name` annotation; a full reference is kept
(`docker.io/library/busybox:latest`), a short one is put under `localhost/`
(`latest` → `localhost/latest:latest`, `app:1` → `localhost/app:1`), and an
entry without a name gives an untagged image. pallet writes full references.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

from pallet.errors import InvalidArchive, InvalidDocument, NotFound, PalletError
from pallet.fsutil import AtomicFile, atomic_write
from pallet.oci import mediatypes as mt
from pallet.oci.digest import Digest
from pallet.oci.documents import Descriptor, ImageConfig, Index, Manifest, canonical_json
from pallet.store.ingest import Ingest, Loaded, merge_loaded

REF_NAME = "org.opencontainers.image.ref.name"
CONTAINERD_NAME = "io.containerd.image.name"

_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "armv6l": "arm", "i686": "386",
         "i386": "386", "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}


def host_platform() -> tuple[str, str]:
    machine = platform.machine()
    return "linux", _ARCH.get(machine, machine)


def podman_name(text: str) -> str:
    """The name podman gives an image whose layout/archive entry is annotated `text` (libimage NormalizeName)."""
    from pallet import reference

    ref = reference.parse(text)
    if not ref.path:
        raise PalletError(f"{text!r} is not a named reference")
    domain = ref.domain
    if not domain or ("." not in domain and ":" not in domain and domain != "localhost"):
        text = "localhost/" + text
    ref = reference.tag_name_only(reference.parse_normalized_named(text))
    if ref.tag is not None and ref.digest is not None:
        ref = reference.Reference(ref.domain, ref.path, ref.tag, None)
    return str(ref)


def entry_name(desc: Descriptor, what: str) -> str | None:
    text = desc.annotations.get(CONTAINERD_NAME) or desc.annotations.get(REF_NAME) or ""
    if not text:
        return None
    try:
        return podman_name(text)
    except PalletError as e:
        raise InvalidArchive(f"{what} has an invalid image name {text!r}: {e.message}") from None


def _repo_of(name: str) -> str:
    i = name.rfind(":")
    return name[:i] if i > name.rfind("/") else name


def _pick_platform(index: Index) -> Descriptor | None:
    os_, arch = host_platform()
    images = [d for d in index.manifests if d.media_type in mt.MANIFESTS]
    for d in images:
        if d.platform and d.platform.os == os_ and d.platform.architecture == arch:
            return d
    without = [d for d in images if d.platform is None]
    return without[0] if len(without) == 1 and len(images) == 1 else None


Fetch = Callable[[str, "int | None", str], None]


def load_oci_index(ing: Ingest, index_raw: bytes, fetch: Fetch, *, what: str = "index.json",
                   select: Callable[[Descriptor, str | None], bool] | None = None) -> list[tuple[str, list[str]]]:
    """Check (and queue on `ing`) the images an OCI layout's index.json names.

    `fetch(digest, size, what)` makes sure a blob of the layout is in the store (or
    raises). Returns (image ID, names) per chosen entry.
    """
    store = ing.store
    try:
        index = Index.parse(index_raw)
    except InvalidDocument as e:
        raise InvalidArchive(f"{what}: {e.message}") from None

    def doc(desc: Descriptor, w: str) -> bytes:
        fetch(desc.digest, desc.size, w)
        ing.sync()
        data = store.blobs.read(desc.digest)
        if len(data) != desc.size:
            raise InvalidArchive(f"{w}: blob {desc.digest} has {len(data)} bytes but its descriptor says {desc.size}")
        return data

    out = []
    chosen = 0
    for i, desc in enumerate(index.manifests):
        w = f"{what} entry {i}"
        name = entry_name(desc, w)
        if select is not None and not select(desc, name):
            continue
        chosen += 1
        target = desc
        if desc.media_type in mt.INDEXES:
            child = _pick_platform(Index.parse(doc(desc, w), desc.media_type))
            if child is None:
                os_, arch = host_platform()
                raise InvalidArchive(f"{w}: image index {desc.digest} has no manifest for {os_}/{arch}")
            desc = child
        elif desc.media_type not in mt.MANIFESTS:
            raise InvalidArchive(f"{w} has media type {desc.media_type!r}, which is not an image manifest or index")
        try:
            manifest = Manifest.parse(doc(desc, w), desc.media_type)
            fetch(manifest.config.digest, manifest.config.size, f"{w}: manifest {desc.digest}")
            ing.sync()
            config = ImageConfig.parse(store.blobs.read(manifest.config.digest))
        except InvalidDocument as e:
            raise InvalidArchive(f"{w}: {e.message}") from None
        for j, layer in enumerate(manifest.layers):
            fetch(layer.digest, layer.size, f"{w}: manifest {desc.digest} layer {j}")
        names = [name] if name else []
        repo_digests = [f"{_repo_of(n)}@{target.digest}" for n in names]
        ing.add_image(manifest, config, names=names, target_digest=target.digest, repo_digests=repo_digests, what=w)
        out.append((config.digest, names))
    if not chosen:
        raise NotFound(f"{what} names no image" + (" by that name" if select is not None else ""))
    return out


# ---- reading a layout directory -------------------------------------------------------------

def load_layout(store, directory: str | os.PathLike, ref: str | None = None) -> list[Loaded]:
    """Load the images of an OCI layout directory (all, or those named `ref`) into the store."""
    d = Path(directory)
    what = str(d)
    if not (d / "oci-layout").is_file():
        raise InvalidArchive(f"{what} is not an OCI image layout (it has no oci-layout file)")
    try:
        layout = json.loads((d / "oci-layout").read_bytes())
        version = layout.get("imageLayoutVersion") if isinstance(layout, dict) else None
    except ValueError:
        version = None
    if not isinstance(version, str):
        raise InvalidArchive(f"{what}/oci-layout lacks imageLayoutVersion")
    try:
        index_raw = (d / "index.json").read_bytes()
    except FileNotFoundError:
        raise InvalidArchive(f"{what} is not an OCI image layout (it has no index.json)") from None

    select = None
    if ref is not None:
        try:
            wanted = podman_name(ref)
        except PalletError:
            wanted = None

        def select(desc: Descriptor, name: str | None) -> bool:
            given = desc.annotations.get(CONTAINERD_NAME) or desc.annotations.get(REF_NAME)
            return given == ref or (name is not None and name == wanted)

    with Ingest(store, unpack=True) as ing:
        copied: set[str] = set()

        def fetch(digest: str, size: int | None, w: str) -> None:
            if digest in copied:
                return
            dg = Digest.parse(digest)
            try:
                f = open(d / "blobs" / dg.algorithm / dg.hex, "rb")
            except FileNotFoundError:
                raise InvalidArchive(f"{w} names blob {digest}, which is not in the layout") from None
            with f:
                ing.put_stream(f, expected=digest, size=size, what=f"{what}: blob {digest}")
            copied.add(digest)

        try:
            found = load_oci_index(ing, index_raw, fetch, what=f"{what}/index.json", select=select)
        except NotFound:
            if ref is not None:
                raise NotFound(f"{what} has no image named {ref!r}") from None
            raise
        records = ing.commit()
    return merge_loaded(found, records)


# ---- writing ----------------------------------------------------------------------------------

_OCI_LAYER_FOR = {mt.DOCKER_LAYER: mt.OCI_LAYER, mt.DOCKER_LAYER_GZIP: mt.OCI_LAYER_GZIP,
                  mt.DOCKER_LAYER_ZSTD: mt.OCI_LAYER_ZSTD, mt.DOCKER_FOREIGN_LAYER_GZIP: mt.OCI_LAYER_NONDIST_GZIP}


def oci_manifest(store, rec) -> Manifest:
    """The image's manifest as an OCI image manifest: the stored one, or (Docker schema 2) converted as
    podman does when it saves an oci-archive. The config and layer blobs are the same; only the manifest's
    media types (and so its digest) change. The store is not modified."""
    manifest = store.manifest(rec)
    if manifest.media_type == mt.OCI_MANIFEST:
        return manifest
    config = Descriptor(mt.OCI_CONFIG, manifest.config.digest, manifest.config.size)
    layers = [Descriptor(_OCI_LAYER_FOR.get(x.media_type, x.media_type), x.digest, x.size, x.urls, x.annotations)
              for x in manifest.layers]
    return Manifest.build(config, layers, annotations=manifest.annotations or None)


def oci_entries(store, items: Iterable[tuple[object, list[str]]]) -> list[dict]:
    """index.json descriptors for images: one per name (annotated with it), one unnamed for none."""
    entries = []
    for rec, names in items:
        m = oci_manifest(store, rec)
        desc = {"mediaType": m.media_type, "digest": m.digest, "size": len(m.raw)}
        for n in names or [None]:
            entries.append({**desc, "annotations": {REF_NAME: n}} if n else dict(desc))
    return entries


def save_layout(store, directory: str | os.PathLike, items: Iterable[tuple[object, list[str]]]) -> None:
    """Write images into an OCI layout directory (created, or added to: entries of the same name are replaced)."""
    d = Path(directory)
    items = list(items)
    if d.exists() and not d.is_dir():
        raise PalletError(f"{d} exists and is not a directory")
    if d.is_dir() and any(d.iterdir()) and not (d / "oci-layout").is_file():
        raise PalletError(f"{d} is not empty and is not an OCI image layout")
    old: list[dict] = []
    if (d / "index.json").is_file():
        try:
            old = list(json.loads((d / "index.json").read_bytes()).get("manifests") or [])
        except (ValueError, AttributeError):
            raise PalletError(f"{d}/index.json is not valid JSON") from None
    d.mkdir(parents=True, exist_ok=True)
    if not (d / "oci-layout").is_file():
        atomic_write(d / "oci-layout", canonical_json({"imageLayoutVersion": mt.OCI_LAYOUT_VERSION}))
    for rec, _names in items:
        manifest = oci_manifest(store, rec)
        if manifest.digest != rec.manifest_digest:
            dg = Digest.parse(manifest.digest)
            atomic_write(d / "blobs" / dg.algorithm / dg.hex, manifest.raw)
        for digest in [manifest.digest, manifest.config.digest, *(x.digest for x in manifest.layers)]:
            dg = Digest.parse(digest)
            target = d / "blobs" / dg.algorithm / dg.hex
            if target.is_file() and (digest == manifest.digest or target.stat().st_size == store.blobs.size(digest)):
                continue
            with store.blobs.open(digest) as src, AtomicFile(target) as dst:
                shutil.copyfileobj(src, dst.file, 1 << 20)
                dst.commit()
    new = oci_entries(store, items)
    new_names = {e.get("annotations", {}).get(REF_NAME) for e in new} - {None}
    new_unnamed = {e["digest"] for e in new if "annotations" not in e}
    kept = [e for e in old if isinstance(e, dict)
            and (e.get("annotations") or {}).get(REF_NAME) not in new_names
            and not (not (e.get("annotations") or {}).get(REF_NAME) and e.get("digest") in new_unnamed)]
    atomic_write(d / "index.json", canonical_json({"schemaVersion": 2, "mediaType": mt.OCI_INDEX,
                                                   "manifests": kept + new}))
