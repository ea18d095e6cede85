"""The library API as the engine will call it, in-process (the two-fork path: no single_fork)."""

from __future__ import annotations

import os

import pytest

from pallet.errors import RuntimeFailure
from pallet.runtime import Runtime
from pallet.runtime.spec import InvalidConfig
from pallet.runtime.state import ContainerNotFound, InvalidState

pytestmark = pytest.mark.root


def test_create_start_state_delete_in_process(rt_root, new_bundle, cid, tmp_path, no_leftovers):
    b = new_bundle(["sh", "-c", "echo $$ in $(hostname); exit 4"], edit=lambda c: c.update(hostname="lib"))
    rt = Runtime(str(rt_root))
    out = tmp_path / "out"
    fd = os.open(out, os.O_WRONLY | os.O_CREAT, 0o644)
    null = os.open("/dev/null", os.O_RDONLY)
    try:
        st = rt.create(cid, str(b), stdio=(null, fd, fd), pid_file=str(tmp_path / "pid"))
    finally:
        os.close(fd)
        os.close(null)
    assert st["status"] == "created" and st["pid"] == int((tmp_path / "pid").read_text())
    assert rt.state(cid)["status"] == "created"
    assert [s["id"] for s in rt.list()] == [cid]
    with pytest.raises(InvalidState, match="not stopped: created"):
        rt.delete(cid)
    rt.start(cid)
    with pytest.raises(InvalidState):
        rt.start(cid)
    # the init is not our child (two forks): poll the state until it stops
    import time

    deadline = time.monotonic() + 5
    while rt.state(cid)["status"] != "stopped" and time.monotonic() < deadline:
        time.sleep(0.02)
    assert rt.state(cid)["status"] == "stopped"
    assert out.read_text() == "1 in lib\n"
    rt.delete(cid)
    with pytest.raises(ContainerNotFound):
        rt.state(cid)


def test_errors_are_runtime_failures(rt_root, new_bundle, cid, no_leftovers):
    rt = Runtime(str(rt_root))
    with pytest.raises(InvalidConfig, match="config.json"):
        rt.create(cid, "/nonexistent-bundle")
    b = new_bundle(["/nope"])
    with pytest.raises(RuntimeFailure, match='exec: "/nope"'):
        rt.create(cid, str(b))
    assert rt.list() == []
    with pytest.raises(ContainerNotFound):
        rt.kill(cid, 9)
