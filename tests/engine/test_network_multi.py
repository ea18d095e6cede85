"""-P/--publish-all, several --network, and what ps/inspect/stats/port show of a container's network,
with pallet's "host" inside a namespace the test made (as tests/engine/test_networking.py)."""

from __future__ import annotations

import json

import pytest

from engine.engine_support import IMAGE, build_image
from engine.test_networking import HTTPD, _get, _inspect, _nft, _run_d
from helpers.netns import host_ns_fixture, make_ns_fixture  # noqa: F401 (fixtures host_ns, make_ns)

pytestmark = [pytest.mark.root, pytest.mark.network]


@pytest.fixture
def net(host_ns, pallet_env):
    """pallet_env run inside host_ns (as in tests/engine/test_networking.py)."""
    pallet_env.prefix = ["nsenter", f"--net={host_ns.path}", "--"]
    pallet_env.ns = host_ns
    return pallet_env

WEB = "localhost/web:latest"


def _ephemeral() -> tuple[int, int]:
    lo, hi = open("/proc/sys/net/ipv4/ip_local_port_range").read().split()
    return int(lo), int(hi)


@pytest.fixture
def web(net, image_rootfs):
    """An image that EXPOSEs 80/tcp and 5353/udp."""
    build_image(net.root, image_rootfs, WEB, {"Cmd": HTTPD, "Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"],
                                              "ExposedPorts": {"80/tcp": {}, "5353/udp": {}}})
    return net


def _port_lines(env, ref: str) -> dict[str, str]:
    return dict(ln.split(" -> ") for ln in env("port", ref, check=True).stdout.splitlines())


def test_publish_all_maps_every_exposed_port_to_a_random_free_port(web):
    net = web
    net("network", "create", "--subnet", "10.90.0.0/24", "pa", check=True)
    a = _run_d(net, "--network", "pa", "-P", "--expose", "7000-7001", "-h", "pa1", WEB)
    ports = _port_lines(net, a)
    assert set(ports) == {"80/tcp", "5353/udp", "7000/tcp", "7001/tcp"}
    lo, hi = _ephemeral()
    used = set()
    for key, where in ports.items():
        ip, _, port = where.rpartition(":")
        assert ip == "0.0.0.0" and lo <= int(port) <= hi, (key, where)
        used.add(int(port))
    assert len(used) == 4
    cp = _get(net, f"http://127.0.0.1:{ports['80/tcp'].rpartition(':')[2]}/")
    assert cp.returncode == 0 and cp.stdout == "hello from pa1\n", cp.stderr
    c = _inspect(net, a)
    assert c["HostConfig"]["PublishAllPorts"] is True and c["HostConfig"]["PortBindings"] == {}
    assert set(c["Config"]["ExposedPorts"]) == {"80/tcp", "5353/udp", "7000/tcp", "7001/tcp"}
    assert c["NetworkSettings"]["Ports"]["80/tcp"] == [{"HostIp": "0.0.0.0",
                                                        "HostPort": ports["80/tcp"].rpartition(":")[2]}]
    # a -p of an exposed port wins over -P for that port; a second -P container gets other ports
    b = _run_d(net, "--network", "pa", "-P", "-p", "8085:80", "-h", "pa2", WEB)
    pb = _port_lines(net, b)
    assert pb["80/tcp"] == "0.0.0.0:8085" and set(pb) == {"80/tcp", "5353/udp"}
    assert int(pb["5353/udp"].rpartition(":")[2]) not in used
    assert _get(net, "http://127.0.0.1:8085/").stdout == "hello from pa2\n"
    # stop and start: -P ports are chosen again at each start (docker's), and still work
    net("stop", "-t", "0", a, check=True)
    assert net("port", a, check=True).stdout == ""
    net("start", a, check=True)
    again = _port_lines(net, a)
    assert set(again) == set(ports)
    assert _get(net, f"http://127.0.0.1:{again['80/tcp'].rpartition(':')[2]}/").stdout == "hello from pa1\n"
    # -P without a network publishes nothing (and is no error); bad --expose is one line, 125
    assert net("run", "--rm", "--network", "none", "-P", WEB, "true").returncode == 0
    cp = net("run", "--rm", "--expose", "80/icmp", WEB, "true")
    assert cp.returncode == 125 and cp.stderr.count("\n") == 1 and "invalid --expose" in cp.stderr
    net("rm", "-f", a, b, check=True)
    assert "ct-" not in _nft(net)


