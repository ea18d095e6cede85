"""Real clients against `pallet registry serve` on 127.0.0.1: skopeo, podman, docker, oras."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import httpx
import pytest

from helpers.oci_layout import Layout

pytestmark = [pytest.mark.network, pytest.mark.slow]

def run(*cmd: str, env: dict | None = None, timeout: float = 120) -> str:
    cp = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout,
                        env={**os.environ, **(env or {})})
    assert cp.returncode == 0, f"{' '.join(cmd)} exited {cp.returncode}:\n{cp.stdout}\n{cp.stderr}"
    return cp.stdout


def need(tool: str) -> None:
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed")


@pytest.fixture(scope="module")
def layout(tmp_path_factory) -> Layout:
    lay = Layout(tmp_path_factory.mktemp("layout") / "oci")
    lay.write_image("single", layers=3, size=300_000)
    lay.write_index("multi", arches=("amd64", "arm64", "ppc64le"))
    return lay


def verify_layout_image(root: Path, tag: str) -> None:
    """Every blob an image in an OCI layout references exists and hashes to its digest."""
    idx = json.loads((root / "index.json").read_text())
    [desc] = [m for m in idx["manifests"] if m["annotations"]["org.opencontainers.image.ref.name"] == tag]
    todo = [desc]
    while todo:
        d = todo.pop()
        data = (root / "blobs" / "sha256" / d["digest"][7:]).read_bytes()
        assert "sha256:" + hashlib.sha256(data).hexdigest() == d["digest"]
        assert len(data) == d["size"]
        if d["mediaType"].endswith(("manifest.v1+json", "manifest.v2+json")):
            m = json.loads(data)
            todo += [m["config"], *m["layers"]]
        elif d["mediaType"].endswith(("index.v1+json", "list.v2+json")):
            todo += json.loads(data)["manifests"]


def test_skopeo_oci_single(registry, layout, tmp_path):
    need("skopeo")
    run("skopeo", "copy", "-q", "--dest-tls-verify=false", f"oci:{layout.root}:single",
        f"docker://{registry.addr}/skopeo/single:v1")
    raw = httpx.get(f"{registry.url}/v2/skopeo/single/manifests/v1").content
    # OCI in, OCI stored: the exact bytes of the layout's manifest
    idx = json.loads((layout.root / "index.json").read_text())
    want = [m for m in idx["manifests"] if m["annotations"]["org.opencontainers.image.ref.name"] == "single"][0]
    assert "sha256:" + hashlib.sha256(raw).hexdigest() == want["digest"]
    out = tmp_path / "out"
    run("skopeo", "copy", "-q", "--src-tls-verify=false", f"docker://{registry.addr}/skopeo/single:v1",
        f"oci:{out}:copy")
    verify_layout_image(out, "copy")
    info = json.loads(run("skopeo", "inspect", "--tls-verify=false", f"docker://{registry.addr}/skopeo/single:v1"))
    assert info["Digest"] == want["digest"] and len(info["Layers"]) == 3
    tags = json.loads(run("skopeo", "list-tags", "--tls-verify=false", f"docker://{registry.addr}/skopeo/single"))
    assert tags["Tags"] == ["v1"]


def test_skopeo_v2s2(registry, layout, tmp_path):
    need("skopeo")
    run("skopeo", "copy", "-q", "--format", "v2s2", "--dest-tls-verify=false", f"oci:{layout.root}:single",
        f"docker://{registry.addr}/skopeo/v2s2:v1")
    r = httpx.get(f"{registry.url}/v2/skopeo/v2s2/manifests/v1",
                  headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"})
    assert r.headers["Content-Type"] == "application/vnd.docker.distribution.manifest.v2+json"
    assert r.headers["Docker-Content-Digest"] == "sha256:" + hashlib.sha256(r.content).hexdigest()
    out = tmp_path / "out"
    run("skopeo", "copy", "-q", "--src-tls-verify=false", f"docker://{registry.addr}/skopeo/v2s2:v1",
        f"oci:{out}:copy")
    verify_layout_image(out, "copy")
    # and registry to registry
    run("skopeo", "copy", "-q", "--src-tls-verify=false", "--dest-tls-verify=false",
        f"docker://{registry.addr}/skopeo/v2s2:v1", f"docker://{registry.addr}/skopeo/v2s2-copy:v1")


def test_skopeo_multi_platform(registry, layout, tmp_path):
    need("skopeo")
    run("skopeo", "copy", "-q", "--all", "--dest-tls-verify=false", f"oci:{layout.root}:multi",
        f"docker://{registry.addr}/skopeo/multi:v1")
    r = httpx.get(f"{registry.url}/v2/skopeo/multi/manifests/v1")
    assert r.headers["Content-Type"] == "application/vnd.oci.image.index.v1+json"
    assert len(r.json()["manifests"]) == 3
    out = tmp_path / "out"
    run("skopeo", "copy", "-q", "--all", "--src-tls-verify=false", f"docker://{registry.addr}/skopeo/multi:v1",
        f"oci:{out}:copy")
    verify_layout_image(out, "copy")
    # one platform picked from the index
    run("skopeo", "copy", "-q", "--override-arch", "arm64", "--src-tls-verify=false",
        f"docker://{registry.addr}/skopeo/multi:v1", f"oci:{tmp_path / 'arm'}:arm")
    verify_layout_image(tmp_path / "arm", "arm")
    # multi-platform as a Docker manifest list
    run("skopeo", "copy", "-q", "--all", "--format", "v2s2", "--dest-tls-verify=false",
        f"oci:{layout.root}:multi", f"docker://{registry.addr}/skopeo/multi-v2s2:v1")
    r = httpx.get(f"{registry.url}/v2/skopeo/multi-v2s2/manifests/v1")
    assert r.headers["Content-Type"] == "application/vnd.docker.distribution.manifest.list.v2+json"


def test_podman_push_pull(registry, layout, tmp_path):
    need("podman")
    need("skopeo")
    run("skopeo", "copy", "-q", "--dest-tls-verify=false", f"oci:{layout.root}:single",
        f"docker://{registry.addr}/podman/src:v1")
    runroot = tempfile.mkdtemp(prefix="prr-", dir="/tmp")  # podman wants a runroot under 50 characters
    podman = ["podman", "--root", str(tmp_path / "root"), "--runroot", runroot,
              "--storage-driver", "vfs", "--cgroup-manager", "cgroupfs", "--events-backend", "none"]
    try:
        _podman_roundtrip(podman, registry)
    finally:
        subprocess.run([*podman, "rmi", "-a", "-f"], capture_output=True, timeout=60)
        shutil.rmtree(runroot, ignore_errors=True)


def _podman_roundtrip(podman: list[str], registry) -> None:
    run(*podman, "pull", "-q", "--tls-verify=false", f"{registry.addr}/podman/src:v1")
    run(*podman, "tag", f"{registry.addr}/podman/src:v1", f"{registry.addr}/podman/pushed:v2")
    run(*podman, "push", "-q", "--tls-verify=false", f"{registry.addr}/podman/pushed:v2")
    run(*podman, "rmi", "-a", "-f")
    run(*podman, "pull", "-q", "--tls-verify=false", f"{registry.addr}/podman/pushed:v2")
    images = run(*podman, "images", "--format", "{{.Repository}}:{{.Tag}}")
    assert f"{registry.addr}/podman/pushed:v2" in images


def test_docker_manifest_commands(registry, layout, tmp_path):
    need("docker")
    need("skopeo")
    for arch in ("amd64", "arm64"):
        lay = Layout(tmp_path / arch)
        lay.image(f"docker-{arch}", arch=arch)
        lay.write_image("img", seed=f"docker-{arch}", arch=arch)
        run("skopeo", "copy", "-q", "--format", "v2s2", "--dest-tls-verify=false", f"oci:{lay.root}:img",
            f"docker://{registry.addr}/docker/img:{arch}")
    env = {"DOCKER_CONFIG": str(tmp_path / "docker-config")}
    out = json.loads(run("docker", "manifest", "inspect", "--insecure", f"{registry.addr}/docker/img:amd64",
                         env=env))
    assert out["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    run("docker", "manifest", "create", "--insecure", f"{registry.addr}/docker/list:v1",
        f"{registry.addr}/docker/img:amd64", f"{registry.addr}/docker/img:arm64", env=env)
    digest = run("docker", "manifest", "push", "--insecure", f"{registry.addr}/docker/list:v1", env=env).split()[-1]
    r = httpx.get(f"{registry.url}/v2/docker/list/manifests/v1")
    assert r.headers["Docker-Content-Digest"] == digest
    assert r.headers["Content-Type"] == "application/vnd.docker.distribution.manifest.list.v2+json"
    listed = json.loads(run("docker", "manifest", "inspect", "--insecure", f"{registry.addr}/docker/list:v1",
                            env=env))
    assert sorted(m["platform"]["architecture"] for m in listed["manifests"]) == ["amd64", "arm64"]


def test_oras_artifact_with_subject(registry, layout, tmp_path):
    oras_client = pytest.importorskip("oras.client")
    import oras.oci

    need("skopeo")
    run("skopeo", "copy", "-q", "--dest-tls-verify=false", f"oci:{layout.root}:single",
        f"docker://{registry.addr}/oras/app:v1")
    r = httpx.get(f"{registry.url}/v2/oras/app/manifests/v1")
    subject = oras.oci.Subject(r.headers["Content-Type"], r.headers["Docker-Content-Digest"], len(r.content))
    sbom = tmp_path / "sbom.json"
    sbom.write_text('{"spdxVersion": "SPDX-2.3"}')
    client = oras_client.OrasClient(hostname=registry.addr, insecure=True)
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        resp = client.push(target=f"{registry.addr}/oras/app:sbom", files=["sbom.json"], subject=subject,
                           disable_path_validation=True)
    finally:
        os.chdir(cwd)
    assert resp.status_code == 201
    assert resp.headers["OCI-Subject"] == subject.digest
    refs = httpx.get(f"{registry.url}/v2/oras/app/referrers/{subject.digest}").json()
    assert [m["digest"] for m in refs["manifests"]] == [resp.headers["Docker-Content-Digest"]]
    pulled = client.pull(target=f"{registry.addr}/oras/app:sbom", outdir=str(tmp_path / "pulled"))
    assert Path(pulled[0]).read_text() == sbom.read_text()


def test_pallet_push_pull(registry, serve, layout, pallet, tmp_path):
    need("skopeo")
    run("skopeo", "copy", "-q", "--dest-tls-verify=false", f"oci:{layout.root}:single",
        f"docker://{registry.addr}/pallet/src:v1")
    pallet("pull", f"{registry.addr}/pallet/src:v1", check=True)
    # to a second, empty registry: every blob is uploaded
    other = serve()
    pallet("tag", f"{registry.addr}/pallet/src:v1", f"{other.addr}/pallet/copy:v2", check=True)
    pallet("push", f"{other.addr}/pallet/copy:v2", check=True)
    run("skopeo", "copy", "-q", "--src-tls-verify=false", f"docker://{other.addr}/pallet/copy:v2",
        f"oci:{tmp_path / 'out'}:copy")
    verify_layout_image(tmp_path / "out", "copy")
    # within the same registry: blobs are mounted
    pallet("tag", f"{registry.addr}/pallet/src:v1", f"{registry.addr}/pallet/mounted:v3", check=True)
    out = pallet("push", f"{registry.addr}/pallet/mounted:v3", check=True).stdout
    assert "mounted" in out.lower()
    with httpx.Client(base_url=registry.url) as c:
        assert c.get("/v2/pallet/mounted/manifests/v3").status_code == 200
