"""Limits through the cgroup (v1 here), capabilities, security options, update, stats, pause, bad input."""

from __future__ import annotations

import json
import resource

import pytest

from engine.engine_support import IMAGE, wait_for
from helpers.mounts import mounts_under

pytestmark = [pytest.mark.root]

DEFAULT_CAPEFF = 0x00000000a80425fb   # docker's default set


def _capeff(out: str) -> int:
    for line in out.splitlines():
        if line.startswith("CapEff:"):
            return int(line.split()[1], 16)
    raise AssertionError(out)


@pytest.mark.slow
def test_memory_limit_oom_kills(pallet_env):
    cid = pallet_env("run", "-d", "--memory", "16m", IMAGE, "sh", "-c",
                     "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived", check=True).stdout.strip()
    assert pallet_env("wait", cid, timeout=120, check=True).stdout.strip() == "137"
    st = json.loads(pallet_env("inspect", cid, check=True).stdout)[0]["State"]
    assert st["OOMKilled"] is True and st["ExitCode"] == 137


def test_cgroup_values_inside(pallet_env):
    cp = pallet_env("run", "--rm", "--memory", "32m", "--memory-reservation", "16m", "--cpus", "0.5",
                    "--cpu-shares", "512", "--pids-limit", "42", "--cpuset-cpus", "0", IMAGE, "sh", "-c",
                    "cd /sys/fs/cgroup; cat memory/memory.limit_in_bytes memory/memory.soft_limit_in_bytes "
                    "cpu/cpu.cfs_quota_us cpu/cpu.cfs_period_us cpu/cpu.shares pids/pids.max cpuset/cpuset.cpus",
                    check=True)
    assert cp.stdout.split() == [str(32 << 20), str(16 << 20), "50000", "100000", "512", "42", "0"]


def test_pids_limit_contains_fork_bomb(pallet_env):
    cid = pallet_env("run", "-d", "--pids-limit", "12", IMAGE, "sleep", "300", check=True).stdout.strip()
    pallet_env("exec", "-d", cid, "sh", "-c", "b() { b | b & }; b", check=True)

    def pids() -> int:
        return int(json.loads(pallet_env("stats", "--no-stream", "--format", "json", cid, check=True).stdout)["PIDs"])

    assert wait_for(lambda: pids() >= 10, timeout=30)
    assert pids() <= 12
    assert json.loads(pallet_env("inspect", cid, check=True).stdout)[0]["State"]["Running"] is True
    pallet_env("rm", "-f", cid, check=True, timeout=120)
    assert pallet_env.ids() == []


def test_capabilities_and_security_options(pallet_env):
    cp = pallet_env("run", "--rm", IMAGE, "grep", "Cap", "/proc/self/status", check=True)
    assert _capeff(cp.stdout) == DEFAULT_CAPEFF
    cp = pallet_env("run", "--rm", "--cap-drop", "ALL", "--cap-add", "NET_ADMIN", IMAGE,
                    "grep", "Cap", "/proc/self/status", check=True)
    assert _capeff(cp.stdout) == 1 << 12
    cp = pallet_env("run", "--rm", "--cap-drop", "chown", "--cap-add", "CAP_SYS_ADMIN", IMAGE,
                    "grep", "CapEff", "/proc/self/status", check=True)
    assert _capeff(cp.stdout) == (DEFAULT_CAPEFF & ~1) | (1 << 21)
    cp = pallet_env("run", "--rm", "--security-opt", "no-new-privileges", "--security-opt", "seccomp=unconfined",
                    IMAGE, "grep", "-E", "NoNewPrivs|Seccomp:", "/proc/self/status", check=True)
    assert cp.stdout.split() == ["NoNewPrivs:", "1", "Seccomp:", "0"]
    cp = pallet_env("run", "--rm", "--privileged", IMAGE, "sh", "-c",
                    "grep -E 'Seccomp:' /proc/self/status; test -e /dev/fuse -o -e /dev/loop0 && echo devs",
                    check=True)
    assert cp.stdout.split() == ["Seccomp:", "0", "devs"]


