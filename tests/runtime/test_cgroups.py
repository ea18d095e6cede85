"""cgroups: v2 file writes on a temporary tree (this host is v1/hybrid), v1 for real."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pallet.linux import cgroups
from pallet.linux.cgroups import CgroupV1, CgroupV2, normalize_path, open_cgroup

LEAF_FILES = ["cgroup.procs", "cgroup.freeze", "cgroup.events", "memory.max", "memory.swap.max", "memory.low",
              "cpu.weight", "cpu.max", "cpuset.cpus", "cpuset.mems", "pids.max", "io.weight", "io.max",
              "hugetlb.2MB.max", "memory.high"]


@pytest.fixture
def v2_tree(tmp_path: Path) -> Path:
    root = tmp_path / "cgroup2"
    root.mkdir()
    (root / "cgroup.controllers").write_text("cpuset cpu io memory hugetlb pids\n")
    (root / "cgroup.subtree_control").write_text("")
    return root


def test_v2_detected_and_paths(v2_tree: Path):
    cg = open_cgroup("/pallet/c1", "c1", root=str(v2_tree))
    assert isinstance(cg, CgroupV2) and cg.dir == str(v2_tree / "pallet" / "c1")
    rel = open_cgroup(None, "c2", root=str(v2_tree))
    assert rel.dir == str(v2_tree / "c2")
    assert normalize_path("system.slice:pallet:abc", "x") == "/system.slice/pallet-abc.scope"


def test_v2_resources_written(v2_tree: Path):
    cg = open_cgroup("/pallet/c1", "c1", root=str(v2_tree))
    cg.create()
    leaf = Path(cg.dir)
    for f in LEAF_FILES:
        (leaf / f).write_text("")
    # controllers were enabled on the way down
    assert (v2_tree / "cgroup.subtree_control").read_text().split() == ["+cpuset", "+cpu", "+io", "+memory",
                                                                          "+hugetlb", "+pids"]
    warnings = cg.apply({
        "memory": {"limit": 256 << 20, "swap": 512 << 20, "reservation": 128 << 20},
        "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"},
        "pids": {"limit": 64},
        "blockIO": {"weight": 500, "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}]},
        "hugepageLimits": [{"pageSize": "2MB", "limit": 4 << 21}],
        "devices": [{"allow": False, "access": "rwm"}],
        "unified": {"memory.high": "300000000"},
    })
    got = {f: (leaf / f).read_text() for f in LEAF_FILES}
    assert got["memory.max"] == str(256 << 20)
    assert got["memory.swap.max"] == str(256 << 20)  # v2 counts swap alone: (mem+swap) - mem
    assert got["memory.low"] == str(128 << 20)
    assert got["cpu.weight"] == str(1 + (1024 - 2) * 9999 // 262142)
    assert got["cpu.max"] == "50000 100000"
    assert got["cpuset.cpus"] == "0" and got["pids.max"] == "64"
    assert got["io.weight"] == f"default {1 + (500 - 10) * 9999 // 990}"
    assert got["io.max"] == "8:0 rbps=1048576"
    assert got["hugetlb.2MB.max"] == str(4 << 21)
    assert got["memory.high"] == "300000000"
    assert any("eBPF" in w for w in warnings)
    cg.apply({"memory": {"limit": -1}, "pids": {"limit": 0}, "cpu": {"quota": -1, "period": 200000}})
    assert (leaf / "memory.max").read_text() == "max" and (leaf / "pids.max").read_text() == "max"
    assert (leaf / "cpu.max").read_text() == "max 200000"


def test_v2_freeze_and_errors(v2_tree: Path):
    cg = open_cgroup("c3", "c3", root=str(v2_tree))
    cg.create()
    leaf = Path(cg.dir)
    for f in LEAF_FILES:
        (leaf / f).write_text("")
    (leaf / "cgroup.events").write_text("populated 1\nfrozen 1\n")
    cg.freeze()
    assert cg.frozen() and (leaf / "cgroup.freeze").read_text() == "1"
    cg.thaw()
    assert (leaf / "cgroup.freeze").read_text() == "0"
    with pytest.raises(OSError, match="swap"):
        cg.apply({"memory": {"limit": 200, "swap": 100}})
    with pytest.raises(OSError, match="does not exist"):
        cg.apply({"hugepageLimits": [{"pageSize": "1GB", "limit": 1}]})
    (leaf / "cgroup.procs").write_text("")
    for f in leaf.iterdir():
        f.unlink()
    cg.destroy()
    assert not leaf.exists()


@pytest.mark.root
def test_v1_resources_for_real(prt, new_bundle, cid, no_leftovers):
    def edit(cfg):
        cfg["linux"]["resources"] = {
            "memory": {"limit": 100 << 20, "reservation": 50 << 20},
            "cpu": {"shares": 512, "quota": 20000, "period": 100000, "cpus": "0"},
            "pids": {"limit": 20},
            "devices": [{"allow": False, "access": "rwm"}, {"allow": True, "type": "c", "major": 1, "minor": 3,
                                                            "access": "rw"}],
        }
    b = new_bundle(["sleep", "30"], edit=edit)
    prt("run", "-d", "--bundle", str(b), cid, check=True)
    st = json.loads(prt("state", cid, check=True).stdout)
    cg = open_cgroup(None, cid)
    assert isinstance(cg, CgroupV1)
    d = cg.dirs

    def read(key, f):
        return Path(d[key], f).read_text().strip()
    assert read("memory", "memory.limit_in_bytes") == str(100 << 20)
    assert read("memory", "memory.soft_limit_in_bytes") == str(50 << 20)
    assert read("cpu", "cpu.shares") == "512" and read("cpu", "cpu.cfs_quota_us") == "20000"
    assert read("cpuset", "cpuset.cpus") == "0" and read("pids", "pids.max") == "20"
    assert str(st["pid"]) in read("pids", "cgroup.procs").split()
    devices = read("devices", "devices.list").splitlines()
    assert "c 1:3 rw" in devices or "c 1:3 rwm" in devices
    assert "a *:* rwm" not in devices
    # inside: the container sees its own cgroup at the root of its cgroup namespace
    out = prt("exec", cid, "sh", "-c", "cat /proc/self/cgroup; cat /sys/fs/cgroup/pids/pids.max", check=True)
    assert "pids:/\n" in out.stdout and out.stdout.strip().endswith("20")
    prt("delete", "-f", cid, check=True)
    assert not any(Path(x).exists() for x in d.values())


# -- the cgroup of a process: of_pid, usage, pids, freezer state, OOM counts ------------------------
def test_v2_of_pid_reads_the_counters(v2_tree: Path):
    leaf = v2_tree / "pallet" / "c4"
    leaf.mkdir(parents=True)
    files = {"memory.current": "4096\n", "memory.max": "max\n", "memory.stat": "anon 1\ninactive_file 1024\n",
             "cpu.stat": "usage_usec 1500\nuser_usec 1000\n", "pids.current": "3\n",
             "io.stat": "8:0 rbytes=100 wbytes=20 rios=1\n8:16 rbytes=5 wbytes=0\n",
             "memory.events": "low 0\nhigh 0\nmax 4\noom 2\noom_kill 2\n", "cgroup.events": "populated 1\nfrozen 0\n",
             "cgroup.procs": "12\n10\n", "cgroup.freeze": "0"}
    for f, v in files.items():
        (leaf / f).write_text(v)
    (leaf / "sub").mkdir()
    (leaf / "sub" / "cgroup.procs").write_text("11\n")
    cg = cgroups.of_pid(1, root=str(v2_tree), paths={"": "/pallet/c4", "name=systemd": "/x"})
    assert isinstance(cg, CgroupV2) and cg.dir == str(leaf)
    assert cg.usage() == {"cpu_ns": 1_500_000, "mem": 4096, "mem_limit": None, "mem_cache": 1024, "pids": 3,
                          "blk": (105, 20)}
    (leaf / "memory.max").write_text("1048576\n")
    assert cg.usage()["mem_limit"] == 1048576
    assert cg.pids() == [10, 11, 12]
    assert cg.oom_file() == str(leaf / "memory.events") and cg.oom_kills() == 2
    assert not cg.frozen()
    (leaf / "cgroup.events").write_text("populated 1\nfrozen 1\n")
    cg.freeze()
    assert (leaf / "cgroup.freeze").read_text() == "1" and cg.frozen()
    assert cg.read("memory", "no.such.file") is None
    # no v2 line in /proc/PID/cgroup, or the process is gone: no cgroup
    assert cgroups.of_pid(1, root=str(v2_tree), paths={"memory": "/"}) is None
    assert cgroups.of_pid(1, root=str(v2_tree), paths={}) is None
    assert cgroups.oom_kills(str(leaf / "missing")) == 0 and cgroups.oom_kills(None) == 0


def test_proc_paths_keys_as_mountinfo():
    paths = cgroups.proc_paths("self")
    own = cgroups.of_pid(os.getpid())
    assert own is not None and paths
    if not cgroups.is_v2():
        # every mounted v1 hierarchy is found under the key mountinfo gives it (combined ones too)
        assert set(own.dirs) == set(cgroups._v1_mounts()) & set(paths)
    assert cgroups.proc_paths(2 ** 22 + 1) == {} and cgroups.of_pid(2 ** 22 + 1) is None


@pytest.mark.root
def test_v1_of_pid_for_real():
    """A process in a fresh cgroup: found by its pid, counted, frozen and thawed, OOM-killed and counted."""
    if cgroups.is_v2():
        pytest.skip("host is cgroup v2 (the v2 reads are tested on a temporary tree)")
    rel = f"pallet-test/ofpid-{os.getpid()}"
    cg = open_cgroup(rel, "x")
    cg.create()
    procs = []
    try:
        r, w = os.pipe()
        child = subprocess.Popen([sys.executable, "-c", "import os,sys; os.read(int(sys.argv[1]), 1); "
                                  "b = bytearray(256 << 20); b[::4096] = b'x' * len(b[::4096])", str(r)],
                                 pass_fds=(r,))
        procs.append(child)
        os.close(r)
        cg.add(child.pid)
        found = cgroups.of_pid(child.pid)
        assert isinstance(found, CgroupV1)
        assert {k: found.dirs[k] for k in cg.dirs} == cg.dirs
        assert found.pids() == [child.pid]
        u = found.usage()
        # (v1 leaves the charges of what it did before in its old cgroup: mem and cpu count from here)
        assert u["pids"] == 1 and u["mem_limit"] is None and u["blk"] == (0, 0)
        found.freeze()
        assert cgroups.of_pid(child.pid).frozen()
        found.thaw()
        assert not found.frozen()
        assert found.oom_file().endswith("/memory.oom_control") and found.oom_kills() == 0
        swap = 32 << 20 if os.path.exists(os.path.join(found.dir_of("memory"), "memory.memsw.limit_in_bytes")) else None
        warnings = found.apply({"memory": {"limit": 32 << 20, **({"swap": swap} if swap else {})}})
        assert found.usage()["mem_limit"] == 32 << 20
        os.write(w, b"g")
        os.close(w)
        assert child.wait() == -9, warnings
        assert found.oom_kills() == 1
        assert found.usage()["cpu_ns"] > 0 and found.pids() == []
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        cg.destroy()
        cgroups.remove_leftover("pallet-test")
    assert not cg.exists()
    assert not any(os.path.exists(os.path.join(d, "pallet-test")) for d in cgroups.own_dirs())


@pytest.mark.root
def test_remove_leftover_in_every_hierarchy():
    rel = f"pallet-test/left-{os.getpid()}"
    made = [os.path.join(d, rel, "child") for d in cgroups.own_dirs()]
    try:
        for d in made:
            os.makedirs(d)
        cgroups.remove_leftover(rel)
        assert [d for d in made if os.path.exists(os.path.dirname(d))] == []
    finally:
        cgroups.remove_leftover("pallet-test")
        cgroups.remove_leftover(rel)
