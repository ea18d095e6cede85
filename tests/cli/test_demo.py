"""scripts/demo.sh (what `make demo` runs after installing): builds localhost/busybox offline, twice."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_demo_builds_busybox_and_is_idempotent(pallet_root, pallet):
    env = dict(os.environ, PALLET_ROOT=str(pallet_root), PALLET=str(Path(sys.executable).parent / "pallet"))
    first = subprocess.run(["bash", str(REPO / "scripts" / "demo.sh")], env=env, capture_output=True, text=True,
                           timeout=300)
    assert first.returncode == 0, first.stderr
    assert "localhost/busybox   latest" in first.stdout
    assert '"Cmd": [\n                "sh"\n            ]' in first.stdout
    assert "IMAGE" in first.stdout and "CREATED BY" in first.stdout
    image_id = json.loads(pallet("image", "inspect", "localhost/busybox", check=True).stdout)[0]["Id"]
    second = subprocess.run(["bash", str(REPO / "scripts" / "demo.sh")], env=env, capture_output=True, text=True,
                            timeout=300)
    assert second.returncode == 0, second.stderr
    assert "is up to date" in second.stdout
    assert pallet("images", "-q", "--no-trunc", check=True).stdout.split() == [image_id]
    doc = json.loads(pallet("image", "inspect", "localhost/busybox", check=True).stdout)[0]
    assert doc["Config"]["Cmd"] == ["sh"] and doc["Os"] == "linux"
