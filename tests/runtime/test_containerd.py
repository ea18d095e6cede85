"""pallet-runtime as containerd's runtime binary: containerd-shim-runc-v2 with BinaryName =
pallet-runtime (`ctr run --runc-binary`), against a private containerd (tests/helpers/containerd.py).

Issue 13 item 5: under the CRI suite a container would not stop (`RemoveContainer ... failed to
forcibly stop container`, then `StopPodSandbox ... DeadlineExceeded`, the shim and the container
alive an hour later). The shim stops a task with `kill ID 9`, `kill --all ID 9` and, to delete it,
`kill --all` then `delete`; when the init is not its pid namespace's first process it sends
`kill --all` again once the init has exited. Each state a task can be stopped in (created and
never started, running, paused, its init in another container's pid namespace, in the host's) is
stopped here each way (`ctr task kill`, `ctr task kill --all`, `ctr task delete --force`), with
pallet-runtime and with runc: within a second, exit status 137, nothing left (processes, cgroups,
runtime state).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers.containerd import NAMESPACE, Containerd, cgroup_mounts, exit_code, missing_tools, proc_alive

PALLET = str(Path(sys.executable).parent / "pallet-runtime")
RUNC = shutil.which("runc")
RUNTIMES = {"pallet": PALLET, "runc": RUNC}
STATES = ("created", "running", "paused", "shared-pid", "host-pid")
OPS = ("kill", "kill-all", "delete-force")
LIMIT = 1.0  # seconds from the ctr command to the task stopped and every process of it gone

pytestmark = [
    pytest.mark.root,
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="containerd needs root"),
    pytest.mark.skipif(bool(missing_tools()), reason=f"needs {', '.join(missing_tools())} (apt: containerd)"),
]


@pytest.fixture(scope="module")
def containerd():
    c = Containerd()
    try:
        c.start()
        yield c
    finally:
        problems = c.close()
    assert not problems, f"containerd left behind: {problems}"


@pytest.fixture
def ctd(containerd: Containerd):
    """The module's containerd; after the test, every task, container, process and cgroup of it is
    gone (removed here if the test left it, which fails the test)."""
    yield containerd
    left = {"tasks": containerd.task_ids(), "containers": containerd.container_ids(),
            "processes": containerd.cgroup_pids()}
    for cid in left["tasks"]:
        containerd.ctr("task", "kill", "-a", "-s", "KILL", cid, check=False, timeout=10)
        containerd.ctr("task", "delete", "-f", cid, check=False, timeout=10)
    for cid in left["containers"]:
        containerd.ctr("container", "delete", cid, check=False, timeout=10)
    problems: list[str] = []
    containerd.kill_cgroup_procs()
    containerd.remove_cgroups(problems)
    left = {k: v for k, v in left.items() if v}
    assert not left and not problems, f"left behind: {left} {problems}"


def _spec(rootfs: Path, cgroups_path: str, args: list[str], *, pid: str | None = "new",
          hooks: dict | None = None) -> dict:
    from pallet.runtime.spec import default_spec

    cfg = default_spec()
    cfg["process"]["terminal"] = False
    cfg["process"]["args"] = args
    cfg["process"]["env"] = ["PATH=/bin:/sbin:/usr/bin:/usr/sbin"]
    cfg["root"] = {"path": str(rootfs), "readonly": True}
    cfg["linux"]["cgroupsPath"] = cgroups_path
    nss = [n for n in cfg["linux"]["namespaces"] if n["type"] != "pid"]
    if pid == "new":
        nss.insert(0, {"type": "pid"})
    elif pid is not None:  # a path: join that pid namespace
        nss.insert(0, {"type": "pid", "path": pid})
    cfg["linux"]["namespaces"] = nss
    if hooks:
        cfg["hooks"] = hooks
    return cfg


class Case:
    """One container started through containerd with a given runtime binary."""

    def __init__(self, ctd: Containerd, tmp: Path, rootfs: Path, binary: str, cid: str) -> None:
        self.ctd, self.tmp, self.rootfs, self.binary, self.cid = ctd, tmp, rootfs, binary, cid
        self.cgroups_path = f"{ctd.cgroup_parent}/{cid}"
        self.stopped_ctr: subprocess.Popen | None = None

    def run_args(self, cid: str, cfg: dict) -> list[str]:
        spec = self.tmp / f"{cid}.json"
        spec.write_text(json.dumps(cfg))
        return ["run", "-d", "--null-io", "--runc-binary", self.binary, "--runc-root", self.ctd.runc_root,
                "--runtime", "io.containerd.runc.v2", "--config", str(spec), cid]

    def run(self, cid: str, cfg: dict) -> int:
        self.ctd.ctr(*self.run_args(cid, cfg))
        pid, status = self.ctd.tasks()[cid]
        assert status == "RUNNING", (cid, status)
        return pid

    def create_only(self, cfg: dict) -> int:
        """A task created and never started: a createRuntime hook stops the `ctr run` that asked
        for it (SIGSTOP), so ctr never gets to call Start. Returns the init's pid."""
        pid_file = self.tmp / f"{self.cid}.ctr-pid"
        cfg["hooks"] = {"createRuntime": [{"path": "/bin/sh", "args": [
            "sh", "-c", 'while [ ! -s "$0" ]; do sleep 0.01; done; kill -STOP "$(cat "$0")"', str(pid_file)]}]}
        p = self.ctd.ctr_popen(*self.run_args(self.cid, cfg))
        self.stopped_ctr = p
        pid_file.write_text(str(p.pid))
        deadline = time.monotonic() + 20
        while True:
            t = self.ctd.tasks().get(self.cid)
            if t and t[1] == "CREATED":
                return t[0]
            assert p.poll() is None, f"ctr run exited {p.returncode}: {p.stderr.read().decode()}"
            assert time.monotonic() < deadline, f"task not created: {t}"
            time.sleep(0.02)

    def release_ctr(self) -> None:
        if self.stopped_ctr is not None:
            self.stopped_ctr.kill()
            self.stopped_ctr.wait()
            self.stopped_ctr.stderr.close()
            self.stopped_ctr = None

    def cgroup_dirs(self, cgroups_path: str | None = None) -> list[str]:
        rel = (cgroups_path or self.cgroups_path).lstrip("/")
        return [os.path.join(m, rel) for m in cgroup_mounts() if os.path.isdir(os.path.join(m, rel))]

    def pids(self) -> set[int]:
        out: set[int] = set()
        for d in self.cgroup_dirs():
            try:
                out.update(int(x) for x in Path(d, "cgroup.procs").read_text().split())
            except OSError:
                pass
        return out

    def wait_pids(self, n: int) -> set[int]:
        deadline = time.monotonic() + 10
        while len(pids := self.pids()) < n:
            assert time.monotonic() < deadline, f"expected {n} processes in {self.cgroups_path}, got {pids}"
            time.sleep(0.02)
        return pids

    def state_dir(self, cid: str | None = None) -> Path:
        return Path(self.ctd.runc_root, NAMESPACE, cid or self.cid)

    def stop(self, op: str, pids: set[int]) -> tuple[float, int, subprocess.CompletedProcess]:
        """Stop the task with `op`; (seconds until it is stopped and its processes are gone, its
        exit status, the ctr command's result)."""
        args = {"kill": ["task", "kill", "-s", "KILL", self.cid],
                "kill-all": ["task", "kill", "--all", "-s", "KILL", self.cid],
                "delete-force": ["task", "delete", "--force", self.cid]}[op]
        t0 = time.monotonic()
        p = self.ctd.ctr(*args, check=False, timeout=60)
        while True:
            task = self.ctd.tasks().get(self.cid)
            alive = {pid for pid in pids if proc_alive(pid)}
            if (task is None or task[1] == "STOPPED") and not alive:
                break
            if time.monotonic() - t0 > 15:
                break
            time.sleep(0.005)
        elapsed = time.monotonic() - t0
        assert not alive, f"still alive after {elapsed:.1f} s: {alive} (task {task})"
        if op == "delete-force":
            code = exit_code(p.stderr)
        else:
            code = exit_code(self.ctd.ctr("task", "delete", self.cid, timeout=30).stderr)
        self.ctd.ctr("container", "delete", self.cid, timeout=30)
        return elapsed, code, p


