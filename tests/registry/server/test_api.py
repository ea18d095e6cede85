"""The distribution-spec v1.1 HTTP API, endpoint by endpoint and status by status."""

from __future__ import annotations

import hashlib
import http.client
import json

import pytest

from helpers.registry_server import error_code, make_manifest, push_blob, push_manifest, sha256

pytestmark = pytest.mark.network

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def test_base_endpoint(api):
    r = api.get("/v2/")
    assert r.status_code == 200
    assert r.headers["Docker-Distribution-API-Version"] == "registry/2.0"


# ---- pull ---------------------------------------------------------------------------------
def test_manifest_roundtrip_exact_bytes_by_tag_and_digest(api):
    raw, digest = make_manifest(api, "pull/exact", "a")
    r = push_manifest(api, "pull/exact", "v1", raw)
    assert r.status_code == 201, r.text
    assert r.headers["Docker-Content-Digest"] == digest
    assert r.headers["Location"] == f"/v2/pull/exact/manifests/{digest}"
    for ref in ("v1", digest):
        g = api.get(f"/v2/pull/exact/manifests/{ref}", headers={"Accept": OCI_MANIFEST})
        assert g.status_code == 200
        assert g.content == raw
        assert g.headers["Content-Type"] == OCI_MANIFEST
        assert g.headers["Docker-Content-Digest"] == digest
        assert int(g.headers["Content-Length"]) == len(raw)
        h = api.head(f"/v2/pull/exact/manifests/{ref}")
        assert h.status_code == 200 and h.content == b""
        assert h.headers["Docker-Content-Digest"] == digest
        assert int(h.headers["Content-Length"]) == len(raw)


def test_manifest_unknown(api):
    raw, _ = make_manifest(api, "pull/unknown", "b")
    assert push_manifest(api, "pull/unknown", "v1", raw).status_code == 201
    r = api.get("/v2/pull/unknown/manifests/nope")
    assert r.status_code == 404 and error_code(r) == "MANIFEST_UNKNOWN"
    r = api.get(f"/v2/pull/unknown/manifests/{sha256(b'nothing')}")
    assert r.status_code == 404 and error_code(r) == "MANIFEST_UNKNOWN"
    assert api.head("/v2/pull/unknown/manifests/nope").status_code == 404
    r = api.get("/v2/no/such/repo/manifests/latest")
    assert r.status_code == 404 and error_code(r) in ("NAME_UNKNOWN", "MANIFEST_UNKNOWN")


def test_blob_get_head_and_ranges(api):
    data = bytes(range(256)) * 40
    d = push_blob(api, "pull/blob", data)
    r = api.get(f"/v2/pull/blob/blobs/{d}")
    assert r.status_code == 200 and r.content == data
    assert r.headers["Docker-Content-Digest"] == d
    h = api.head(f"/v2/pull/blob/blobs/{d}")
    assert h.status_code == 200 and int(h.headers["Content-Length"]) == len(data)
    r = api.get(f"/v2/pull/blob/blobs/{d}", headers={"Range": "bytes=10-19"})
    assert r.status_code == 206 and r.content == data[10:20]
    assert r.headers["Content-Range"] == f"bytes 10-19/{len(data)}"
    r = api.get(f"/v2/pull/blob/blobs/{d}", headers={"Range": "bytes=-5"})
    assert r.status_code == 206 and r.content == data[-5:]
    r = api.get(f"/v2/pull/blob/blobs/{d}", headers={"Range": f"bytes={len(data) + 10}-"})
    assert r.status_code == 416
    r = api.get(f"/v2/pull/blob/blobs/{sha256(b'absent')}")
    assert r.status_code == 404 and error_code(r) == "BLOB_UNKNOWN"
    assert api.head(f"/v2/pull/blob/blobs/{sha256(b'absent')}").status_code == 404


