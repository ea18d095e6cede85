"""Containers on networks, through the CLI, with pallet's "host" inside a namespace the test made.

Every pallet command runs under `nsenter --net=<the test's namespace>` (Env.prefix): the bridges, veths,
nft rules and containers live there, traffic only flows between them, and the namespace is deleted
afterwards (helpers.netns; the fixture fails a test that changed this machine's own links or tables).
"""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from engine.engine_support import IMAGE, wait_for
from helpers.netns import host_ns_fixture, make_ns_fixture  # noqa: F401 (fixtures host_ns, make_ns)

pytestmark = [pytest.mark.root, pytest.mark.network]


@pytest.fixture
def net(host_ns, pallet_env):
    """pallet_env run inside host_ns (torn down before it: containers are removed inside the namespace)."""
    pallet_env.prefix = ["nsenter", f"--net={host_ns.path}", "--"]
    pallet_env.ns = host_ns
    return pallet_env


def _run_d(env, *args: str) -> str:
    return env("run", "-d", *args, check=True).stdout.strip()


def _inspect(env, ref: str) -> dict:
    return json.loads(env("inspect", ref, check=True).stdout)[0]


def _nft(env) -> str:
    return env.ns.run("nft", "list", "table", "inet", "pallet", check=False).stdout


def test_two_containers_on_a_user_network_ping_each_other(net):
    net("network", "create", "--subnet", "10.77.0.0/24", "web", check=True)
    a = _run_d(net, "--network", "web", "--name", "a", IMAGE, "sleep", "60")
    b = _run_d(net, "--network", "web", "--name", "b", IMAGE, "sleep", "60")
    ia, ib = _inspect(net, a), _inspect(net, b)
    assert ia["NetworkSettings"]["Networks"]["web"]["IPAddress"] == "10.77.0.2"
    assert ib["NetworkSettings"]["Networks"]["web"]["IPAddress"] == "10.77.0.3"
    assert ib["NetworkSettings"]["IPAddress"] == ""      # (docker's: the top-level fields are the default bridge's)
    cp = net("exec", "a", "ping", "-c1", "-W1", "10.77.0.3")
    assert cp.returncode == 0, cp.stdout + cp.stderr
    assert net("exec", "b", "ping", "-c1", "-W1", "10.77.0.1").returncode == 0     # the gateway
    # TCP too (busybox nc), bounded
    server = subprocess.Popen(net.argv("exec", "b", "nc", "-l", "-p", "8080"), env=net.env,
                              stdout=subprocess.PIPE, text=True)
    try:
        for _ in range(50):
            if ":1F90" in net("exec", "b", "cat", "/proc/net/tcp").stdout:
                break
            time.sleep(0.05)
        sent = net("exec", "-i", "a", "nc", "-w", "2", "10.77.0.3", "8080", input="over the bridge\n")
        assert sent.returncode == 0, sent.stderr
        assert server.communicate(timeout=10)[0] == "over the bridge\n"
    finally:
        server.kill()
        server.wait()
    # network inspect lists both, live
    (doc,) = json.loads(net("network", "inspect", "web", check=True).stdout)
    assert {v["Name"]: v["IPv4Address"] for v in doc["Containers"].values()} == \
        {"a": "10.77.0.2/24", "b": "10.77.0.3/24"}
    assert set(doc["Containers"]) == {a, b}
    # ps shows the network
    rows = [json.loads(ln) for ln in net("ps", "--format", "json", check=True).stdout.splitlines()]
    assert {r["Names"]: r["Networks"] for r in rows} == {"a": "web", "b": "web"}


def test_default_bridge_hosts_and_resolv_conf(net):
    cid = _run_d(net, "--network", "bridge", "--name", "hosted", "--add-host", "gw:host-gateway",
                 "--add-host", "db:10.1.2.3", IMAGE, "sleep", "60")
    hosts = net("exec", cid, "cat", "/etc/hosts", check=True).stdout.splitlines()
    assert hosts[:6] == ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback",
                         "fe00::0\tip6-localnet", "ff00::0\tip6-mcastprefix", "ff02::1\tip6-allnodes",
                         "ff02::2\tip6-allrouters"]
    assert hosts[6:] == ["172.17.0.1\tgw", "10.1.2.3\tdb", f"172.17.0.2\t{cid[:12]} hosted"]
    resolv = net("exec", cid, "cat", "/etc/resolv.conf", check=True).stdout
    assert "nameserver" in resolv and "nameserver 127." not in resolv
    assert net("exec", cid, "ip", "route", check=True).stdout.startswith("default via 172.17.0.1")
    # --dns, --dns-search, --dns-option replace those lines
    out = net("run", "--rm", "--network", "bridge", "--dns", "10.0.0.53", "--dns", "10.0.0.54", "--dns-search",
              "example.test", "--dns-option", "ndots:2", IMAGE, "cat", "/etc/resolv.conf", check=True).stdout
    lines = [ln for ln in out.splitlines() if ln.split()[:1] in (["nameserver"], ["search"], ["options"])]
    assert lines == ["nameserver 10.0.0.53", "nameserver 10.0.0.54", "search example.test", "options ndots:2"]


