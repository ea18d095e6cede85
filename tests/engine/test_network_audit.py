"""Issue #15's requirements not covered elsewhere, through the CLI, with pallet's "host" inside a
namespace the test made (as tests/engine/test_networking.py): UDP and host-address binds with no
userland proxy, ports after a restart policy's restart, 20 concurrent runs, --internal, a SIGKILLed
monitor then start, a kernel refusal half-way, other tables untouched, one nft transaction each way."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from engine.engine_support import IMAGE
from engine.test_networking import HTTPD, _get, _inspect, _leases, _nft, _run_d, _veths
from helpers.netns import host_ns_fixture, make_ns_fixture  # noqa: F401 (fixtures host_ns, make_ns)

pytestmark = [pytest.mark.root, pytest.mark.network]


@pytest.fixture
def net(host_ns, pallet_env):
    """pallet_env run inside host_ns (as in tests/engine/test_networking.py)."""
    pallet_env.prefix = ["nsenter", f"--net={host_ns.path}", "--"]
    pallet_env.ns = host_ns
    return pallet_env


def _wait(pred, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


def _no_veths(env) -> bool:
    return _wait(lambda: _veths(env) == [], 5)


def _listeners(env, port: int) -> list[str]:
    """Sockets of the test's namespace (pallet's host) bound to `port`: TCP listening or UDP."""
    hexport = f":{port:04X}"
    out = []
    for f, state in (("tcp", "0A"), ("tcp6", "0A"), ("udp", None), ("udp6", None)):
        for ln in env.ns.run("cat", f"/proc/net/{f}").stdout.splitlines()[1:]:
            cols = ln.split()
            if cols[1].endswith(hexport) and (state is None or cols[3] == state):
                out.append(f"{f} {cols[1]}")
    return out


def _udp_refused(env, host: str, port: int) -> bool:
    """A datagram from pallet's host to host:port; True when an ICMP port unreachable came back (the
    connected socket's ECONNREFUSED)."""
    code = ("import socket, sys; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1);"
            "s.connect((sys.argv[1], int(sys.argv[2]))); s.send(b'datagram')\n"
            "try: s.recv(100)\nexcept ConnectionRefusedError: sys.exit(0)\nexcept OSError: sys.exit(1)")
    return env.ns.run(sys.executable, "-c", code, host, str(port), check=False).returncode == 0


def _udp_noports(env, cid: str) -> int:
    """The container's count of datagrams that came to a port nothing listens on (/proc/net/snmp)."""
    head, vals = [ln.split() for ln in env("exec", cid, "cat", "/proc/net/snmp", check=True).stdout.splitlines()
                  if ln.startswith("Udp:")]
    return int(vals[head.index("NoPorts")])


def test_udp_and_host_address_binds_are_dnat_with_no_proxy(net):
    net.ns.run("ip", "addr", "add", "192.0.2.10/32", "dev", "lo")     # a host address of pallet's host
    net("network", "create", "--subnet", "10.120.0.0/24", "pu", check=True)
    cid = _run_d(net, "--network", "pu", "-h", "u1", "-p", "192.0.2.10:8085:80", "-p", "8086:5000/udp",
                 IMAGE, *HTTPD)
    cp = _get(net, "http://192.0.2.10:8085/")
    assert cp.returncode == 0 and cp.stdout == "hello from u1\n", cp.stderr
    cp = net.ns.run(sys.executable, "-c", "import urllib.request; urllib.request.urlopen("
                    "'http://127.0.0.1:8085/', timeout=2)", check=False)
    assert cp.returncode != 0          # bound to 192.0.2.10 only
    # UDP to 127.0.0.1 (route_localnet) and to the host address reaches the container (busybox has no
    # UDP server: nothing listens on 5000 there, so its kernel counts the datagram and answers port
    # unreachable, which comes back through the NAT); without the DNAT pallet's host would answer
    for host in ("127.0.0.1", "192.0.2.10"):
        before = _udp_noports(net, cid)
        assert _udp_refused(net, host, 8086), host
        assert _udp_noports(net, cid) == before + 1, host
    # DNAT in pallet's table, no process of pallet's host holds either port
    assert _listeners(net, 8085) == [] and _listeners(net, 8086) == []
    table = _nft(net)
    assert "dnat" in table and "192.0.2.10" in table
    net("rm", "-f", cid, check=True)
    assert "8085" not in _nft(net) and "8086" not in _nft(net)


