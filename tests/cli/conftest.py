"""Fixtures for the image command tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.imagetools import rootfs_tar


@pytest.fixture
def tiny_tar(tmp_path: Path) -> Path:
    p = tmp_path / "tiny.tar"
    p.write_bytes(rootfs_tar({"etc/hello": b"hello\n", "bin/tool": b"#!/bin/sh\necho tool\n"}))
    return p


@pytest.fixture
def tiny(pallet, tiny_tar: Path) -> str:
    """An imported one-layer image `localhost/tiny:1`; returns its ID."""
    cp = pallet("import", "-c", 'CMD ["/bin/tool"]', str(tiny_tar), "localhost/tiny:1", check=True)
    return cp.stdout.strip()
