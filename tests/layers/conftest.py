"""Fixtures for the layer tests: a sandbox with a sentinel outside the root, mount cleanup."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest


def mounts_under(path: Path) -> list[str]:
    out = []
    prefix = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4].replace("\\040", " ")
            if mp == prefix or mp.startswith(prefix + "/"):
                out.append(mp)
    return out


@pytest.fixture(autouse=True)
def _unmount_leftovers(tmp_path: Path):
    """Whatever a test mounted below its tmp dir is unmounted afterwards, also when it failed."""
    yield
    for mp in sorted(mounts_under(tmp_path), key=len, reverse=True):
        subprocess.run(["umount", "-l", mp], capture_output=True)


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
