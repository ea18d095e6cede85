"""Concurrent pallet processes on one store: SQLite WAL writers queue instead of failing."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from helpers.cli import assert_no_traceback, run_cli
from helpers.tars import tar_of

BIN = Path(sys.executable).parent


def rootfs() -> bytes:
    return tar_of({"hello": b"hello\n"})


def env(root: Path) -> dict:
    return dict(os.environ, PALLET_ROOT=str(root))


@pytest.mark.slow
def test_parallel_tags_all_land(tmp_path):
    root = tmp_path / "root"
    run_cli([BIN / "pallet", "import", "-", "localhost/base:1"], input=rootfs(), env=env(root),
            check=True, capture_output=True)
    n = 12
    procs = [subprocess.Popen([BIN / "pallet", "tag", "localhost/base:1", f"localhost/t{i}:x"], env=env(root),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for i in range(n)]
    results = [(p.wait(timeout=120), p.stderr.read()) for p in procs]
    for _, err in results:
        assert_no_traceback(err, ["pallet", "tag"])
    assert all(rc == 0 for rc, _ in results), results
    doc = json.loads(run_cli([BIN / "pallet", "image", "inspect", "localhost/base:1"], env=env(root),
                             check=True, capture_output=True).stdout)[0]
    assert sorted(doc["RepoTags"]) == sorted(["localhost/base:1", *(f"localhost/t{i}:x" for i in range(n))])
    index = json.loads((root / "index.json").read_bytes())
    assert len(index["manifests"]) == n + 1


@pytest.mark.slow
def test_parallel_loads_of_the_same_archive_all_succeed(tmp_path):
    root = tmp_path / "root"
    run_cli([BIN / "pallet", "import", "-", "localhost/base:1"], input=rootfs(), env=env(root),
            check=True, capture_output=True)
    archive = tmp_path / "a.tar"
    run_cli([BIN / "pallet", "save", "--format", "oci-archive", "-o", archive, "localhost/base:1"],
            env=env(root), check=True)
    fresh = tmp_path / "fresh"
    procs = [subprocess.Popen([BIN / "pallet", "load", "-i", archive], env=env(fresh), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(4)]
    outs = [p.communicate(timeout=120) for p in procs]
    for _, err in outs:
        assert_no_traceback(err, ["pallet", "load"])
    assert [p.returncode for p in procs] == [0] * 4, outs
    assert all(o == "Loaded image: localhost/base:1\n" for o, _ in outs)
    cp = run_cli([BIN / "pallet", "images", "-q"], env=env(fresh), capture_output=True, text=True, check=True)
    assert len(cp.stdout.split()) == 1
    assert os.listdir(fresh / "tmp") == []


def test_a_load_killed_midway_registers_nothing_and_gc_takes_its_blobs(tmp_path):
    import hashlib
    import signal
    import time

    root = tmp_path / "root"
    big = io.BytesIO()
    with tarfile.open(fileobj=big, mode="w") as tf:
        for i in range(3):
            data = hashlib.sha256(str(i).encode()).digest() * (1 << 15)   # 1 MiB each
            ti = tarfile.TarInfo(f"file{i}")
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    run_cli([BIN / "pallet", "import", "-", "localhost/big:1"], input=big.getvalue(), env=env(root),
            check=True, capture_output=True)
    archive = tmp_path / "a.tar"
    run_cli([BIN / "pallet", "save", "--format", "oci-archive", "-o", archive, "localhost/big:1"],
            env=env(root), check=True)
    data = archive.read_bytes()
    fresh = tmp_path / "fresh"
    proc = subprocess.Popen([BIN / "pallet", "load"], env=env(fresh), stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdin.write(data[: len(data) * 3 // 4])      # everything up to part of the last blob
    proc.stdin.flush()
    time.sleep(1.0)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    cp = run_cli([BIN / "pallet", "images", "-q"], env=env(fresh), capture_output=True, text=True, check=True)
    assert cp.stdout == ""
    for p in (fresh / "blobs" / "sha256").iterdir():        # whatever is there is whole and named right
        assert hashlib.sha256(p.read_bytes()).hexdigest() == p.name
    run_cli([BIN / "pallet", "image", "prune", "-f"], env=env(fresh), check=True, capture_output=True)
    assert list((fresh / "blobs" / "sha256").iterdir()) == []
