"""IPv6 networks: `network create --ipv6`, `--ip6`, addresses on the bridge and in containers (usable at
once: no DAD), the default route, DNAT of published ports to the container's IPv6 address, reachability
from pallet's "host" (the test's namespace) and between containers — all inside a namespace the test made."""

from __future__ import annotations

import json
import sys

import pytest

from engine.engine_support import IMAGE
from engine.test_networking import HTTPD, _inspect, _nft, _run_d
from helpers.netns import host_ns_fixture, make_ns_fixture  # noqa: F401 (fixtures host_ns, make_ns)

pytestmark = [pytest.mark.root, pytest.mark.network]


@pytest.fixture
def net(host_ns, pallet_env):
    """pallet_env run inside host_ns (as in tests/engine/test_networking.py)."""
    pallet_env.prefix = ["nsenter", f"--net={host_ns.path}", "--"]
    pallet_env.ns = host_ns
    return pallet_env


def _get(env, url: str):
    """An HTTP GET from the test's namespace, retried for at most ~3 s."""
    import time

    code = "import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=2).read().decode())"
    cp = None
    for _ in range(30):
        cp = env.ns.run(sys.executable, "-c", code, url, check=False)
        if cp.returncode == 0:
            break
        time.sleep(0.1)
    return cp


def test_ipv6_network_addresses_routes_and_reachability(net):
    net("network", "create", "--ipv6", "--subnet", "10.60.0.0/24", "--subnet", "fd00:60::/64", "six", check=True)
    (doc,) = json.loads(net("network", "inspect", "six", check=True).stdout)
    assert doc["EnableIPv6"] is True
    assert doc["IPAM"]["Config"] == [{"Subnet": "10.60.0.0/24", "Gateway": "10.60.0.1"},
                                     {"Subnet": "fd00:60::/64", "Gateway": "fd00:60::1"}]
    bridge = json.loads(net("network", "inspect", "six", check=True).stdout)[0]["Id"][:12]
    assert "fd00:60::1/64" in net.ns.run("ip", "-6", "addr", "show", f"br-{bridge}").stdout
    a = _run_d(net, "--network", "six", "--ip6", "fd00:60::50", "-p", "8090:80", "--name", "a", "-h", "six-a",
               IMAGE, *HTTPD)
    b = _run_d(net, "--network", "six", "--name", "b", IMAGE, "sleep", "60")
    ep = _inspect(net, a)["NetworkSettings"]["Networks"]["six"]
    assert (ep["GlobalIPv6Address"], ep["GlobalIPv6PrefixLen"], ep["IPv6Gateway"]) == ("fd00:60::50", 64, "fd00:60::1")
    assert ep["IPAMConfig"] == {"IPv6Address": "fd00:60::50"} and ep["IPAddress"] == "10.60.0.2"
    assert _inspect(net, b)["NetworkSettings"]["Networks"]["six"]["GlobalIPv6Address"] == "fd00:60::2"
    # the address is usable at once (not "tentative": no duplicate address detection) and routed
    addr = net("exec", a, "ip", "-6", "addr", "show", "eth0", check=True).stdout
    (line,) = [ln for ln in addr.splitlines() if "fd00:60::50/64" in ln]
    assert "tentative" not in line, addr
    assert "default via fd00:60::1" in net("exec", a, "ip", "-6", "route", check=True).stdout
    assert "fd00:60::50\tsix-a a" in net("exec", a, "cat", "/etc/hosts", check=True).stdout
    # container -> container over IPv6: ping and TCP
    assert net("exec", b, "ping", "-c1", "-W2", "fd00:60::50").returncode == 0
    cp = net("exec", b, "sh", "-c", "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 fd00:60::50 80")
    assert cp.returncode == 0 and cp.stdout.endswith("hello from six-a\n"), (cp.stdout, cp.stderr)
    # host (the test's namespace) -> container, directly and through the published port (DNAT, v6)
    cp = _get(net, "http://[fd00:60::50]/")
    assert cp.returncode == 0 and cp.stdout == "hello from six-a\n", cp.stderr
    cp = _get(net, "http://[fd00:60::1]:8090/")
    assert cp.returncode == 0 and cp.stdout == "hello from six-a\n", cp.stderr
    cp = _get(net, "http://10.60.0.1:8090/")
    assert cp.returncode == 0 and cp.stdout == "hello from six-a\n", cp.stderr
    # container -> another's published port through the gateway's IPv6 address (hairpin)
    cp = net("exec", b, "sh", "-c", "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 fd00:60::1 8090")
    assert cp.returncode == 0 and cp.stdout.endswith("hello from six-a\n"), (cp.stdout, cp.stderr)
    # what ps, port, inspect and network inspect show
    rows = [json.loads(ln) for ln in net("ps", "--format", "json", check=True).stdout.splitlines()]
    assert {r["Names"]: r["Ports"] for r in rows}["a"] == "0.0.0.0:8090->80/tcp, [::]:8090->80/tcp"
    assert net("port", a, check=True).stdout.splitlines() == ["80/tcp -> 0.0.0.0:8090", "80/tcp -> [::]:8090"]
    assert _inspect(net, a)["NetworkSettings"]["Ports"]["80/tcp"] == [
        {"HostIp": "0.0.0.0", "HostPort": "8090"}, {"HostIp": "::", "HostPort": "8090"}]
    (doc,) = json.loads(net("network", "inspect", "six", check=True).stdout)
    assert doc["Containers"][a]["IPv6Address"] == "fd00:60::50/64"
    # rm: no address, rule or veth left
    net("rm", "-f", a, b, check=True)
    table = _nft(net)
    assert a[:12] not in table and "fd00:60::50" not in table


