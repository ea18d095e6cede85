"""Fixtures for container tests: a busybox image built straight into the store, and cleanup of
every container, mount, cgroup and process a test leaves behind (also when it fails)."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.engine_support import Env, build_image


@pytest.fixture(scope="session")
def image_rootfs(busybox_rootfs: Path) -> Path:
    return busybox_rootfs


@pytest.fixture(scope="module")
def crun_prefix(tmp_path_factory: pytest.TempPathFactory):
    """The command prefix under which crun runs here: none, or nsenter into a mount namespace with the
    cgroup v1 hierarchies a hybrid host lacks (helpers.crun_ns), ended after the module (while it
    exists those controllers are off the cgroup2 root for the whole host, so not for longer)."""
    from helpers.crun_ns import CrunMountNamespace, crun_refuses_host

    if not crun_refuses_host():
        yield []
        return
    ns = CrunMountNamespace(tmp_path_factory.mktemp("crun-ns"))
    try:
        yield ns.start().prefix
    finally:
        ns.close()


@pytest.fixture
def pallet_env(tmp_path: Path, image_rootfs: Path):
    """A private storage root with localhost/busybox in it; everything removed afterwards."""
    root = tmp_path / "root"
    run = tmp_path / "run"
    build_image(root, image_rootfs)
    env = Env(root, run, tmp_path)
    try:
        yield env
    finally:
        env.cleanup()




@pytest.fixture
def engine(pallet_env):
    """The Engine in-process, on pallet_env's store (containers are started through the CLI or by it)."""
    from pallet.engine.core import Engine
    from pallet.store import Store

    store = Store(pallet_env.root)
    try:
        yield Engine(store, pallet_env.runroot)
    finally:
        store.db.close()
