"""OCI/Docker image documents: descriptor, platform, manifest, index, image config.

Decoding validates what the specs require and keeps the raw bytes (`.raw`);
`to_json()` produces new documents (compact, deterministic) for pallet's own
images. A document decoded from bytes is never re-serialized to compute its
digest.
"""

from __future__ import annotations

from pallet import jsonfast
from pallet.errors import InvalidDocument
from pallet.oci import mediatypes as mt
from pallet.oci.digest import Digest, sha256_digest
from pallet.records import field, record

TYPE_CHECKING = False  # typing is not imported at run time (start-up)
if TYPE_CHECKING:
    from typing import Any


def canonical_json(obj: Any) -> bytes:
    """Compact JSON as pallet writes its own documents (key order as given)."""
    return jsonfast.dumps(obj, ensure_ascii=False).encode()


def _load(raw: bytes, what: str) -> dict[str, Any]:
    try:
        doc = jsonfast.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise InvalidDocument(f"{what} is not valid JSON: {e}") from None
    if not isinstance(doc, dict):
        raise InvalidDocument(f"{what} must be a JSON object")
    return doc


def _req(doc: dict[str, Any], key: str, typ: type | tuple[type, ...], what: str) -> Any:
    if key not in doc:
        raise InvalidDocument(f"{what} lacks the required field {key!r}")
    val = doc[key]
    if not isinstance(val, typ) or (typ is int and isinstance(val, bool)):
        raise InvalidDocument(f"{what} field {key!r} has the wrong type")
    return val


@record(frozen=True, slots=True)
class Platform:
    os: str
    architecture: str
    variant: str = ""
    os_version: str = ""
    os_features: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Platform:
        if not isinstance(d, dict):
            raise InvalidDocument("platform must be an object")
        return cls(
            os=_req(d, "os", str, "platform"),
            architecture=_req(d, "architecture", str, "platform"),
            variant=d.get("variant", "") or "",
            os_version=d.get("os.version", "") or "",
            os_features=tuple(d.get("os.features") or ()),
        )

    @classmethod
    def parse(cls, text: str) -> Platform:
        """`os/arch[/variant]` as given to `--platform`."""
        parts = text.split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise InvalidDocument(f"invalid platform {text!r}: expected os/arch[/variant], e.g. linux/amd64")
        return cls(parts[0], parts[1], parts[2] if len(parts) == 3 else "")

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"architecture": self.architecture, "os": self.os}
        if self.os_version:
            d["os.version"] = self.os_version
        if self.os_features:
            d["os.features"] = list(self.os_features)
        if self.variant:
            d["variant"] = self.variant
        return d

    def __str__(self) -> str:
        return f"{self.os}/{self.architecture}" + (f"/{self.variant}" if self.variant else "")


@record(frozen=True, slots=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    urls: tuple[str, ...] = ()
    annotations: dict[str, str] = field(default_factory=dict)
    platform: Platform | None = None
    artifact_type: str = ""

    @classmethod
    def from_dict(cls, d: dict[str, Any], what: str = "descriptor") -> Descriptor:
        if not isinstance(d, dict):
            raise InvalidDocument(f"{what} must be an object")
        media_type = _req(d, "mediaType", str, what)
        digest = _req(d, "digest", str, what)
        Digest.parse(digest)
        size = _req(d, "size", int, what)
        if size < 0:
            raise InvalidDocument(f"{what} has a negative size")
        ann = d.get("annotations") or {}
        if not isinstance(ann, dict) or not all(isinstance(v, str) for v in ann.values()):
            raise InvalidDocument(f"{what} annotations must map strings to strings")
        return cls(
            media_type=media_type,
            digest=digest,
            size=size,
            urls=tuple(d.get("urls") or ()),
            annotations=dict(ann),
            platform=Platform.from_dict(d["platform"]) if d.get("platform") else None,
            artifact_type=d.get("artifactType", "") or "",
        )

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.urls:
            d["urls"] = list(self.urls)
        if self.annotations:
            d["annotations"] = dict(self.annotations)
        if self.platform is not None:
            d["platform"] = self.platform.to_dict()
        if self.artifact_type:
            d["artifactType"] = self.artifact_type
        return d


def _check_schema_version(doc: dict[str, Any], what: str) -> None:
    if doc.get("schemaVersion") == 1:
        raise InvalidDocument(
            f"{what} is a Docker schema 1 manifest, which is deprecated and not supported; "
            "re-push the image with a current client"
        )
    if _req(doc, "schemaVersion", int, what) != 2:
        raise InvalidDocument(f"{what} has schemaVersion {doc['schemaVersion']}, expected 2")


@record(frozen=True, slots=True)
class Manifest:
    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]
    annotations: dict[str, str]
    subject: Descriptor | None
    artifact_type: str
    raw: bytes

    @property
    def digest(self) -> str:
        return sha256_digest(self.raw)

    @classmethod
    def parse(cls, raw: bytes, media_type: str | None = None) -> Manifest:
        doc = _load(raw, "image manifest")
        _check_schema_version(doc, "image manifest")
        declared = doc.get("mediaType")
        mtype = declared or media_type or mt.OCI_MANIFEST
        if declared and media_type and declared != media_type and media_type in (mt.MANIFESTS | mt.INDEXES):
            raise InvalidDocument(f"manifest declares media type {declared} but was served as {media_type}")
        if mtype not in mt.MANIFESTS:
            raise InvalidDocument(f"unsupported manifest media type {mtype!r}")
        if "manifests" in doc:
            raise InvalidDocument("an image manifest must not have a 'manifests' field")
        config = Descriptor.from_dict(_req(doc, "config", dict, "image manifest"), "manifest config")
        layers_raw = _req(doc, "layers", list, "image manifest")
        layers = tuple(Descriptor.from_dict(x, f"layer {i}") for i, x in enumerate(layers_raw))
        subject = Descriptor.from_dict(doc["subject"], "manifest subject") if doc.get("subject") else None
        return cls(mtype, config, layers, dict(doc.get("annotations") or {}), subject,
                   doc.get("artifactType", "") or "", raw)

    @classmethod
    def build(cls, config: Descriptor, layers: list[Descriptor], *, media_type: str = mt.OCI_MANIFEST,
              annotations: dict[str, str] | None = None) -> Manifest:
        doc: dict[str, Any] = {"schemaVersion": 2, "mediaType": media_type,
                               "config": config.to_dict(), "layers": [x.to_dict() for x in layers]}
        if annotations:
            doc["annotations"] = annotations
        return cls.parse(canonical_json(doc))