def test_several_networks_one_endpoint_each(net):
    net("network", "create", "--subnet", "10.91.0.0/24", "front", check=True)
    net("network", "create", "--subnet", "10.92.0.0/24", "back", check=True)
    _run_d(net, "--network", "back", "--name", "db", IMAGE, "sleep", "60")
    cid = _run_d(net, "--network", "front", "--network", "back", "--ip", "10.91.0.40", "--network-alias", "api",
                 "-p", "8086:80", "--name", "app", "-h", "app1", IMAGE, *HTTPD)
    c = _inspect(net, cid)
    assert c["HostConfig"]["NetworkMode"] == "front"
    nets = c["NetworkSettings"]["Networks"]
    assert list(nets) == ["front", "back"]
    # --ip and --network-alias are the first network's (docker's rule)
    assert nets["front"]["IPAddress"] == "10.91.0.40" and nets["front"]["Aliases"] == ["api"]
    assert nets["front"]["IPAMConfig"] == {"IPv4Address": "10.91.0.40"}
    assert nets["back"]["IPAddress"] == "10.92.0.3" and nets["back"]["Aliases"] is None
    assert nets["back"]["IPAMConfig"] is None
    assert c["NetworkSettings"]["IPAddress"] == ""   # docker: the top-level fields are the default bridge's
    addrs = net("exec", cid, "ip", "-o", "-4", "addr", check=True).stdout
    assert "10.91.0.40/24" in addrs
    assert "10.92.0.3/24" in addrs
    assert net("exec", cid, "ping", "-c1", "-W1", "10.92.0.2").returncode == 0      # db, on back
    assert net("exec", cid, "ip", "route", check=True).stdout.startswith("default via 10.91.0.1")
    hosts = net("exec", cid, "cat", "/etc/hosts", check=True).stdout
    assert "10.91.0.40\tapp1 app api" in hosts and "10.92.0.3\tapp1 app" in hosts
    rows = [json.loads(ln) for ln in net("ps", "--format", "json", check=True).stdout.splitlines()]
    assert {r["Names"]: r["Networks"] for r in rows}["app"] == "front,back"
    # the published port goes to the first network's address
    assert _get(net, "http://127.0.0.1:8086/").stdout == "hello from app1\n"
    assert "10.91.0.40" in _nft(net)
    # disconnect the first: the port follows the remaining network's address; connect again: still there
    net("network", "disconnect", "front", cid, check=True)
    assert "10.92.0.3" in _nft(net) and "10.91.0.40" not in _nft(net)
    assert _get(net, "http://127.0.0.1:8086/").stdout == "hello from app1\n"
    net("network", "connect", "front", cid, check=True)
    assert list(_inspect(net, cid)["NetworkSettings"]["Networks"]) == ["back", "front"]
    assert _get(net, "http://127.0.0.1:8086/").stdout == "hello from app1\n"
    # restart: both endpoints again
    net("restart", "-t", "0", cid, check=True)
    nets = _inspect(net, cid)["NetworkSettings"]["Networks"]
    assert sorted(n for n, ep in nets.items() if ep["IPAddress"]) == ["back", "front"]
    assert _get(net, "http://127.0.0.1:8086/").stdout == "hello from app1\n"
    net("rm", "-f", cid, check=True)
    assert cid[:12] not in _nft(net)


@pytest.mark.parametrize("args, message", [
    (["--network", "front", "--network", "host"], "conflicting options"),
    (["--network", "none", "--network", "front"], "conflicting options"),
    (["--network", "front", "--network", "front"], "specified multiple times"),
    (["--network", "front", "--network", "nope"], "network nope not found"),
])
def test_several_networks_bad_input(net, args, message):
    net("network", "create", "--subnet", "10.93.0.0/24", "front", check=True)
    for verb in ("run", "create"):
        cp = net(verb, *args, IMAGE, "true")
        assert cp.returncode == 125 and cp.stderr.count("\n") == 1 and message in cp.stderr, cp.stderr
    assert net.ids() == []


def test_host_network_with_publish_warns_and_discards(net):
    cp = net("run", "--rm", "--network", "host", "-p", "8087:80", IMAGE, "true")
    assert cp.returncode == 0, cp.stderr
    assert cp.stderr == "WARNING: Published ports are discarded when using host network mode\n"
    cid = net("create", "--network", "host", "-p", "8087:80", IMAGE, "true", check=True).stdout.strip()
    assert _inspect(net, cid)["HostConfig"]["PortBindings"] == {}


