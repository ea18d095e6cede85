"""pallet pull / manifest inspect / image ls-remote against docker-registry, with images skopeo pushed."""

from __future__ import annotations

import json
import threading

import pytest

from helpers.cli import assert_fails, assert_no_traceback
from pallet.oci.digest import sha256_digest
from registry.client.peers import skopeo_copy, skopeo_inspect

pytestmark = [pytest.mark.network]


def _stored_blobs_ok(store) -> None:
    for d in store.blobs:
        assert sha256_digest(store.blobs.path(d).read_bytes()) == d, f"blob {d} is corrupt"


def test_pull_single_same_digests_as_skopeo(pallet, registry, store):
    ref = f"{registry.host}/test/single:v1"
    cp = pallet("pull", ref, check=True)
    remote = skopeo_inspect(ref, "--tls-verify=false")
    raw = skopeo_inspect(ref, "--tls-verify=false", raw=True)
    assert f"Digest: {remote['Digest']}" in cp.stdout
    rec = store.resolve_image(ref)
    assert rec.manifest_digest == remote["Digest"] == sha256_digest(raw)
    manifest = json.loads(raw)
    assert rec.id == manifest["config"]["digest"]
    assert [x.digest for x in store.manifest(rec).layers] == remote["Layers"]
    for layer in remote["Layers"]:
        assert store.blobs.has(layer)
    assert store.blobs.read(rec.manifest_digest) == raw   # exact bytes kept
    assert f"{registry.host}/test/single@{remote['Digest']}" in rec.repo_digests
    _stored_blobs_ok(store)
    # plain progress lines on a non-terminal, one per blob
    assert cp.stderr.count("Copying blob") == 3


def test_pull_quiet_and_json(pallet, registry):
    ref = f"{registry.host}/test/other:v1"
    q = pallet("pull", "-q", ref, check=True)
    assert q.stdout.strip().startswith("sha256:") and q.stderr == ""
    j = json.loads(pallet("pull", "--format", "json", ref, check=True).stdout)
    assert j["Id"] == q.stdout.strip() and j["Names"] == [ref]
    assert j["Downloaded"] == 0  # everything already stored


def test_pull_multi_platform_selects_host_and_platform(pallet, registry, store, layout):
    ref = f"{registry.host}/test/multi:v1"
    index_raw = skopeo_inspect(ref, "--tls-verify=false", raw=True)
    index = json.loads(index_raw)
    assert index["mediaType"] == "application/vnd.oci.image.index.v1+json"
    by_arch = {m["platform"]["architecture"]: m["digest"] for m in index["manifests"]}
    j = json.loads(pallet("pull", "--format", "json", "--platform", "linux/arm64/v8", ref, check=True).stdout)
    assert j["ManifestDigest"] == by_arch["arm64"]
    assert j["Digest"] == sha256_digest(index_raw)
    assert j["Platform"] == "linux/arm64"
    rec = store.resolve_image(j["Id"])
    assert rec.manifest_digest == by_arch["arm64"]
    # the same layers as the arm64 manifest skopeo sees
    arm = skopeo_inspect(f"{registry.host}/test/multi@{by_arch['arm64']}", "--tls-verify=false")
    assert [x.digest for x in store.manifest(rec).layers] == arm["Layers"]
    j = json.loads(pallet("pull", "--format", "json", "--platform", "linux/amd64", ref, check=True).stdout)
    assert j["ManifestDigest"] == by_arch["amd64"]


def test_pull_no_matching_platform_lists_available(pallet, registry):
    cp = pallet("pull", "--platform", "linux/s390x", f"{registry.host}/test/multi:v1")
    assert_fails(cp, f"Error: {registry.host}/test/multi:v1 has no manifest for platform linux/s390x "
                 "(available: linux/amd64, linux/arm64); choose one with --platform")


def test_pull_all_platforms(pallet, registry, store):
    ref = f"{registry.host}/test/multi:v1"
    j = json.loads(pallet("pull", "--all-platforms", "--format", "json", ref, check=True).stdout)
    assert len(j["Images"]) == 2
    assert {store.get_image(i).manifest_digest for i in j["Images"]} == {
        m["digest"] for m in json.loads(skopeo_inspect(ref, "--tls-verify=false", raw=True))["manifests"]}


def test_pull_by_digest(pallet, registry, store):
    remote = skopeo_inspect(f"{registry.host}/test/single:v1", "--tls-verify=false")
    ref = f"{registry.host}/test/single@{remote['Digest']}"
    j = json.loads(pallet("pull", "--format", "json", ref, check=True).stdout)
    assert j["Digest"] == remote["Digest"] and j["Names"] == []
    assert store.resolve_image(ref).manifest_digest == remote["Digest"]


def test_pull_unknown_tag_and_repo(pallet, registry, store):
    cp = pallet("pull", f"{registry.host}/test/single:nope")
    assert_fails(cp, f"Error: cannot get manifest {registry.host}/test/single:nope: not found on {registry.host} "
                 "(MANIFEST_UNKNOWN: manifest unknown)")
    cp = pallet("pull", f"{registry.host}/nothing/here:v1")
    assert_fails(cp, f"Error: cannot get manifest {registry.host}/nothing/here:v1: not found on {registry.host} "
                 "(MANIFEST_UNKNOWN: manifest unknown)")
    assert store.images() == []


