"""Pieces of the registry client that need no peer: challenges, platforms, credentials, settings."""

from __future__ import annotations

import base64
import json

import pytest

from pallet.errors import NotFound, PalletError
from pallet.oci.documents import Descriptor, Platform
from pallet.registry.client import auth, platforms
from pallet.registry.client.settings import load_settings
from pallet.registry.client.transport import is_local


def test_parse_challenges():
    (ch,) = auth.parse_challenges('Bearer realm="https://auth.example/token",service="registry.example",'
                                  'scope="repository:library/x:pull,push"')
    assert ch.scheme == "bearer" and ch.realm == "https://auth.example/token"
    assert ch.params["service"] == "registry.example" and ch.params["scope"] == "repository:library/x:pull,push"
    assert auth.parse_challenges('Basic realm="Registry Realm"')[0].scheme == "basic"
    two = auth.parse_challenges('Bearer realm="a", Basic realm="b"')
    assert [c.scheme for c in two] == ["bearer", "basic"]
    assert auth.parse_challenges('Bearer realm=unquoted,scope="x\\"y"')[0].params == {"realm": "unquoted",
                                                                                     "scope": 'x"y'}


def _descs(*plats: str) -> list[Descriptor]:
    return [Descriptor("application/vnd.oci.image.manifest.v1+json", "sha256:" + f"{i:064x}", 1,
                       platform=Platform.parse(p)) for i, p in enumerate(plats)]


def test_platform_matching_like_containerd():
    idx = _descs("linux/amd64", "linux/arm64/v8", "linux/arm/v6", "linux/arm/v7")
    assert str(platforms.select(idx, Platform.parse("linux/arm64")).platform) == "linux/arm64/v8"
    assert str(platforms.select(idx, Platform.parse("linux/arm64/v8")).platform) == "linux/arm64/v8"
    assert str(platforms.select(idx, Platform.parse("linux/arm/v7")).platform) == "linux/arm/v7"
    assert str(platforms.select(idx, Platform.parse("linux/arm")).platform) == "linux/arm/v7"  # arm = v7
    only_v6 = _descs("linux/amd64", "linux/arm/v6")
    assert str(platforms.select(only_v6, Platform.parse("linux/arm/v7")).platform) == "linux/arm/v6"
    assert str(platforms.select(only_v6, Platform.parse("linux/arm64")).platform) == "linux/arm/v6"
    with pytest.raises(NotFound) as e:
        platforms.select(_descs("linux/arm/v7"), Platform.parse("linux/arm/v6"))   # no upward fallback
    assert "linux/arm/v7" in e.value.message
    assert str(platforms.select(_descs("linux/arm64"), Platform("linux", "aarch64")).platform) == "linux/arm64"
    assert platforms.normalize(Platform("linux", "x86_64")) == Platform("linux", "amd64")
    assert platforms.host_platform().os == "linux"


def test_is_local():
    for h in ("localhost:5000", "127.0.0.1:5000", "127.1.2.3", "[::1]:5000", "localhost"):
        assert is_local(h), h
    for h in ("docker.io", "10.0.0.1:5000", "quay.io", "example.localhost.com"):
        assert not is_local(h), h


def _b64(u: str, p: str) -> str:
    return base64.b64encode(f"{u}:{p}".encode()).decode()


def test_auth_lookup_order_and_keys(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    monkeypatch.delenv("REGISTRY_AUTH_FILE", raising=False)
    monkeypatch.delenv("DOCKER_CONFIG", raising=False)
    assert auth.lookup("reg.example:5000") is None
    docker = tmp_path / "home" / ".docker" / "config.json"
    docker.parent.mkdir(parents=True)
    docker.write_text(json.dumps({"auths": {"https://index.docker.io/v1/": {"auth": _b64("hub", "h")},
                                            "http://reg.example:5000/v2/": {"auth": _b64("d", "d")}}}))
    assert auth.lookup("docker.io") == auth.Credentials("hub", "h")
    assert auth.lookup("reg.example:5000") == auth.Credentials("d", "d")
    cfg = tmp_path / "cfg" / "containers" / "auth.json"
    cfg.parent.mkdir(parents=True)
    cfg.write_text(json.dumps({"auths": {"reg.example:5000": {"auth": _b64("c", "c")}}}))
    assert auth.lookup("reg.example:5000") == auth.Credentials("c", "c")
    primary = tmp_path / "run" / "containers" / "auth.json"
    assert auth.save_login("reg.example:5000/team", auth.Credentials("p", "p")) == primary
    assert auth.lookup("reg.example:5000", "team/app") == auth.Credentials("p", "p")   # namespace entry
    assert auth.lookup("reg.example:5000", "other/app") == auth.Credentials("c", "c")
    assert auth.lookup("reg.example:5000", "team/app", authfile=str(docker)) == auth.Credentials("d", "d")
    assert auth.remove_login("reg.example:5000/team")
    assert not auth.remove_login("reg.example:5000/team")
    docker.write_text(json.dumps({"auths": {}, "credHelpers": {"reg.example:5000": "absent-helper"}}))
    cfg.unlink()
    with pytest.raises(PalletError, match="docker-credential-absent-helper"):
        auth.lookup("reg.example:5000")


def test_settings(tmp_path):
    f = tmp_path / "pallet.toml"
    f.write_text('[registries."docker.io"]\nmirrors = ["127.0.0.1:5000", "127.0.0.1:5001/"]\n'
                 '[registries."r:1"]\ninsecure = true\n[client]\nretries = 2\nretry-delay = 0.5\n')
    s = load_settings(str(f))
    assert s.for_host("docker.io").mirrors == ["127.0.0.1:5000", "127.0.0.1:5001"]
    assert s.for_host("r:1").insecure is True and s.for_host("quay.io").mirrors == []
    assert (s.retries, s.retry_delay) == (2, 0.5)
    f.write_text('[registries."docker.io"]\nmirrors = "nope"\n')
    with pytest.raises(PalletError, match="mirrors"):
        load_settings(str(f))
    f.write_text("not toml [")
    with pytest.raises(PalletError, match="TOML"):
        load_settings(str(f))
    with pytest.raises(PalletError, match="does not exist"):
        load_settings(str(tmp_path / "missing.toml"))
