"""Interop with the real tools: skopeo and umoci read what pallet writes; pallet loads what they make.

Every manifest, config, index and oci-layout pallet writes is validated against the
OCI image-spec JSON schemas (../shared/vendor-data/oci-image-spec-schema); without them (a plain
clone) against the shape the project checks itself, and the schema-only test skips.
"""

from __future__ import annotations

import json
import platform
import shutil
import subprocess
from pathlib import Path

import pytest

from cli.imagetools import sha, untar
from helpers.oci_schema import schemas_available, validate

pytestmark = pytest.mark.skipif(not (shutil.which("skopeo") and shutil.which("umoci")),
                                reason="skopeo and umoci are installed by `make install`")


def run(*args: str) -> str:
    cp = subprocess.run(list(args), capture_output=True, text=True, timeout=120)
    assert cp.returncode == 0, f"{args} failed:\n{cp.stdout}\n{cp.stderr}"
    return cp.stdout


def inspect(pallet, ref: str) -> dict:
    return json.loads(pallet("image", "inspect", ref, check=True).stdout)[0]


def validate_layout(root: Path) -> None:
    """Schema-check a layout's oci-layout, index.json and every manifest/config it reaches."""
    validate("layout", (root / "oci-layout").read_bytes())
    index = json.loads((root / "index.json").read_bytes())
    validate("index", index)
    for desc in index["manifests"]:
        raw = (root / "blobs" / "sha256" / desc["digest"][7:]).read_bytes()
        assert sha(raw) == desc["digest"] and len(raw) == desc["size"]
        manifest = json.loads(raw)
        validate("manifest", manifest)
        validate("config", (root / "blobs" / "sha256" / manifest["config"]["digest"][7:]).read_bytes())


def test_pallet_oci_archive_is_read_by_skopeo_and_unpacked_by_umoci(pallet, tmp_path, tiny):
    digest = inspect(pallet, tiny)["Descriptor"]["digest"]
    archive = tmp_path / "tiny-oci.tar"
    pallet("save", "--format", "oci-archive", "-o", str(archive), "localhost/tiny:1", check=True)
    info = json.loads(run("skopeo", "inspect", f"oci-archive:{archive}"))
    assert info["Digest"] == digest and info["Os"] == "linux"
    raw = run("skopeo", "inspect", "--raw", f"oci-archive:{archive}").encode()
    assert sha(raw) == digest
    validate("manifest", raw)
    config = json.loads(run("skopeo", "inspect", "--config", "--raw", f"oci-archive:{archive}"))
    validate("config", config)
    assert config["config"]["Cmd"] == ["/bin/tool"]
    # the archive itself, unpacked, is a valid layout that umoci can unpack
    layout = tmp_path / "from-archive"
    layout.mkdir()
    run("tar", "-C", str(layout), "-xf", str(archive))
    validate_layout(layout)
    bundle = tmp_path / "bundle"
    run("umoci", "unpack", "--image", f"{layout}:localhost/tiny:1", str(bundle))
    assert (bundle / "rootfs" / "etc" / "hello").read_text() == "hello\n"
    assert json.loads((bundle / "config.json").read_text())["process"]["args"] == ["/bin/tool"]


def test_store_and_saved_layout_match_the_oci_schemas(pallet, pallet_root, tmp_path, tiny, vendor_data):
    layout = tmp_path / "layout"
    pallet("image", "export-layout", str(layout), "localhost/tiny:1", check=True)
    assert schemas_available()
    validate_layout(layout)
    validate_layout(pallet_root)


def test_pallet_layout_is_unpacked_by_umoci_and_copied_by_skopeo(pallet, pallet_root, tmp_path, tiny):
    layout = tmp_path / "layout"
    pallet("image", "export-layout", str(layout), "localhost/tiny:1", check=True)
    validate_layout(layout)
    bundle = tmp_path / "bundle"
    run("umoci", "unpack", "--image", f"{layout}:localhost/tiny:1", str(bundle))
    assert (bundle / "rootfs" / "bin" / "tool").read_text().startswith("#!/bin/sh")
    # the store itself is an OCI layout too
    validate_layout(pallet_root)
    copied = tmp_path / "copied"
    run("skopeo", "copy", f"oci:{layout}:localhost/tiny:1", f"oci:{copied}:again")
    assert json.loads((copied / "index.json").read_text())["manifests"][0]["digest"] == \
        inspect(pallet, tiny)["Descriptor"]["digest"]


