"""Faults a real registry cannot produce, injected by a proxy in front of docker-registry."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers.cli import run_cli
from pallet.oci.digest import sha256_digest
from registry.client.faultproxy import FaultProxy, Rule

pytestmark = [pytest.mark.network]

FAST_RETRIES = '[client]\nretries = 3\nretry-delay = 0.01\n'


@pytest.fixture
def proxy(registry):
    with FaultProxy(registry.host) as p:
        yield p


@pytest.fixture
def fast(tmp_path):
    cfg = tmp_path / "fast.toml"
    cfg.write_text(FAST_RETRIES)
    return ["--config", str(cfg)]


def _consistent(store) -> None:
    """Every published blob hashes to its name; no image refers to a missing blob."""
    for d in store.blobs:
        assert sha256_digest(store.blobs.path(d).read_bytes()) == d
    for rec in store.images():
        m = store.manifest(rec)
        for x in [m.config, *m.layers]:
            assert store.blobs.has(x.digest)
    layers = store.root / "layers"
    if layers.is_dir():   # unpacked layers: only complete ones are published under their chain id
        for d in layers.iterdir():
            if len(d.name) == 64:
                assert (d / "layer.json").is_file() and (d / "diff").is_dir()


def _layers(store, registry, tag="single"):
    from registry.client.peers import skopeo_inspect

    return skopeo_inspect(f"{registry.host}/test/{tag}:v1", "--tls-verify=false")["Layers"]


def test_dropped_connection_resumes_with_range(pallet, proxy, registry, store, fast):
    layers = _layers(store, registry, "big")
    proxy.rules.append(Rule("GET", f"/blobs/{layers[0]}", drop_after=1000, times=1))
    pallet(*fast, "pull", f"{proxy.host}/test/big:v1", check=True)
    gets = [h for h in proxy.hits if h[0] == "GET" and layers[0] in h[1]]
    assert len(gets) == 2
    assert gets[1][2].get("Range") == "bytes=1000-"
    _consistent(store)
    assert len(store.images()) == 1


def test_corrupt_blob_is_an_error_and_nothing_registered(pallet, proxy, registry, store, fast):
    layers = _layers(store, registry)
    proxy.rules.append(Rule("GET", f"/blobs/{layers[1]}", corrupt=True, times=None))
    cp = pallet(*fast, "pull", f"{proxy.host}/test/single:v1")
    assert cp.returncode == 125
    assert "does not match" in cp.stderr or "digest" in cp.stderr
    assert layers[1] in cp.stderr
    assert store.images() == []
    assert not store.blobs.has(layers[1])
    _consistent(store)


def test_diff_id_mismatch_is_an_error(pallet, proxy, registry, store, fast):
    """A config whose diff_ids do not match the layers (served consistently): refused, nothing registered."""
    from registry.client.peers import skopeo_inspect

    raw = json.loads(skopeo_inspect(f"{registry.host}/test/single:v1", "--tls-verify=false", raw=True))
    cfg = subprocess.run(["skopeo", "inspect", "--config", "--raw", "--tls-verify=false",
                          f"docker://{registry.host}/test/single:v1"], capture_output=True, check=True).stdout
    doc = json.loads(cfg)
    doc["rootfs"]["diff_ids"][0] = "sha256:" + "0" * 64
    bad_cfg = json.dumps(doc).encode()
    raw["config"] = {**raw["config"], "digest": sha256_digest(bad_cfg), "size": len(bad_cfg)}
    bad_manifest = json.dumps(raw).encode()
    proxy.rules.append(Rule("GET", "/manifests/v1", body=bad_manifest,
                            content_type="application/vnd.oci.image.manifest.v1+json", times=None))
    proxy.rules.append(Rule("GET", f"/blobs/{sha256_digest(bad_cfg)}", status=200, body=bad_cfg,
                            content_type="application/octet-stream", times=None))
    cp = pallet(*fast, "pull", f"{proxy.host}/test/single:v1")
    assert cp.returncode == 125
    assert "diff id" in cp.stderr
    assert store.images() == []


def test_503_and_429_are_retried(pallet, proxy, store, fast):
    proxy.rules.append(Rule("GET", "/manifests/v1", status=503, times=2))
    proxy.rules.append(Rule("GET", "/blobs/", status=429, times=2))
    pallet(*fast, "pull", f"{proxy.host}/test/single:v1", check=True)
    assert len(store.images()) == 1


def test_persistent_503_gives_up_with_a_clear_error(pallet, proxy, store, fast):
    proxy.rules.append(Rule("GET", "/manifests/v1", status=503, times=None))
    cp = pallet(*fast, "pull", f"{proxy.host}/test/single:v1")
    assert cp.returncode == 125
    assert "503" in cp.stderr and "Traceback" not in cp.stderr
    assert len([h for h in proxy.hits if "/manifests/v1" in h[1]]) == 4   # 1 + 3 retries
    proxy.rules[:] = [Rule("GET", "/manifests/v1", status=429, times=None)]
    cp = pallet(*fast, "pull", f"{proxy.host}/test/single:v1")
    assert cp.returncode == 125 and "429" in cp.stderr and "rate" in cp.stderr


def test_bad_token_from_proxy_is_401(pallet, proxy, store, fast):
    """A registry that keeps rejecting the token it asked for: one retry with a fresh token, then a clear 401."""
    challenge = {"WWW-Authenticate": f'Bearer realm="http://{proxy.host}/token",service="x"'}
    proxy.rules.append(Rule("GET", "/manifests/", status=401, headers=challenge, times=None,
                            body=b'{"errors":[{"code":"UNAUTHORIZED","message":"bad token"}]}'))
    proxy.rules.append(Rule("GET", "/token", status=200, body=b'{"token":"not-a-valid-token"}', times=None))
    cp = pallet(*fast, "pull", f"{proxy.host}/test/single:v1")
    assert cp.returncode == 125
    assert "401" in cp.stderr and "bad token" in cp.stderr
    assert len([h for h in proxy.hits if "/token" in h[1]]) == 1


def test_schema1_is_refused(pallet, proxy, store, fast):
    body = json.dumps({"schemaVersion": 1, "name": "test/single", "tag": "v1", "fsLayers": [],
                       "history": []}).encode()
    proxy.rules.append(Rule("GET", "/manifests/v1", status=200, body=body, times=None,
                            content_type="application/vnd.docker.distribution.manifest.v1+prettyjws"))
    cp = pallet(*fast, "pull", f"{proxy.host}/test/single:v1")
    assert cp.returncode == 125 and "schema 1" in cp.stderr
    cp = pallet(*fast, "manifest", "inspect", f"{proxy.host}/test/single:v1")
    assert cp.returncode == 125 and "schema 1" in cp.stderr


def test_redirect_drops_authorization_for_another_host(pallet, registry, store, fast):
    """Blob GETs answered with 307 to another host: followed, without the Authorization header."""
    with FaultProxy(registry.host) as front, FaultProxy(registry.host) as storage:
        front.rules.append(Rule("GET", "/v2/", status=401, times=1,
                                headers={"WWW-Authenticate": 'Basic realm="test"'}))
        layers = _layers(store, registry)
        for d in layers:
            front.rules.append(Rule("GET", f"/blobs/{d}", status=307, times=None, body=b"",
                                    headers={"Location": f"http://{storage.host}/v2/test/single/blobs/{d}"}))
        pallet(*fast, "pull", "--creds", "u:p", f"{front.host}/test/single:v1", check=True)
        front_gets = [h for h in front.hits if "/blobs/" in h[1]]
        assert front_gets and all("Authorization" in h[2] for h in front_gets)
        moved = [h for h in storage.hits if "/blobs/" in h[1]]
        assert len(moved) == len(layers)
        assert not any("Authorization" in h[2] for h in moved)
    assert len(store.images()) == 1


@pytest.mark.slow
def test_pull_killed_half_way_then_rerun(registry, proxy, pallet_root, client_env, store):
    """SIGKILL during a slow download: no partial blob is visible, nothing registered; a rerun succeeds."""
    layers = _layers(store, registry, "big")
    proxy.rules.append(Rule("GET", "/blobs/", rate=300_000, times=None))
    ref = f"{proxy.host}/test/big:v1"
    env = dict(os.environ, **client_env, PALLET_ROOT=str(pallet_root))
    exe = str(Path(sys.executable).parent / "pallet")
    p = subprocess.Popen([exe, "pull", "-q", ref], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while proxy.sent < 600_000 and time.monotonic() < deadline:
        time.sleep(0.05)
    children = []
    for task in Path(f"/proc/{p.pid}/task").iterdir():   # the layer unpack processes
        children += (task / "children").read_text().split()
    assert children
    p.send_signal(signal.SIGKILL)
    p.wait(10)
    assert p.returncode == -signal.SIGKILL
    deadline = time.monotonic() + 10   # they see their stream end early and exit, publishing nothing
    while any(Path(f"/proc/{c}").exists() for c in children) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(Path(f"/proc/{c}").exists() for c in children)
    assert store.images() == []
    for d in layers:
        assert not store.blobs.has(d)
    _consistent(store)
    proxy.rules.clear()
    cp = run_cli([exe, "pull", "-q", ref], env=env, capture_output=True, text=True, timeout=120)
    assert cp.returncode == 0, cp.stderr
    assert len(store.images()) == 1
    _consistent(store)
    from pallet.oci.digest import chain_ids

    rec = store.images()[0]
    for c in chain_ids(store.config(rec).diff_ids):   # unpacked while downloading
        assert (store.root / "layers" / c.removeprefix("sha256:") / "diff").is_dir()


def test_push_retries_a_failed_upload(pallet, proxy, registry, store, fast):
    """A 503 on the upload's PUT restarts that blob's upload; the push succeeds."""
    from registry.client.peers import skopeo_inspect

    pallet("pull", f"{registry.host}/test/other:v1", check=True)
    proxy.rules.append(Rule("PUT", "/blobs/uploads/", status=503, times=2))
    proxy.rules.append(Rule("POST", "/blobs/uploads/", status=500, times=1))
    dest = f"{proxy.host}/retried/other:v1"
    res = json.loads(pallet(*fast, "push", "--format", "json", f"{registry.host}/test/other:v1", dest,
                            check=True).stdout)
    assert skopeo_inspect(f"{registry.host}/retried/other:v1", "--tls-verify=false")["Digest"] == res["Digest"]


def test_access_token_field_and_expiry(proxy):
    """A token server answering only `access_token`; a cached token is reused until it expires."""
    from pallet.registry.client.transport import Options, Registry, scope

    challenge = {"WWW-Authenticate": f'Bearer realm="http://{proxy.host}/token",service="svc"'}
    proxy.rules.append(Rule("GET", "/v2/", status=401, headers=challenge, times=1, body=b"{}"))
    proxy.rules.append(Rule("GET", "/token", status=200, times=None,
                            body=b'{"access_token":"tok-123","expires_in":300}'))
    with Registry(proxy.host, Options()) as reg:
        for _ in range(3):
            r = reg.request("GET", "/v2/test/single/tags/list", scopes={scope("test/single", "pull")})
            assert r.status_code == 200
        tokens = [h for h in proxy.hits if h[1].startswith("/token")]
        assert len(tokens) == 1 and "scope=repository%3Atest%2Fsingle%3Apull" in tokens[0][1]
        tags = [h for h in proxy.hits if "/tags/list" in h[1]]
        assert all(h[2].get("Authorization") == "Bearer tok-123" for h in tags)
        for tok in reg._tokens.values():   # let it expire
            tok.expires = 0
        reg.request("GET", "/v2/test/single/tags/list", scopes={scope("test/single", "pull")})
        assert len([h for h in proxy.hits if h[1].startswith("/token")]) == 2