def test_ipv6_only_binds_and_a_ula_subnet_picked_for_ipv6(net):
    net("network", "create", "--ipv6", "ula", check=True)
    (doc,) = json.loads(net("network", "inspect", "ula", check=True).stdout)
    v6 = doc["IPAM"]["Config"][1]
    assert v6["Subnet"].startswith("fd") and v6["Subnet"].endswith("::/64") and v6["Gateway"].endswith("::1")
    gw = v6["Gateway"]
    c = _run_d(net, "--network", "ula", "-p", "[::]:8093:80", "-p", "0.0.0.0:8094:80", "-h", "ula1", IMAGE, *HTTPD)
    assert net("port", c, check=True).stdout.splitlines() == ["80/tcp -> 0.0.0.0:8094", "80/tcp -> [::]:8093"]
    assert _get(net, f"http://[{gw}]:8093/").stdout == "hello from ula1\n"
    assert _get(net, "http://127.0.0.1:8094/").stdout == "hello from ula1\n"
    ns_v6 = _get(net, f"http://[{gw}]:8094/")           # 0.0.0.0 is IPv4 only (docker's)
    assert ns_v6.returncode != 0


@pytest.mark.parametrize("args, message", [
    (["--network", "v4only", "--ip6", "fd00:61::5"], "was not created with --ipv6"),
    (["--network", "six", "--ip6", "fd00:62::5"], "not a usable address of subnet fd00:61::/64"),
    (["--network", "six", "--ip6", "fd00:61::1"], "the network's gateway"),
    (["--network", "six", "--ip6", "nope"], "invalid IPv6 address"),
    (["--network", "six", "-p", "[::1]:8095:80"], "IPv6 loopback"),
    (["--network", "v4only", "-p", "[::]:8095:80"], "has no IPv6 address"),
    (["--network", "none", "--ip6", "fd00:61::5"], "--ip6 needs a network"),
])
def test_ipv6_bad_input(net, args, message):
    net("network", "create", "--ipv6", "--subnet", "fd00:61::/64", "six", check=True)
    net("network", "create", "v4only", check=True)
    for verb in ("run", "create"):
        cp = net(verb, *args, IMAGE, "true")
        assert cp.returncode == 125 and cp.stderr.count("\n") == 1 and message in cp.stderr, (verb, cp.stderr)
    assert net.ids() == []


@pytest.mark.parametrize("args, message", [
    (["--subnet", "fd00:63::1/64", "x"], "host bits are set"),
    (["--subnet", "fd00:63::/64", "--gateway", "fd00:64::1", "x"], "is not in subnet"),
    (["--subnet", "fd00:63::/64", "--subnet", "fd00:65::/64", "x"], "one IPv6 subnet per network"),
    (["--ipv6", "--subnet", "fd00:66::/56", "x"], "overlaps subnet fd00:66::/64 of network taken"),
])
def test_ipv6_bad_network_create(net, args, message):
    net("network", "create", "--ipv6", "--subnet", "fd00:66::/64", "taken", check=True)
    before = net("network", "ls", "-q", "--no-trunc", check=True).stdout
    cp = net("network", "create", *args)
    assert cp.returncode == 125 and cp.stderr.count("\n") == 1 and message in cp.stderr, cp.stderr
    assert net("network", "ls", "-q", "--no-trunc", check=True).stdout == before


