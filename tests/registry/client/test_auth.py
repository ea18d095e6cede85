"""Auth and TLS against docker-registry: htpasswd Basic behind TLS (test CA), token auth (JWT issuer)."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess

import pytest

from helpers.cli import assert_fails
from helpers.docker_registry import DockerRegistry
from helpers.token_issuer import TokenIssuer
from registry.client.peers import skopeo_copy, skopeo_inspect

pytestmark = [pytest.mark.network]


def _auth_entry(user: str, password: str) -> dict:
    return {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}


# ---- Basic auth behind TLS ---------------------------------------------------------------------

def test_basic_needs_credentials(pallet, basic_registry, store):
    cp = pallet("pull", f"{basic_registry.host}/test/single:v1")
    assert cp.returncode == 125
    assert "requires authentication" in cp.stderr and "pallet login" in cp.stderr
    cp = pallet("pull", "--creds", "alice:wrong", f"{basic_registry.host}/test/single:v1")
    assert cp.returncode == 125 and "401" in cp.stderr
    assert store.images() == []


def test_basic_with_creds_and_ca(pallet, basic_registry, tls_ca, store):
    ref = f"{basic_registry.host}/test/single:v1"
    # verification on, CA not given: a clear TLS error
    cp = pallet("pull", "--tls-verify=true", "--creds", "alice:wonderland", ref)
    assert cp.returncode == 125 and "certificate" in cp.stderr.lower()
    # --cert-dir with the CA
    pallet("pull", "--tls-verify", "--cert-dir", str(tls_ca.ca_cert.parent), "--creds", "alice:wonderland", ref,
           check=True)
    remote = skopeo_inspect(ref, "--creds=alice:wonderland", f"--cert-dir={tls_ca.ca_cert.parent}")
    assert store.resolve_image(ref).manifest_digest == remote["Digest"]


def test_certs_d_directory(pallet, basic_registry, tls_ca, tmp_path, client_env):
    d = tmp_path / "certs.d" / basic_registry.host   # PALLET_CERTS_D points at tmp_path/certs.d
    d.mkdir(parents=True)
    (d / "ca.crt").write_bytes(tls_ca.ca_cert.read_bytes())
    pallet("pull", "--tls-verify=true", "--creds", "alice:wonderland", f"{basic_registry.host}/test/single:v1",
           check=True)


def test_login_verifies_saves_and_logout(pallet, basic_registry, client_env, store):
    host = basic_registry.host
    authfile = os.path.join(client_env["XDG_RUNTIME_DIR"], "containers", "auth.json")
    cp = pallet("login", "-u", "alice", "--password-stdin", host, input="nope\n")
    assert cp.returncode == 125 and not os.path.exists(authfile)
    cp = pallet("login", "-u", "alice", "--password-stdin", host, input="wonderland\n", check=True)
    assert "Login Succeeded" in cp.stdout
    saved = json.load(open(authfile))
    assert saved["auths"][host] == _auth_entry("alice", "wonderland")
    assert stat.S_IMODE(os.stat(authfile).st_mode) == 0o600
    assert pallet("login", "--get-login", host, check=True).stdout.strip() == "alice"
    # skopeo reads what pallet wrote
    skopeo_inspect(f"{host}/test/single:v1", f"--authfile={authfile}", "--tls-verify=false")
    pallet("pull", f"{host}/test/single:v1", check=True)
    cp = pallet("logout", host, check=True)
    assert f"Removed login credentials for {host}" in cp.stdout
    assert host not in json.load(open(authfile))["auths"]
    assert pallet("logout", host).returncode == 125
    assert_fails(pallet("pull", f"{host}/test/other:v1"),
                 f"Error: registry {host} requires authentication: log in with `pallet login {host}`")


def test_credentials_lookup_order(pallet, basic_registry, client_env, tmp_path):
    """containers auth.json before ~/.docker/config.json; credHelpers through docker-credential-*."""
    host = basic_registry.host
    ref = f"{host}/test/single:v1"
    home = client_env["HOME"]
    os.makedirs(f"{home}/.docker", exist_ok=True)
    with open(f"{home}/.docker/config.json", "w") as f:
        json.dump({"auths": {f"https://{host}": _auth_entry("alice", "wonderland")}}, f)
    pallet("pull", ref, check=True)      # docker's config alone works
    os.makedirs(f"{client_env['XDG_RUNTIME_DIR']}/containers", exist_ok=True)
    with open(f"{client_env['XDG_RUNTIME_DIR']}/containers/auth.json", "w") as f:
        json.dump({"auths": {host: _auth_entry("alice", "bad")}}, f)
    assert pallet("pull", ref).returncode == 125   # the containers auth file comes first
    # --authfile: only that file
    alt = tmp_path / "alt.json"
    alt.write_text(json.dumps({"auths": {f"{host}/test": _auth_entry("alice", "wonderland")}}))
    pallet("pull", "--authfile", str(alt), ref, check=True)
    os.unlink(f"{client_env['XDG_RUNTIME_DIR']}/containers/auth.json")
    # a credential helper named in config.json
    bindir = tmp_path / "bin"
    bindir.mkdir()
    helper = bindir / "docker-credential-pallettest"
    helper.write_text('#!/bin/sh\nread server\n[ "$1" = get ] || exit 1\n'
                      'echo "{\\"ServerURL\\":\\"$server\\",\\"Username\\":\\"alice\\",\\"Secret\\":\\"wonderland\\"}"\n')
    helper.chmod(0o755)
    with open(f"{home}/.docker/config.json", "w") as f:
        json.dump({"auths": {}, "credHelpers": {host: "pallettest"}}, f)
    path = f"{bindir}:{os.environ['PATH']}"
    pallet("pull", ref, env={"PATH": path}, check=True)
    with open(f"{home}/.docker/config.json", "w") as f:
        json.dump({"auths": {}, "credsStore": "pallettest"}, f)
    pallet("pull", f"{host}/test/single:v1", env={"PATH": path}, check=True)


# ---- token auth ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def token_registry(tmp_path_factory, layout):
    issuer = TokenIssuer(users={"bob": "builder"}, service="pallet-test-registry",
                         directory=tmp_path_factory.mktemp("issuer")).start()
    reg = DockerRegistry(tmp_path_factory.mktemp("token-registry"), token=issuer).start()
    try:
        skopeo_copy(f"oci:{layout.root}:single", f"docker://{reg.host}/test/single:v1",
                    "--dest-tls-verify=false", "--dest-creds=bob:builder")
        yield reg, issuer
    finally:
        reg.stop()
        issuer.stop()


def test_token_anonymous_pull_and_cache(pallet, token_registry, store):
    reg, issuer = token_registry
    before = len(issuer.requests)
    pallet("pull", f"{reg.host}/test/single:v1", check=True)
    reqs = issuer.requests[before:]
    assert reqs and all(r["account"] == "" for r in reqs)
    assert {s for r in reqs for s in r["scopes"]} == {"repository:test/single:pull"}
    assert len(reqs) == 1, reqs  # one token, reused for the manifest and every blob


def test_token_push_needs_credentials(pallet, token_registry, store):
    reg, issuer = token_registry
    pallet("pull", f"{reg.host}/test/single:v1", check=True)
    cp = pallet("push", f"{reg.host}/test/single:v1", f"{reg.host}/bob/copy:v1")
    assert cp.returncode == 125 and ("denied" in cp.stderr or "401" in cp.stderr or "403" in cp.stderr)
    before = len(issuer.requests)
    cp = pallet("push", "--creds", "bob:builder", f"{reg.host}/test/single:v1", f"{reg.host}/bob/copy:v1",
                check=True)
    assert any(r["account"] == "bob" for r in issuer.requests[before:])
    assert "mounted" in cp.stdout
    remote = skopeo_inspect(f"{reg.host}/bob/copy:v1", "--tls-verify=false", "--creds=bob:builder")
    assert remote["Digest"] == store.resolve_image(f"{reg.host}/test/single:v1").manifest_digest


def test_token_login(pallet, token_registry, client_env):
    reg, _ = token_registry
    assert pallet("login", "-u", "bob", "-p", "wrong", reg.host).returncode == 125
    pallet("login", "-u", "bob", "-p", "builder", reg.host, check=True)
    pallet("pull", f"{reg.host}/test/single:v1", check=True)
    pallet("push", f"{reg.host}/test/single:v1", f"{reg.host}/bob/login:v1", check=True)  # saved creds used


def test_token_rejected_by_registry(pallet, token_registry, store):
    """The issuer signs with a key the registry does not trust: a clear 401, nothing stored."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    reg, issuer = token_registry
    good = issuer.key
    issuer.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    try:
        cp = pallet("pull", f"{reg.host}/test/single:v1")
    finally:
        issuer.key = good
    assert cp.returncode == 125
    assert "401" in cp.stderr and "Traceback" not in cp.stderr
    assert store.images() == []


