"""Fixtures for the layer tests: a sandbox with a sentinel outside the root, mount cleanup."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers.mounts import unmount_all_under


@pytest.fixture(autouse=True)
def _unmount_leftovers(tmp_path: Path):
    """Whatever a test mounted below its tmp dir is unmounted afterwards, also when it failed."""
    yield
    unmount_all_under(tmp_path)


@pytest.fixture
def sandbox(tmp_path: Path) -> Path:
    """tmp/sb/{root, outside/secret, outside/dir/file}: layers go into root; outside must not change."""
    sb = tmp_path / "sb"
    (sb / "root").mkdir(parents=True)
    (sb / "outside" / "dir").mkdir(parents=True)
    (sb / "outside" / "secret").write_text("secret\n")
    (sb / "outside" / "dir" / "file").write_text("file\n")
    (sb / "sibling").write_text("sibling\n")
    return sb