def test_blob_is_per_repository(api):
    d = push_blob(api, "iso/a", b"only in a")
    assert api.head(f"/v2/iso/a/blobs/{d}").status_code == 200
    r = api.get(f"/v2/iso/b/blobs/{d}")
    assert r.status_code == 404 and error_code(r) == "BLOB_UNKNOWN"


def test_sha512_blobs(api):
    data = b"sha512 content" * 100
    d = "sha512:" + hashlib.sha512(data).hexdigest()
    r = api.post("/v2/sha/five/blobs/uploads/", params={"digest": d}, content=data)
    assert r.status_code == 201, r.text
    assert r.headers["Docker-Content-Digest"] == d
    assert api.get(f"/v2/sha/five/blobs/{d}").content == data
    # chunked too
    r = api.post("/v2/sha/five/blobs/uploads/")
    loc = r.headers["Location"]
    assert api.patch(loc, content=data[:100], headers={"Content-Range": "0-99"}).status_code == 202
    r = api.put(loc, params={"digest": d}, content=data[100:])
    assert r.status_code == 201, r.text


def test_sha512_manifest_by_digest(api):
    raw, _ = make_manifest(api, "sha/manifest", "s512")
    d512 = "sha512:" + hashlib.sha512(raw).hexdigest()
    r = push_manifest(api, "sha/manifest", d512, raw)
    assert r.status_code == 201, r.text
    assert r.headers["Docker-Content-Digest"] == d512
    assert api.get(f"/v2/sha/manifest/manifests/{d512}").content == raw


# ---- push ---------------------------------------------------------------------------------
def test_post_returns_unique_locations(api):
    locs = set()
    for _ in range(5):
        r = api.post("/v2/push/loc/blobs/uploads/")
        assert r.status_code == 202
        assert r.headers["Location"].startswith("/v2/push/loc/blobs/uploads/")
        assert r.headers["Docker-Upload-UUID"]
        locs.add(r.headers["Location"])
    assert len(locs) == 5


def test_monolithic_post_and_put(api):
    data = b"monolithic" * 1000
    d = sha256(data)
    r = api.post("/v2/push/mono/blobs/uploads/", params={"digest": d}, content=data)
    assert r.status_code == 201
    assert r.headers["Location"] == f"/v2/push/mono/blobs/{d}"
    assert r.headers["Docker-Content-Digest"] == d
    data2 = b"single put" * 1000
    r = api.post("/v2/push/mono/blobs/uploads/")
    r = api.put(r.headers["Location"], params={"digest": sha256(data2)}, content=data2)
    assert r.status_code == 201
    assert api.get(f"/v2/push/mono/blobs/{sha256(data2)}").content == data2


def test_chunked_upload_with_status_and_out_of_order(api):
    data = bytes(range(256)) * 1000
    d = sha256(data)
    r = api.post("/v2/push/chunked/blobs/uploads/")
    loc = r.headers["Location"]
    r = api.patch(loc, content=data[:1000], headers={"Content-Range": "0-999",
                                                     "Content-Type": "application/octet-stream"})
    assert r.status_code == 202
    assert r.headers["Range"] == "0-999"
    loc = r.headers["Location"]
    s = api.get(loc)
    assert s.status_code == 204 and s.headers["Range"] == "0-999"
    # out of order: a chunk that does not start at 1000
    bad = api.patch(loc, content=data[2000:3000], headers={"Content-Range": "2000-2999"})
    assert bad.status_code == 416
    assert bad.headers["Range"] == "0-999"
    # a chunk again from 0 (already have it) is also out of order
    assert api.patch(loc, content=data[:1000], headers={"Content-Range": "0-999"}).status_code == 416
    r = api.patch(loc, content=data[1000:50000], headers={"Content-Range": "1000-49999"})
    assert r.status_code == 202 and r.headers["Range"] == "0-49999"
    # streamed (no Content-Range) chunk
    r = api.patch(loc, content=data[50000:60000])
    assert r.status_code == 202 and r.headers["Range"] == "0-59999"
    r = api.put(loc, params={"digest": d}, content=data[60000:],
                headers={"Content-Range": f"60000-{len(data) - 1}"})
    assert r.status_code == 201, r.text
    assert api.get(f"/v2/push/chunked/blobs/{d}").content == data
    # the session is gone
    assert api.get(loc).status_code == 404