# ---- what ps, inspect, stats and port show ----------------------------------------------------------
def _swagger_properties(vendor_data, name: str) -> list[str]:
    """The property names of definition `name` in the Engine API's swagger (v1.50, docker 28's), in order."""
    import re

    lines = (vendor_data / "docker-engine-api" / "swagger-v1.50.yaml").read_text().splitlines()
    i = lines.index(f"  {name}:")
    out, inside = [], False
    for ln in lines[i + 1:]:
        if re.match(r"^  \S", ln):
            break
        if ln == "    properties:":
            inside = True
            continue
        if inside and re.match(r"^    \S", ln):
            inside = False
        m = re.match(r"^      ([A-Za-z0-9]+):\s*$", ln)
        if inside and m:
            out.append(m.group(1))
    return out


def test_inspect_network_settings_in_the_engine_api_shape(net, vendor_data):
    net("network", "create", "--subnet", "10.94.0.0/24", "shape", check=True)
    cid = _run_d(net, "--network", "shape", "--network-alias", "api", "--name", "shaped", "-h", "sh1",
                 "--expose", "81", "-p", "8088:80", IMAGE, *HTTPD)
    br = _run_d(net, "--network", "bridge", "-p", "8089:80", IMAGE, *HTTPD)
    ns = _inspect(net, cid)["NetworkSettings"]
    assert list(ns) == ["Bridge", "SandboxID", "SandboxKey", "Ports", "HairpinMode", "LinkLocalIPv6Address",
                        "LinkLocalIPv6PrefixLen", "SecondaryIPAddresses", "SecondaryIPv6Addresses", "EndpointID",
                        "Gateway", "GlobalIPv6Address", "GlobalIPv6PrefixLen", "IPAddress", "IPPrefixLen",
                        "IPv6Gateway", "MacAddress", "Networks"]      # (docker 28's order)
    assert set(ns) == set(_swagger_properties(vendor_data, "NetworkSettings"))
    ep = ns["Networks"]["shape"]
    assert set(ep) == set(_swagger_properties(vendor_data, "EndpointSettings"))
    assert ns["Bridge"] == "" and len(ns["SandboxID"]) == 64 and ns["SandboxKey"].endswith("/ns/net")
    assert ns["Ports"] == {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8088"}], "81/tcp": None}
    assert ep["DNSNames"] == ["shaped", "api", cid[:12], "sh1"] and ep["Aliases"] == ["api"]
    assert ep["Links"] is None and ep["DriverOpts"] is None and ep["GwPriority"] == 0
    assert (ep["IPv6Gateway"], ep["GlobalIPv6Address"], ep["GlobalIPv6PrefixLen"]) == ("", "", 0)
    # the default bridge: the top-level fields are its endpoint's; no DNS names there (as docker)
    bs = _inspect(net, br)["NetworkSettings"]
    bep = bs["Networks"]["bridge"]
    assert bep["IPAddress"].startswith("172.17.0.") and bep["DNSNames"] is None
    assert (bs["IPAddress"], bs["Gateway"], bs["MacAddress"], bs["IPPrefixLen"], bs["EndpointID"]) == \
        (bep["IPAddress"], bep["Gateway"], bep["MacAddress"], 16, bep["EndpointID"])
    # stopped: no ports, no sandbox, the endpoint without addresses
    net("stop", "-t", "0", cid, check=True)
    ns = _inspect(net, cid)["NetworkSettings"]
    assert ns["Ports"] == {} and ns["SandboxID"] == "" and ns["SandboxKey"] == ""
    assert ns["Networks"]["shape"]["IPAddress"] == "" and ns["Networks"]["shape"]["Aliases"] == ["api"]


def test_ps_ports_column_and_port_in_dockers_format(net):
    net("network", "create", "--subnet", "10.95.0.0/24", "cols", check=True)
    cid = _run_d(net, "--network", "cols", "--name", "cols", "-p", "8000-8003:8000-8003", "-p", "9000-9001:80-81",
                 "-p", "127.0.0.1:5353:53/udp", "--expose", "443-444", IMAGE, "sleep", "60")
    rows = [json.loads(ln) for ln in net("ps", "--format", "json", check=True).stdout.splitlines()]
    # docker's CLI: host port = container port runs collapse; other mappings one by one, after the groups
    assert rows[0]["Ports"] == ("443-444/tcp, 0.0.0.0:8000-8003->8000-8003/tcp, 127.0.0.1:5353->53/udp, "
                                "0.0.0.0:9000->80/tcp, 0.0.0.0:9001->81/tcp")
    table = net("ps", check=True).stdout.splitlines()
    header = table[0]
    assert header.index("PORTS") < header.index("NAMES")
    assert table[1][header.index("PORTS"):].startswith("443-444/tcp, 0.0.0.0:8000-8003->8000-8003/tcp, ")
    assert net("port", cid, check=True).stdout.splitlines() == [
        "53/udp -> 127.0.0.1:5353", "80/tcp -> 0.0.0.0:9000", "81/tcp -> 0.0.0.0:9001",
        "8000/tcp -> 0.0.0.0:8000", "8001/tcp -> 0.0.0.0:8001", "8002/tcp -> 0.0.0.0:8002",
        "8003/tcp -> 0.0.0.0:8003"]
    assert net("port", cid, "53/udp", check=True).stdout == "127.0.0.1:5353\n"
    cp = net("port", cid, "443")
    assert cp.returncode != 0 and "No public port '443/tcp' published for cols" in cp.stderr
    net("stop", "-t", "0", cid, check=True)
    rows = [json.loads(ln) for ln in net("ps", "-a", "--format", "json", check=True).stdout.splitlines()]
    assert rows[0]["Ports"] == ""


def _counters(env, cid: str) -> tuple[int, int]:
    """rx, tx bytes of the container's interfaces but lo, read inside it (busybox's /sys)."""
    out = env("exec", cid, "cat", "/proc/net/dev", check=True).stdout.splitlines()[2:]
    rx = tx = 0
    for ln in out:
        name, _, rest = ln.partition(":")
        if name.strip() != "lo":
            f = rest.split()
            rx, tx = rx + int(f[0]), tx + int(f[8])
    return rx, tx


def _bytes(text: str) -> float:
    """docker's decimal size ("21.9kB") as a number of bytes."""
    for unit, mult in (("kB", 1e3), ("MB", 1e6), ("GB", 1e9), ("B", 1)):
        if text.endswith(unit):
            return float(text[:-len(unit)]) * mult
    raise ValueError(text)


def test_stats_net_io_is_the_containers_interface_counters(net):
    net("network", "create", "--subnet", "10.96.0.0/24", "io", check=True)
    cid = _run_d(net, "--network", "io", IMAGE, "sleep", "60")
    assert net("exec", cid, "ping", "-c", "20", "-i", "0.05", "-s", "1000", "10.96.0.1").returncode == 0
    before = _counters(net, cid)
    row = json.loads(net("stats", "--no-stream", "--format", "json", cid, check=True).stdout)
    after = _counters(net, cid)
    assert before[0] > 20_000 and before[1] > 20_000
    shown = [_bytes(x) for x in row["NetIO"].split(" / ")]
    assert all(len(x.rstrip("kMGB").replace(".", "")) <= 3 for x in row["NetIO"].split(" / "))  # 3 digits
    for got, lo, hi in zip(shown, before, after, strict=True):
        # (3 significant digits; a router solicitation may come between the readings)
        assert lo * 0.995 <= got <= hi * 1.005, (row["NetIO"], before, after)
    # --network host: docker shows no network I/O of its own; none: only lo, so 0B
    host = _run_d(net, "--network", "host", IMAGE, "sleep", "60")
    none = _run_d(net, "--network", "none", IMAGE, "sleep", "60")
    for ref in (host, none):
        row = json.loads(net("stats", "--no-stream", "--format", "json", ref, check=True).stdout)
        assert row["NetIO"] == "0B / 0B", (ref, row)


# ---- bad input: one sentence, exit 125, nothing created -------------------------------------------
@pytest.mark.parametrize("args, message", [
    (["--network", "container:stopped"], "cannot join the network of container stopped: it is not running"),
    (["--network", "container:"], "it needs a container name or id"),
    (["--network", "bad", "-p", "eighty"], "invalid -p 'eighty'"),
    (["--network", "bad", "-p", "1.2.3.4:1:2:3"], "too many colons"),
    (["--network", "bad", "-p", "8080:80/icmp"], "protocol 'icmp' is not supported"),
    (["--network", "bad", "-p", "8000-8002:80-81"], "differ in length"),
    (["--network", "bad", "-p", "300.1.1.1:8080:80"], "is not an IP address"),
    (["--network", "bad", "-p", "8080:80", "-p", "8080:81"], "published twice"),
    (["--network", "container:holder", "-p", "8080:80"], "conflicting options: port publishing"),
    (["--network", "container:holder", "-P"], "conflicting options: port publishing"),
    (["--network", "container:holder", "--expose", "80"], "conflicting options: port exposing"),
    (["--network", "none", "-p", "8080:80"], "need a network"),
    (["--network", "bad", "--ip", "10.97.0.1"], "the network's gateway"),
    (["--network", "bad", "--ip", "10.97.0.255"], "not a usable address"),
    (["--network", "bad", "--ip", "ten"], "invalid IP address"),
    (["--network", "bad", "--expose", "0"], "invalid --expose"),
])
def test_bad_network_input_of_run_and_create(net, args, message):
    net("network", "create", "--subnet", "10.97.0.0/24", "bad", check=True)
    holder = _run_d(net, "--network", "bad", "--name", "holder", IMAGE, "sleep", "60")
    net("create", "--name", "stopped", IMAGE, "true", check=True)
    before = sorted(net.ids())
    table = _nft(net)
    for verb in ("run", "create"):
        cp = net(verb, *args, IMAGE, "true")
        assert cp.returncode == 125 and cp.stderr.count("\n") == 1 and message in cp.stderr, (verb, cp.stderr)
    assert sorted(net.ids()) == before and _nft(net) == table
    assert len(_inspect(net, holder)["NetworkSettings"]["Networks"]) == 1


@pytest.mark.parametrize("args, message", [
    (["--subnet", "not-a-cidr", "x"], "invalid subnet"),
    (["--subnet", "10.98.0.1/24", "x"], "host bits are set"),
    (["--subnet", "10.98.0.0/24", "--gateway", "10.98.0.255", "x"], "broadcast address"),
    (["--subnet", "10.98.0.0/24", "--gateway", "gw", "x"], "invalid gateway"),
])
def test_bad_subnets_create_no_network(net, args, message):
    before = net("network", "ls", "-q", "--no-trunc", check=True).stdout
    cp = net("network", "create", *args)
    assert cp.returncode == 125 and cp.stderr.count("\n") == 1 and message in cp.stderr, cp.stderr
    assert net("network", "ls", "-q", "--no-trunc", check=True).stdout == before


def test_sctp_ports_are_published_like_tcp_and_udp(web):
    """-p …/sctp and an EXPOSEd sctp port under -P: the DNAT rule matches SCTP (this kernel may have no
    SCTP sockets to try it with: the rule, port, ps and inspect are what is checked)."""
    net = web
    net("network", "create", "--subnet", "10.99.1.0/24", "sc", check=True)
    cid = _run_d(net, "--network", "sc", "-p", "9132:132/sctp", "-P", "--expose", "7132/sctp", WEB)
    ports = _port_lines(net, cid)
    assert ports["132/sctp"] == "0.0.0.0:9132" and ports["7132/sctp"].startswith("0.0.0.0:")
    table = _nft(net)
    assert "sctp" in table and "dport 9132 dnat ip to 10.99.1.2:132" in table, table
    rows = [json.loads(ln) for ln in net("ps", "--format", "json", check=True).stdout.splitlines()]
    assert "0.0.0.0:9132->132/sctp" in rows[0]["Ports"]
    assert _inspect(net, cid)["NetworkSettings"]["Ports"]["132/sctp"] == [{"HostIp": "0.0.0.0", "HostPort": "9132"}]
    net("rm", "-f", cid, check=True)
    assert "9132" not in _nft(net)


def test_concurrent_publish_all_gets_distinct_ports(web):
    """Eight -P containers started at once on one network: each start publishes its own random ports
    (a port another start took between the pick and the transaction is picked again)."""
    import subprocess

    net = web
    net("network", "create", "--subnet", "10.99.2.0/24", "many", check=True)
    procs = [subprocess.Popen(net.argv("run", "-d", "--network", "many", "-P", WEB), env=net.env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(8)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _, err in outs]
    seen = set()
    for out, _ in outs:
        for key, where in _port_lines(net, out.strip()).items():
            seen.add((key.partition("/")[2], where.rpartition(":")[2]))
    assert len(seen) == 8 * 2       # 80/tcp and 5353/udp each, all different
