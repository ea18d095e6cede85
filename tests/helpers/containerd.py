"""A private containerd (Debian's 1.6) for tests that drive a runtime binary through its runc shim.

Everything is under one temporary directory: root, state, the gRPC and ttrpc sockets, the runc
shim's state root (`ctr run --runc-root`). containerd 1.6 puts its shims' sockets in
/run/containerd/s/, a path no option moves; so containerd runs in a mount namespace of its own,
with a tmpfs over /run (`unshare -m`): the host's /run/containerd is never touched, and the
namespace, its shims and their containers leave nothing in the host's mount table. Only the
plugins a `ctr run --config` needs are loaded (no CRI, no snapshotters but the default): it is up
in about 50 ms. `close()` ends the containers, the shims and containerd by their pids, removes
the cgroups below `cgroup_parent` and the directory, whatever state the test left them in.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

NAMESPACE = "pallet-test"
TOOLS = ("containerd", "ctr", "containerd-shim-runc-v2", "unshare")

_DISABLED = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
             "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.devmapper",
             "io.containerd.internal.v1.opt", "io.containerd.tracing.processor.v1.otlp",
             "io.containerd.internal.v1.tracing"]


def missing_tools() -> list[str]:
    return [t for t in TOOLS if shutil.which(t) is None]


def cgroup_mounts() -> list[str]:
    """Mount points of every cgroup hierarchy (v1 and v2) in this mount namespace."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            pre, _, post = line.partition(" - ")
            if post.split()[:1] in (["cgroup"], ["cgroup2"]):
                out.append(pre.split()[4])
    return out