def test_digest_mismatch_stores_nothing(api, registry):
    data = b"the real bytes"
    wrong = sha256(b"other bytes")
    r = api.post("/v2/push/bad/blobs/uploads/", params={"digest": wrong}, content=data)
    assert r.status_code == 400 and error_code(r) == "DIGEST_INVALID"
    r = api.post("/v2/push/bad/blobs/uploads/")
    loc = r.headers["Location"]
    api.patch(loc, content=data)
    r = api.put(loc, params={"digest": wrong})
    assert r.status_code == 400 and error_code(r) == "DIGEST_INVALID"
    for d in (wrong, sha256(data)):
        assert api.head(f"/v2/push/bad/blobs/{d}").status_code == 404
        assert not (registry.storage / "blobs" / "sha256" / d[7:]).exists()
    r = api.put(loc, params={"digest": "sha256:zz"})
    assert r.status_code in (400, 404)
    r = api.post("/v2/push/bad/blobs/uploads/", params={"digest": "md5:abc"}, content=data)
    assert r.status_code == 400 and error_code(r) == "DIGEST_INVALID"


def test_put_without_digest(api):
    loc = api.post("/v2/push/nodigest/blobs/uploads/").headers["Location"]
    r = api.put(loc, content=b"x")
    assert r.status_code == 400 and error_code(r) == "DIGEST_INVALID"


def test_delete_upload_session(api):
    loc = api.post("/v2/push/cancel/blobs/uploads/").headers["Location"]
    api.patch(loc, content=b"partial")
    assert api.delete(loc).status_code == 204
    r = api.get(loc)
    assert r.status_code == 404 and error_code(r) == "BLOB_UPLOAD_UNKNOWN"
    assert api.delete(loc).status_code == 404
    assert api.patch(loc, content=b"more").status_code == 404
    r = api.get("/v2/push/cancel/blobs/uploads/not-a-uuid")
    assert r.status_code == 404 and error_code(r) == "BLOB_UPLOAD_UNKNOWN"


def test_upload_session_belongs_to_its_repository(api):
    loc = api.post("/v2/push/owner/blobs/uploads/").headers["Location"]
    other = loc.replace("/push/owner/", "/push/thief/")
    assert api.get(other).status_code == 404


def test_cross_repository_mount(api):
    d = push_blob(api, "mount/src", b"mount me")
    r = api.post("/v2/mount/dst/blobs/uploads/", params={"mount": d, "from": "mount/src"})
    assert r.status_code == 201
    assert r.headers["Location"] == f"/v2/mount/dst/blobs/{d}"
    assert api.get(f"/v2/mount/dst/blobs/{d}").content == b"mount me"
    # cannot mount (blob not in the source): a normal upload session instead
    r = api.post("/v2/mount/dst/blobs/uploads/", params={"mount": sha256(b"nope"), "from": "mount/src"})
    assert r.status_code == 202 and "/blobs/uploads/" in r.headers["Location"]
    # nor from a repository that never had it
    d2 = push_blob(api, "mount/private", b"private")
    r = api.post("/v2/mount/dst2/blobs/uploads/", params={"mount": d2, "from": "mount/elsewhere"})
    assert r.status_code == 202


