"""The bridge driver and the networks store, driven inside namespaces the tests make.

Each test's "host" is a fresh network namespace (`host_ns`) where pallet runs (nsenter --net) and
keeps its bridges and rules; "containers" are further namespaces attached to it. Traffic goes only
between them. This machine's own namespace is compared before and after.
"""

from __future__ import annotations

import json
import sys
import textwrap

import pytest

from helpers.netns import host_ns_fixture, make_ns_fixture  # noqa: F401 (fixtures host_ns, make_ns)

pytestmark = [pytest.mark.root, pytest.mark.network]


def py(ns, root, code: str, check: bool = True):
    """Run `code` with `nets` (Networks over a store at `root`) inside namespace `ns`; its stdout as JSON."""
    prog = textwrap.dedent("""
        import json, sys
        from pallet.store import Store
        from pallet.network.networks import Networks
        from pallet.errors import PalletError
        nets = Networks(Store(sys.argv[1]))
        def out(x): print(json.dumps(x, default=str))
    """) + textwrap.dedent(code)
    cp = ns.run(sys.executable, "-c", prog, str(root), check=False)
    if check and cp.returncode != 0:
        raise AssertionError(cp.stderr)
    return cp


def ping(ns, addr: str) -> bool:
    return ns.run("busybox", "ping", "-c", "1", "-W", "1", addr, check=False).returncode == 0


def test_two_containers_on_a_network_talk_and_teardown_leaves_nothing(host_ns, make_ns, tmp_path):
    a, b = make_ns("a"), make_ns("b")
    cp = py(host_ns, tmp_path, f"""
        net = nets.create("web")
        la = nets.attach("{a.path}", "web", "a" * 64, "ctr-a")
        lb = nets.attach("{b.path}", "web", "b" * 64, "ctr-b")
        out([str(net.ipam.subnet), net.bridge, la.address, lb.address, la.mac, la.host_ifname, lb.host_ifname])
    """)
    subnet, br, addr_a, addr_b, mac_a, veth_a, veth_b = json.loads(cp.stdout)
    assert subnet == "172.18.0.0/16"            # 172.17.0.0/16 is the default bridge's
    assert (addr_a, addr_b, mac_a) == ("172.18.0.2", "172.18.0.3", "02:42:ac:12:00:02")
    assert {br, veth_a, veth_b} <= set(host_ns.links())
    # the container side: eth0 with the address, lo up, default route via the gateway
    assert "172.18.0.2/16" in a.run("ip", "-o", "addr", "show", "dev", "eth0").stdout
    assert "UP" in a.run("ip", "-o", "link", "show", "lo").stdout
    assert a.run("ip", "route").stdout.startswith("default via 172.18.0.1 dev eth0")
    assert ping(a, addr_b) and ping(b, addr_a) and ping(a, "172.18.0.1")
    # data: the leases show in inspect
    cp = py(host_ns, tmp_path, 'out(nets.inspect(nets.get("web")))')
    containers = json.loads(cp.stdout)["Containers"]
    assert containers["a" * 64]["IPv4Address"] == "172.18.0.2/16"
    assert containers["b" * 64]["Name"] == "ctr-b"
    # rm refuses a network in use
    cp = py(host_ns, tmp_path, """
        try:
            nets.remove("web")
        except PalletError as e:
            out(e.message)
    """)
    assert "in use" in json.loads(cp.stdout)
    # detach: veth and lease gone; a freed address is leased again
    py(host_ns, tmp_path, f"""
        nets.detach("web", "a" * 64)
        out(nets.attach("{a.path}", "web", "c" * 64, "ctr-c").address)
        nets.detach_all("c" * 64); nets.detach_all("b" * 64)
        nets.remove("web")
    """)
    links = host_ns.links()
    assert br not in links and veth_a not in links and veth_b not in links
    assert "eth0" not in a.links() and "eth0" not in b.links()
    assert "nw-" not in host_ns.run("nft", "list", "ruleset").stdout
    cp = py(host_ns, tmp_path, 'out([nets.leases(), [n.name for n in nets.list()]])')
    assert json.loads(cp.stdout) == [[], ["bridge", "host", "none"]]


def test_the_default_bridge_is_made_on_first_attach(host_ns, make_ns, tmp_path):
    a = make_ns("a")
    cp = py(host_ns, tmp_path, f'out(nets.attach("{a.path}", "bridge", "a" * 64, "x").address)')
    assert json.loads(cp.stdout) == "172.17.0.2"
    assert "pallet0" in host_ns.links()
    assert ping(a, "172.17.0.1")