@record(frozen=True, slots=True)
class Index:
    media_type: str
    manifests: tuple[Descriptor, ...]
    annotations: dict[str, str]
    subject: Descriptor | None
    raw: bytes

    @property
    def digest(self) -> str:
        return sha256_digest(self.raw)

    @classmethod
    def parse(cls, raw: bytes, media_type: str | None = None) -> Index:
        doc = _load(raw, "image index")
        _check_schema_version(doc, "image index")
        mtype = doc.get("mediaType") or media_type or mt.OCI_INDEX
        if mtype not in mt.INDEXES:
            raise InvalidDocument(f"unsupported index media type {mtype!r}")
        items = _req(doc, "manifests", list, "image index")
        manifests = tuple(Descriptor.from_dict(x, f"index entry {i}") for i, x in enumerate(items))
        subject = Descriptor.from_dict(doc["subject"], "index subject") if doc.get("subject") else None
        return cls(mtype, manifests, dict(doc.get("annotations") or {}), subject, raw)

    @classmethod
    def build(cls, manifests: list[Descriptor], *, media_type: str = mt.OCI_INDEX,
              annotations: dict[str, str] | None = None) -> Index:
        doc: dict[str, Any] = {"schemaVersion": 2, "mediaType": media_type,
                               "manifests": [x.to_dict() for x in manifests]}
        if annotations:
            doc["annotations"] = annotations
        return cls.parse(canonical_json(doc))


def parse_manifest_or_index(raw: bytes, media_type: str | None = None) -> Manifest | Index:
    """Decode a manifest or index, deciding by declared/served media type, then by shape."""
    doc = _load(raw, "manifest")
    declared = doc.get("mediaType") or media_type
    if declared in mt.SCHEMA1 or doc.get("schemaVersion") == 1:
        _check_schema_version(doc, "manifest")
    if declared in mt.INDEXES or (declared not in mt.MANIFESTS and "manifests" in doc):
        return Index.parse(raw, media_type if media_type in mt.INDEXES else None)
    return Manifest.parse(raw, media_type if media_type in mt.MANIFESTS else None)


@record(frozen=True, slots=True)
class ImageConfig:
    """The image configuration (OCI config / Docker container image v1)."""

    architecture: str
    os: str
    variant: str
    created: str | None
    author: str | None
    config: dict[str, Any]
    diff_ids: tuple[str, ...]
    history: tuple[dict[str, Any], ...]
    raw: bytes
    doc: dict[str, Any]

    @property
    def digest(self) -> str:
        return sha256_digest(self.raw)

    @classmethod
    def parse(cls, raw: bytes) -> ImageConfig:
        doc = _load(raw, "image config")
        arch = _req(doc, "architecture", str, "image config")
        os_ = _req(doc, "os", str, "image config")
        rootfs = _req(doc, "rootfs", dict, "image config")
        if rootfs.get("type") != "layers":
            raise InvalidDocument("image config rootfs.type must be 'layers'")
        diff_ids = rootfs.get("diff_ids")
        if not isinstance(diff_ids, list):
            raise InvalidDocument("image config rootfs.diff_ids must be a list")
        for d in diff_ids:
            Digest.parse(d)
        cfg = doc.get("config") or {}
        if not isinstance(cfg, dict):
            raise InvalidDocument("image config 'config' must be an object")
        history = doc.get("history") or []
        if not isinstance(history, list):
            raise InvalidDocument("image config history must be a list")
        return cls(arch, os_, doc.get("variant", "") or "", doc.get("created"), doc.get("author"),
                   cfg, tuple(diff_ids), tuple(h for h in history if isinstance(h, dict)), raw, doc)

    @property
    def platform(self) -> Platform:
        return Platform(self.os, self.architecture, self.variant)
