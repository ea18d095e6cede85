"""`pallet image ref explain`, through the installed console script."""

from __future__ import annotations

import json

import pytest

DIGEST = "sha256:" + "e6693c20186f837fc393390135d8a598a96a833917917789d63766cab6c59582"
KEYS = ["input", "domain", "path", "tag", "digest", "normalized", "familiar", "api_url"]


def test_explain_text_is_aligned(pallet) -> None:
    cp = pallet("image", "ref", "explain", "busybox", check=True)
    lines = cp.stdout.splitlines()
    assert [line.split(":", 1)[0] for line in lines] == [
        "Input", "Domain", "Path", "Tag", "Digest", "Normalized name", "Familiar name", "API URL"]
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
    }
    assert cp.stderr == ""


@pytest.mark.parametrize(("ref", "want"), [
    ("busybox", {"domain": "docker.io", "path": "library/busybox", "tag": "latest", "digest": None,
                 "normalized": "docker.io/library/busybox", "familiar": "busybox",
                 "api_url": "https://registry-1.docker.io/v2/library/busybox/manifests/latest"}),
    ("index.docker.io/foo/bar", {"domain": "docker.io", "path": "foo/bar", "tag": "latest", "digest": None,
                                 "normalized": "docker.io/foo/bar", "familiar": "foo/bar",
                                 "api_url": "https://registry-1.docker.io/v2/foo/bar/manifests/latest"}),
    ("localhost:5000/x:v1", {"domain": "localhost:5000", "path": "x", "tag": "v1", "digest": None,
                             "normalized": "localhost:5000/x", "familiar": "localhost:5000/x",
                             "api_url": "http://localhost:5000/v2/x/manifests/v1"}),
    ("[::1]:5000/x", {"domain": "[::1]:5000", "path": "x", "tag": "latest", "digest": None,
                      "normalized": "[::1]:5000/x", "familiar": "[::1]:5000/x",
                      "api_url": "http://[::1]:5000/v2/x/manifests/latest"}),
    ("busybox@" + DIGEST, {"domain": "docker.io", "path": "library/busybox", "tag": None, "digest": DIGEST,
                           "normalized": "docker.io/library/busybox", "familiar": "busybox",
                           "api_url": "https://registry-1.docker.io/v2/library/busybox/manifests/" + DIGEST}),
    ("gcr.io/a/b:1.0@" + DIGEST, {"domain": "gcr.io", "path": "a/b", "tag": "1.0", "digest": DIGEST,
                                  "normalized": "gcr.io/a/b", "familiar": "gcr.io/a/b",
                                  "api_url": "https://gcr.io/v2/a/b/manifests/" + DIGEST}),
])
def test_explain_json(pallet, ref: str, want: dict) -> None:
    cp = pallet("image", "ref", "explain", "--format", "json", ref, check=True)
    obj = json.loads(cp.stdout)
    assert list(obj) == KEYS
    assert obj == {"input": ref, **want}


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