# ---- manifest validation ------------------------------------------------------------------
def test_manifest_blob_unknown(api):
    raw, _ = make_manifest(api, "val/blobs", "c")
    doc = json.loads(raw)
    doc["layers"].append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                          "digest": sha256(b"never pushed"), "size": 12})
    r = push_manifest(api, "val/blobs", "v1", json.dumps(doc).encode())
    assert r.status_code == 400 and error_code(r) == "MANIFEST_BLOB_UNKNOWN"
    # a blob of another repository does not count
    raw2, _ = make_manifest(api, "val/other", "c2")
    r = push_manifest(api, "val/elsewhere", "v1", raw2)
    assert r.status_code == 400 and error_code(r) == "MANIFEST_BLOB_UNKNOWN"


@pytest.mark.parametrize("body,ctype", [
    (b"not json", OCI_MANIFEST),
    (b"[1,2]", OCI_MANIFEST),
    (b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}', OCI_MANIFEST),
    (b'{"schemaVersion":1,"name":"x","tag":"y","fsLayers":[]}',
     "application/vnd.docker.distribution.manifest.v1+json"),
    (b'{"schemaVersion":2,"config":{},"layers":[]}', "text/plain"),
])
def test_manifest_invalid(api, body, ctype):
    r = push_manifest(api, "val/invalid", "v1", body, ctype)
    assert r.status_code == 400 and error_code(r) == "MANIFEST_INVALID", r.text


def test_manifest_media_type_must_match_content_type(api):
    raw, _ = make_manifest(api, "val/ctype", "d")
    r = push_manifest(api, "val/ctype", "v1", raw, "application/vnd.docker.distribution.manifest.v2+json")
    assert r.status_code == 400 and error_code(r) == "MANIFEST_INVALID"


def test_manifest_digest_reference_must_match(api):
    raw, digest = make_manifest(api, "val/digest", "e")
    r = push_manifest(api, "val/digest", sha256(b"other"), raw)
    assert r.status_code == 400 and error_code(r) == "DIGEST_INVALID"
    assert push_manifest(api, "val/digest", digest, raw).status_code == 201


def test_manifest_too_big(api):
    raw, _ = make_manifest(api, "val/big", "f")
    doc = json.loads(raw)
    doc["annotations"] = {"pad": "x" * (4 * 1024 * 1024)}
    r = push_manifest(api, "val/big", "v1", json.dumps(doc).encode())
    assert r.status_code == 413


def test_index_children_must_exist(api):
    raw, digest = make_manifest(api, "val/index", "g")
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": digest, "size": len(raw),
         "platform": {"os": "linux", "architecture": "amd64"}}]}
    r = push_manifest(api, "val/index", "multi", json.dumps(index).encode(), OCI_INDEX)
    assert r.status_code == 400 and error_code(r) == "MANIFEST_BLOB_UNKNOWN"
    assert push_manifest(api, "val/index", digest, raw).status_code == 201
    r = push_manifest(api, "val/index", "multi", json.dumps(index).encode(), OCI_INDEX)
    assert r.status_code == 201
    g = api.get("/v2/val/index/manifests/multi")
    assert g.headers["Content-Type"] == OCI_INDEX


def raw_request(registry, method: str, path: str, body: bytes = b"") -> tuple[int, dict]:
    """A request whose path goes out exactly as written (httpx would resolve `..`)."""
    conn = http.client.HTTPConnection("127.0.0.1", registry.port, timeout=10)
    try:
        conn.request(method, path, body=body)
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, json.loads(data) if data else {}
    finally:
        conn.close()


@pytest.mark.parametrize("name", ["UPPER/case", "a/../b", "a/./b", "..", "a//b", "-a", "a_", "a" * 256,
                                  "a/%2e%2e/b", "a%2F..%2Fb", "../../../../tmp/escape", "a/_layers"])