def test_pull_unreachable_registry(pallet):
    from helpers.docker_registry import free_port

    cp = pallet("pull", f"127.0.0.1:{free_port()}/x/y:z")
    assert cp.returncode == 125
    assert "cannot reach registry" in cp.stderr


def test_manifest_inspect_raw_and_ls_remote(pallet, registry):
    ref = f"{registry.host}/test/multi:v1"
    raw = skopeo_inspect(ref, "--tls-verify=false", raw=True)
    cp = pallet("manifest", "inspect", "--raw", ref, input=b"", check=True)
    assert cp.stdout == raw
    doc = json.loads(pallet("manifest", "inspect", ref, check=True).stdout)
    assert doc == json.loads(raw)
    skopeo_copy(f"docker://{registry.host}/test/other:v1", f"docker://{registry.host}/test/other:v2",
                "--src-tls-verify=false", "--dest-tls-verify=false")
    cp = pallet("image", "ls-remote", f"{registry.host}/test/other", check=True)
    assert cp.stdout.split() == ["v1", "v2"]
    j = json.loads(pallet("image", "ls-remote", "--format", "json", f"{registry.host}/test/other", check=True).stdout)
    assert j == {"Repository": f"{registry.host}/test/other", "Tags": ["v1", "v2"]}


@pytest.mark.slow
def test_concurrent_pulls_of_the_same_image(registry, pallet_root, client_env, tmp_path):
    """Two processes pull the same image at once: both succeed; each blob is downloaded once."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from pallet.store import Store
    from registry.client.faultproxy import FaultProxy, Rule

    with FaultProxy(registry.host) as proxy:
        proxy.rules.append(Rule("GET", "/blobs/", rate=4_000_000, times=None))  # long enough to overlap
        ref = f"{proxy.host}/test/big:v1"
        env = dict(os.environ, **client_env, PALLET_ROOT=str(pallet_root))
        exe = str(Path(sys.executable).parent / "pallet")
        procs = [subprocess.Popen([exe, "pull", "-q", ref], env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(2)]
        outs = [p.communicate(timeout=120) for p in procs]
        for p, (_out, err) in zip(procs, outs, strict=True):
            assert_no_traceback(err, p.args)
            assert p.returncode == 0, err
        assert outs[0][0] == outs[1][0]
        blob_gets = [h for h in proxy.hits if h[0] == "GET" and "/blobs/" in h[1]]
        store = Store(pallet_root)
        rec = store.resolve_image(ref)
        assert len(blob_gets) == 1 + len(store.manifest(rec).layers)  # config + layers, each once
        _stored_blobs_ok(store)


def test_pull_threads_share_store(registry, pallet_root):
    """The library: two pulls in threads of one process also both succeed."""
    from pallet.registry.client.pull import Client
    from pallet.registry.client.transport import Options
    from pallet.store import Store

    results, errors = [], []

    def go():
        try:
            with Client(Options()) as c:
                results.append(c.pull(Store(pallet_root), f"{registry.host}/test/single:v1").image_id)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    ts = [threading.Thread(target=go) for _ in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    assert not errors and len(set(results)) == 1


def test_mirror_tried_before_registry(pallet, registry, tmp_path):
    from helpers.docker_registry import free_port

    dead = f"127.0.0.1:{free_port()}"
    cfg = tmp_path / "pallet.toml"
    # a registry nobody serves, mirrored by the real one
    cfg.write_text(f'[registries."{dead}"]\nmirrors = ["{registry.host}"]\n')
    j = json.loads(pallet("--config", str(cfg), "pull", "--format", "json", f"{dead}/test/single:v1",
                          check=True).stdout)
    assert j["Source"] == registry.host and j["Names"] == [f"{dead}/test/single:v1"]
    # a dead mirror first: falls back to the registry itself
    cfg.write_text(f'[registries."{registry.host}"]\nmirrors = ["{dead}"]\n')
    j = json.loads(pallet("--config", str(cfg), "pull", "--format", "json", f"{registry.host}/test/other:v1",
                          check=True).stdout)
    assert j["Source"] == registry.host


def test_docker_hub_names_from_offline_mirror(pallet, registry, tmp_path):
    """`pallet pull busybox`-style names resolve through a docker.io mirror on 127.0.0.1.

    HTTP(S)_PROXY points at a closed port, so nothing could reach docker.io even on a bug.
    """
    skopeo_copy(f"docker://{registry.host}/test/single:v1", f"docker://{registry.host}/library/tiny:latest",
                "--src-tls-verify=false", "--dest-tls-verify=false")
    (tmp_path / "config").mkdir(exist_ok=True)
    (tmp_path / "config" / "pallet.toml").write_text(f'[registries."docker.io"]\nmirrors = ["{registry.host}"]\n')
    j = json.loads(pallet("pull", "--format", "json", "tiny", check=True).stdout)
    assert j["Names"] == ["docker.io/library/tiny:latest"] and j["Source"] == registry.host
