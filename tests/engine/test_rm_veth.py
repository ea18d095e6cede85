"""`rm -f` of a running container does not wait for its veth's deletion (16-40 ms): the kernel's
destruction of its namespace takes the pair, and when something else holds that namespace a detached
sweep deletes the pair after the grace period. Nothing is left afterwards, also after a SIGKILLed
monitor. Through the CLI, inside a namespace the test made."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess

import pytest

from engine.engine_support import IMAGE, wait_for
from helpers.netns import host_ns_fixture  # noqa: F401 (fixture host_ns)

pytestmark = [pytest.mark.root, pytest.mark.network]


@pytest.fixture
def net(host_ns, pallet_env):
    pallet_env.prefix = ["nsenter", f"--net={host_ns.path}", "--"]
    pallet_env.ns = host_ns
    return pallet_env


def _veths(env) -> list[str]:
    return [n for n in env.ns.links() if n.startswith("veth")]


def _leases(env) -> list:
    con = sqlite3.connect(env.root / "pallet.db")
    try:
        return con.execute("SELECT container_id FROM network_leases").fetchall()
    finally:
        con.close()


def _run_d(env) -> tuple[str, dict]:
    cid = env("run", "-d", "-p", "18080:80", IMAGE, "sleep", "120", check=True).stdout.strip()
    return cid, json.loads(env("inspect", cid, check=True).stdout)[0]


@pytest.fixture
def holder():
    """hold(pid): a process that keeps pid's network namespace alive after pid is gone."""
    procs = []

    def hold(pid: int) -> None:
        p = subprocess.Popen(["nsenter", f"--net=/proc/{pid}/ns/net", "sleep", "120"])
        procs.append(p)
        assert wait_for(lambda: os.readlink(f"/proc/{p.pid}/ns/net") == os.readlink(f"/proc/{pid}/ns/net"))

    yield hold
    for p in procs:
        p.kill()
        p.wait()


@pytest.mark.parametrize("monitor", ["alive", "killed"])
def test_rm_f_leaves_no_veth_even_with_its_namespace_held(net, holder, monitor):
    cid, c = _run_d(net)
    assert len(_veths(net)) == 1
    holder(c["State"]["Pid"])            # its namespace outlives the init: the kernel does not take the pair
    if monitor == "killed":
        con = sqlite3.connect(net.root / "pallet.db")
        (mpid,) = con.execute("SELECT monitor_pid FROM containers WHERE id = ?", (cid,)).fetchone()
        con.close()
        os.kill(mpid, signal.SIGKILL)
        assert wait_for(lambda: not os.path.exists(f"/proc/{mpid}/stat") or
                        open(f"/proc/{mpid}/stat").read().split()[2] == "Z")
    cp = net("rm", "-f", cid, check=True)
    assert cp.stdout.strip() == cid
    assert net("ps", "-aq").stdout == "" and _leases(net) == []
    assert "18080" not in net.ns.run("nft", "list", "table", "inet", "pallet", check=False).stdout
    assert wait_for(lambda: _veths(net) == [], timeout=15)   # (deleted after the 2 s grace)


def test_rm_f_of_several_leaves_no_veth(net):
    ids = [net("run", "-d", IMAGE, "sleep", "120", check=True).stdout.strip() for _ in range(3)]
    assert len(_veths(net)) == 3
    net("rm", "-f", *ids, check=True)
    assert _leases(net) == []
    assert wait_for(lambda: _veths(net) == [], timeout=15)


def test_a_restart_keeps_its_new_pair_while_the_old_namespace_is_held(net, holder):
    """The sweep of the old pair (its namespace held: not taken by the kernel) never deletes the new
    pair of the same name that the restart made."""
    import time

    from pallet.network.bridge import REAP_GRACE

    cid, c = _run_d(net)
    holder(c["State"]["Pid"])
    net("restart", "-t", "0", cid, check=True)
    time.sleep(REAP_GRACE + 1.5)      # (the old pair's sweep is over by now)
    assert len(_veths(net)) == 1
    addr = json.loads(net("inspect", cid, check=True).stdout)[0]["NetworkSettings"]["IPAddress"]
    assert net.ns.run("busybox", "ping", "-c", "1", "-W", "2", addr, check=False).returncode == 0
    net("rm", "-f", cid, check=True)
    assert wait_for(lambda: _veths(net) == [], timeout=15)
