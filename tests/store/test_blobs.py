"""The blob store's atomic, verified writes, tested with real processes (SIGKILL, concurrent writers)."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pallet.errors import DigestMismatch
from pallet.store import Store

DATA = hashlib.sha256(b"seed").digest() * (8 * 1024 * 1024 // 32)   # 8 MiB
DIGEST = "sha256:" + hashlib.sha256(DATA).hexdigest()


def python(code: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], stdout=subprocess.PIPE,
                            stdin=subprocess.PIPE, text=True)


def test_put_verifies_and_a_mismatch_leaves_nothing(tmp_path):
    store = Store(tmp_path / "root")
    d = store.blobs.put(b"hello")
    assert store.blobs.read(d) == b"hello"
    with pytest.raises(DigestMismatch):
        store.blobs.put(b"hello!", expected="sha256:" + hashlib.sha256(b"other").hexdigest())
    with pytest.raises(DigestMismatch):
        store.blobs.put(b"hello", expected=d.replace(d[-1], "0" if d[-1] != "0" else "1"))
    assert list(store.blobs) == [d]
    assert os.listdir(store.tmp) == []


def test_a_writer_killed_mid_blob_leaves_no_blob_under_the_digest(tmp_path):
    root = tmp_path / "root"
    Store(root)
    proc = python(f"""
        import sys, time
        from pallet.store import Store
        store = Store({str(root)!r})
        import hashlib
        data = hashlib.sha256(b"seed").digest() * (8 * 1024 * 1024 // 32)
        w = store.blobs.writer({DIGEST!r}, len(data))
        w.write(data[: len(data) // 2])
        print("half", flush=True)
        time.sleep(60)
        w.write(data[len(data) // 2:])
        w.commit()
    """)
    assert proc.stdout.readline().strip() == "half"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    store = Store(root)
    assert not store.blobs.has(DIGEST)
    assert not store.blobs.path(DIGEST).exists()
    assert list(store.blobs) == []
    leftovers = os.listdir(store.tmp)
    assert len(leftovers) == 1 and leftovers[0].startswith(".tmp-")   # only a temp file
    store.blobs.clean_tmp(older_than=0)                                 # which cleanup removes
    assert os.listdir(store.tmp) == []
    assert store.blobs.put(DATA, expected=DIGEST) == DIGEST             # and the blob can still be written


@pytest.mark.slow
def test_two_processes_writing_the_same_blob_at_once_both_succeed(tmp_path):
    root = tmp_path / "root"
    Store(root)
    code = f"""
        import sys, time
        from pallet.store import Store
        store = Store({str(root)!r})
        import hashlib
        data = hashlib.sha256(b"seed").digest() * (8 * 1024 * 1024 // 32)
        w = store.blobs.writer({DIGEST!r}, len(data))
        print("ready", flush=True)
        sys.stdin.readline()
        for i in range(0, len(data), 1 << 18):
            w.write(data[i:i + (1 << 18)])
            time.sleep(0.005)
        print(w.commit(), flush=True)
    """
    procs = [python(code) for _ in range(3)]
    for p in procs:
        assert p.stdout.readline().strip() == "ready"
    for p in procs:            # release them together
        p.stdin.write("go\n")
        p.stdin.flush()
    outs = [p.communicate(timeout=60)[0].strip() for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0]
    assert outs == [DIGEST] * 3
    store = Store(root)
    assert store.blobs.read(DIGEST) == DATA
    assert os.listdir(store.tmp) == []


def test_blob_files_are_never_partial_for_readers(tmp_path):
    """The final name appears only by rename, so its size is always the full size."""
    root = tmp_path / "root"
    store = Store(root)
    w = store.blobs.writer(DIGEST, len(DATA))
    w.write(DATA[:1000])
    assert not store.blobs.path(DIGEST).exists()
    w.write(DATA[1000:])
    w.commit()
    assert Path(store.blobs.path(DIGEST)).stat().st_size == len(DATA)
