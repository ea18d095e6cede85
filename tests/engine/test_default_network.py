"""`run`/`create` without --network: docker's default bridge network `bridge`, through the CLI, with
pallet's "host" inside a namespace the test made (every pallet command under `nsenter --net`).

What docker gives there: an address from the bridge's subnet, a default route via its gateway, `lo`
up, reachable from the host; no name resolution (the host's resolvers in resolv.conf); and after
the container is gone no veth, no lease and no rule is left.
"""

from __future__ import annotations

import ipaddress
import json
import sqlite3

import pytest

from engine.engine_support import IMAGE, wait_for
from helpers.netns import host_ns_fixture  # noqa: F401 (fixture host_ns)

pytestmark = [pytest.mark.root, pytest.mark.network]


@pytest.fixture
def net(host_ns, pallet_env):
    pallet_env.prefix = ["nsenter", f"--net={host_ns.path}", "--"]
    pallet_env.ns = host_ns
    return pallet_env


def _inspect(env, ref: str) -> dict:
    return json.loads(env("inspect", ref, check=True).stdout)[0]


def _bridge(env) -> dict:
    return json.loads(env("network", "inspect", "bridge", check=True).stdout)[0]


def _veths(env) -> list[str]:
    return [n for n in env.ns.links() if n.startswith("veth")]


def _leases(env) -> list:
    con = sqlite3.connect(env.root / "pallet.db")
    try:
        return con.execute("SELECT container_id, address FROM network_leases").fetchall()
    finally:
        con.close()


def _nft(env) -> str:
    return env.ns.run("nft", "list", "table", "inet", "pallet", check=False).stdout


def test_run_without_network_joins_the_default_bridge(net):
    cid = net("run", "-d", "--name", "web", IMAGE, "sleep", "60", check=True).stdout.strip()
    c = _inspect(net, cid)
    assert c["HostConfig"]["NetworkMode"] == "bridge"
    br = _bridge(net)
    (cfg,) = br["IPAM"]["Config"]
    subnet, gateway = ipaddress.ip_network(cfg["Subnet"]), cfg["Gateway"]
    ns = c["NetworkSettings"]
    addr = ns["Networks"]["bridge"]["IPAddress"]
    assert ipaddress.ip_address(addr) in subnet and addr != gateway
    assert ns["IPAddress"] == addr and ns["Gateway"] == gateway      # (docker: the default bridge's at the top)
    assert list(br["Containers"]) == [cid] and br["Containers"][cid]["IPv4Address"] == f"{addr}/{subnet.prefixlen}"
    # inside: the address on eth0, lo up, the default route via the gateway
    assert f"inet {addr}/{subnet.prefixlen}" in net("exec", cid, "ip", "-o", "addr", "show", "eth0", check=True).stdout
    assert "UP" in net("exec", cid, "ip", "-o", "link", "show", "lo", check=True).stdout
    assert net("exec", cid, "ip", "route", check=True).stdout.startswith(f"default via {gateway} dev eth0")
    # the host side: the bridge (pallet0) with the gateway's address; the container answers from here
    bridge_name = br["Options"]["com.docker.network.bridge.name"]
    assert bridge_name in net.ns.links()
    assert f"{gateway}/{subnet.prefixlen}" in net.ns.run("ip", "-o", "addr", "show", "dev", bridge_name).stdout
    assert net.ns.run("busybox", "ping", "-c", "1", "-W", "2", addr, check=False).returncode == 0
    assert net("exec", cid, "ping", "-c", "1", "-W", "2", gateway).returncode == 0
    # no name resolution on the default bridge: the host's resolvers (without loopback ones), as docker's
    host = [ln.split()[1] for ln in open("/etc/resolv.conf").read().splitlines()
            if ln.split()[:1] == ["nameserver"] and not ln.split()[1].startswith("127.")]
    resolv = net("exec", cid, "cat", "/etc/resolv.conf", check=True).stdout
    servers = [ln.split()[1] for ln in resolv.splitlines() if ln.split()[:1] == ["nameserver"]]
    assert servers == (host or ["8.8.8.8", "8.8.4.4"]) and gateway not in servers
    # ps shows it; create without --network too
    rows = [json.loads(ln) for ln in net("ps", "--format", "json", check=True).stdout.splitlines()]
    assert [r["Networks"] for r in rows] == ["bridge"]
    made = net("create", IMAGE, "true", check=True).stdout.strip()
    assert _inspect(net, made)["HostConfig"]["NetworkMode"] == "bridge"
    # --network none still means loopback only
    out = net("run", "--rm", "--network", "none", IMAGE, "ip", "-o", "link", check=True).stdout
    assert [ln.split(": ")[1] for ln in out.splitlines()] == ["lo"]


