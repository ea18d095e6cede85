"""Name resolution on user networks: the network's DNS server (pallet.network.dns), driven through the CLI
with pallet's "host" inside a namespace the test made, queried by busybox `nslookup` in the containers.

The host's upstream resolvers are a tiny resolver this test runs inside that namespace (on 127.0.0.53 and
127.0.0.54), named to pallet by $PALLET_RESOLV_CONF.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from engine.engine_support import IMAGE, Env, build_image, wait_for
from helpers.netns import host_ns_fixture, make_ns_fixture  # noqa: F401 (fixtures host_ns, make_ns)

pytestmark = [pytest.mark.root, pytest.mark.network]

# The upstream: NAME A ADDRESS for the names it knows, NXDOMAIN for the others (stdlib only, one socket).
UPSTREAM = textwrap.dedent("""
    import socket, struct, sys
    addr, known = sys.argv[1], dict(kv.split("=") for kv in sys.argv[2:])
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((addr, 53))
    print("ready", flush=True)
    while True:
        q, peer = s.recvfrom(4096)
        i, labels = 12, []
        while q[i]:
            labels.append(q[i + 1:i + 1 + q[i]].decode()); i += 1 + q[i]
        qtype = struct.unpack("!H", q[i + 1:i + 3])[0]
        name, end = ".".join(labels).lower(), i + 5
        ip = known.get(name)
        rcode = 0 if ip else 3
        ans = b"" if not ip or qtype != 1 else struct.pack("!HHHIH", 0xC00C, 1, 1, 60, 4) + socket.inet_aton(ip)
        head = struct.pack("!HHHHHH", struct.unpack("!H", q[:2])[0], 0x8180 | rcode, 1, 1 if ans else 0, 0, 0)
        s.sendto(head + q[12:end] + ans, peer)
