"""Pull-through cache: `--proxy-remote` (repeatable), verified and stored, served when upstream is gone."""

from __future__ import annotations

import json
import subprocess

import pytest

from helpers.oci_layout import Layout

pytestmark = [pytest.mark.network, pytest.mark.slow]


def skopeo(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=120)


def test_pull_through_two_upstreams(serve, tmp_path):
    up1 = serve()
    up2 = serve()
    layout = Layout(tmp_path / "oci")
    layout.write_image("one", layers=2, size=50_000)
    layout.write_index("multi")
    assert skopeo("copy", "-q", "--dest-tls-verify=false", f"oci:{layout.root}:one",
                  f"docker://{up1.addr}/lib/one:v1").returncode == 0
    assert skopeo("copy", "-q", "--all", "--dest-tls-verify=false", f"oci:{layout.root}:multi",
                  f"docker://{up2.addr}/lib/multi:v1").returncode == 0
    cache = serve("--proxy-remote", up1.url, "--proxy-remote", up2.url)
    # from the first upstream, and from the second (the first does not have it)
    cp = skopeo("copy", "-q", "--src-tls-verify=false", f"docker://{cache.addr}/lib/one:v1", f"oci:{tmp_path}/o:one")
    assert cp.returncode == 0, cp.stderr
    cp = skopeo("copy", "-q", "--all", "--src-tls-verify=false", f"docker://{cache.addr}/lib/multi:v1",
                f"oci:{tmp_path}/o:multi")
    assert cp.returncode == 0, cp.stderr
    with cache.client() as c:
        d1 = c.get("/v2/lib/one/manifests/v1").headers["Docker-Content-Digest"]
    with up1.client() as c:
        assert c.get("/v2/lib/one/manifests/v1").headers["Docker-Content-Digest"] == d1
    assert "proxy: cached blob lib/one@" in cache.log()
    # upstreams gone: everything already pulled is served from the cache, tags included
    up1.stop()
    up2.stop()
    cp = skopeo("copy", "-q", "--src-tls-verify=false", f"docker://{cache.addr}/lib/one:v1", f"oci:{tmp_path}/p:one")
    assert cp.returncode == 0, cp.stderr
    cp = skopeo("copy", "-q", "--all", "--src-tls-verify=false", f"docker://{cache.addr}/lib/multi:v1",
                f"oci:{tmp_path}/p:multi")
    assert cp.returncode == 0, cp.stderr
    with cache.client() as c:
        assert c.get(f"/v2/lib/one/manifests/{d1}").status_code == 200
        r = c.get("/v2/lib/never/manifests/v1")
        assert r.status_code == 404


def test_pull_through_upstream_with_credentials(serve, tmp_path):
    import bcrypt

    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text("bot:" + bcrypt.hashpw(b"botpw", bcrypt.gensalt(5)).decode() + "\n")
    up = serve("--htpasswd", str(htpasswd))
    layout = Layout(tmp_path / "oci")
    layout.write_image("img")
    assert skopeo("copy", "-q", "--dest-tls-verify=false", "--dest-creds", "bot:botpw", f"oci:{layout.root}:img",
                  f"docker://{up.addr}/private/img:v1").returncode == 0
    cfg = tmp_path / "cache.toml"
    cfg.write_text(f'proxy_remote = [{{ url = "{up.url}", username = "bot", password = "botpw" }}]\n')
    cache = serve("--config", str(cfg))
    cp = skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{cache.addr}/private/img:v1")
    assert cp.returncode == 0, cp.stderr + cache.log()
    layers = json.loads(cp.stdout)["layers"]
    with cache.client() as c:
        for layer in layers:
            assert c.get(f"/v2/private/img/blobs/{layer['digest']}").status_code == 200


def test_proxy_rejects_wrong_content(serve, tmp_path):
    """An upstream answering with bytes that do not match the digest asked for is not cached."""
    up = serve()
    layout = Layout(tmp_path / "oci")
    layout.write_image("img")
    assert skopeo("copy", "-q", "--dest-tls-verify=false", f"oci:{layout.root}:img",
                  f"docker://{up.addr}/lib/img:v1").returncode == 0
    cache = serve("--proxy-remote", up.url)
    with cache.client() as c:
        raw = c.get("/v2/lib/img/manifests/v1").content
        layer = json.loads(raw)["layers"][0]["digest"]
    # corrupt the upstream's copy of the layer on disk
    blob = up.storage / "blobs" / "sha256" / layer[7:]
    blob.write_bytes(b"corrupted" + blob.read_bytes()[9:])
    with cache.client() as c:
        r = c.get(f"/v2/lib/img/blobs/{layer}")
        assert r.status_code == 404
    assert not (cache.storage / "blobs" / "sha256" / layer[7:]).exists()
