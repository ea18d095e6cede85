"""`pallet image ref explain`, through the installed console script."""

from __future__ import annotations

import json

import pytest

DIGEST = "sha256:" + "e6693c20186f837fc393390135d8a598a96a833917917789d63766cab6c59582"
KEYS = ["input", "domain", "path", "tag", "digest", "normalized", "familiar", "api_url", "http_fallback",
        "resolved_by", "candidates"]
DOCKER_RULE = "no unqualified-search registries: docker's default (docker.io/library/)"


@pytest.fixture
def pallet(pallet, tmp_path):  # noqa: F811 -- the suite's runner, with an empty registries.conf
    """No search registries and no aliases (whatever the host's /etc/containers says): docker's rules."""
    conf = tmp_path / "registries.conf"
    conf.write_text("")

    def run(*args, env=None, **kw):
        return pallet(*args, env={"CONTAINERS_REGISTRIES_CONF": str(conf), **(env or {})}, **kw)

    return run


def test_explain_text_is_aligned(pallet) -> None:
    cp = pallet("image", "ref", "explain", "busybox", check=True)
    lines = cp.stdout.splitlines()
    assert [line.split(":", 1)[0] for line in lines] == [
        "Input", "Domain", "Path", "Tag", "Digest", "Normalized name", "Familiar name", "API URL", "HTTP fallback",
        "Resolved by", "Candidates"]
    starts = {len(line) - len(line.split(":", 1)[1].lstrip()) for line in lines}
    assert len(starts) == 1, cp.stdout  # every value starts in the same column
    values = {line.split(":", 1)[0]: line.split(":", 1)[1].strip() for line in lines}
    assert values == {
        "Input": "busybox",
        "Domain": "docker.io",
        "Path": "library/busybox",
        "Tag": "latest (default)",
        "Digest": "<none>",
        "Normalized name": "docker.io/library/busybox",
        "Familiar name": "busybox",
        "API URL": "https://registry-1.docker.io/v2/library/busybox/manifests/latest",
        "HTTP fallback": "<none>",
        "Resolved by": DOCKER_RULE,
        "Candidates": "<none>",
    }
    assert cp.stderr == ""


@pytest.mark.parametrize(("ref", "want"), [
    ("busybox", {"domain": "docker.io", "path": "library/busybox", "tag": "latest", "digest": None,
                 "normalized": "docker.io/library/busybox", "familiar": "busybox",
                 "api_url": "https://registry-1.docker.io/v2/library/busybox/manifests/latest",
                 "http_fallback": None}),
    ("index.docker.io/foo/bar", {"domain": "docker.io", "path": "foo/bar", "tag": "latest", "digest": None,
                                 "normalized": "docker.io/foo/bar", "familiar": "foo/bar",
                                 "api_url": "https://registry-1.docker.io/v2/foo/bar/manifests/latest",
                                 "http_fallback": None}),
    # a registry on this host: https first, as docker and containers/image try it, then plain http
    ("localhost:5000/x:v1", {"domain": "localhost:5000", "path": "x", "tag": "v1", "digest": None,
                             "normalized": "localhost:5000/x", "familiar": "localhost:5000/x",
                             "api_url": "https://localhost:5000/v2/x/manifests/v1",
                             "http_fallback": "http://localhost:5000/v2/x/manifests/v1"}),
    ("127.0.0.1:5000/x", {"domain": "127.0.0.1:5000", "path": "x", "tag": "latest", "digest": None,
                          "normalized": "127.0.0.1:5000/x", "familiar": "127.0.0.1:5000/x",
                          "api_url": "https://127.0.0.1:5000/v2/x/manifests/latest",
                          "http_fallback": "http://127.0.0.1:5000/v2/x/manifests/latest"}),
    ("[::1]:5000/x", {"domain": "[::1]:5000", "path": "x", "tag": "latest", "digest": None,
                      "normalized": "[::1]:5000/x", "familiar": "[::1]:5000/x",
                      "api_url": "https://[::1]:5000/v2/x/manifests/latest",
                      "http_fallback": "http://[::1]:5000/v2/x/manifests/latest"}),
    ("busybox@" + DIGEST, {"domain": "docker.io", "path": "library/busybox", "tag": None, "digest": DIGEST,
                           "normalized": "docker.io/library/busybox", "familiar": "busybox",
                           "api_url": "https://registry-1.docker.io/v2/library/busybox/manifests/" + DIGEST,
                           "http_fallback": None}),
    ("gcr.io/a/b:1.0@" + DIGEST, {"domain": "gcr.io", "path": "a/b", "tag": "1.0", "digest": DIGEST,
                                  "normalized": "gcr.io/a/b", "familiar": "gcr.io/a/b",
                                  "api_url": "https://gcr.io/v2/a/b/manifests/" + DIGEST,
                                  "http_fallback": None}),
])
def test_explain_json(pallet, ref: str, want: dict) -> None:
    cp = pallet("image", "ref", "explain", "--format", "json", ref, check=True)
    obj = json.loads(cp.stdout)
    assert list(obj) == KEYS
    short = "/" not in ref or not any(c in ref.split("/")[0] for c in ".:") and not ref.startswith("localhost/")
    assert obj == {"input": ref, **want, "candidates": None,
                   "resolved_by": DOCKER_RULE if short else "fully qualified: used as given"}


