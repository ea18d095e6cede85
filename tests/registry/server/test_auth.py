"""htpasswd Basic auth over TLS, bearer-token auth, anonymous pull."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import ssl
import subprocess

import httpx
import pytest

from helpers.oci_layout import Layout
from helpers.registry_server import make_manifest, push_blob, push_manifest
from helpers.tls import make_test_certs
from helpers.token_issuer import TokenIssuer, make_signing_cert

pytestmark = pytest.mark.network


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_test_certs(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def htpasswd(tmp_path_factory):
    """alice:s3cret in apache's `htpasswd -B` format ($2y$), plus a $2b$ user."""
    import bcrypt

    p = tmp_path_factory.mktemp("htpasswd") / "htpasswd"
    alice = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(5)).decode().replace("$2b$", "$2y$", 1)
    bob = bcrypt.hashpw(b"hunter2", bcrypt.gensalt(5)).decode()
    p.write_text(f"# test users\nalice:{alice}\nbob:{bob}\n")
    return p


def test_htpasswd_over_tls(serve, certs, htpasswd, tmp_path):
    rp = serve("--tls-cert", str(certs.server_cert), "--tls-key", str(certs.server_key),
               "--htpasswd", str(htpasswd), scheme="https")
    with httpx.Client(base_url=rp.url, verify=ssl.create_default_context(cafile=str(certs.ca_cert)), timeout=30) as c:
        r = c.get("/v2/")
        assert r.status_code == 401
        assert r.headers["WWW-Authenticate"] == 'Basic realm="pallet-registry"'
        assert r.json()["errors"][0]["code"] == "UNAUTHORIZED"
        assert c.get("/v2/", headers=basic("alice", "wrong")).status_code == 401
        assert c.get("/v2/", headers=basic("mallory", "s3cret")).status_code == 401
        assert c.get("/v2/", headers=basic("bob", "hunter2")).status_code == 200
        assert c.get("/v2/", headers={"Authorization": "Basic !!!"}).status_code == 401
        assert c.get("/v2/app/tags/list").status_code == 401
        c.headers.update(basic("alice", "s3cret"))
        assert c.get("/v2/").status_code == 200
        raw, _ = make_manifest(c, "tls/app", "tls")
        assert push_manifest(c, "tls/app", "v1", raw).status_code == 201
    with pytest.raises(httpx.ConnectError):
        httpx.get(rp.url + "/v2/", verify=True)  # not trusted without the test CA
    # a real client: skopeo with the CA and credentials
    layout = Layout(tmp_path / "oci")
    layout.write_image("img")
    cmd = ["skopeo", "copy", "-q", "--dest-cert-dir", str(certs.cert_dir), "--dest-creds", "alice:s3cret",
           f"oci:{layout.root}:img", f"docker://{rp.addr}/tls/skopeo:v1"]
    subprocess.run(cmd, check=True, capture_output=True, timeout=60)
    bad = subprocess.run([*cmd[:6], "alice:nope", *cmd[7:]], capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0
    cp = subprocess.run(["skopeo", "inspect", "--raw", "--cert-dir", str(certs.cert_dir), "--creds",
                         "alice:s3cret", f"docker://{rp.addr}/tls/skopeo:v1"],
                        check=True, capture_output=True, timeout=60)
    assert json.loads(cp.stdout)["layers"]


def test_anonymous_pull_with_htpasswd(serve, htpasswd, tmp_path):
    rp = serve("--htpasswd", str(htpasswd), "--anonymous-pull")
    layout = Layout(tmp_path / "oci")
    layout.write_image("img")
    subprocess.run(["skopeo", "copy", "-q", "--dest-tls-verify=false", "--dest-creds", "alice:s3cret",
                    f"oci:{layout.root}:img", f"docker://{rp.addr}/anon/skopeo:v1"], check=True, timeout=60)
    subprocess.run(["skopeo", "copy", "-q", "--src-tls-verify=false", f"docker://{rp.addr}/anon/skopeo:v1",
                    f"oci:{tmp_path / 'out'}:img"], check=True, timeout=60)  # no credentials at all
    with rp.client(headers=basic("alice", "s3cret")) as c:
        raw, _ = make_manifest(c, "anon/app", "anon")
        assert push_manifest(c, "anon/app", "v1", raw).status_code == 201
    with rp.client() as c:
        assert c.get("/v2/anon/app/manifests/v1").status_code == 200
        assert c.get("/v2/anon/app/tags/list").json()["tags"] == ["v1"]
        # containers/image sends empty Basic credentials when it has none
        assert c.get("/v2/anon/app/manifests/v1", headers=basic("", "")).status_code == 200
        assert c.get("/v2/anon/app/manifests/v1", headers=basic("alice", "wrong")).status_code == 401
        assert c.post("/v2/anon/app/blobs/uploads/", headers=basic("", "")).status_code == 401
        assert c.post("/v2/anon/app/blobs/uploads/").status_code == 401
        assert c.delete("/v2/anon/app/manifests/v1").status_code == 401
        assert c.get("/v2/_catalog").status_code == 401


# ---- bearer tokens ------------------------------------------------------------------------
@pytest.fixture
def issuer(tmp_path):
    with TokenIssuer(users={"alice": "pw"}, service="pallet-test", directory=tmp_path) as iss:
        yield iss


@pytest.fixture
def token_registry(serve, issuer):
    return serve("--token-realm", issuer.realm, "--token-service", issuer.service,
                 "--token-issuer", issuer.issuer, "--token-cert", str(issuer.cert_path))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": "Bearer " + token}


def access(name: str, *actions: str) -> list[dict]:
    return [{"type": "repository", "name": name, "actions": list(actions)}]


def test_token_challenge(token_registry, issuer):
    with token_registry.client() as c:
        r = c.get("/v2/")
        assert r.status_code == 401
        assert r.headers["WWW-Authenticate"] == f'Bearer realm="{issuer.realm}",service="{issuer.service}"'
        r = c.get("/v2/tok/app/manifests/latest")
        assert r.status_code == 401
        assert r.headers["WWW-Authenticate"] == (f'Bearer realm="{issuer.realm}",service="{issuer.service}",'
                                                 'scope="repository:tok/app:pull"')
        r = c.post("/v2/tok/app/blobs/uploads/")
        assert 'scope="repository:tok/app:pull,push"' in r.headers["WWW-Authenticate"]
        r = c.delete("/v2/tok/app/manifests/latest")
        assert 'scope="repository:tok/app:delete"' in r.headers["WWW-Authenticate"]


def test_token_grants_per_repository_and_action(token_registry, issuer):
    with token_registry.client() as c:
        pp = bearer(issuer.token(access("tok/a", "pull", "push")))
        raw, digest = make_manifest(httpx.Client(base_url=token_registry.url, headers=pp), "tok/a", "t")
        assert push_manifest(httpx.Client(base_url=token_registry.url, headers=pp), "tok/a", "v1",
                             raw).status_code == 201
        assert c.get("/v2/tok/a/manifests/v1", headers=pp).status_code == 200
        # a token for repository A does not open repository B
        r = c.get("/v2/tok/b/manifests/v1", headers=pp)
        assert r.status_code == 401
        assert 'error="insufficient_scope"' in r.headers["WWW-Authenticate"]
        assert 'scope="repository:tok/b:pull"' in r.headers["WWW-Authenticate"]
        # pull-only may not push or delete
        pull = bearer(issuer.token(access("tok/a", "pull")))
        assert c.get("/v2/tok/a/manifests/v1", headers=pull).status_code == 200
        assert c.post("/v2/tok/a/blobs/uploads/", headers=pull).status_code == 401
        assert c.delete(f"/v2/tok/a/manifests/{digest}", headers=pp).status_code == 401
        dl = bearer(issuer.token(access("tok/a", "delete")))
        assert c.delete("/v2/tok/a/manifests/v1", headers=dl).status_code == 202
        # the base endpoint accepts any valid token
        assert c.get("/v2/", headers=pull).status_code == 200


@pytest.mark.parametrize("bad", ["expired", "tampered", "alg-none", "wrong-audience", "wrong-issuer",
                                 "other-key", "garbage", "hs256-with-public-key"])
def test_token_rejected(token_registry, issuer, bad):
    acc = access("tok/c", "pull", "push")
    if bad == "expired":
        token = issuer.token(acc, expires_in=-120)
    elif bad == "tampered":
        h, p, s = issuer.token(acc).split(".")
        claims = json.loads(base64.urlsafe_b64decode(p + "=="))
        claims["access"] = access("tok/other", "pull", "push")
        p2 = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
        token = f"{h}.{p2}.{s}"
    elif bad == "alg-none":
        token = issuer.token(acc, algorithm="none")
    elif bad == "wrong-audience":
        token = issuer.token(acc, audience="another-service")
    elif bad == "wrong-issuer":
        token = issuer.token(acc, issuer="someone-else")
    elif bad == "other-key":
        token = issuer.token(acc, key=make_signing_cert()[0])
    elif bad == "hs256-with-public-key":  # the classic key-confusion attack
        h = base64.urlsafe_b64encode(json.dumps({"alg": "HS256", "typ": "JWT", "kid": issuer.kid}).encode())
        good = issuer.token(acc).split(".")[1]
        signing_input = h.decode().rstrip("=") + "." + good
        sig = hmac.new(issuer.cert_pem, signing_input.encode(), hashlib.sha256).digest()
        token = signing_input + "." + base64.urlsafe_b64encode(sig).decode().rstrip("=")
    else:
        token = "not.a.jwt"
    with token_registry.client() as c:
        r = c.get("/v2/tok/c/tags/list", headers=bearer(token))
        assert r.status_code == 401, bad
        assert r.json()["errors"][0]["code"] == "UNAUTHORIZED"
        challenge = r.headers["WWW-Authenticate"]
        assert challenge.startswith(f'Bearer realm="{issuer.realm}",service="{issuer.service}"')
        assert 'scope="repository:tok/c:pull"' in challenge
        assert 'error="invalid_token"' in challenge


def test_token_auth_with_skopeo(token_registry, issuer, tmp_path):
    layout = Layout(tmp_path / "oci")
    layout.write_image("img")
    subprocess.run(["skopeo", "copy", "-q", "--dest-tls-verify=false", "--dest-creds", "alice:pw",
                    f"oci:{layout.root}:img", f"docker://{token_registry.addr}/tok/skopeo:v1"],
                   check=True, capture_output=True, timeout=60)
    assert any(r["account"] == "alice" and "repository:tok/skopeo:pull,push" in r["scopes"]
               for r in issuer.requests)
    out = tmp_path / "out"
    subprocess.run(["skopeo", "copy", "-q", "--src-tls-verify=false", "--src-creds", "alice:pw",
                    f"docker://{token_registry.addr}/tok/skopeo:v1", f"oci:{out}:img"],
                   check=True, capture_output=True, timeout=60)


def test_token_anonymous_pull(serve, issuer):
    rp = serve("--token-realm", issuer.realm, "--token-service", issuer.service, "--token-issuer",
               issuer.issuer, "--token-cert", str(issuer.cert_path), "--anonymous-pull")
    pp = bearer(issuer.token(access("tok/anon", "pull", "push")))
    with rp.client(headers=pp) as c:
        d = push_blob(c, "tok/anon", b"public")
    with rp.client() as c:
        assert c.get(f"/v2/tok/anon/blobs/{d}").content == b"public"
        assert c.post("/v2/tok/anon/blobs/uploads/").status_code == 401


def test_token_mount_needs_pull_on_the_source(token_registry, issuer):
    src = bearer(issuer.token(access("tok/src", "pull", "push")))
    with token_registry.client(headers=src) as c:
        d = push_blob(c, "tok/src", b"secret layer")
    # push on the target only: no mount, a plain upload session instead (nothing leaks)
    only_dst = bearer(issuer.token(access("tok/dst", "pull", "push")))
    with token_registry.client(headers=only_dst) as c:
        r = c.post("/v2/tok/dst/blobs/uploads/", params={"mount": d, "from": "tok/src"})
        assert r.status_code == 202
        assert c.head(f"/v2/tok/dst/blobs/{d}").status_code == 404
    both = bearer(issuer.token(access("tok/dst", "pull", "push") + access("tok/src", "pull")))
    with token_registry.client(headers=both) as c:
        r = c.post("/v2/tok/dst/blobs/uploads/", params={"mount": d, "from": "tok/src"})
        assert r.status_code == 201
        assert c.get(f"/v2/tok/dst/blobs/{d}").content == b"secret layer"


@pytest.mark.slow
def test_token_issuer_fixture_works_with_docker_registry(issuer, tmp_path):
    """The same issuer drives distribution's token auth (auth.token.rootcertbundle), for client tests."""
    import shutil
    import time

    from helpers.registry_server import free_port

    if shutil.which("docker-registry") is None:
        pytest.skip("docker-registry is not installed")
    port = free_port()
    cfg = tmp_path / "distribution.yml"
    cfg.write_text(f"""version: 0.1
log: {{level: warn, accesslog: {{disabled: true}}}}
storage: {{filesystem: {{rootdirectory: {tmp_path / 'dist'}}}}}
http: {{addr: 127.0.0.1:{port}}}
auth:
  token: {{realm: "{issuer.realm}", service: {issuer.service}, issuer: {issuer.issuer},
          rootcertbundle: {issuer.cert_path}}}
""")
    proc = subprocess.Popen(["docker-registry", "serve", str(cfg)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/v2/").status_code == 401:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        layout = Layout(tmp_path / "oci")
        layout.write_image("img")
        subprocess.run(["skopeo", "copy", "-q", "--dest-tls-verify=false", "--dest-creds", "alice:pw",
                        f"oci:{layout.root}:img", f"docker://127.0.0.1:{port}/tok/dist:v1"],
                       check=True, capture_output=True, timeout=60)
        oci = {"Accept": "application/vnd.oci.image.manifest.v1+json"}
        pull = {**oci, **bearer(issuer.token(access("tok/dist", "pull")))}
        assert httpx.get(f"http://127.0.0.1:{port}/v2/tok/dist/manifests/v1", headers=pull).status_code == 200
        other = {**oci, **bearer(issuer.token(access("tok/other", "pull")))}
        assert httpx.get(f"http://127.0.0.1:{port}/v2/tok/dist/manifests/v1", headers=other).status_code == 401
    finally:
        proc.terminate()
        proc.wait(10)


def test_tls_with_workers(serve, certs):
    rp = serve("--tls-cert", str(certs.server_cert), "--tls-key", str(certs.server_key), "--workers", "2",
               scheme="https")
    ctx = ssl.create_default_context(cafile=str(certs.ca_cert))
    for _ in range(6):  # new connections land on either worker
        assert httpx.get(rp.url + "/v2/", verify=ctx).status_code == 200