def test_networks_are_isolated_and_internal_has_no_way_out(host_ns, make_ns, tmp_path):
    a, b, c = make_ns("a"), make_ns("b"), make_ns("c")
    cp = py(host_ns, tmp_path, f"""
        nets.create("one", subnet="10.31.0.0/24")
        nets.create("two", subnet="10.32.0.0/24")
        nets.create("priv", subnet="10.33.0.0/24", internal=True)
        out([nets.attach("{a.path}", "one", "a" * 64, "a").address,
             nets.attach("{b.path}", "two", "b" * 64, "b").address,
             nets.attach("{c.path}", "priv", "c" * 64, "c").address])
    """)
    addr_a, addr_b, addr_c = json.loads(cp.stdout)
    assert ping(a, "10.31.0.1") and ping(b, "10.32.0.1")
    assert not ping(a, addr_b) and not ping(b, addr_a)
    assert c.run("ip", "route").stdout.strip() == "10.33.0.0/24 dev eth0 proto kernel scope link src 10.33.0.2"
    assert not ping(c, addr_a)
    assert host_ns.run("cat", "/proc/sys/net/ipv4/ip_forward").stdout.strip() == "1"
    ruleset = host_ns.run("nft", "list", "ruleset").stdout
    # one and two, not the internal network (the base chain's 127.0.0.0/8 one is for published ports)
    assert sum("masquerade" in ln and "127.0.0.0/8" not in ln and "dnat" not in ln
               for ln in ruleset.splitlines()) == 2
    assert ruleset.startswith("table inet pallet") and ruleset.count("table ") == 1


def test_other_tables_are_never_touched(host_ns, tmp_path):
    host_ns.run("nft", "add table ip theirs; add chain ip theirs c { type filter hook input priority 0; };"
                " add rule ip theirs c counter")
    before = host_ns.run("nft", "list", "table", "ip", "theirs").stdout
    py(host_ns, tmp_path, 'nets.create("web"); nets.remove("web")')
    assert host_ns.run("nft", "list", "table", "ip", "theirs").stdout == before


def test_subnets_routed_in_the_namespace_are_skipped(host_ns, tmp_path):
    host_ns.run("ip", "link", "add", "d0", "type", "bridge")      # (no dummy module on every kernel)
    host_ns.run("ip", "link", "set", "d0", "up")
    host_ns.run("ip", "addr", "add", "172.17.5.1/24", "dev", "d0")
    host_ns.run("ip", "route", "add", "172.19.0.0/16", "dev", "d0")
    cp = py(host_ns, tmp_path, """
        nets.create("x")
        out([str(n.ipam.subnet) for n in nets.list() if n.ipam])
    """)
    assert json.loads(cp.stdout) == ["172.18.0.0/16", "172.20.0.0/16"]   # bridge, then x


def test_a_kernel_failure_half_way_undoes_the_lease(host_ns, make_ns, tmp_path):
    a = make_ns("a")
    a.run("ip", "link", "add", "eth0", "type", "bridge")       # eth0 taken: the container gets eth1
    cp = py(host_ns, tmp_path, f"""
        nets.create("web", subnet="10.40.0.0/24")
        out(nets.attach("{a.path}", "web", "a" * 64, "a").ifname)
        try:
            nets.attach("/run/netns/no-such-namespace", "web", "b" * 64, "b")
        except PalletError as e:
            out(e.message)
        out([le.address for le in nets.leases()])
    """)
    ifname, error, leases = (json.loads(x) for x in cp.stdout.splitlines())
    assert ifname == "eth1"
    assert "no-such-namespace" in error
    assert leases == ["10.40.0.2"]
    assert len([n for n in host_ns.links() if n.startswith("veth")]) == 1


def test_twenty_concurrent_leases_get_twenty_addresses(host_ns, tmp_path):
    py(host_ns, tmp_path, 'nets.create("web", subnet="10.50.0.0/24")')
    code = """
        import os
        net = nets.get("web")
        pids = []
        for i in range(20):
            pid = os.fork()
            if pid == 0:
                from pallet.store import Store
                mine = Networks(Store(sys.argv[1]))
                mine._lease(net, f"{i:064x}", f"c{i}", None, "eth0")
                os._exit(0)
            pids.append(pid)
        codes = [os.waitpid(p, 0)[1] for p in pids]
        out([codes, sorted(le.address for le in nets.leases())])
    """
    codes, addresses = json.loads(py(host_ns, tmp_path, code).stdout)
    assert codes == [0] * 20
    assert addresses == sorted(f"10.50.0.{i}" for i in range(2, 22))


def test_rm_after_the_bridge_and_rules_vanished(host_ns, tmp_path):
    """A reboot (or someone) removed the bridge and pallet's table: rm still succeeds and leaves nothing."""
    py(host_ns, tmp_path, 'nets.create("x", subnet="10.70.0.0/24")')
    for link in host_ns.links():
        if link.startswith("br-"):
            host_ns.run("ip", "link", "del", link)
    host_ns.run("nft", "delete", "table", "inet", "pallet")
    py(host_ns, tmp_path, 'nets.remove("x")')
    assert not [n for n in host_ns.links() if n.startswith("br-")]
    assert "nw-" not in host_ns.run("nft", "list", "ruleset").stdout