def test_ports_work_after_a_restart_policy_restarts_the_container(net):
    net("network", "create", "--subnet", "10.126.0.0/24", "rp", check=True)
    cid = _run_d(net, "--network", "rp", "--restart", "always", "-p", "8087:80", "-h", "rp1", IMAGE, *HTTPD)
    assert _get(net, "http://127.0.0.1:8087/").stdout == "hello from rp1\n"
    pid = _inspect(net, cid)["State"]["Pid"]
    os.kill(pid, signal.SIGKILL)          # the process dies (not a stop): the policy starts it again
    assert _wait(lambda: (lambda s: s["RestartCount"] >= 1 and s["State"]["Running"]
                          and s["State"]["Pid"] != pid)(_inspect(net, cid)), 20), _inspect(net, cid)["State"]
    cp = _get(net, "http://127.0.0.1:8087/")
    assert cp.returncode == 0 and cp.stdout == "hello from rp1\n", cp.stderr
    assert len(_leases(net)) == 1
    net("rm", "-f", cid, check=True)
    assert _leases(net) == [] and cid[:12] not in _nft(net) and _no_veths(net)


def test_twenty_concurrent_runs_on_one_network(net):
    net("network", "create", "--subnet", "10.121.0.0/24", "many", check=True)
    procs = [subprocess.Popen(net.argv("run", "-d", "--network", "many", "-p", "80", IMAGE, "sleep", "120"),
                              env=net.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(20)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 20, [e for _, e in outs]
    ids = [o.strip() for o, _ in outs]
    docs = [_inspect(net, cid) for cid in ids]
    addrs = [d["NetworkSettings"]["Networks"]["many"]["IPAddress"] for d in docs]
    ports = [d["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"] for d in docs]
    assert len(set(addrs)) == 20 and all(a.startswith("10.121.0.") for a in addrs), addrs
    assert len(set(ports)) == 20, ports
    for a in addrs:
        assert net.ns.run("busybox", "ping", "-c1", "-W1", a, check=False).returncode == 0, a
    assert len(_veths(net)) == 20 and len(_leases(net)) == 20
    net("rm", "-f", *ids, check=True, timeout=120)
    assert _leases(net) == [] and _no_veths(net)
    table = _nft(net)
    assert not any(cid[:12] in table for cid in ids)
    assert not any(p in table for p in ports)


def test_internal_has_no_default_route_and_no_way_out(net):
    net.ns.run("ip", "addr", "add", "192.0.2.20/32", "dev", "lo")
    holder = subprocess.Popen([*net.ns.prefix(), "busybox", "nc", "-l", "-p", "7000"], stdout=subprocess.DEVNULL)
    try:
        assert _wait(lambda: _listeners(net, 7000) != [])
        net("network", "create", "--internal", "--subnet", "10.122.0.0/24", "priv", check=True)
        a = _run_d(net, "--network", "priv", "--name", "ia", IMAGE, "sleep", "60")
        _run_d(net, "--network", "priv", "--name", "ib", IMAGE, "sleep", "60")
        assert "default" not in net("exec", a, "ip", "route", check=True).stdout
        assert net("exec", a, "ping", "-c1", "-W1", "10.122.0.3").returncode == 0     # inside: fine
        assert net("exec", a, "ping", "-c1", "-W1", "192.0.2.20").returncode != 0
        cp = net("exec", "-i", a, "nc", "-w", "2", "192.0.2.20", "7000", input="out\n")
        assert cp.returncode != 0
    finally:
        holder.kill()
        holder.wait()


def test_isolation_both_ways_over_tcp(net):
    net("network", "create", "--subnet", "10.127.0.0/24", "left", check=True)
    net("network", "create", "--subnet", "10.128.0.0/24", "right", check=True)
    _run_d(net, "--network", "left", "--name", "l1", "-h", "l1", IMAGE, *HTTPD)
    _run_d(net, "--network", "right", "--name", "r1", "-h", "r1", IMAGE, *HTTPD)
    _run_d(net, "--network", "left", "--name", "l2", IMAGE, "sleep", "60")
    get = "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 {} 80"
    assert _wait(lambda: "hello from l1" in net("exec", "l2", "sh", "-c", get.format("10.127.0.2")).stdout)
    assert "hello" not in net("exec", "l2", "sh", "-c", get.format("10.128.0.2")).stdout
    assert "hello" not in net("exec", "r1", "sh", "-c", get.format("10.127.0.2")).stdout
    assert "hello" not in net("exec", "r1", "sh", "-c", get.format("10.127.0.3")).stdout


def _monitor_pid(env, cid: str) -> int:
    import sqlite3

    con = sqlite3.connect(env.root / "pallet.db")
    try:
        return con.execute("SELECT monitor_pid FROM containers WHERE id = ?", (cid,)).fetchone()[0]
    finally:
        con.close()


def test_a_sigkilled_monitor_then_start_and_rm(net):
    net("network", "create", "--subnet", "10.129.0.0/24", "mk", check=True)
    cid = _run_d(net, "--network", "mk", "-p", "8094:80", "-h", "mk1", IMAGE, *HTTPD)
    assert _get(net, "http://127.0.0.1:8094/").stdout == "hello from mk1\n"
    os.kill(_monitor_pid(net, cid), signal.SIGKILL)
    os.kill(_inspect(net, cid)["State"]["Pid"], signal.SIGKILL)
    assert _wait(lambda: not _inspect(net, cid)["State"]["Running"])
    net("start", cid, check=True)
    cp = _get(net, "http://127.0.0.1:8094/")
    assert cp.returncode == 0 and cp.stdout == "hello from mk1\n", cp.stderr
    assert len(_leases(net)) == 1
    assert _wait(lambda: len(_veths(net)) == 1, 5), _veths(net)
    net("rm", "-f", cid, check=True)
    assert _leases(net) == [] and cid[:12] not in _nft(net) and "8094" not in _nft(net) and _no_veths(net)


def _network_id(env, name: str) -> str:
    return json.loads(env("network", "inspect", name, check=True).stdout)[0]["Id"]


def test_a_veth_name_collision_undoes_the_start(net):
    net("network", "create", "--subnet", "10.130.0.0/24", "hv", check=True)
    cid = net("create", "--network", "hv", "-p", "8095:80", "-h", "hv1", IMAGE, *HTTPD, check=True).stdout.strip()
    veth = "veth" + hashlib.sha256(f"{_network_id(net, 'hv')}/{cid}".encode()).hexdigest()[:11]
    net.ns.run("ip", "link", "add", veth, "type", "bridge")          # the kernel refuses the veth pair
    links = net.ns.links()
    cp = net("start", cid)
    assert cp.returncode != 0 and cp.stderr.count("\n") == 1 and veth in cp.stderr, cp.stderr
    assert not _inspect(net, cid)["State"]["Running"]
    assert _leases(net) == [] and cid[:12] not in _nft(net) and "8095" not in _nft(net)
    assert net.ns.links() == links
    net.ns.run("ip", "link", "del", veth)
    net("start", cid, check=True)
    cp = _get(net, "http://127.0.0.1:8095/")
    assert cp.returncode == 0 and cp.stdout == "hello from hv1\n", cp.stderr


def test_a_bridge_name_taken_by_another_link_fails_the_run_and_leaves_nothing(net):
    net("network", "create", "--subnet", "10.131.0.0/24", "-o", "com.docker.network.bridge.name=plt-taken",
        "tk", check=True)
    net.ns.run("ip", "link", "del", "plt-taken")        # (as a reboot would) and a veth takes its name
    net.ns.run("ip", "link", "add", "plt-taken", "type", "veth", "peer", "name", "plt-peer")
    links = net.ns.links()
    cp = net("run", "-d", "--network", "tk", "-p", "8096:80", IMAGE, "sleep", "60")
    assert cp.returncode == 125 and cp.stderr.count("\n") == 1 and "plt-taken" in cp.stderr, cp.stderr
    assert _leases(net) == [] and "8096" not in _nft(net)
    assert net.ns.links() == links
    assert not any(_inspect(net, c)["State"]["Running"] for c in net.ids())


def _others(env) -> list:
    doc = json.loads(env.ns.run("nft", "-j", "list", "ruleset").stdout)["nftables"]
    return [o for o in doc if "metainfo" not in o
            and not any(isinstance(v, dict) and (v.get("family"), v.get("table", v.get("name"))) == ("inet", "pallet")
                        for v in o.values())]


def test_other_tables_are_byte_identical_after_containers_with_ports(net):
    net.ns.run("nft", "add table inet other; add chain inet other c { type filter hook forward priority 10; };"
               " add rule inet other c tcp dport 9999 drop;"
               " add table ip nat; add chain ip nat PREROUTING { type nat hook prerouting priority -100; };"
               " add rule ip nat PREROUTING tcp dport 9998 dnat to 10.9.9.9")
    before = _others(net)
    assert len(before) == 6
    net("network", "create", "--subnet", "10.132.0.0/24", "ot", check=True)
    a = _run_d(net, "--network", "ot", "-p", "8097:80", "-h", "o1", IMAGE, *HTTPD)
    b = _run_d(net, "-p", "8098:80/udp", "-p", "8099:80", IMAGE, "sleep", "60")     # the default bridge
    assert _get(net, "http://127.0.0.1:8097/").stdout == "hello from o1\n"
    net("rm", "-f", a, b, check=True)
    net("network", "rm", "ot", check=True)
    assert _others(net) == before


def _transactions(path) -> list[dict]:
    try:
        with open(path) as f:
            return [json.loads(ln) for ln in f]
    except FileNotFoundError:
        return []


def _chain_handles(env, chain: str) -> list[int]:
    doc = json.loads(env.ns.run("nft", "-a", "-j", "list", "chain", "inet", "pallet", chain).stdout)["nftables"]
    return [o["rule"]["handle"] for o in doc if "rule" in o]


def test_one_transaction_at_setup_and_one_at_teardown(net):
    from pallet.network.firewall import container_chain

    net("network", "create", "--subnet", "10.133.0.0/24", "tx", check=True)
    a = _run_d(net, "--network", "tx", "-p", "8100:80", IMAGE, *HTTPD)
    handles = _chain_handles(net, container_chain(a))
    assert handles
    log = net.tmp / "nft.log"
    net.env["PALLET_NFT_LOG"] = str(log)
    b = _run_d(net, "--network", "tx", "-p", "8101:80", "-p", "8102:81", "-p", "8103:82/udp", "-h", "tb", IMAGE,
               *HTTPD)
    setup = _transactions(log)
    assert len(setup) == 1 and setup[0]["rc"] == 0, setup
    # disconnect from the network its ports forward to: one transaction moves them to the other one's
    net("network", "create", "--subnet", "10.139.0.0/24", "tx2", check=True)
    net("network", "connect", "tx2", b, check=True)
    done = len(_transactions(log))
    net("network", "disconnect", "tx", b, check=True)
    moved = _transactions(log)[done:]
    assert len(moved) == 1 and moved[0]["rc"] == 0, moved
    assert "10.139.0.2" in json.dumps(moved[0]["commands"])
    cp = _get(net, "http://127.0.0.1:8101/")
    assert cp.returncode == 0 and cp.stdout == "hello from tb\n", cp.stderr
    done = len(_transactions(log))
    net("rm", "-f", b, check=True)
    assert _wait(lambda: len(_transactions(log)) > done, 5)
    teardown = _transactions(log)[done:]
    assert len(teardown) == 1 and teardown[0]["rc"] == 0, json.dumps(teardown, indent=1)
    # nothing in either names the other container's chain; its rules are the same rules (handles)
    for t in setup + moved + teardown:
        assert container_chain(a) not in json.dumps(t["commands"])
    assert _chain_handles(net, container_chain(a)) == handles
    assert b[:12] not in _nft(net)


def test_hostname_host_gateway_and_own_hosts_line_on_a_user_network(net):
    net("network", "create", "--subnet", "10.134.0.0/24", "hn", check=True)
    cid = _run_d(net, "--network", "hn", "--name", "srv", "-h", "srvhost", "--add-host", "gw:host-gateway",
                 IMAGE, "sleep", "60")
    hosts = net("exec", cid, "cat", "/etc/hosts", check=True).stdout.splitlines()
    assert "10.134.0.1\tgw" in hosts and hosts[-1] == "10.134.0.2\tsrvhost srv"
    assert net("exec", cid, "ip", "route", check=True).stdout.startswith("default via 10.134.0.1 dev eth0")
    assert "UP" in net("exec", cid, "ip", "link", "show", "lo", check=True).stdout.split(">")[0]   # lo up
    assert net("exec", cid, "ping", "-c1", "-W1", "127.0.0.1").returncode == 0
    cp = net("run", "--rm", "--network", "hn", IMAGE, "nslookup", "srvhost")
    assert cp.returncode == 0 and "10.134.0.2" in cp.stdout, cp.stdout + cp.stderr


def test_network_inspect_has_dockers_keys(net):
    net("network", "create", "--subnet", "10.135.0.0/24", "--label", "a=b", "keys", check=True)
    cid = _run_d(net, "--network", "keys", IMAGE, "sleep", "60")
    (doc,) = json.loads(net("network", "inspect", "keys", check=True).stdout)
    # docker 28's `docker network inspect` of a bridge network, key for key
    assert list(doc) == ["Name", "Id", "Created", "Scope", "Driver", "EnableIPv4", "EnableIPv6", "IPAM", "Internal",
                         "Attachable", "Ingress", "ConfigFrom", "ConfigOnly", "Containers", "Options", "Labels"]
    assert list(doc["Containers"][cid]) == ["Name", "EndpointID", "MacAddress", "IPv4Address", "IPv6Address"]
    ep = doc["Containers"][cid]
    assert ep["Name"] == _inspect(net, cid)["Name"].lstrip("/") and len(ep["EndpointID"]) == 64
    assert (ep["IPv4Address"], ep["MacAddress"], ep["IPv6Address"]) == ("10.135.0.2/24", "02:42:0a:87:00:02", "")
    assert doc["Labels"] == {"a": "b"} and doc["Options"] == {} and doc["Internal"] is False
    assert doc["IPAM"]["Config"] == [{"Subnet": "10.135.0.0/24", "Gateway": "10.135.0.1"}]


def test_an_address_taken_at_start_fails_that_start_and_leaves_nothing(net):
    net("network", "create", "--subnet", "10.136.0.0/24", "ipc", check=True)
    first = net("create", "--network", "ipc", "--ip", "10.136.0.9", IMAGE, "sleep", "60", check=True).stdout.strip()
    second = net("create", "--network", "ipc", "--ip", "10.136.0.9", "-p", "8104:80", IMAGE, "sleep", "60",
                 check=True).stdout.strip()          # (neither holds the address until it starts, as docker)
    net("start", first, check=True)
    veths, table = _veths(net), _nft(net)
    cp = net("start", second)
    assert cp.returncode == 125 and cp.stderr.count("\n") == 1 and "10.136.0.9" in cp.stderr, cp.stderr
    assert not _inspect(net, second)["State"]["Running"]
    assert [c for c, _ in _leases(net)] == [first] and _veths(net) == veths and _nft(net) == table
    net("rm", "-f", first, check=True)
    net("start", second, check=True)
    assert _inspect(net, second)["NetworkSettings"]["Networks"]["ipc"]["IPAddress"] == "10.136.0.9"


def test_rm_takes_the_containers_dns_record(net):
    net("network", "create", "--subnet", "10.137.0.0/24", "dn", check=True)
    _run_d(net, "--network", "dn", "--name", "gone", "--network-alias", "gone-alias", IMAGE, "sleep", "60")
    _run_d(net, "--network", "dn", "--name", "asker", IMAGE, "sleep", "60")
    for name in ("gone", "gone-alias"):
        cp = net("exec", "asker", "nslookup", name)
        assert cp.returncode == 0 and "10.137.0.2" in cp.stdout, cp.stdout + cp.stderr
    net("rm", "-f", "gone", check=True)
    for name in ("gone", "gone-alias"):
        cp = net("exec", "asker", "nslookup", name)
        assert cp.returncode != 0 and "10.137.0.2" not in cp.stdout, cp.stdout


def test_network_ls_table_format(net):
    nid = net("network", "create", "--subnet", "10.138.0.0/24", "tab", check=True).stdout.strip()
    lines = net("network", "ls", "--format", "table", check=True).stdout.splitlines()
    # the docker CLI's tabwriter (minwidth 10, padding 3), as `docker network ls` prints it
    assert lines[0] == "NETWORK ID     NAME      DRIVER    SCOPE"
    assert f"{nid[:12]}   tab       bridge    local" in lines
    assert net("network", "ls", check=True).stdout.splitlines() == lines