@pytest.fixture
def umoci_layout(tmp_path: Path) -> tuple[Path, str]:
    """An image built by umoci (new + repack + config), tagged `t1`; returns (layout, manifest digest)."""
    layout = tmp_path / "umoci-layout"
    run("umoci", "init", "--layout", str(layout))
    run("umoci", "new", "--image", f"{layout}:t1")
    bundle = tmp_path / "umoci-bundle"
    run("umoci", "unpack", "--image", f"{layout}:t1", str(bundle))
    (bundle / "rootfs" / "greeting").write_text("made by umoci\n")
    (bundle / "rootfs" / "etc").mkdir()
    (bundle / "rootfs" / "etc" / "motd").write_text("hi\n")
    run("umoci", "repack", "--image", f"{layout}:t1", str(bundle))
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    run("umoci", "config", "--image", f"{layout}:t1", "--config.cmd", "/greeting", "--architecture", arch,
        "--os", "linux")
    index = json.loads((layout / "index.json").read_text())
    [desc] = [m for m in index["manifests"] if m["annotations"]["org.opencontainers.image.ref.name"] == "t1"]
    return layout, desc["digest"]


@pytest.mark.slow
def test_umoci_image_loads_with_the_same_manifest_digest(pallet, tmp_path, umoci_layout):
    layout, digest = umoci_layout
    cp = pallet("image", "import-layout", str(layout), "t1", check=True)
    assert cp.stdout == "Loaded image: localhost/t1:latest\n"       # podman's name for a short ref name
    doc = inspect(pallet, "localhost/t1")
    assert doc["Descriptor"]["digest"] == digest
    assert doc["RepoDigests"] == [f"localhost/t1@{digest}"]
    assert doc["Config"]["Cmd"] == ["/greeting"]
    assert len(doc["RootFS"]["Layers"]) == 1
    # as an oci-archive made by skopeo, under a full name
    archive = tmp_path / "umoci.tar"
    run("skopeo", "copy", f"oci:{layout}:t1", f"oci-archive:{archive}:example.com/team/app:1")
    cp = pallet("load", "-i", str(archive), check=True)
    assert cp.stdout == "Loaded image: example.com/team/app:1\n"
    doc = inspect(pallet, "example.com/team/app:1")
    assert doc["Descriptor"]["digest"] == json.loads(run("skopeo", "inspect", f"oci-archive:{archive}"))["Digest"]
    assert f"example.com/team/app@{doc['Descriptor']['digest']}" in doc["RepoDigests"]


@pytest.mark.slow
def test_skopeo_docker_archive_loads(pallet, tmp_path, tiny):
    layout = tmp_path / "layout"
    pallet("image", "export-layout", str(layout), "localhost/tiny:1", check=True)
    archive = tmp_path / "docker.tar"
    run("skopeo", "copy", f"oci:{layout}:localhost/tiny:1", f"docker-archive:{archive}:example.com/app:2")
    files = untar(archive.read_bytes())
    config_path = json.loads(files["manifest.json"])[0]["Config"]
    pallet("rmi", "localhost/tiny:1", check=True)
    cp = pallet("load", "-i", str(archive), check=True)
    assert cp.stdout == "Loaded image: example.com/app:2\n"
    doc = inspect(pallet, "example.com/app:2")
    # docker-archive carries no manifest: the image ID is the config's digest, no RepoDigests (as docker load)
    assert doc["Id"] == sha(files[config_path])
    assert doc["RepoDigests"] == []
    assert doc["Config"]["Cmd"] == ["/bin/tool"]
    # and pallet's own docker-archive is read by skopeo
    out = tmp_path / "pallet-docker.tar"
    pallet("save", "-o", str(out), "example.com/app:2", check=True)
    info = json.loads(run("skopeo", "inspect", f"docker-archive:{out}"))
    assert info["Layers"] and info["Os"] == "linux"
    # its manifest is Docker schema 2 (built at load): saved as an OCI layout it becomes an OCI manifest
    # (as podman converts it), which umoci unpacks
    layout2 = tmp_path / "layout2"
    pallet("image", "export-layout", str(layout2), "example.com/app:2", check=True)
    validate_layout(layout2)
    run("umoci", "unpack", "--image", f"{layout2}:example.com/app:2", str(tmp_path / "bundle"))
    assert (tmp_path / "bundle" / "rootfs" / "etc" / "hello").read_text() == "hello\n"
    oci = tmp_path / "app-oci.tar"
    pallet("save", "--format", "oci-archive", "-o", str(oci), "example.com/app:2", check=True)
    assert json.loads(run("skopeo", "inspect", f"oci-archive:{oci}"))["Digest"] == \
        json.loads((layout2 / "index.json").read_text())["manifests"][0]["digest"]


def test_multi_platform_index_loads_the_host_platform(pallet, tmp_path):
    from helpers.oci_layout import Layout

    lay = Layout(tmp_path / "multi")
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    desc = lay.write_index("example.com/multi:1", arches=(arch, "s390x" if arch != "s390x" else "ppc64le"))
    cp = pallet("image", "import-layout", str(lay.root), check=True)
    assert cp.stdout == "Loaded image: example.com/multi:1\n"
    doc = inspect(pallet, "example.com/multi:1")
    assert doc["Architecture"] == arch
    assert doc["RepoDigests"] == [f"example.com/multi@{desc['digest']}"]   # the index digest, as docker shows
    assert inspect(pallet, f"example.com/multi@{desc['digest']}")["Id"] == doc["Id"]
