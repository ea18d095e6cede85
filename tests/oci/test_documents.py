import json

import pytest

from helpers.oci_schema import validate
from pallet.errors import InvalidDigest, InvalidDocument
from pallet.oci import mediatypes as mt
from pallet.oci.digest import Digest
from pallet.oci.documents import (
    Descriptor,
    ImageConfig,
    Index,
    Manifest,
    Platform,
    canonical_json,
    parse_manifest_or_index,
)

CFG = json.dumps({"architecture": "amd64", "os": "linux",
                  "rootfs": {"type": "layers", "diff_ids": [str(Digest.of(b"layer"))]},
                  "config": {"Cmd": ["sh"]}}).encode()


def desc(data: bytes, media_type: str) -> Descriptor:
    return Descriptor(media_type, str(Digest.of(data)), len(data))


def test_built_manifest_and_index_validate_against_the_oci_schemas(vendor_data):
    m = Manifest.build(desc(CFG, mt.OCI_CONFIG), [desc(b"gz", mt.OCI_LAYER_GZIP)],
                       annotations={"org.example": "x"})
    validate("manifest", m.raw)
    assert m.digest == str(Digest.of(m.raw))
    idx = Index.build([Descriptor(mt.OCI_MANIFEST, m.digest, len(m.raw),
                                  platform=Platform("linux", "arm64", "v8"))])
    validate("index", idx.raw)
    validate("config", CFG)
    assert idx.manifests[0].platform == Platform.parse("linux/arm64/v8")


def test_raw_bytes_are_kept_exactly():
    raw = b'{"schemaVersion": 2,  "mediaType": "%s", "config": %s, "layers": []}' % (
        mt.OCI_MANIFEST.encode(), canonical_json(desc(CFG, mt.OCI_CONFIG).to_dict()))
    m = Manifest.parse(raw)
    assert m.raw == raw and m.digest == str(Digest.of(raw))


@pytest.mark.parametrize("doc,msg", [
    (b"not json", "not valid JSON"),
    (b"[]", "JSON object"),
    (b'{"schemaVersion": 1, "name": "x"}', "schema 1"),
    (b'{"schemaVersion": 2, "config": {}}', "'mediaType'"),
    (b'{"schemaVersion": 2, "layers": []}', "'config'"),
    (b'{"schemaVersion": 3, "layers": [], "config": {}}', "schemaVersion 3"),
])
def test_manifest_rejects(doc, msg):
    with pytest.raises(InvalidDocument, match=msg):
        Manifest.parse(doc)


def test_descriptor_rejects_bad_digest_and_size():
    with pytest.raises(InvalidDigest):
        Descriptor.from_dict({"mediaType": mt.OCI_LAYER, "digest": "sha256:xyz", "size": 1})
    with pytest.raises(InvalidDocument, match="negative"):
        Descriptor.from_dict({"mediaType": mt.OCI_LAYER, "digest": str(Digest.of(b"")), "size": -1})
    with pytest.raises(InvalidDocument, match="wrong type"):
        Descriptor.from_dict({"mediaType": mt.OCI_LAYER, "digest": str(Digest.of(b"")), "size": True})


def test_served_media_type_must_agree_with_declared():
    m = Manifest.build(desc(CFG, mt.OCI_CONFIG), [])
    with pytest.raises(InvalidDocument, match="declares"):
        Manifest.parse(m.raw, mt.DOCKER_MANIFEST)


def test_parse_manifest_or_index_by_type_and_shape():
    m = Manifest.build(desc(CFG, mt.DOCKER_CONFIG), [], media_type=mt.DOCKER_MANIFEST)
    assert isinstance(parse_manifest_or_index(m.raw), Manifest)
    i = Index.build([desc(m.raw, mt.DOCKER_MANIFEST)], media_type=mt.DOCKER_MANIFEST_LIST)
    assert isinstance(parse_manifest_or_index(i.raw), Index)
    bare = b'{"schemaVersion":2,"manifests":[]}'
    assert isinstance(parse_manifest_or_index(bare), Index)


def test_image_config_requires_rootfs_layers():
    c = ImageConfig.parse(CFG)
    assert c.platform == Platform("linux", "amd64") and c.config["Cmd"] == ["sh"]
    with pytest.raises(InvalidDocument):
        ImageConfig.parse(b'{"architecture":"amd64","os":"linux","rootfs":{"type":"x","diff_ids":[]}}')
    with pytest.raises(InvalidDocument, match="architecture"):
        ImageConfig.parse(b'{"os":"linux","rootfs":{"type":"layers","diff_ids":[]}}')


@pytest.mark.parametrize("text", ["linux", "linux/", "/amd64", "a/b/c/d"])
def test_platform_parse_rejects(text):
    with pytest.raises(InvalidDocument):
        Platform.parse(text)