""")


@pytest.fixture
def net(host_ns, tmp_path: Path, busybox_rootfs: Path):
    """A private store with localhost/busybox, pallet run inside host_ns, two upstream resolvers there."""
    root, run = tmp_path / "root", tmp_path / "run"
    build_image(root, busybox_rootfs)
    env = Env(root, run, tmp_path)
    env.prefix = ["nsenter", f"--net={host_ns.path}", "--"]
    env.ns = host_ns
    resolv = tmp_path / "host-resolv.conf"
    resolv.write_text("nameserver 127.0.0.53\n")
    env.env["PALLET_RESOLV_CONF"] = str(resolv)
    upstreams = []
    try:
        for addr, known in (("127.0.0.53", "upstream.test=192.0.2.7 upstream.example.test=192.0.2.9"), ("127.0.0.54", "upstream.test=192.0.2.8")):
            p = subprocess.Popen([*host_ns.prefix(), sys.executable, "-c", UPSTREAM, addr, *known.split()],
                                 stdout=subprocess.PIPE, text=True)
            upstreams.append(p)
            assert p.stdout.readline() == "ready\n"
        yield env
    finally:
        env.cleanup()
        for p in upstreams:
            p.kill()
            p.wait()
        for pid in dns_servers(root):     # a server the test's failure left
            os.kill(pid, signal.SIGKILL)


def dns_servers(root: Path) -> list[int]:
    """The pids of the DNS servers of the store at `root` (by their command line)."""
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            argv = (d / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"pallet.network.dns" in argv and str(root / "pallet.db").encode() in argv:
            out.append(int(d.name))
    return out


def _run_d(env, *args: str) -> str:
    return env("run", "-d", *args, check=True).stdout.strip()


def lookup(env, ctr: str, name: str) -> list[str] | None:
    """The addresses busybox nslookup prints for `name` inside `ctr` (None: it could not resolve it)."""
    cp = env("exec", ctr, "nslookup", "-type=a", name)
    if cp.returncode != 0:
        return None
    answer = cp.stdout.split("\n\n", 1)[1] if "\n\n" in cp.stdout else ""
    return [ln.split()[-1] for ln in answer.splitlines() if ln.startswith("Address")]


def test_containers_resolve_each_other_on_a_user_network(net):
    net("network", "create", "--subnet", "10.81.0.0/24", "web", check=True)
    net("network", "create", "--subnet", "10.82.0.0/24", "other", check=True)
    a = _run_d(net, "--network", "web", "--name", "a", "--network-alias", "db", "-h", "ahost", IMAGE, "sleep", "120")
    b = _run_d(net, "--network", "web", "--name", "b", IMAGE, "sleep", "120")
    _run_d(net, "--network", "other", "--name", "c", IMAGE, "sleep", "120")
    resolv = net("exec", "b", "cat", "/etc/resolv.conf", check=True).stdout
    assert [ln for ln in resolv.splitlines() if ln.startswith("nameserver")] == ["nameserver 10.81.0.1"]
    for name in ("a", "db", "ahost", a[:12], "A"):        # name, alias, hostname, short id; any case
        assert lookup(net, "b", name) == ["10.81.0.2"], name
    assert lookup(net, "a", "b") == ["10.81.0.3"]
    assert lookup(net, "a", b[:12]) == ["10.81.0.3"]
    assert lookup(net, "b", "c") is None                 # on another network: forwarded, NXDOMAIN upstream
    assert lookup(net, "c", "a") is None
    assert lookup(net, "b", "upstream.test") == ["192.0.2.7"]  # forwarded to the host's resolver
    # TCP too (nslookup has no TCP mode: a query by hand)
    query = net("exec", "b", "sh", "-c", "printf '\\000\\023\\000\\001\\001\\000\\000\\001\\000\\000\\000\\000"
                "\\000\\000\\001a\\000\\000\\001\\000\\001' | nc -w 2 10.81.0.1 53 | od -An -tu1")
    assert query.returncode == 0, query.stderr
    assert query.stdout.split()[-4:] == ["10", "81", "0", "2"]
    # one server per network with DNS and containers (web, other)
    assert len(dns_servers(net.root)) == 2
    # stop: the name is gone; rm: the server of a network with no container goes
    net("stop", "-t", "0", "a", check=True)
    assert lookup(net, "b", "a") is None
    net("start", "a", check=True)
    assert lookup(net, "b", "db") == ["10.81.0.2"]
    net("rm", "-f", "c", check=True)
    assert len(dns_servers(net.root)) == 1
    # a SIGKILLed monitor: rm -f still takes the name away
    os.kill(_monitor_pid(net, a), signal.SIGKILL)
    net("rm", "-f", "a", check=True)
    assert lookup(net, "b", "a") is None and lookup(net, "b", "db") is None
    net("rm", "-f", "b", check=True)
    assert dns_servers(net.root) == []
    out = net.ns.run("ss", "-lnup").stdout + net.ns.run("ss", "-lntp").stdout
    assert "10.81.0.1:53" not in out
    net("network", "rm", "web", "other", check=True)


def _monitor_pid(env, cid: str) -> int:
    import sqlite3

    con = sqlite3.connect(env.root / "pallet.db")
    try:
        return con.execute("SELECT monitor_pid FROM containers WHERE id = ?", (cid,)).fetchone()[0]
    finally:
        con.close()


def test_dns_flags_on_a_user_network(net):
    """--dns: the network's server stays the name server and forwards that container's other names to
    the --dns servers (docker's embedded DNS); --dns-search and --dns-option are applied."""
    net("network", "create", "--subnet", "10.83.0.0/24", "web", check=True)
    _run_d(net, "--network", "web", "--name", "a", "--dns", "127.0.0.54", "--dns-option", "ndots:2", IMAGE,
           "sleep", "120")
    _run_d(net, "--network", "web", "--name", "b", "--dns-search", "example.test", IMAGE, "sleep", "120")
    resolv = net("exec", "a", "cat", "/etc/resolv.conf", check=True).stdout.splitlines()
    assert "nameserver 10.83.0.1" in resolv and "nameserver 127.0.0.54" not in resolv
    assert "options ndots:2" in resolv and "# ExtServers: [127.0.0.54]" in resolv
    assert "search example.test" in net("exec", "b", "cat", "/etc/resolv.conf", check=True).stdout.splitlines()
    assert lookup(net, "a", "upstream.test") == ["192.0.2.8"]       # a's --dns
    assert lookup(net, "b", "upstream.test") == ["192.0.2.7"]       # the host's
    assert lookup(net, "b", "upstream") == ["192.0.2.9"]            # b's search domain applied
    assert lookup(net, "a", "b") == ["10.83.0.3"]                   # the network's names still first


def test_disable_dns_and_the_default_bridge_have_no_names(net):
    net("network", "create", "--subnet", "10.84.0.0/24", "--disable-dns", "quiet", check=True)
    for network in ("quiet", "bridge"):
        _run_d(net, "--network", network, "--name", f"{network}-a", IMAGE, "sleep", "120")
        _run_d(net, "--network", network, "--name", f"{network}-b", IMAGE, "sleep", "120")
        resolv = net("exec", f"{network}-b", "cat", "/etc/resolv.conf", check=True).stdout
        assert [ln for ln in resolv.splitlines() if ln.startswith("nameserver")] == ["nameserver 127.0.0.53"] \
            or "nameserver 8.8.8.8" in resolv        # (the host's: loopback ones are dropped)
        gw = "10.84.0.1" if network == "quiet" else "172.17.0.1"
        assert net("exec", f"{network}-b", "nslookup", f"{network}-a", gw).returncode != 0
    assert dns_servers(net.root) == []


def test_network_rm_and_disconnect_end_the_server(net):
    net("network", "create", "--subnet", "10.85.0.0/24", "web", check=True)
    net("network", "create", "--subnet", "10.86.0.0/24", "back", check=True)
    _run_d(net, "--network", "web", "--name", "a", IMAGE, "sleep", "120")
    _run_d(net, "--network", "web", "--name", "b", IMAGE, "sleep", "120")
    net("network", "connect", "--alias", "api", "back", "a", check=True)
    _run_d(net, "--network", "back", "--name", "c", IMAGE, "sleep", "120")
    assert lookup(net, "c", "api") == ["10.86.0.2"] and lookup(net, "c", "a") == ["10.86.0.2"]
    assert lookup(net, "b", "api") is None            # the alias is a's on `back` only
    # a is on both networks: it resolves c (on `back` only) through web's server too, as docker's
    # embedded DNS does; b (on `web` only) does not
    assert net("exec", "a", "cat", "/etc/resolv.conf", check=True).stdout.count("nameserver 10.85.0.1") == 1
    assert lookup(net, "a", "c") == ["10.86.0.3"] and lookup(net, "b", "c") is None
    net("network", "disconnect", "back", "a", check=True)
    assert lookup(net, "c", "a") is None
    net("rm", "-f", "c", check=True)
    assert wait_for(lambda: len(dns_servers(net.root)) == 1)
    net("network", "rm", "back", check=True)
    net("rm", "-f", "a", "b", check=True)
    assert dns_servers(net.root) == []
    assert not list((net.root / "network").glob("dns-*.pid")) or \
        all(not p.read_text().strip() for p in (net.root / "network").glob("dns-*.pid"))


def test_aaaa_on_an_ipv6_network(net):
    """A network with IPv6: a container's name answers its IPv6 address too (AAAA); on an IPv4-only
    network the AAAA question of a known name is an empty answer, not NXDOMAIN."""
    net("network", "create", "--ipv6", "--subnet", "10.87.0.0/24", "--subnet", "fd00:87::/64", "six", check=True)
    net("network", "create", "--subnet", "10.88.0.0/24", "four", check=True)
    for network in ("six", "four"):
        _run_d(net, "--network", network, "--name", f"{network}-a", IMAGE, "sleep", "120")
        _run_d(net, "--network", network, "--name", f"{network}-b", IMAGE, "sleep", "120")
    cp = net("exec", "six-b", "nslookup", "-type=aaaa", "six-a", check=True)
    assert "Address: fd00:87::2" in cp.stdout
    cp = net("exec", "four-b", "nslookup", "-type=aaaa", "four-a")
    assert "NXDOMAIN" not in cp.stdout and "fd00" not in cp.stdout
    assert lookup(net, "four-b", "four-a") == ["10.88.0.2"]


def test_concurrent_starts_make_one_server(net):
    """Eight containers started at once on a new network: one server (the pid file's lock), all names."""
    import concurrent.futures

    net("network", "create", "--subnet", "10.89.0.0/24", "busy", check=True)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: _run_d(net, "--network", "busy", "--name", f"c{i}", IMAGE, "sleep", "120"),
                      range(8)))
    assert len(dns_servers(net.root)) == 1
    addresses = {lookup(net, "c0", f"c{i}")[0] for i in range(8)}
    assert len(addresses) == 8 and all(a.startswith("10.89.0.") for a in addresses)