def test_skopeo_interop_with_token_registry(pallet, token_registry, store, tmp_path):
    reg, _ = token_registry
    pallet("pull", f"{reg.host}/test/single:v1", check=True)
    pallet("push", "--creds", "bob:builder", f"{reg.host}/test/single:v1", f"{reg.host}/bob/again:v2", check=True)
    out = subprocess.run(["skopeo", "copy", "-q", "--src-tls-verify=false", "--src-creds=bob:builder",
                          f"docker://{reg.host}/bob/again:v2", f"oci:{tmp_path / 'o'}:x"], capture_output=True)
    assert out.returncode == 0, out.stderr


def test_http2_over_tls_with_parallel_streams(basic_registry, tls_ca):
    """The TLS registry offers HTTP/2 (ALPN): the client uses it, from several threads at once."""
    from concurrent.futures import ThreadPoolExecutor

    from pallet.registry.client.auth import Credentials
    from pallet.registry.client.transport import Options, Registry, scope

    opts = Options(tls_verify=True, cert_dir=str(tls_ca.ca_cert.parent), creds=Credentials("alice", "wonderland"))
    with Registry(basic_registry.host, opts) as reg:
        def get(_):
            r = reg.request("GET", "/v2/test/single/tags/list", scopes={scope("test/single", "pull")})
            return r.status_code, r.http_version

        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(get, range(16)))
    assert set(results) == {(200, "HTTP/2")}