def test_process_options(pallet_env):
    cp = pallet_env("run", "--rm", "--ulimit", "nofile=1000:2000", "--oom-score-adj", "500",
                    "--sysctl", "kernel.shmmax=123456", "--shm-size", "1m", "--device", "/dev/fuse:/dev/f2:r",
                    IMAGE, "sh", "-c", "ulimit -n; ulimit -Hn; cat /proc/self/oom_score_adj /proc/sys/kernel/shmmax; "
                    "df -k /dev/shm | tail -1 | awk '{print $2}'; stat -c '%t:%T' /dev/f2", check=True)
    assert cp.stdout.split() == ["1000", "2000", "500", "123456", "1024", "a:e5"]


def test_update_stats_pause(pallet_env):
    cid = pallet_env("run", "-d", "--memory", "64m", IMAGE, "sleep", "300", check=True).stdout.strip()
    pallet_env("update", "--memory", "128m", "--cpus", "1", "--pids-limit", "50", cid, check=True)
    cp = pallet_env("exec", cid, "sh", "-c", "cd /sys/fs/cgroup; cat memory/memory.limit_in_bytes "
                    "cpu/cpu.cfs_quota_us pids/pids.max", check=True)
    assert cp.stdout.split() == [str(128 << 20), "100000", "50"]
    hc = json.loads(pallet_env("inspect", cid, check=True).stdout)[0]["HostConfig"]
    assert hc["Memory"] == 128 << 20 and hc["NanoCpus"] == 10 ** 9 and hc["PidsLimit"] == 50
    row = json.loads(pallet_env("stats", "--no-stream", "--format", "json", cid, check=True).stdout)
    assert row["ID"] == cid[:12] and row["MemUsage"].endswith("/ 128MiB") and row["PIDs"] == "1"
    assert row["CPUPerc"].endswith("%")
    pallet_env("pause", cid, check=True)
    assert "(Paused)" in pallet_env("ps", check=True).stdout
    st = json.loads(pallet_env("inspect", cid, check=True).stdout)[0]["State"]
    assert st["Paused"] is True and st["Status"] == "paused"
    assert pallet_env("pause", cid).returncode == 125
    pallet_env("unpause", cid, check=True)
    assert json.loads(pallet_env("inspect", cid, check=True).stdout)[0]["State"]["Paused"] is False
    assert pallet_env("exec", cid, "true").returncode == 0
    pallet_env("pause", cid, check=True)          # rm -f of a paused container thaws it to kill it
    pallet_env("rm", "-f", cid, check=True, timeout=20)
    assert pallet_env.ids() == []


def _host_hard_nofile() -> int:
    return resource.getrlimit(resource.RLIMIT_NOFILE)[1]


@pytest.mark.parametrize("args", [
    ["--memory", "12q"], ["--memory", "1k"], ["--memory-swap", "1g"], ["--cpus", "0"], ["--cpus", "999"],
    ["--cpuset-cpus", "4096"], ["--cpuset-cpus", "x"], ["--device", "/dev/no-such-device"],
    ["--device", "/etc/passwd"], ["--cap-add", "NOT_A_CAP"], ["--pids-limit", "many"],
    ["--ulimit", "nofile=1:2:3"], ["--ulimit", "bogus=1"], ["--oom-score-adj", "5000"],
    ["--sysctl", "kernel.hostname=x"], ["--security-opt", "seccomp=/no/such.json"], ["--restart", "sometimes"],
    ["--health-interval", "soon"], ["--shm-size", "0"],
])
def test_bad_limits(pallet_env, args):
    cp = pallet_env("run", "--rm", *args, IMAGE, "true")
    assert cp.returncode == 125, cp.stderr
    assert cp.stderr.count("\n") == 1 and cp.stderr.startswith("Error: "), cp.stderr
    assert pallet_env.ids() == []
    assert not list((pallet_env.root / "containers").glob("*"))          # nothing half-created
    assert not list((pallet_env.root / "layers" / "containers").glob("*"))
    assert mounts_under(pallet_env.root) == []


def test_ulimit_never_above_host_hard_limit(pallet_env):
    hard = _host_hard_nofile()
    if hard == resource.RLIM_INFINITY:
        pytest.skip("the host's nofile hard limit is unlimited")
    cp = pallet_env("run", "--rm", "--ulimit", f"nofile={hard + 1}", IMAGE, "true")
    assert cp.returncode == 125 and "hard limit" in cp.stderr
    cp = pallet_env("run", "--rm", "--ulimit", f"nofile={hard}:{hard}", IMAGE, "sh", "-c", "ulimit -Hn", check=True)
    assert cp.stdout.strip() == str(hard)
    assert wait_for(lambda: pallet_env.ids() == [])
