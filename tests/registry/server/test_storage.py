"""The filesystem storage driver on its own (no server)."""

from __future__ import annotations

import hashlib
import os
import time

import pytest

from pallet.errors import DigestMismatch
from pallet.oci import Digest
from pallet.registry.server.storage import FilesystemStorage


def upload(s: FilesystemStorage, name: str, *parts: bytes) -> str:
    info = s.new_upload(name)
    for p in parts:
        w = s.upload_writer(name, info.id)
        w.write(p)
        w.close()
    return info.id


def test_blob_stored_once_linked_per_repo(tmp_path):
    s = FilesystemStorage(tmp_path)
    data = b"shared layer"
    d = Digest.of(data)
    s.commit_upload("a/x", upload(s, "a/x", data), d)
    s.commit_upload("b/y", upload(s, "b/y", data), d)
    assert s.repo_has_blob("a/x", d) and s.repo_has_blob("b/y", d)
    assert not s.repo_has_blob("c/z", d)
    assert [p.name for p in (tmp_path / "blobs" / "sha256").iterdir()] == [d.hex]
    assert s.list_repositories() == ["a/x", "b/y"]
    assert s.unlink_blob("a/x", d) and not s.repo_has_blob("a/x", d) and s.repo_has_blob("b/y", d)


def test_upload_resumes_in_a_new_instance_and_sha512(tmp_path):
    data = os.urandom(100_000)
    s = FilesystemStorage(tmp_path)
    uid = upload(s, "r", data[:40_000])
    s2 = FilesystemStorage(tmp_path)  # a restarted server: no in-memory hash state
    assert s2.upload_info("r", uid).size == 40_000
    assert s2.upload_info("other", uid) is None
    w = s2.upload_writer("r", uid)
    w.write(data[40_000:])
    w.close()
    d512 = Digest("sha512", hashlib.sha512(data).hexdigest())
    assert s2.commit_upload("r", uid, d512) == len(data)
    assert s2.read_blob(d512) == data
    assert list((tmp_path / "uploads").iterdir()) == []


def test_digest_mismatch_stores_nothing(tmp_path):
    s = FilesystemStorage(tmp_path)
    uid = upload(s, "r", b"actual")
    with pytest.raises(DigestMismatch):
        s.commit_upload("r", uid, Digest.of(b"claimed"))
    assert s.blob_size(Digest.of(b"actual")) is None and s.blob_size(Digest.of(b"claimed")) is None
    assert s.upload_info("r", uid) is None


def test_manifests_tags_referrers(tmp_path):
    s = FilesystemStorage(tmp_path)
    raw = b'{"exact":  "bytes"}'
    d = Digest.of(raw)
    subject = Digest.of(b"subject")
    s.put_manifest("r", d, raw, "application/vnd.oci.image.manifest.v1+json", tag="v1", subject=subject,
                   referrer={"mediaType": "m", "digest": str(d), "size": len(raw)})
    assert s.get_manifest("r", d) == (raw, "application/vnd.oci.image.manifest.v1+json")
    assert s.resolve_tag("r", "v1") == d and s.list_tags("r") == ["v1"]
    assert [x["digest"] for x in s.referrers("r", subject)] == [str(d)]
    assert s.delete_manifest("r", d)
    assert s.get_manifest("r", d) is None and s.list_tags("r") == [] and s.referrers("r", subject) == []
    assert s.list_tags("nope") is None


def test_purge_uploads(tmp_path):
    s = FilesystemStorage(tmp_path)
    old = upload(s, "r", b"old")
    new = upload(s, "r", b"new")
    info = tmp_path / "uploads" / old / "info.json"
    info.write_text('{"name": "r", "started": %f}' % (time.time() - 7200))
    assert s.purge_uploads(time.time() - 3600) == 1
    assert s.upload_info("r", old) is None and s.upload_info("r", new) is not None


def test_no_temp_files_left_behind(tmp_path):
    s = FilesystemStorage(tmp_path)
    for i in range(5):
        data = f"blob {i}".encode()
        s.commit_upload("r", upload(s, "r", data), Digest.of(data))
        s.put_manifest("r", Digest.of(b"m%d" % i), b"m%d" % i, "t", tag=f"t{i}")
    assert not [p for p in tmp_path.rglob(".tmp-*")]