def proc_alive(pid: int) -> bool:
    """Alive and not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return False
    return data[data.rindex(b")") + 2:][:1] not in (b"Z", b"X")


class Containerd:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="pallet-ctd-"))
        self.address = str(self.dir / "containerd.sock")
        self.runc_root = str(self.dir / "runc")
        # the cgroups of the test's containers: one parent, removed by close()
        self.cgroup_parent = f"/{self.dir.name}"
        self.proc: subprocess.Popen | None = None
        self._log = None

    # -- life cycle -------------------------------------------------------------------------
    def start(self, timeout: float = 10.0) -> Containerd:
        d = self.dir
        (d / "root").mkdir()
        (d / "state").mkdir()
        config = "\n".join([
            "version = 2",
            f'root = "{d / "root"}"',
            f'state = "{d / "state"}"',
            f"disabled_plugins = {json.dumps(_DISABLED)}",
            "[grpc]",
            f'  address = "{self.address}"',
            "[ttrpc]",
            f'  address = "{self.address}.ttrpc"',
            "[debug]",
            '  level = "debug"',
            "",
        ])
        (d / "config.toml").write_text(config)
        self._log = open(d / "containerd.log", "wb")
        # unshare execs sh, which execs containerd: self.proc.pid is containerd's pid
        self.proc = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c",
             'mount -t tmpfs -o mode=0755 tmpfs /run && mkdir /run/containerd && exec containerd -c "$0"',
             str(d / "config.toml")],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            if os.path.exists(self.address) and self.ctr("version", check=False, timeout=5).returncode == 0:
                return self
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"containerd did not start:\n{self.log_tail()}")
            time.sleep(0.02)

    def log_tail(self, n: int = 30) -> str:
        try:
            return "\n".join((self.dir / "containerd.log").read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def close(self) -> list[str]:
        """End everything started here; returns what had to be cleaned up by force (for the test to
        report), in order: tasks and containers ctr could not delete, leftover processes."""
        problems: list[str] = []
        if self.proc is not None and self.proc.poll() is None:
            for cid in self.task_ids():
                self.ctr("task", "kill", "-a", "-s", "KILL", cid, check=False, timeout=10)
                self.ctr("task", "delete", "-f", cid, check=False, timeout=10)
            for cid in self.container_ids():
                self.ctr("container", "delete", cid, check=False, timeout=10)
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        # the shims (they find containerd gone and outlive it) and any process left in our cgroups
        for pid in self.shim_pids():
            problems.append(f"shim {pid} still running")
            _kill(pid)
        for pid in self.cgroup_pids():
            problems.append(f"process {pid} left in {self.cgroup_parent}")
        self.kill_cgroup_procs()
        self.remove_cgroups(problems)
        if self._log is not None:
            self._log.close()
        self._unmount_below(self.dir)
        shutil.rmtree(self.dir, ignore_errors=True)
        return problems

    # -- ctr ----------------------------------------------------------------------------------
    def ctr(self, *args: str, check: bool = True, timeout: float = 30, **kw) -> subprocess.CompletedProcess:
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            p = subprocess.run(["ctr", "--address", self.address, "--namespace", NAMESPACE, *args],
                               stdin=subprocess.DEVNULL, stdout=out, stderr=err, timeout=timeout, **kw)
            out.seek(0)
            err.seek(0)
            cp = subprocess.CompletedProcess(p.args, p.returncode, out.read().decode(), err.read().decode())
        if check and cp.returncode != 0:
            raise AssertionError(f"{' '.join(cp.args)} exited {cp.returncode}:\n{cp.stdout}{cp.stderr}")
        return cp

    def ctr_popen(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen(["ctr", "--address", self.address, "--namespace", NAMESPACE, *args],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def tasks(self) -> dict[str, tuple[int, str]]:
        """id -> (pid, STATUS) from `ctr task ls`."""
        out = {}
        for line in self.ctr("task", "ls", timeout=10).stdout.splitlines()[1:]:
            f = line.split()
            if len(f) >= 3:
                out[f[0]] = (int(f[1]), f[2])
        return out

    def task_ids(self) -> list[str]:
        p = self.ctr("task", "ls", "-q", check=False, timeout=10)
        return p.stdout.split() if p.returncode == 0 else []

    def container_ids(self) -> list[str]:
        p = self.ctr("container", "ls", "-q", check=False, timeout=10)
        return p.stdout.split() if p.returncode == 0 else []

    # -- what is left -------------------------------------------------------------------------
    def shim_pids(self) -> list[int]:
        """containerd-shim-runc-v2 processes of this containerd (their command line names its socket)."""
        pids = []
        for e in os.listdir("/proc"):
            if not e.isdigit():
                continue
            try:
                with open(f"/proc/{e}/cmdline", "rb") as f:
                    argv = f.read().split(b"\0")
            except OSError:
                continue
            if argv and argv[0].endswith(b"containerd-shim-runc-v2") and self.address.encode() in argv:
                pids.append(int(e))
        return pids

    def cgroup_dirs(self) -> list[str]:
        return [os.path.join(m, self.cgroup_parent.lstrip("/")) for m in cgroup_mounts()
                if os.path.isdir(os.path.join(m, self.cgroup_parent.lstrip("/")))]

    def cgroup_pids(self) -> list[int]:
        pids: set[int] = set()
        for top in self.cgroup_dirs():
            for d, _, files in os.walk(top):
                if "cgroup.procs" in files:
                    try:
                        pids.update(int(x) for x in Path(d, "cgroup.procs").read_text().split())
                    except OSError:
                        pass
        return sorted(pids)

    def kill_cgroup_procs(self) -> None:
        for _ in range(3):
            pids = self.cgroup_pids()
            if not pids:
                return
            for top in self.cgroup_dirs():  # a paused container's processes die only once thawed
                for d, _, files in os.walk(top):
                    for name, value in (("freezer.state", "THAWED"), ("cgroup.freeze", "0")):
                        if name in files:
                            try:
                                Path(d, name).write_text(value)
                            except OSError:
                                pass
            for pid in pids:
                _kill(pid)
            time.sleep(0.1)

    def remove_cgroups(self, problems: list[str]) -> None:
        for top in self.cgroup_dirs():
            for d in sorted((p for p, _, _ in os.walk(top)), key=len, reverse=True):
                for _ in range(50):
                    try:
                        os.rmdir(d)
                        break
                    except FileNotFoundError:
                        break
                    except OSError:
                        time.sleep(0.02)
                else:
                    problems.append(f"cannot remove cgroup {d}")

    @staticmethod
    def _unmount_below(d: Path) -> None:
        with open("/proc/self/mountinfo") as f:
            points = [line.split()[4] for line in f]
        for m in sorted((m for m in points if m == str(d) or m.startswith(f"{d}/")), key=len, reverse=True):
            subprocess.run(["umount", "-l", m], check=False)


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


_EXIT = re.compile(r"exit with non-zero exit code (\d+)")


def exit_code(ctr_stderr: str) -> int:
    """The exit status `ctr task delete` reports (it warns only about a non-zero one)."""
    m = _EXIT.search(ctr_stderr)
    return int(m.group(1)) if m else 0
