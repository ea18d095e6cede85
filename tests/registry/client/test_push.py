"""pallet push → docker-registry, checked with skopeo and podman; HEAD skip, cross-repo mount, chunked, index."""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import tarfile

import pytest

from helpers.docker_registry import DockerRegistry
from pallet.oci import mediatypes as mt
from pallet.oci.digest import sha256_digest
from pallet.oci.documents import Descriptor, ImageConfig, Manifest, canonical_json
from registry.client.peers import skopeo_inspect

pytestmark = [pytest.mark.network]


def _tar_dir(root) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for p in sorted(root.rglob("*")):
            info = tar.gettarinfo(str(p), arcname=str(p.relative_to(root)))
            info.mtime = 0
            if info.isfile():
                with open(p, "rb") as f:
                    tar.addfile(info, f)
            else:
                tar.addfile(info)
    return buf.getvalue()


@pytest.fixture
def local_busybox(store, busybox_rootfs):
    """A busybox image made in the store by hand (as build or import would), tagged localhost/bb:latest."""
    tar = _tar_dir(busybox_rootfs)
    layer = gzip.compress(tar, 1, mtime=0)
    ld = store.blobs.put(layer)
    cfg = canonical_json({"architecture": "amd64", "os": "linux",
                          "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/bin:/sbin:/usr/bin:/usr/sbin"]},
                          "rootfs": {"type": "layers", "diff_ids": [sha256_digest(tar)]},
                          "history": [{"created_by": "test: busybox rootfs"}]})
    cd = store.blobs.put(cfg)
    manifest = Manifest.build(Descriptor(mt.OCI_CONFIG, cd, len(cfg)), [Descriptor(mt.OCI_LAYER_GZIP, ld, len(layer))])
    store.blobs.put(manifest.raw)
    return store.register_image(manifest, ImageConfig.parse(cfg), size=len(tar), names=["localhost/bb:latest"])


@pytest.mark.slow
def test_push_local_image_skopeo_and_podman_agree(pallet, registry, local_busybox, podman):
    dest = f"{registry.host}/pushed/bb:v1"
    cp = pallet("push", "--format", "json", "localhost/bb:latest", dest, check=True)
    res = json.loads(cp.stdout)
    assert res["Digest"] == local_busybox.manifest_digest and res["Pushed"] == 2
    remote = skopeo_inspect(dest, "--tls-verify=false")
    assert remote["Digest"] == local_busybox.manifest_digest
    raw = skopeo_inspect(dest, "--tls-verify=false", raw=True)
    assert sha256_digest(raw) == local_busybox.manifest_digest
    # again: every blob is already there (HEAD)
    res = json.loads(pallet("push", "--format", "json", "localhost/bb:latest", dest, check=True).stdout)
    assert res["Skipped"] == 2 and res["Pushed"] == 0
    cp = subprocess.run([*podman, "pull", "-q", "--tls-verify=false", dest], capture_output=True, text=True,
                        timeout=120)
    assert cp.returncode == 0, cp.stderr
    assert cp.stdout.strip() == local_busybox.id.removeprefix("sha256:")
    cp = subprocess.run([*podman, "images", "--digests", "--format", "{{.Digest}}", dest], capture_output=True,
                        text=True, timeout=60)
    assert cp.stdout.strip() == local_busybox.manifest_digest
    # runc: podman's default crun refuses a hybrid cgroup host (what it needs there: helpers.crun_ns)
    run = subprocess.run([*podman, "run", "--rm", "--runtime", "runc", "--network=none", "--ulimit",
                          "nofile=20000:20000", "--ulimit", "nproc=32768:32768", dest, "echo", "hello from pallet"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "hello from pallet"


def test_push_mounts_from_source_repository(pallet, registry, store):
    src = f"{registry.host}/test/single:v1"
    pallet("pull", src, check=True)
    res = json.loads(pallet("push", "--format", "json", src, f"{registry.host}/mounted/single:v9", check=True).stdout)
    assert res["Mounted"] == 4 and res["Pushed"] == 0
    assert skopeo_inspect(f"{registry.host}/mounted/single:v9", "--tls-verify=false")["Digest"] == \
        store.resolve_image(src).manifest_digest


def test_push_index_with_all_manifests(pallet, registry, store, tmp_path):
    src = f"{registry.host}/test/multi:v1"
    pallet("pull", "--all-platforms", src, check=True)
    with DockerRegistry(tmp_path / "second") as second:   # another registry: no mount, real uploads
        dest = f"{second.host}/copy/multi:v1"
        res = json.loads(pallet("push", "--format", "json", src, dest, check=True).stdout)
        raw = skopeo_inspect(src, "--tls-verify=false", raw=True)
        assert res["Digest"] == sha256_digest(raw) and res["Pushed"] == 6
        assert skopeo_inspect(dest, "--tls-verify=false", raw=True) == raw
        for m in json.loads(raw)["manifests"]:
            skopeo_inspect(f"{second.host}/copy/multi@{m['digest']}", "--tls-verify=false")
        # pallet pulls back what it pushed
        j = json.loads(pallet("pull", "--format", "json", "--platform", "linux/arm64", dest, check=True).stdout)
        assert j["Digest"] == res["Digest"]


def test_chunked_upload(registry, store, tmp_path):
    """PATCH with Content-Range per chunk, then PUT ?digest= (the library's chunk_size option), with
    relative upload Locations."""
    from pallet.registry.client.pull import Client
    from pallet.registry.client.push import push
    from pallet.registry.client.transport import Options
    from registry.client.faultproxy import FaultProxy

    src = f"{registry.host}/test/big:v1"
    with Client(Options()) as c:
        c.pull(store, src)
    with DockerRegistry(tmp_path / "chunked") as target, FaultProxy(target.host) as proxy:
        proxy.relative_locations = True     # upload Locations as paths: resolved against the request URL
        sizes = [d.size for d in store.manifest(store.resolve_image(src)).layers]
        chunk = 512 * 1024
        with Client(Options(chunk_size=chunk)) as c:
            res = push(c, store, src, f"{proxy.host}/chunked/big:v1")
        patches = [h for h in proxy.hits if h[0] == "PATCH"]
        assert len(patches) >= sum(-(-s // chunk) for s in sizes) > len(sizes)
        assert all("Content-Range" in h[2] for h in patches)
        assert skopeo_inspect(f"{target.host}/chunked/big:v1", "--tls-verify=false")["Digest"] == res.digest


def test_push_errors(pallet, registry):
    cp = pallet("push", "localhost/not-here:latest", f"{registry.host}/x/y:z")
    assert cp.returncode == 125 and "No such image" in cp.stderr