def _nameservers(env, ctr: str) -> list[str]:
    text = env("exec", ctr, "cat", "/etc/resolv.conf", check=True).stdout
    return [ln.split()[1] for ln in text.splitlines() if ln.split()[:1] == ["nameserver"]]


def test_connect_to_a_dns_network_rewrites_resolv_conf(net):
    """A container on the default bridge (the host's resolvers) connected to a user network with DNS:
    its /etc/resolv.conf names that network's server at once, as docker's sandbox does when an
    endpoint that needs the embedded DNS joins; a --disable-dns network changes nothing; disconnect
    gives the host's resolvers back."""
    net("network", "create", "--subnet", "10.89.0.0/24", "web", check=True)
    net("network", "create", "--subnet", "10.90.0.0/24", "--disable-dns", "plain", check=True)
    _run_d(net, "--network", "web", "--name", "db", IMAGE, "sleep", "120")
    _run_d(net, "--name", "app", "--dns-option", "ndots:1", IMAGE, "sleep", "120")
    host = _nameservers(net, "app")
    assert "10.89.0.1" not in host and lookup(net, "app", "db") is None
    net("network", "connect", "plain", "app", check=True)
    assert _nameservers(net, "app") == host
    net("network", "connect", "web", "app", check=True)
    assert _nameservers(net, "app") == ["10.89.0.1"]
    assert "options ndots:1" in net("exec", "app", "cat", "/etc/resolv.conf", check=True).stdout.splitlines()
    assert lookup(net, "app", "db") == ["10.89.0.2"]
    assert lookup(net, "app", "upstream.test") == ["192.0.2.7"]      # the rest still forwarded
    net("network", "disconnect", "web", "app", check=True)
    assert _nameservers(net, "app") == host
    assert lookup(net, "app", "db") is None
