"""Fixtures for the registry server tests: `pallet registry serve` as a real process on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers.registry_server import RegistryProcess


@pytest.fixture
def serve(tmp_path_factory: pytest.TempPathFactory):
    """Factory: serve(*flags, storage=None) starts a registry; all are stopped at teardown."""
    started: list[RegistryProcess] = []

    def start(*args: str, storage: Path | None = None, scheme: str = "http", port: int | None = None,
              run: bool = True) -> RegistryProcess:
        d = tmp_path_factory.mktemp("registry")
        rp = RegistryProcess(storage or d / "storage", list(args), d / "server.log", scheme, port)
        started.append(rp)
        return rp.start() if run else rp

    yield start
    for rp in started:
        rp.stop(timeout=10)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory):
    """One open registry shared by a test module (tests use distinct repository names)."""
    d = tmp_path_factory.mktemp("shared-registry")
    rp = RegistryProcess(d / "storage", [], d / "server.log").start()
    yield rp
    rp.stop()


@pytest.fixture
def api(registry: RegistryProcess):
    with registry.client() as c:
        yield c
