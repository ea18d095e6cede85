"""Fixtures for the registry client tests: real docker-registry peers on 127.0.0.1, images put there by skopeo.

Every `pallet` run here gets a private HOME, XDG_RUNTIME_DIR and XDG_CONFIG_HOME
(so no real auth file is read or written) and HTTP(S)_PROXY pointing at a
closed loopback port: a bug that tried a non-loopback registry fails at once
instead of leaving this machine.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from helpers.docker_registry import DockerRegistry, make_ca
from helpers.oci_layout import Layout
from registry.client.peers import GUARD_ENV, podman_cmd, skopeo_copy


@pytest.fixture(scope="session")
def layout(tmp_path_factory: pytest.TempPathFactory) -> Layout:
    """An OCI layout with `single` (3 layers), `multi` (amd64, arm64, arm/v7... as an index) and `other`."""
    lay = Layout(tmp_path_factory.mktemp("oci-layout") / "oci")
    lay.write_image("single", layers=3, size=200_000)
    lay.write_index("multi", arches=("amd64", "arm64"))
    lay.write_image("other", layers=2, size=5000)
    _write_random_image(lay, "big", [1_500_000, 1_500_000])
    return lay


def _write_random_image(lay: Layout, tag: str, sizes: list[int]) -> None:
    """An image whose layers are incompressible (deterministic pseudo-random bytes), so sizes are real."""
    import json
    import random

    from helpers.oci_layout import OCI_CONFIG, OCI_LAYER_GZIP, OCI_MANIFEST, make_layer

    rnd = random.Random(tag)
    layers, diff_ids = [], []
    for i, n in enumerate(sizes):
        blob, diff_id = make_layer({f"data/{tag}-{i}.bin": rnd.randbytes(n)})
        layers.append({"mediaType": OCI_LAYER_GZIP, "digest": lay.put(blob), "size": len(blob)})
        diff_ids.append(diff_id)
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                           "config": {"mediaType": OCI_CONFIG, "digest": lay.put(config), "size": len(config)},
                           "layers": layers}).encode()
    lay._add_ref({"mediaType": OCI_MANIFEST, "digest": lay.put(manifest), "size": len(manifest)}, tag)


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory, layout: Layout):
    """Plain-http docker-registry holding test/single:v1, test/multi:v1, test/other:v1, test/big:v1."""
    if shutil.which("docker-registry") is None or shutil.which("skopeo") is None:
        pytest.fail("docker-registry and skopeo are needed (make install)")
    reg = DockerRegistry(tmp_path_factory.mktemp("registry")).start()
    try:
        for tag in ("single", "multi", "other", "big"):
            skopeo_copy(f"oci:{layout.root}:{tag}", f"docker://{reg.host}/test/{tag}:v1", "--dest-tls-verify=false")
        yield reg
    finally:
        reg.stop()


@pytest.fixture(scope="session")
def tls_ca(tmp_path_factory: pytest.TempPathFactory):
    return make_ca(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="session")
def basic_registry(tmp_path_factory: pytest.TempPathFactory, tls_ca, layout: Layout):
    """TLS (test CA) + htpasswd Basic auth (alice:wonderland), holding test/single:v1."""
    reg = DockerRegistry(tmp_path_factory.mktemp("basic-registry"), tls=tls_ca,
                         htpasswd={"alice": "wonderland"}).start()
    try:
        skopeo_copy(f"oci:{layout.root}:single", f"docker://{reg.host}/test/single:v1",
                    "--dest-creds=alice:wonderland", f"--dest-cert-dir={tls_ca.ca_cert.parent}")
        yield reg
    finally:
        reg.stop()


@pytest.fixture
def client_env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    (home / "run").mkdir(parents=True, exist_ok=True)
    env = dict(GUARD_ENV, HOME=str(home), XDG_RUNTIME_DIR=str(home / "run"),
               XDG_CONFIG_HOME=str(home / ".config"), PALLET_CERTS_D=str(tmp_path / "certs.d"))
    return env


@pytest.fixture
def pallet(pallet, client_env):  # noqa: F811 -- wraps the suite's `pallet` with an isolated environment
    def run(*args: str, env: dict | None = None, **kw):
        return pallet(*args, env={**client_env, **(env or {})}, **kw)

    return run


@pytest.fixture
def store(pallet_root: Path):
    from pallet.store import Store

    return Store(pallet_root)


@pytest.fixture
def podman(tmp_path: Path):
    """A podman command line with storage under tmp_path; its images are removed afterwards."""
    import subprocess
    import tempfile

    if shutil.which("podman") is None:
        pytest.skip("podman is not installed")
    runroot = Path(tempfile.mkdtemp(prefix="pallet-prr-", dir="/tmp"))
    cmd = podman_cmd(tmp_path, runroot)
    yield cmd
    subprocess.run([*cmd, "rm", "-af"], capture_output=True, timeout=60)
    subprocess.run([*cmd, "rmi", "-af"], capture_output=True, timeout=60)
    subprocess.run(["umount", "-R", str(tmp_path / "podman-root" / "overlay")], capture_output=True)
    shutil.rmtree(runroot, ignore_errors=True)