def test_default_bridge_teardown_leaves_nothing(net):
    # rm -f of a running container with published ports
    cid = net("run", "-d", "-p", "18090:80", "-p", "18091:81", IMAGE, "sleep", "60", check=True).stdout.strip()
    assert len(_veths(net)) == 1 and [c for c, _ in _leases(net)] == [cid]
    assert cid[:12] in _nft(net) and "18090" in _nft(net)
    net("rm", "-f", cid, check=True)
    assert wait_for(lambda: _veths(net) == [], timeout=5)
    assert _leases(net) == [] and cid[:12] not in _nft(net) and "18090" not in _nft(net)
    # --rm: when run returns, the address and ports are back; the veth goes with the namespace
    assert net("run", "--rm", "-p", "18092:80", IMAGE, "true").returncode == 0
    assert _leases(net) == [] and "18092" not in _nft(net)
    assert wait_for(lambda: _veths(net) == [], timeout=5)
    # a container that exits by itself (and is then removed), and one that is stopped
    cid = net("run", "-d", IMAGE, "true", check=True).stdout.strip()
    net("wait", cid, check=True)
    assert _leases(net) == []
    assert wait_for(lambda: _veths(net) == [], timeout=5)
    net("rm", cid, check=True)
    cid = net("run", "-d", IMAGE, "sleep", "60", check=True).stdout.strip()
    net("stop", "-t", "0", cid, check=True)
    assert _leases(net) == [] and wait_for(lambda: _veths(net) == [], timeout=5)
    # started again right away: the same container gets an address again (the old pair is gone or replaced)
    net("start", cid, check=True)
    assert len(_leases(net)) == 1 and len(_veths(net)) == 1
    net("rm", "-f", cid, check=True)
    assert _leases(net) == [] and wait_for(lambda: _veths(net) == [], timeout=5)
    # the default bridge itself stays, as docker0 does (the session fixture removes it after the test)
    assert _bridge(net)["Options"]["com.docker.network.bridge.name"] in net.ns.links()


def test_restart_right_after_exit_reuses_the_veth_name(net):
    """A container restarted at once after its exit: its veth pair has the same host name, which the old
    namespace's destruction may not have freed yet; the start still succeeds."""
    cid = net("run", "-d", IMAGE, "sleep", "60", check=True).stdout.strip()
    for _ in range(3):
        net("restart", "-t", "0", cid, check=True)
        addr = _inspect(net, cid)["NetworkSettings"]["IPAddress"]
        assert addr and net.ns.run("busybox", "ping", "-c", "1", "-W", "2", addr, check=False).returncode == 0
    net("rm", "-f", cid, check=True)
    assert _leases(net) == [] and wait_for(lambda: _veths(net) == [], timeout=5)


def test_a_second_store_gets_its_own_default_bridge(host_ns, tmp_path, image_rootfs):
    """Two stores (two PALLET_ROOTs) in one namespace: the second's default bridge is pallet1 on the
    next free subnet, never the first's bridge with a subnet that is not its own; both work."""
    from engine.engine_support import Env, build_image

    envs = [Env(tmp_path / f"root{i}", tmp_path / f"run{i}", tmp_path / f"t{i}") for i in (0, 1)]
    try:
        found = []
        for e in envs:
            build_image(e.root, image_rootfs)
            e.prefix = ["nsenter", f"--net={host_ns.path}", "--"]
            cid = e("run", "-d", IMAGE, "sleep", "60", check=True).stdout.strip()
            br = json.loads(e("network", "inspect", "bridge", check=True).stdout)[0]
            found.append((cid, br["Options"]["com.docker.network.bridge.name"], br["IPAM"]["Config"][0]))
        assert [(name, cfg["Subnet"]) for _, name, cfg in found] == [("pallet0", "172.17.0.0/16"),
                                                                     ("pallet1", "172.18.0.0/16")]
        for e, (cid, name, cfg) in zip(envs, found, strict=True):
            assert e("exec", cid, "ping", "-c", "1", "-W", "2", cfg["Gateway"]).returncode == 0
            assert f"{cfg['Gateway']}/16" in host_ns.run("ip", "-o", "addr", "show", "dev", name).stdout
    finally:
        for e in envs:
            e.cleanup()