def test_user_network_aliases_ip_mac_and_inspect(net):
    net("network", "create", "--subnet", "10.78.0.0/24", "app", check=True)
    cid = _run_d(net, "--network", "app", "--ip", "10.78.0.50", "--network-alias", "api", "--network-alias",
                 "svc", "--mac-address", "02:42:0a:4e:00:99", "--name", "srv", "-h", "srvhost", IMAGE, "sleep", "60")
    hosts = net("exec", cid, "cat", "/etc/hosts", check=True).stdout.splitlines()
    assert hosts[-1] == "10.78.0.50\tsrvhost srv api svc"
    nid = json.loads(net("network", "inspect", "app", check=True).stdout)[0]["Id"]
    ns = _inspect(net, cid)["NetworkSettings"]
    ep = ns["Networks"]["app"]
    assert (ep["IPAddress"], ep["IPPrefixLen"], ep["Gateway"], ep["MacAddress"]) == \
        ("10.78.0.50", 24, "10.78.0.1", "02:42:0a:4e:00:99")
    assert ep["NetworkID"] == nid and len(ep["EndpointID"]) == 64
    assert ep["Aliases"] == ["api", "svc"] and ep["IPAMConfig"] == {"IPv4Address": "10.78.0.50"}
    assert (ns["IPAddress"], ns["Gateway"], ns["MacAddress"], ns["IPPrefixLen"], ns["EndpointID"]) == ("", "", "", 0, "")
    assert ns["SandboxKey"].startswith("/proc/") and len(ns["SandboxID"]) == 64
    assert "02:42:0a:4e:00:99" in net("exec", cid, "ip", "link", "show", "eth0", check=True).stdout
    # stopped: the endpoint is still configured, without an address
    net("stop", "-t", "0", cid, check=True)
    ep = _inspect(net, cid)["NetworkSettings"]["Networks"]["app"]
    assert ep["IPAddress"] == "" and ep["Aliases"] == ["api", "svc"]
    assert json.loads(net("network", "inspect", "app", check=True).stdout)[0]["Containers"] == {}
    # started again: the same address (--ip)
    net("start", cid, check=True)
    assert _inspect(net, cid)["NetworkSettings"]["Networks"]["app"]["IPAddress"] == "10.78.0.50"


def _veths(env) -> list[str]:
    return [n for n in env.ns.links() if n.startswith("veth")]


def _leases(env) -> list:
    import sqlite3

    con = sqlite3.connect(env.root / "pallet.db")
    try:
        return con.execute("SELECT container_id, address FROM network_leases").fetchall()
    finally:
        con.close()