def test_name_invalid(registry, name):
    before = sorted(p for p in registry.storage.rglob("*"))
    status, body = raw_request(registry, "GET", f"/v2/{name}/tags/list")
    assert status == 400 and body["errors"][0]["code"] == "NAME_INVALID", (status, body)
    d = sha256(b"x")
    status, body = raw_request(registry, "POST", f"/v2/{name}/blobs/uploads/?digest={d}", b"x")
    assert status == 400 and body["errors"][0]["code"] == "NAME_INVALID"
    status, body = raw_request(registry, "PUT", f"/v2/{name}/manifests/latest", b"{}")
    assert status == 400 and body["errors"][0]["code"] == "NAME_INVALID"
    assert sorted(p for p in registry.storage.rglob("*")) == before
    assert not (registry.storage.parent / "b").exists()


@pytest.mark.parametrize("tag", [".hidden", "-dash", "a" * 129, "bad!tag"])
def test_tag_invalid(api, tag):
    raw, _ = make_manifest(api, "val/tag", "h")
    r = push_manifest(api, "val/tag", tag, raw)
    assert r.status_code == 400 and error_code(r) in ("TAG_INVALID", "MANIFEST_INVALID")


def test_error_body_shape(api):
    r = api.get("/v2/shape/x/blobs/" + sha256(b"none"))
    body = r.json()
    assert set(body) == {"errors"}
    e = body["errors"][0]
    assert {"code", "message", "detail"} <= set(e)
    assert r.headers["Docker-Distribution-API-Version"] == "registry/2.0"


def test_unsupported_method(api):
    r = api.post("/v2/some/repo/manifests/latest")
    assert r.status_code == 405 and error_code(r) == "UNSUPPORTED"


# ---- discovery ----------------------------------------------------------------------------
def test_tags_list_pagination(api):
    raw, _ = make_manifest(api, "disc/tags", "i")
    tags = ["b", "a", "c", "1.0", "Z", "latest", "0"]
    for t in tags:
        assert push_manifest(api, "disc/tags", t, raw).status_code == 201
    r = api.get("/v2/disc/tags/tags/list")
    assert r.json() == {"name": "disc/tags", "tags": sorted(tags)}
    assert "Link" not in r.headers
    r = api.get("/v2/disc/tags/tags/list", params={"n": 3})
    assert r.json()["tags"] == sorted(tags)[:3]
    assert r.headers["Link"] == f'</v2/disc/tags/tags/list?last={sorted(tags)[2]}&n=3>; rel="next"'
    got = []
    url = "/v2/disc/tags/tags/list?n=2"
    while url:
        r = api.get(url)
        got += r.json()["tags"]
        url = r.headers.get("Link", "").partition("<")[2].partition(">")[0]
    assert got == sorted(tags)
    r = api.get("/v2/disc/tags/tags/list", params={"last": "b"})
    assert r.json()["tags"] == [t for t in sorted(tags) if t > "b"]
    r = api.get("/v2/disc/tags/tags/list", params={"n": "0"})
    assert r.json()["tags"] == []
    r = api.get("/v2/disc/tags/tags/list", params={"n": "-1"})
    assert r.status_code == 400
    r = api.get("/v2/disc/never/tags/list")
    assert r.status_code == 404 and error_code(r) == "NAME_UNKNOWN"


def test_catalog_pagination(api):
    raw, _ = make_manifest(api, "cat/one", "j")
    push_manifest(api, "cat/one", "v1", raw)
    raw, _ = make_manifest(api, "cat/two", "k")
    push_manifest(api, "cat/two", "v1", raw)
    repos = api.get("/v2/_catalog").json()["repositories"]
    assert repos == sorted(repos) and {"cat/one", "cat/two"} <= set(repos)
    got, url = [], "/v2/_catalog?n=1"
    while url:
        r = api.get(url)
        got += r.json()["repositories"]
        url = r.headers.get("Link", "").partition("<")[2].partition(">")[0]
    assert got == repos