def test_connect_ip6_and_published_ports_follow_to_the_new_ipv6_address(net):
    net("network", "create", "--ipv6", "--subnet", "fd00:67::/64", "v6a", check=True)
    net("network", "create", "--ipv6", "--subnet", "fd00:68::/64", "v6b", check=True)
    c = _run_d(net, "--network", "v6a", "-p", "8096:80", "-h", "mover", IMAGE, *HTTPD)
    assert _get(net, "http://[fd00:67::1]:8096/").stdout == "hello from mover\n"
    net("network", "disconnect", "v6a", c, check=True)
    net("network", "connect", "--ip6", "fd00:68::77", "v6b", c, check=True)
    ep = _inspect(net, c)["NetworkSettings"]["Networks"]["v6b"]
    assert ep["GlobalIPv6Address"] == "fd00:68::77" and ep["IPAMConfig"] == {"IPv6Address": "fd00:68::77"}
    assert "fd00:68::77/64" in net("exec", c, "ip", "-6", "addr", check=True).stdout
    # the same host port, now DNATed to the new IPv6 address (and the IPv4 one)
    assert "dnat ip6 to [fd00:68::77]:80" in _nft(net) and "dnat ip6 to [fd00:67::" not in _nft(net)
    assert _get(net, "http://[fd00:68::1]:8096/").stdout == "hello from mover\n"
    cp = net("network", "connect", "--ip6", "fd00:68::77", "v6a", c)
    assert cp.returncode == 125 and "not a usable address of subnet fd00:67::/64" in cp.stderr
    net("restart", "-t", "0", c, check=True)
    assert _inspect(net, c)["NetworkSettings"]["Networks"]["v6b"]["GlobalIPv6Address"] == "fd00:68::77"
    assert _get(net, "http://[fd00:68::1]:8096/").stdout == "hello from mover\n"


def test_ipv6_isolation_between_networks_and_internal(net, vendor_data):
    net("network", "create", "--ipv6", "--subnet", "fd00:69::/64", "red6", check=True)
    net("network", "create", "--ipv6", "--subnet", "fd00:70::/64", "blue6", check=True)
    net("network", "create", "--ipv6", "--internal", "--subnet", "fd00:71::/64", "inner6", check=True)
    _run_d(net, "--network", "red6", "--name", "r1", IMAGE, "sleep", "60")
    _run_d(net, "--network", "red6", "--name", "r2", IMAGE, "sleep", "60")
    _run_d(net, "--network", "blue6", "--name", "b1", IMAGE, "sleep", "60")
    _run_d(net, "--network", "inner6", "--name", "i1", IMAGE, "sleep", "60")
    assert net("exec", "r1", "ping", "-c1", "-W1", "fd00:69::3").returncode == 0
    assert net("exec", "r1", "ping", "-c1", "-W1", "fd00:70::2").returncode != 0
    assert net("exec", "b1", "ping", "-c1", "-W1", "fd00:69::2").returncode != 0
    assert net("exec", "i1", "ping", "-c1", "-W1", "fd00:69::2").returncode != 0     # --internal: no way out
    assert "default" not in net("exec", "i1", "ip", "-6", "route", check=True).stdout
    # network inspect has the Engine API's fields (v1.50: EnableIPv4 beside EnableIPv6)
    import re

    lines = (vendor_data / "docker-engine-api" / "swagger-v1.50.yaml").read_text().splitlines()
    i = lines.index("  Network:")
    fields = []
    for ln in lines[i + 1:]:
        if re.match(r"^  \S", ln):
            break
        m = re.match(r"^      ([A-Za-z0-9]+):\s*$", ln)
        if m:
            fields.append(m.group(1))
    (doc,) = json.loads(net("network", "inspect", "red6", check=True).stdout)
    assert set(doc) == set(fields) - {"Peers"}       # (Peers: swarm overlay networks only)
    assert doc["EnableIPv4"] is True and doc["EnableIPv6"] is True


def test_an_ipv6_host_port_in_use_fails_the_start(net):
    import subprocess

    net("network", "create", "--ipv6", "--subnet", "fd00:72::/64", "busy6", check=True)
    code = ("import socket, sys, time; s = socket.socket(socket.AF_INET6); "
            "s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1); s.bind(('::', 8097)); s.listen(); "
            "print('ready', flush=True); time.sleep(60)")
    holder = subprocess.Popen([*net.ns.prefix(), sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "ready\n"
        cp = net("run", "--rm", "--network", "busy6", "-p", "8097:80", IMAGE, "true")
        assert cp.returncode == 125 and cp.stderr.count("\n") == 1, cp.stderr
        assert "cannot publish [::]:8097/tcp: the port is already in use on the host" in cp.stderr, cp.stderr
        # IPv4 only (0.0.0.0) does not collide with an IPv6-only listener
        cid = _run_d(net, "--network", "busy6", "-p", "0.0.0.0:8097:80", IMAGE, "sleep", "60")
        assert net("port", cid, check=True).stdout == "80/tcp -> 0.0.0.0:8097\n"
    finally:
        holder.kill()
        holder.wait()
    assert len(net.ids()) == 1          # (the --rm run that failed left nothing)