def test_rm_leaves_no_veth_lease_or_rule(net):
    net("network", "create", "--subnet", "10.79.0.0/24", "tmp", check=True)
    cid = _run_d(net, "--network", "tmp", "-p", "8081:80", IMAGE, "sleep", "60")
    assert len(_veths(net)) == 1 and len(_leases(net)) == 1
    assert cid[:12] in _nft(net)
    net("rm", "-f", cid, check=True)
    assert wait_for(lambda: _veths(net) == [], timeout=5) and _leases(net) == []   # (the kernel frees the veth
    assert cid[:12] not in _nft(net) and "8081" not in _nft(net)                   # with the namespace, async)
    # --rm: the monitor gives everything back when the container exits
    assert net("run", "--rm", "--network", "tmp", IMAGE, "true").returncode == 0
    assert _leases(net) == []
    assert wait_for(lambda: _veths(net) == [], timeout=5)   # (the veth goes with the namespace, after the exit)
    # an exit gives the address back (the next container gets it)
    cid = _run_d(net, "--network", "tmp", IMAGE, "true")
    net("wait", cid, check=True)
    assert _leases(net) == []
    net("rm", cid, check=True)
    # a SIGKILLed monitor: rm -f still cleans up
    cid = _run_d(net, "--network", "tmp", IMAGE, "sleep", "60")
    c = _inspect(net, cid)
    import os
    import signal
    import sqlite3

    con = sqlite3.connect(net.root / "pallet.db")
    (mpid,) = con.execute("SELECT monitor_pid FROM containers WHERE id = ?", (cid,)).fetchone()
    con.close()
    os.kill(mpid, signal.SIGKILL)
    assert c["State"]["Running"]
    os.kill(c["State"]["Pid"], signal.SIGKILL)     # the container dies without its monitor
    deadline = time.monotonic() + 5
    while _inspect(net, cid)["State"]["Running"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _leases(net) != []                      # nobody gave it back yet, but it is not shown
    assert json.loads(net("network", "inspect", "tmp", check=True).stdout)[0]["Containers"] == {}
    net("rm", "-f", cid, check=True)
    assert wait_for(lambda: _veths(net) == [], timeout=5) and _leases(net) == []
    net("network", "rm", "tmp", check=True)


def test_isolation_between_two_networks(net):
    net("network", "create", "--subnet", "10.80.0.0/24", "red", check=True)
    net("network", "create", "--subnet", "10.81.0.0/24", "blue", check=True)
    _run_d(net, "--network", "red", "--name", "r1", IMAGE, "sleep", "60")
    _run_d(net, "--network", "red", "--name", "r2", IMAGE, "sleep", "60")
    _run_d(net, "--network", "blue", "--name", "b1", IMAGE, "sleep", "60")
    assert net("exec", "r1", "ping", "-c1", "-W1", "10.80.0.3").returncode == 0
    assert net("exec", "r1", "ping", "-c1", "-W1", "10.81.0.2").returncode != 0
    assert net("exec", "b1", "ping", "-c1", "-W1", "10.80.0.2").returncode != 0


def test_connect_and_disconnect_a_running_container(net):
    net("network", "create", "--subnet", "10.82.0.0/24", "one", check=True)
    net("network", "create", "--subnet", "10.83.0.0/24", "two", check=True)
    _run_d(net, "--network", "one", "--name", "x", IMAGE, "sleep", "60")
    _run_d(net, "--network", "two", "--name", "y", IMAGE, "sleep", "60")
    assert net("exec", "x", "ping", "-c1", "-W1", "10.83.0.2").returncode != 0
    net("network", "connect", "--ip", "10.83.0.9", "--alias", "ex", "two", "x", check=True)
    assert "10.83.0.9/24" in net("exec", "x", "ip", "addr", "show", "eth1", check=True).stdout
    assert net("exec", "x", "ping", "-c1", "-W1", "10.83.0.2").returncode == 0
    nets = _inspect(net, "x")["NetworkSettings"]["Networks"]
    assert list(nets) == ["one", "two"] and nets["two"]["IPAddress"] == "10.83.0.9"
    assert nets["two"]["Aliases"] == ["ex"]
    assert "10.83.0.9\t" in net("exec", "x", "cat", "/etc/hosts", check=True).stdout
    cp = net("network", "connect", "two", "x")
    assert cp.returncode == 125 and "already connected" in cp.stderr
    net("network", "disconnect", "two", "x", check=True)
    assert "eth1" not in net("exec", "x", "ip", "link", check=True).stdout
    assert net("exec", "x", "ping", "-c1", "-W1", "10.83.0.2").returncode != 0
    assert list(_inspect(net, "x")["NetworkSettings"]["Networks"]) == ["one"]
    assert "10.83.0.9" not in net("exec", "x", "cat", "/etc/hosts", check=True).stdout
    cp = net("network", "disconnect", "two", "x")
    assert cp.returncode == 125 and cp.stderr.count("\n") == 1
    net("network", "disconnect", "-f", "two", "x", check=True)
    # connected while stopped: attached at the next start
    net("stop", "-t", "0", "x", check=True)
    net("network", "connect", "two", "x", check=True)
    net("start", "x", check=True)
    assert _inspect(net, "x")["NetworkSettings"]["Networks"]["two"]["IPAddress"] == "10.83.0.3"


def test_container_mode_shares_the_network(net):
    net("network", "create", "--subnet", "10.84.0.0/24", "shared", check=True)
    _run_d(net, "--network", "shared", "--name", "owner", IMAGE, "sleep", "60")
    out = net("run", "--rm", "--network", "container:owner", IMAGE, "ip", "-o", "addr", check=True).stdout
    assert "10.84.0.2/24" in out


def test_bad_input_is_one_line_and_creates_nothing(net):
    net("network", "create", "--subnet", "10.85.0.0/24", "bad", check=True)
    _run_d(net, "--network", "bad", "--ip", "10.85.0.7", "--name", "holder", IMAGE, "sleep", "60")
    veths = _veths(net)
    cases = [
        (["--network", "nope"], "network nope not found"),
        (["--network", "bad", "--ip", "10.99.0.5"], "not a usable address of subnet 10.85.0.0/24"),
        (["--network", "bad", "--ip", "10.85.0.7"], "already in use"),
        (["--network", "container:ghost"], "No such container: ghost"),
        (["--network", "bad", "-p", "80:70000"], "invalid -p"),
        (["--network", "bridge", "--ip", "172.17.0.9"], "user-defined networks only"),
        (["--network", "bad", "--mac-address", "zz"], "invalid --mac-address"),
        (["--network", "bad", "--add-host", "x:notanip"], "invalid --add-host"),
        (["--network", "bad", "--dns", "resolver.example"], "invalid --dns"),
    ]
    for args, message in cases:
        for verb in ("run", "create"):
            cp = net(verb, "--rm" if verb == "run" else "--label=x", *args, IMAGE, "true")
            assert cp.returncode == 125, (args, cp.stderr)
            assert cp.stderr.count("\n") == 1 and message in cp.stderr, (args, cp.stderr)
    assert len(net.ids()) == 1 and _veths(net) == veths and len(_leases(net)) == 1
    cp = net("network", "connect", "nope", "holder")
    assert cp.returncode == 125 and "network nope not found" in cp.stderr
    cp = net("network", "connect", "bad", "ghost")
    assert cp.returncode == 125 and "No such container" in cp.stderr


HTTPD = ["sh", "-c", "mkdir -p /www && echo hello from $(hostname) > /www/index.html && exec httpd -f -p 80 -h /www"]


def _get(env, url: str) -> subprocess.CompletedProcess:
    """An HTTP GET from pallet's "host" (the test's namespace), retried for at most ~3 s (not busybox
    wget: Debian's static one crashes outside a container)."""
    import sys

    code = "import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=2).read().decode())"
    cp = None
    for _ in range(30):
        cp = env.ns.run(sys.executable, "-c", code, url, check=False)
        if cp.returncode == 0:
            break
        time.sleep(0.1)
    return cp


def test_published_ports(net):
    net("network", "create", "--subnet", "10.86.0.0/24", "pub", check=True)
    cid = _run_d(net, "--network", "pub", "-p", "8080:80", "-p", "127.0.0.1:8081:80", "-p", "9000-9001:90-91/udp",
                 "-p", "80", "-h", "web1", "--name", "web", IMAGE, *HTTPD)
    for url in ("http://127.0.0.1:8080/", "http://10.86.0.1:8080/", "http://127.0.0.1:8081/"):
        cp = _get(net, url)
        assert cp.returncode == 0 and cp.stdout == "hello from web1\n", (url, cp.stderr)
    lines = net("port", cid, check=True).stdout.splitlines()
    random = int(lines[1].rpartition(":")[2])
    assert lines == ["80/tcp -> 0.0.0.0:8080", f"80/tcp -> 0.0.0.0:{random}", "80/tcp -> 127.0.0.1:8081",
                     "90/udp -> 0.0.0.0:9000", "91/udp -> 0.0.0.0:9001"]     # (docker's natural order)
    assert _get(net, f"http://127.0.0.1:{random}/").stdout == "hello from web1\n"
    assert net("port", cid, "90/udp", check=True).stdout == "0.0.0.0:9000\n"
    ports = _inspect(net, cid)["NetworkSettings"]["Ports"]
    assert ports["80/tcp"][:2] == [{"HostIp": "0.0.0.0", "HostPort": "8080"}, {"HostIp": "127.0.0.1", "HostPort": "8081"}]
    assert ports["91/udp"] == [{"HostIp": "0.0.0.0", "HostPort": "9001"}]
    assert "0.0.0.0:8080->80/tcp" in net("ps", check=True).stdout
    # from containers through the host's address: on the same network (hairpin) and on another one
    net("network", "create", "--subnet", "10.87.0.0/24", "other", check=True)
    for network in ("pub", "other"):
        cp = net("run", "--rm", "--network", network, IMAGE, "sh", "-c",   # (busybox wget crashes: nc)
                 "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 10.86.0.1 8080")
        assert cp.returncode == 0 and "200 OK" in cp.stdout and cp.stdout.endswith("hello from web1\n"), \
            (network, cp.stdout, cp.stderr)
    # a port another container holds, a port a host process holds: errors before the container starts
    cp = net("run", "--rm", "--network", "pub", "-p", "8080:80", IMAGE, "true")
    assert cp.returncode == 125 and cp.stderr.count("\n") == 1 and "already published" in cp.stderr, cp.stderr
    holder = subprocess.Popen([*net.ns.prefix(), "busybox", "nc", "-l", "-p", "8090"], stdout=subprocess.DEVNULL)
    try:
        for _ in range(50):
            if ":1F9A" in net.ns.run("cat", "/proc/net/tcp").stdout:
                break
            time.sleep(0.05)
        cp = net("run", "--rm", "--network", "pub", "-p", "8090:80", IMAGE, "true")
        assert cp.returncode == 125 and "already in use" in cp.stderr, cp.stderr
    finally:
        holder.kill()
        holder.wait()
    assert len(net.ids()) == 1
    # disconnect / connect: a new address, the same ports
    net("network", "disconnect", "pub", cid, check=True)
    assert cid[:12] not in _nft(net)      # no network: nothing to forward to
    net("network", "connect", "other", cid, check=True)
    assert _inspect(net, cid)["NetworkSettings"]["Networks"]["other"]["IPAddress"].startswith("10.87.0.")
    for port in (8080, random):
        cp = _get(net, f"http://127.0.0.1:{port}/")
        assert cp.returncode == 0 and cp.stdout == "hello from web1\n", (port, cp.stderr)
    net("network", "disconnect", "other", cid, check=True)
    net("network", "connect", "pub", cid, check=True)
    # restart: the same ports again; rm: no rule left
    net("restart", "-t", "0", cid, check=True)
    cp = _get(net, "http://127.0.0.1:8080/")
    assert cp.returncode == 0 and cp.stdout == "hello from web1\n", cp.stderr
    net("rm", "-f", cid, check=True)
    table = _nft(net)
    assert cid[:12] not in table and "8080" not in table


def test_a_restart_policy_reattaches_on_each_start(net):
    net("network", "create", "--subnet", "10.88.0.0/24", "again", check=True)
    cid = _run_d(net, "--network", "again", "--restart", "on-failure:3", "-p", "8082:80", IMAGE, "sh", "-c",
                 "ip -o -4 addr show eth0 >> /tmp/addrs; cat /tmp/addrs; sleep 0.3; exit 1")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        c = _inspect(net, cid)
        if c["RestartCount"] == 3 and c["State"]["Status"] == "exited":
            break
        time.sleep(0.1)
    assert c["RestartCount"] == 3 and c["State"]["Status"] == "exited", c["State"]
    lines = net("logs", cid, check=True).stdout.splitlines()
    assert len(lines) >= 4 and all("10.88.0.2/24" in ln for ln in lines), lines
    assert _leases(net) == [] and cid[:12] not in _nft(net)
    assert wait_for(lambda: _veths(net) == [], timeout=5)   # (the veth goes with the namespace, after the exit)


def test_start_and_rm_after_a_simulated_reboot(net):
    """Processes killed, run dir, bridge and pallet's table gone, the database kept: start re-makes the
    bridge and rules and gives the container its address again; rm -f of another leaves nothing."""
    import os
    import shutil
    import signal
    import sqlite3

    from helpers.mounts import unmount_all_under

    net("network", "create", "--subnet", "10.89.0.0/24", "boot", check=True)
    a = _run_d(net, "--network", "boot", "--ip", "10.89.0.10", "-p", "8083:80", "-h", "ra", IMAGE, *HTTPD)
    b = _run_d(net, "--network", "boot", IMAGE, "sleep", "60")
    con = sqlite3.connect(net.root / "pallet.db")
    rows = con.execute("SELECT pid, monitor_pid FROM containers").fetchall()
    bridge = con.execute("SELECT bridge FROM networks WHERE name = 'boot'").fetchone()[0]
    con.close()
    for pid, mpid in rows:
        os.kill(mpid, signal.SIGKILL)
        os.kill(pid, signal.SIGKILL)
    time.sleep(0.3)
    shutil.rmtree(net.runroot)
    unmount_all_under(net.root)
    net.ns.run("ip", "link", "del", bridge)
    net.ns.run("nft", "delete", "table", "inet", "pallet")
    net("start", a, check=True)
    assert _inspect(net, a)["NetworkSettings"]["Networks"]["boot"]["IPAddress"] == "10.89.0.10"
    cp = _get(net, "http://127.0.0.1:8083/")
    assert cp.returncode == 0 and cp.stdout == "hello from ra\n", cp.stderr
    net("rm", "-f", b, check=True)
    assert [cid for cid, _ in _leases(net)] == [a]
    net("rm", "-f", a, check=True)
    assert _leases(net) == [] and wait_for(lambda: _veths(net) == [], timeout=5) and a[:12] not in _nft(net)