@pytest.mark.parametrize("ref", ["localhost:5000/foo", "127.0.0.1:5000/x"])
def test_explain_of_a_local_registry_shows_https_then_the_http_fallback(pallet, ref: str) -> None:
    cp = pallet("image", "ref", "explain", ref, check=True)
    values = {line.split(":", 1)[0]: line.split(":", 1)[1].strip() for line in cp.stdout.splitlines()}
    host, _, path = ref.partition("/")
    assert values["API URL"] == f"https://{host}/v2/{path}/manifests/latest"
    assert values["HTTP fallback"] == f"http://{host}/v2/{path}/manifests/latest (if https fails: registry on this host)"


def test_explain_reads_insecure_registries_from_the_settings_file(pallet, tmp_path) -> None:
    """pallet.toml's `insecure` decides as it does for a pull: true allows the http fallback
    anywhere, false takes it away from a registry on this host."""
    cfg = tmp_path / "pallet.toml"
    cfg.write_text('[registries."reg.example:5000"]\ninsecure = true\n'
                   '[registries."localhost:5000"]\ninsecure = false\n')
    cp = pallet("--config", str(cfg), "image", "ref", "explain", "reg.example:5000/a", check=True)
    assert cp.stdout.splitlines()[-4:-2] == [
        "API URL:           https://reg.example:5000/v2/a/manifests/latest",
        "HTTP fallback:     http://reg.example:5000/v2/a/manifests/latest (if https fails: marked insecure in "
        "pallet.toml or registries.conf)"]
    cp = pallet("--config", str(cfg), "image", "ref", "explain", "--format", "json", "localhost:5000/a", check=True)
    obj = json.loads(cp.stdout)
    assert (obj["api_url"], obj["http_fallback"]) == ("https://localhost:5000/v2/a/manifests/latest", None)


def test_explain_tag_and_digest_text_says_digest_wins(pallet) -> None:
    cp = pallet("image", "ref", "explain", "busybox:1.36@" + DIGEST, check=True)
    assert "Tag:" in cp.stdout and "1.36" in cp.stdout
    assert "/manifests/" + DIGEST in cp.stdout
    assert "uses the digest" in cp.stdout


@pytest.mark.parametrize(("ref", "reason"), [
    ("Busybox", "repository name (library/Busybox) must be lowercase"),
    ("a b", "invalid reference format"),
    ("busybox:", "invalid reference format"),
    ("x@sha256:abc", "invalid reference format"),
    ("a" * 256, "repository name must not be more than 255 characters"),
    ("e6693c20186f837fc393390135d8a598a96a833917917789d63766cab6c59582",
     "cannot specify 64-byte hexadecimal strings"),
    ("multi\nline", "invalid reference format"),
])
@pytest.mark.parametrize("fmt", ["text", "json"])
def test_explain_invalid_exits_125_with_one_line(pallet, ref: str, reason: str, fmt: str) -> None:
    cp = pallet("image", "ref", "explain", "--format", fmt, ref)
    assert cp.returncode == 125
    assert cp.stdout == ""
    assert cp.stderr.endswith("\n") and cp.stderr.count("\n") == 1, cp.stderr
    assert cp.stderr.startswith("Error: ")
    assert reason in cp.stderr
    assert "is not a valid repository/tag" in cp.stderr


def test_ref_help_lists_explain(pallet) -> None:
    cp = pallet("image", "ref", "--help", check=True)
    assert "explain" in cp.stdout


def test_explain_says_which_short_name_rule_resolved(pallet, tmp_path) -> None:
    conf = tmp_path / "short.conf"
    conf.write_text('unqualified-search-registries = ["quay.io", "docker.io"]\n'
                    '[aliases]\n"rhel7" = "registry.access.redhat.com/rhel7"\n')
    env = {"CONTAINERS_REGISTRIES_CONF": str(conf)}
    obj = json.loads(pallet("image", "ref", "explain", "--format", "json", "rhel7", env=env, check=True).stdout)
    assert (obj["domain"], obj["path"], obj["tag"]) == ("registry.access.redhat.com", "rhel7", "latest")
    assert obj["resolved_by"] == f"alias 'rhel7' = 'registry.access.redhat.com/rhel7' ({conf})"
    assert obj["api_url"] == "https://registry.access.redhat.com/v2/rhel7/manifests/latest"
    text = pallet("image", "ref", "explain", "tool", env=env, check=True).stdout
    assert "Candidates:        quay.io/tool:latest, docker.io/library/tool:latest (enforcing" in text
    assert "Resolved by:       unqualified-search-registries quay.io, docker.io (short-name-mode enforcing)" in text
