"""Fixtures for the runtime tests: a private state root, busybox bundles, a CLI runner, and a
check after every test that no container, cgroup, mount or state directory was left behind."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from helpers.cli import assert_no_traceback

BIN = Path(sys.executable).parent
RUNTIME = str(BIN / "pallet-runtime")


def _cgroup_dirs(cid: str) -> list[str]:
    from pallet.linux.cgroups import open_cgroup

    return [d for d in open_cgroup(None, cid).dirs.values() if os.path.exists(d)]


def _mounts() -> set[str]:
    with open("/proc/self/mountinfo") as f:
        return {line.split()[4] for line in f}


@pytest.fixture
def rt_root(tmp_path: Path):
    """A private runtime state root; every container in it is force-deleted afterwards."""
    root = tmp_path / "state"
    before = _mounts()
    yield root
    from pallet.runtime import Runtime

    rt = Runtime(str(root))
    for st in rt.list():
        rt.delete(st["id"], force=True)
    assert not any(root.iterdir()) if root.exists() else True, "state directories left behind"
    leaked = {m for m in _mounts() - before if str(tmp_path) in m}
    assert not leaked, f"mounts left behind: {leaked}"


@pytest.fixture
def new_bundle(busybox_rootfs: Path, tmp_path: Path):
    """new_bundle(args, name=..., **config overrides) -> bundle dir with a copied busybox rootfs."""
    count = [0]

    def make(args: list[str] | None = None, *, edit=None, name: str | None = None) -> Path:
        from pallet.runtime.spec import default_spec

        count[0] += 1
        b = tmp_path / (name or f"bundle{count[0]}")
        shutil.copytree(busybox_rootfs, b / "rootfs", symlinks=True)
        cfg = default_spec()
        cfg["process"]["terminal"] = False
        cfg["process"]["args"] = args or ["true"]
        cfg["root"]["readonly"] = False
        if edit:
            edit(cfg)
        (b / "config.json").write_text(json.dumps(cfg, indent=1))
        return b

    return make


@pytest.fixture
def prt(rt_root: Path):
    """Run `pallet-runtime --root <private root> ARGS`; returns CompletedProcess (text)."""

    def run(*args: str, check: bool = False, timeout: float = 30, allow_traceback: bool = False,
            **kw) -> subprocess.CompletedProcess:
        # files, not pipes: a created container keeps the runtime's stdio open (as with runc)
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            p = subprocess.run([RUNTIME, "--root", str(rt_root), *args], stdout=out, stderr=err,
                               timeout=timeout, **kw)
            out.seek(0)
            err.seek(0)
            cp = subprocess.CompletedProcess(p.args, p.returncode, out.read().decode(), err.read().decode())
        assert_no_traceback(cp.stderr, p.args, allow_traceback=allow_traceback)
        if check and cp.returncode != 0:
            raise AssertionError(f"pallet-runtime {' '.join(args)} exited {cp.returncode}:\n{cp.stdout}\n{cp.stderr}")
        return cp

    return run


@pytest.fixture
def cid(request) -> str:
    return "t-" + request.node.name.replace("[", "-").replace("]", "").replace("_", "-")[:40]


@pytest.fixture
def no_leftovers(cid: str, rt_root: Path):
    """Asserts after the test that no cgroup of the container is left (after force-deleting the rest)."""
    yield
    from pallet.runtime import Runtime

    rt = Runtime(str(rt_root))
    for st in rt.list():
        rt.delete(st["id"], force=True)
    assert not _cgroup_dirs(cid), f"cgroup left behind: {_cgroup_dirs(cid)}"


def deep(cfg: dict) -> dict:
    return copy.deepcopy(cfg)


def getpriority_filter_in_child(f) -> int:
    """Load the compiled filter `f` in a forked child; its exit code is 0 when getpriority(PRIO_PGRP)
    fails with errno 33, getpriority(PRIO_PROCESS) works and seccomp is in filter mode (2)."""
    pid = os.fork()
    if pid == 0:
        try:
            f.load()
            ok = os.getpriority(os.PRIO_PROCESS, 0) is not None
            try:
                os.getpriority(os.PRIO_PGRP, 0)
                blocked = False
            except OSError as e:
                blocked = e.errno == 33
            with open("/proc/self/status") as st:
                mode = [ln.split()[1] for ln in st if ln.startswith("Seccomp:")][0]
            os._exit(0 if ok and blocked and mode == "2" else 1)
        finally:
            os._exit(2)
    f.release()
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