@pytest.fixture(scope="module")
def ctd_tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ctd-specs")


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("runtime", sorted(RUNTIMES))
def test_stop(ctd: Containerd, ctd_tmp: Path, busybox_rootfs: Path, runtime: str, state: str, op: str) -> None:
    binary = RUNTIMES[runtime]
    if binary is None:
        pytest.skip(f"{runtime} is not installed")
    cid = f"{runtime}-{state}-{op}"
    case = Case(ctd, ctd_tmp, busybox_rootfs, binary, cid)
    owner = f"{cid}-owner"
    forks = ["sh", "-c", "sleep 1000 & sleep 1000 & wait"]  # an init with children
    try:
        if state == "created":
            case.create_only(_spec(busybox_rootfs, case.cgroups_path, ["sleep", "1000"]))
            pids = case.wait_pids(1)
        elif state in ("running", "paused"):
            case.run(cid, _spec(busybox_rootfs, case.cgroups_path, ["sleep", "1000"]))
            pids = case.wait_pids(1)
            if state == "paused":
                ctd.ctr("task", "pause", cid)
                assert ctd.tasks()[cid][1] == "PAUSED"
        elif state == "shared-pid":
            owner_pid = case.run(owner, _spec(busybox_rootfs, f"{ctd.cgroup_parent}/{owner}", ["sleep", "1000"]))
            case.run(cid, _spec(busybox_rootfs, case.cgroups_path, forks, pid=f"/proc/{owner_pid}/ns/pid"))
            pids = case.wait_pids(3)
        else:
            case.run(cid, _spec(busybox_rootfs, case.cgroups_path, forks, pid=None))
            pids = case.wait_pids(3)

        elapsed, code, p = case.stop(op, pids)
        print(f"{runtime} {state} {op}: {elapsed * 1000:.0f} ms, exit status {code}")
        assert p.returncode == 0, p.stderr
        assert elapsed < LIMIT, f"{runtime}: {state} container took {elapsed:.2f} s to stop by {op}"
        assert code == 137
        assert not case.state_dir().exists(), f"runtime state left: {os.listdir(case.state_dir())}"
        assert not case.cgroup_dirs(), f"cgroups left: {case.cgroup_dirs()}"
        if state == "shared-pid":
            # the pid namespace's owner was not touched
            assert ctd.tasks()[owner][1] == "RUNNING"
    finally:
        case.release_ctr()
        if owner in ctd.container_ids():
            ctd.ctr("task", "kill", "-s", "KILL", owner, check=False)
            ctd.ctr("task", "delete", "-f", owner, check=False)
            ctd.ctr("container", "delete", owner, check=False)
    assert not case.state_dir(owner).exists()


