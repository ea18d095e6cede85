"""Validate documents against the OCI image-spec JSON schemas in ../shared/vendor-data."""

from __future__ import annotations

import json
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


def validate(kind: str, doc: dict | bytes) -> None:
    """Raise jsonschema.ValidationError if `doc` breaks the OCI schema of `kind`."""
    if isinstance(doc, bytes):
        doc = json.loads(doc)
    schema = json.loads((SCHEMA_DIR / SCHEMAS[kind]).read_text())
    schema = {**schema, "id": BASE + SCHEMAS[kind]}
    jsonschema.Draft4Validator(schema, registry=_registry()).validate(doc)
