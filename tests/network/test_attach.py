"""The engine's calls: `pallet.network.attach(store, netns_path, network, container_id, name)` and
`detach`/`detach_all`, with a real process's /proc/PID/ns/net as the container's namespace."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time

import pytest

from helpers.netns import host_ns_fixture, make_ns_fixture  # noqa: F401 (fixtures host_ns, make_ns)

pytestmark = [pytest.mark.root, pytest.mark.network]

PRELUDE = """
import json, sys
from pallet.store import Store
from pallet import network
import pallet.network.networks
from pallet.errors import PalletError
store = Store(sys.argv[1])
def out(x): print(json.dumps(x, default=str), flush=True)
"""


def py(ns, root, code: str) -> list:
    cp = ns.run(sys.executable, "-c", PRELUDE + textwrap.dedent(code), str(root), check=False)
    assert cp.returncode == 0, cp.stderr
    return [json.loads(ln) for ln in cp.stdout.splitlines()]


@pytest.fixture
def container(host_ns):
    """Start "containers": processes with a network namespace of their own (unshare -n), killed at the end."""
    procs = []

    def start() -> subprocess.Popen:
        p = subprocess.Popen([*host_ns.prefix(), "unshare", "--net", "sleep", "60"])
        procs.append(p)
        for _ in range(100):      # until unshare has exec'd sleep in the new namespace
            try:
                with open(f"/proc/{p.pid}/cmdline", "rb") as f:
                    if f.read().startswith(b"sleep"):
                        break
            except FileNotFoundError:
                pass
            time.sleep(0.01)
        return p

    try:
        yield start
    finally:
        for p in procs:
            p.kill()
            p.wait()


def in_ctr(pid: int, *argv: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(["nsenter", f"--net=/proc/{pid}/ns/net", *argv], capture_output=True, text=True,
                          timeout=20, **kw)


def test_attach_gives_a_working_interface_and_tcp_flows(host_ns, container, tmp_path):
    a, b = container(), container()
    (la, lb) = py(host_ns, tmp_path, f"""
        network.attach(store, "/proc/{a.pid}/ns/net", "bridge", "a" * 64, "ctr-a")
        lease = network.attach(store, "/proc/{b.pid}/ns/net", "bridge", "b" * 64, "ctr-b")
        out([{{"address": le.address, "prefixlen": le.prefixlen, "gateway": le.gateway, "mac": le.mac,
              "ifname": le.ifname, "endpoint": le.endpoint_id}} for le in network.networks.Networks(store).leases()])
    """)[0]
    assert la["address"] == "172.17.0.2" and lb["address"] == "172.17.0.3"
    assert la["gateway"] == "172.17.0.1" and la["prefixlen"] == 16 and la["ifname"] == "eth0"
    assert len(la["endpoint"]) == 64
    assert "02:42:ac:11:00:02" in in_ctr(a.pid, "ip", "-o", "link", "show", "eth0").stdout
    # TCP from one container to the other (busybox nc, bounded by timeouts)
    server = subprocess.Popen(["nsenter", f"--net=/proc/{b.pid}/ns/net", "busybox", "nc", "-l", "-p", "8080"],
                              stdout=subprocess.PIPE, text=True)
    try:
        for _ in range(50):
            if ":1F90" in in_ctr(b.pid, "cat", "/proc/net/tcp").stdout:
                break
            time.sleep(0.05)
        sent = in_ctr(a.pid, "busybox", "nc", "-w", "2", "172.17.0.3", "8080", input="hello over the bridge\n")
        assert sent.returncode == 0, sent.stderr
        assert server.communicate(timeout=10)[0] == "hello over the bridge\n"
    finally:
        server.kill()
        server.wait()


def test_detach_after_the_container_died_and_attach_after_a_reboot(host_ns, container, tmp_path):
    a = container()
    py(host_ns, tmp_path, f'network.attach(store, "/proc/{a.pid}/ns/net", "bridge", "a" * 64, "a")')
    assert any(n.startswith("veth") for n in host_ns.links())
    a.kill()
    a.wait()                                   # its namespace (and the veth pair) went with it
    (gone,) = py(host_ns, tmp_path, 'out([le.address for le in network.detach_all(store, "a" * 64)])')
    assert gone == ["172.17.0.2"]
    assert py(host_ns, tmp_path, 'out(network.detach(store, "bridge", "a" * 64))') == [None]
    # a "reboot": the bridge and the rules are gone, the database is not; the next attach remakes them
    host_ns.run("ip", "link", "del", "pallet0")
    host_ns.run("nft", "delete", "table", "inet", "pallet")
    b = container()
    (addr,) = py(host_ns, tmp_path, f'out(network.attach(store, "/proc/{b.pid}/ns/net", "bridge", "b" * 64, "b").address)')
    assert addr == "172.17.0.2"                # the dead container's address was given back
    assert "pallet0" in host_ns.links() and "masquerade" in host_ns.run("nft", "list", "ruleset").stdout
    assert in_ctr(b.pid, "busybox", "ping", "-c", "1", "-W", "1", "172.17.0.1").returncode == 0


def test_attach_errors_are_sentences_and_leave_nothing(host_ns, container, tmp_path):
    a = container()
    (errors,) = py(host_ns, tmp_path, f"""
        network.attach(store, "/proc/{a.pid}/ns/net", "bridge", "a" * 64, "a")
        errs = []
        for args in [("/proc/{a.pid}/ns/net", "bridge", "a" * 64, "a"),      # attached already
                     ("/proc/{a.pid}/ns/net", "nope", "b" * 64, "b"),        # unknown network
                     ("/proc/{a.pid}/ns/net", "host", "b" * 64, "b"),        # a mode, not a network
                     ("/proc/{a.pid}/ns/net", "bridge", "b" * 64, "b", "172.17.0.2")]:   # --ip taken
            try:
                network.attach(store, *args[:4], ip=args[4] if len(args) > 4 else None)
            except PalletError as e:
                errs.append([e.message, e.exit_code])
        out(errs)
    """)
    assert [m for m, _ in errors] == [
        "container a is already attached to network bridge", "network nope not found",
        "containers cannot be attached to network host (driver host): it is a mode, not a network",
        "IP address 172.17.0.2 is already in use on the network"]
    assert {c for _, c in errors} == {125}
    assert len([n for n in host_ns.links() if n.startswith("veth")]) == 1
    assert in_ctr(a.pid, "ip", "-o", "link").stdout.count(": eth") == 1


def test_twenty_concurrent_attaches_on_one_network(host_ns, make_ns, tmp_path):
    """20 processes attach 20 containers at once: 20 distinct addresses, 20 veths, all reachable."""
    ctrs = [make_ns(f"{i:02d}") for i in range(20)]
    py(host_ns, tmp_path, 'network.networks.Networks(store).create("web", subnet="10.60.0.0/24")')
    code = f"""
        import os
        paths = {[c.path for c in ctrs]!r}
        pids = []
        for i, path in enumerate(paths):
            pid = os.fork()
            if pid == 0:
                try:
                    network.attach(Store(sys.argv[1]), path, "web", f"{{i:064x}}", f"c{{i}}")
                    os._exit(0)
                except BaseException as e:
                    print(e, file=sys.stderr)
                    os._exit(1)
            pids.append(pid)
        out([os.waitstatus_to_exitcode(os.waitpid(p, 0)[1]) for p in pids])
        out(sorted(le.address for le in network.networks.Networks(store).leases()))
    """
    codes, addresses = py(host_ns, tmp_path, code)
    assert codes == [0] * 20
    assert sorted(addresses) == sorted(f"10.60.0.{i}" for i in range(2, 22))
    assert len([n for n in host_ns.links() if n.startswith("veth")]) == 20
    for c in (ctrs[0], ctrs[19]):
        assert c.run("busybox", "ping", "-c", "1", "-W", "1", "10.60.0.1", check=False).returncode == 0