def test_term_ends_a_created_task_like_runc(ctd: Containerd, ctd_tmp: Path, busybox_rootfs: Path) -> None:
    """SIGTERM (`ctr task kill`'s default, CRI's stop signal) to a task that was never started:
    runc's init (Go) dies of it although it is its pid namespace's init; pallet's the same way."""
    codes = {}
    for runtime, binary in sorted(RUNTIMES.items()):
        if binary is None:
            continue
        cid = f"{runtime}-created-term"
        case = Case(ctd, ctd_tmp, busybox_rootfs, binary, cid)
        try:
            case.create_only(_spec(busybox_rootfs, case.cgroups_path, ["sleep", "1000"]))
            pids = case.wait_pids(1)
            t0 = time.monotonic()
            ctd.ctr("task", "kill", cid)  # SIGTERM
            while any(proc_alive(p) for p in pids) and time.monotonic() - t0 < 5:
                time.sleep(0.005)
            elapsed = time.monotonic() - t0
            assert elapsed < LIMIT, f"{runtime}: SIGTERM did not end a created task in {elapsed:.2f} s"
            deadline = time.monotonic() + 5
            while ctd.tasks()[cid][1] != "STOPPED" and time.monotonic() < deadline:
                time.sleep(0.01)
            codes[runtime] = exit_code(ctd.ctr("task", "delete", cid).stderr)
            ctd.ctr("container", "delete", cid)
        finally:
            case.release_ctr()
    if "runc" in codes:
        assert codes["pallet"] == codes["runc"], codes