def test_referrers(api):
    raw, subject = make_manifest(api, "ref/app", "l")
    assert push_manifest(api, "ref/app", "v1", raw).status_code == 201
    empty = b"{}"
    ed = push_blob(api, "ref/app", empty)
    sig = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/x.sig",
                      "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": ed, "size": 2},
                      "layers": [{"mediaType": "application/vnd.oci.empty.v1+json", "digest": ed, "size": 2}],
                      "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": len(raw)},
                      "annotations": {"kind": "signature"}}).encode()
    r = push_manifest(api, "ref/app", sha256(sig), sig)
    assert r.status_code == 201 and r.headers["OCI-Subject"] == subject
    sbom_raw, _ = make_manifest(api, "ref/app", "sbom", extra={
        "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": len(raw)}})
    r = push_manifest(api, "ref/app", sha256(sbom_raw), sbom_raw)
    assert r.status_code == 201
    r = api.get(f"/v2/ref/app/referrers/{subject}")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == OCI_INDEX
    idx = r.json()
    assert idx["mediaType"] == OCI_INDEX and idx["schemaVersion"] == 2
    by_digest = {m["digest"]: m for m in idx["manifests"]}
    assert set(by_digest) == {sha256(sig), sha256(sbom_raw)}
    assert by_digest[sha256(sig)]["artifactType"] == "application/x.sig"
    assert by_digest[sha256(sig)]["annotations"] == {"kind": "signature"}
    assert by_digest[sha256(sig)]["size"] == len(sig)
    # no artifactType: the config media type stands in
    assert by_digest[sha256(sbom_raw)]["artifactType"] == "application/vnd.oci.image.config.v1+json"
    r = api.get(f"/v2/ref/app/referrers/{subject}", params={"artifactType": "application/x.sig"})
    assert r.headers["OCI-Filters-Applied"] == "artifactType"
    assert [m["digest"] for m in r.json()["manifests"]] == [sha256(sig)]
    r = api.get(f"/v2/ref/app/referrers/{sha256(b'no subject')}")
    assert r.status_code == 200 and r.json()["manifests"] == []
    assert api.get("/v2/ref/app/referrers/sha256:bad").status_code == 400
    # deleting the referrer removes it from the list
    assert api.delete(f"/v2/ref/app/manifests/{sha256(sig)}").status_code == 202
    r = api.get(f"/v2/ref/app/referrers/{subject}")
    assert [m["digest"] for m in r.json()["manifests"]] == [sha256(sbom_raw)]


# ---- content management -------------------------------------------------------------------
def test_delete_tag_manifest_blob(api):
    raw, digest = make_manifest(api, "del/app", "m")
    push_manifest(api, "del/app", "v1", raw)
    push_manifest(api, "del/app", "v2", raw)
    assert api.delete("/v2/del/app/manifests/v1").status_code == 202
    assert api.get("/v2/del/app/manifests/v1").status_code == 404
    assert api.get("/v2/del/app/manifests/v2").status_code == 200
    assert api.delete("/v2/del/app/manifests/v1").status_code == 404
    assert api.delete(f"/v2/del/app/manifests/{digest}").status_code == 202
    assert api.get(f"/v2/del/app/manifests/{digest}").status_code == 404
    assert api.get("/v2/del/app/manifests/v2").status_code == 404  # its tags went with it
    assert api.delete(f"/v2/del/app/manifests/{digest}").status_code == 404
    layer = json.loads(raw)["layers"][0]["digest"]
    assert api.delete(f"/v2/del/app/blobs/{layer}").status_code == 202
    assert api.get(f"/v2/del/app/blobs/{layer}").status_code == 404
    assert api.delete(f"/v2/del/app/blobs/{layer}").status_code == 404


