"""Validate documents against the OCI image-spec JSON schemas in ../shared/vendor-data.

The schemas are read in place. Without them (a plain clone) `validate` still checks what the
project itself knows of each document's shape (`check_shape`), so interop tests keep running;
the tests that exist only for the schemas take `vendor_data` and skip instead.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

import jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

SCHEMA_DIR = Path(__file__).resolve().parents[3] / "shared" / "vendor-data" / "oci-image-spec-schema"
BASE = "https://opencontainers.org/schema/image/"
SCHEMAS = {
    "manifest": "image-manifest-schema.json",
    "index": "image-index-schema.json",
    "config": "config-schema.json",
    "layout": "image-layout-schema.json",
    "descriptor": "content-descriptor.json",
}


@cache
def _registry() -> Registry:
    resources = []
    for f in SCHEMA_DIR.glob("*.json"):
        doc = json.loads(f.read_text())
        res = Resource.from_contents(doc, default_specification=DRAFT4)
        resources.append((BASE + f.name, res))
        if isinstance(doc.get("id"), str):
            resources.append((doc["id"], res))
    return Registry().with_resources(resources)


def schemas_available() -> bool:
    return (SCHEMA_DIR / SCHEMAS["manifest"]).is_file()


_DIGEST = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")


def _check_descriptor(d: dict) -> None:
    assert isinstance(d.get("mediaType"), str) and d["mediaType"], d
    assert _DIGEST.match(d.get("digest", "")), d
    assert isinstance(d.get("size"), int) and d["size"] >= 0, d


def check_shape(kind: str, doc: dict) -> None:
    """The project's own checks of the fields the OCI image spec requires of each kind."""
    if kind == "layout":
        assert doc.get("imageLayoutVersion") == "1.0.0", doc
    elif kind in ("manifest", "index"):
        assert doc.get("schemaVersion") == 2, doc
        for d in [doc["config"], *doc["layers"]] if kind == "manifest" else doc["manifests"]:
            _check_descriptor(d)
    elif kind == "config":
        assert isinstance(doc.get("architecture"), str) and isinstance(doc.get("os"), str), doc
        assert doc["rootfs"]["type"] == "layers" and all(_DIGEST.match(x) for x in doc["rootfs"]["diff_ids"])
    elif kind == "descriptor":
        _check_descriptor(doc)


def validate(kind: str, doc: dict | bytes) -> None:
    """Raise if `doc` breaks the OCI schema of `kind` (or, without the schemas, its required shape)."""
    if isinstance(doc, bytes):
        doc = json.loads(doc)
    check_shape(kind, doc)
    if not schemas_available():
        return
    schema = json.loads((SCHEMA_DIR / SCHEMAS[kind]).read_text())
    schema = {**schema, "id": BASE + SCHEMAS[kind]}
    jsonschema.Draft4Validator(schema, registry=_registry()).validate(doc)