def test_kill_all_of_stopped_container_as_runc(tmp_path: Path, busybox_rootfs: Path) -> None:
    """The runtime commands themselves, as the shim calls them, with runc's exit statuses: after the
    init has gone `kill --all` still succeeds (0) and kills what is left in the cgroup, `kill` says
    the container is not running (1). (Not compared: runc's `delete` without --force deletes a
    created container; pallet-runtime refuses, as the runtime spec requires.)"""
    results = {}
    for runtime, binary in sorted(RUNTIMES.items()):
        if binary is None:
            continue
        root = tmp_path / f"root-{runtime}"
        cg = f"/{tmp_path.name}-{runtime}"
        out = results[runtime] = []

        def rt(*args: str, binary=binary, root=root) -> int:
            return subprocess.run([binary, "--root", str(root), *args], stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30).returncode

        def bundle(name: str, cfg: dict, runtime=runtime) -> str:
            b = tmp_path / f"{runtime}-{name}"
            b.mkdir()
            (b / "config.json").write_text(json.dumps(cfg))
            return str(b)

        try:
            # in the host's pid namespace: the init's children outlive it
            cfg = _spec(busybox_rootfs, f"{cg}/forks", ["sh", "-c", "sleep 1000 & sleep 1000 & wait"], pid=None)
            out.append(("create", rt("create", "--bundle", bundle("forks", cfg), "forks")))
            out.append(("start", rt("start", "forks")))
            procs = Path(f"/sys/fs/cgroup/pids{cg}/forks/cgroup.procs")
            if not procs.exists():
                procs = Path(f"/sys/fs/cgroup{cg}/forks/cgroup.procs")
            deadline = time.monotonic() + 10
            while len(procs.read_text().split()) < 3 and time.monotonic() < deadline:
                time.sleep(0.02)
            pids = [int(x) for x in procs.read_text().split()]
            state = json.loads(subprocess.run([binary, "--root", str(root), "state", "forks"],
                                              capture_output=True, text=True).stdout)
            os.kill(state["pid"], signal.SIGKILL)  # the init only, as if it had exited
            time.sleep(0.2)
            out.append(("kill after init exit", rt("kill", "forks", "9")))
            out.append(("children alive", sum(proc_alive(p) for p in pids)))
            out.append(("kill --all after init exit", rt("kill", "--all", "forks", "9")))
            time.sleep(0.2)
            out.append(("children alive", sum(proc_alive(p) for p in pids)))
            out.append(("delete", rt("delete", "forks")))
            out.append(("kill --all after delete", rt("kill", "--all", "forks", "9")))

            cfg = _spec(busybox_rootfs, f"{cg}/created", ["sleep", "1000"])
            out.append(("create", rt("create", "--bundle", bundle("created", cfg), "created")))
            out.append(("delete --force created", rt("delete", "--force", "created")))
            out.append(("delete --force missing", rt("delete", "--force", "created")))
            out.append(("delete missing", rt("delete", "created")))
        finally:
            for cid in ("forks", "created"):
                rt("delete", "--force", cid)
            for m in cgroup_mounts():
                for d in sorted((p for p, _, _ in os.walk(os.path.join(m, cg.lstrip("/")))), key=len, reverse=True):
                    try:
                        os.rmdir(d)
                    except OSError:
                        pass
    assert results["pallet"] == [
        ("create", 0), ("start", 0), ("kill after init exit", 1), ("children alive", 2),
        ("kill --all after init exit", 0), ("children alive", 0), ("delete", 0), ("kill --all after delete", 1),
        ("create", 0), ("delete --force created", 0), ("delete --force missing", 0), ("delete missing", 1)]
    if "runc" in results:
        assert results["pallet"] == results["runc"]