def test_no_delete_and_read_only(serve):
    rp = serve("--no-delete")
    with rp.client() as c:
        raw, digest = make_manifest(c, "nd/app", "n")
        push_manifest(c, "nd/app", "v1", raw)
        for path in (f"/v2/nd/app/manifests/{digest}", "/v2/nd/app/manifests/v1",
                     f"/v2/nd/app/blobs/{json.loads(raw)['layers'][0]['digest']}"):
            r = c.delete(path)
            assert r.status_code == 405 and error_code(r) == "UNSUPPORTED"
        assert c.get("/v2/nd/app/manifests/v1").status_code == 200
        loc = c.post("/v2/nd/app/blobs/uploads/").headers["Location"]
        assert c.delete(loc).status_code == 204  # cancelling an upload is not a delete
    rp.stop()
    ro = serve("--read-only", storage=rp.storage)
    with ro.client() as c:
        assert c.get("/v2/nd/app/manifests/v1").status_code == 200
        r = c.post("/v2/nd/app/blobs/uploads/")
        assert r.status_code == 405 and error_code(r) == "UNSUPPORTED"
        assert push_manifest(c, "nd/app", "v2", raw).status_code == 405


def test_content_negotiation_by_accept(api):
    raw, digest = make_manifest(api, "neg/app", "neg")
    assert push_manifest(api, "neg/app", digest, raw).status_code == 201
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": digest, "size": len(raw),
         "platform": {"os": "linux", "architecture": "amd64"}}]}).encode()
    assert push_manifest(api, "neg/app", "multi", index, OCI_INDEX).status_code == 201
    assert push_manifest(api, "neg/app", "single", raw).status_code == 201
    # accepted (explicitly, by wildcard, or no Accept at all): the stored bytes
    for accept in (f"{OCI_INDEX}, {OCI_MANIFEST}", "*/*", None):
        r = api.get("/v2/neg/app/manifests/multi", headers={"Accept": accept} if accept else {})
        assert r.content == index and r.headers["Content-Type"] == OCI_INDEX
    # a client that only takes image manifests gets the linux/amd64 one from the index
    r = api.get("/v2/neg/app/manifests/multi", headers={"Accept": f"{OCI_MANIFEST}; q=0.9"})
    assert r.status_code == 200 and r.content == raw and r.headers["Docker-Content-Digest"] == digest
    # a client that takes neither type: MANIFEST_UNKNOWN
    r = api.get("/v2/neg/app/manifests/single",
                headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"})
    assert r.status_code == 404 and error_code(r) == "MANIFEST_UNKNOWN"
    # by digest the content is what the digest names, whatever the Accept header
    r = api.get(f"/v2/neg/app/manifests/{digest}",
                headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"})
    assert r.status_code == 200 and r.content == raw


def test_more_bad_inputs(api):
    loc = api.post("/v2/bad/inputs/blobs/uploads/").headers["Location"]
    for cr in ("garbage", "5-2", "a-b", "-1-3"):
        r = api.patch(loc, content=b"xyz", headers={"Content-Range": cr})
        assert r.status_code == 416, cr
    r = api.patch(loc, content=b"xyz", headers={"Content-Range": "0-9"})  # length disagrees
    assert r.status_code in (400, 416)
    assert api.get(loc).headers["Range"] == "0-0"  # nothing was appended
    r = api.post("/v2/bad/inputs/blobs/uploads/", params={"mount": "sha256:short", "from": "x/y"})
    assert r.status_code == 400 and error_code(r) == "DIGEST_INVALID"
    assert api.get("/v2/_catalog", params={"n": "many"}).status_code == 400
    r = api.get("/v2/bad/inputs/blobs/not-a-digest")
    assert r.status_code == 400 and error_code(r) == "DIGEST_INVALID"
    r = api.get("/v2/bad/inputs/manifests/sha256:1234")
    assert r.status_code == 400 and error_code(r) == "DIGEST_INVALID"
    r = api.put("/v2/bad/inputs/manifests/v1", content=b"{}",
                headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
    assert r.status_code == 400 and error_code(r) == "MANIFEST_INVALID"
    r = api.get("/v2/bad/inputs/nonsense/endpoint")
    assert r.status_code == 404
    r = api.get("/v3/")
    assert r.status_code == 404
