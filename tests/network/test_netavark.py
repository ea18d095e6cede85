"""pallet-netavark driven by real podman (Debian's 4.3): podman's network backend is pallet's network layer.

podman runs inside a namespace the test made (nsenter --net), with a containers.conf of its own
(`network_backend = "netavark"`, `helper_binaries_dir` = a directory where pallet-netavark is called
`netavark`), its own graphroot, runroot and network config dir under tmp_path: the bridge, the rules,
the DNS server and the containers all live in that namespace.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import pytest

from engine.engine_support import wait_for
from helpers.netns import host_ns_fixture, make_ns_fixture  # noqa: F401 (fixtures host_ns, make_ns)

pytestmark = [pytest.mark.root, pytest.mark.network, pytest.mark.slow]
BIN = Path(sys.executable).parent
# podman only runs on this host with these limits (the hard RLIMIT_NOFILE is 20000)
LIMITS = ["--ulimit", "nofile=20000:20000", "--ulimit", "nproc=32768:32768"]
IMAGE = "localhost/pallet-test-busybox:latest"


@pytest.fixture
def podman(host_ns, tmp_path: Path, busybox_rootfs: Path):
    if not shutil.which("podman") or not shutil.which("runc"):
        pytest.skip("podman and runc are needed")
    helpers = tmp_path / "helpers"
    helpers.mkdir()
    (helpers / "netavark").symlink_to(BIN / "pallet-netavark")
    conf = tmp_path / "containers.conf"
    conf.write_text(f'[network]\nnetwork_backend = "netavark"\nnetwork_config_dir = "{tmp_path / "networks"}"\n'
                    f'[engine]\nhelper_binaries_dir = ["{helpers}"]\n')
    resolv = tmp_path / "host-resolv.conf"
    resolv.write_text("nameserver 127.0.0.53\n")
    env = dict(os.environ, CONTAINERS_CONF=str(conf), PALLET_RESOLV_CONF=str(resolv))
    runroot = Path(tempfile.mkdtemp(prefix="pnv-", dir="/tmp")) / "run"     # (podman: at most 50 characters)
    cmd = [*host_ns.prefix(), "podman", "--root", str(tmp_path / "root"), "--runroot", str(runroot),
           "--cgroup-manager=cgroupfs", "--events-backend=file", "--runtime", "runc"]

    def run(*args: str, check: bool = True, timeout: float = 90) -> subprocess.CompletedProcess:
        cp = subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=timeout, env=env)
        if check and cp.returncode != 0:
            raise AssertionError(f"podman {' '.join(args)} exited {cp.returncode}:\n{cp.stdout}\n{cp.stderr}")
        return cp

    tar = tmp_path / "busybox.tar"
    with tarfile.open(tar, "w") as t:
        t.add(busybox_rootfs, arcname=".")
    run("import", "-q", str(tar), IMAGE)
    run.netavark_dir = runroot / "networks"
    try:
        yield run
    finally:
        run("rm", "-af", "-t", "0", check=False)
        run("network", "prune", "-f", check=False)
        run("rmi", "-af", check=False)
        subprocess.run(["umount", "-R", str(tmp_path / "root" / "overlay")], capture_output=True)
        shutil.rmtree(runroot.parent, ignore_errors=True)


def test_podman_runs_on_pallets_network_layer(podman, host_ns):
    podman("network", "create", "--subnet", "10.95.0.0/24", "pnet")
    podman("run", "-d", "--name", "web", "--network", "pnet", "--network-alias", "www", "-p", "8080:80", *LIMITS,
           IMAGE, "sh", "-c", "echo hello from podman > /tmp/index.html && exec httpd -f -p 80 -h /tmp")
    podman("run", "-d", "--name", "client", "--network", "pnet", *LIMITS, IMAGE, "sleep", "120")
    (info,) = json.loads(podman("inspect", "web").stdout)
    ep = info["NetworkSettings"]["Networks"]["pnet"]
    assert ep["IPAddress"].startswith("10.95.0.") and ep["Gateway"] == "10.95.0.1"
    # pallet's bridge, veths and table in the namespace
    links = host_ns.links()
    assert any(n.startswith("podman") for n in links), links
    table = host_ns.run("nft", "list", "table", "inet", "pallet").stdout
    assert "dport 8080" in table and ep["IPAddress"] in table
    # the published port, from the namespace (its own address on the bridge, and 127.0.0.1)
    direct = f"http://{ep['IPAddress']}:80/"
    # (busybox's wget -T crashes here: the subprocess timeout bounds it instead)
    assert wait_for(lambda: host_ns.run("busybox", "wget", "-q", "-O", "-", direct, check=False).stdout)
    for addr in ("10.95.0.1", "127.0.0.1"):
        got = host_ns.run("busybox", "wget", "-q", "-O", "-", f"http://{addr}:8080/", check=False)
        assert got.stdout == "hello from podman\n", (addr, got.stderr)
    # DNS between the two containers: name, alias, and the dns.podman domain
    resolv = podman("exec", "client", "cat", "/etc/resolv.conf").stdout
    assert "nameserver 10.95.0.1" in resolv and "dns.podman" in resolv
    for name in ("web", "www", "web.dns.podman"):
        cp = podman("exec", "client", "nslookup", "-type=a", name, check=False)
        assert cp.returncode == 0 and ep["IPAddress"] in cp.stdout.split("\n\n", 1)[-1], (name, cp.stdout)
    got = podman("exec", "client", "wget", "-q", "-O", "-", "http://web/", check=False)
    assert got.stdout == "hello from podman\n", got.stderr
    # teardown: nothing of pallet's is left in the namespace
    podman("rm", "-f", "-t", "0", "web", "client")
    assert not [n for n in host_ns.links() if n.startswith(("veth", "podman"))]
    assert "dport 8080" not in host_ns.run("nft", "list", "table", "inet", "pallet", check=False).stdout
    assert not [p for p in Path("/proc").glob("[0-9]*/cmdline")
                if b"pallet.network.dns" in _read(p) and str(podman.netavark_dir).encode() in _read(p)]


def _read(p: Path) -> bytes:
    try:
        return p.read_bytes()
    except OSError:
        return b""


def test_podman_ipv6_network_on_pallets_network_layer(podman, host_ns):
    """podman network create --ipv6: each container gets podman's IPv6 address too (the StatusBlock
    names both subnets), reaches the other over IPv6 and resolves its AAAA; a port published on any
    address is reached over IPv6 on the gateway; teardown leaves nothing."""
    podman("network", "create", "--ipv6", "--subnet", "10.96.0.0/24", "--subnet", "fd00:96::/64", "pnet6")
    podman("run", "-d", "--name", "web6", "--network", "pnet6", "-p", "8086:80", *LIMITS, IMAGE,
           "sh", "-c", "echo hello over ipv6 > /tmp/index.html && exec httpd -f -p 80 -h /tmp")
    podman("run", "-d", "--name", "client6", "--network", "pnet6", *LIMITS, IMAGE, "sleep", "120")
    (info,) = json.loads(podman("inspect", "web6").stdout)
    ep = info["NetworkSettings"]["Networks"]["pnet6"]
    v6 = ep["GlobalIPv6Address"]
    assert v6.startswith("fd00:96::") and ep["IPv6Gateway"] == "fd00:96::1", ep
    assert f"inet6 {v6}/64" in podman("exec", "web6", "ip", "-o", "-6", "addr", "show", "eth0").stdout
    assert "default via fd00:96::1 dev eth0" in podman("exec", "client6", "ip", "-6", "route").stdout
    assert "inet6 fd00:96::1/64" in host_ns.run("ip", "-o", "-6", "addr", "show").stdout
    assert wait_for(lambda: podman("exec", "client6", "ping", "-6", "-c", "1", "-W", "2", v6,
                                   check=False).returncode == 0)
    cp = podman("exec", "client6", "nslookup", "-type=aaaa", "web6", check=False)
    assert cp.returncode == 0 and v6 in cp.stdout, cp.stdout
    got = host_ns.run("busybox", "wget", "-q", "-O", "-", "http://[fd00:96::1]:8086/", check=False)
    assert got.stdout == "hello over ipv6\n", got.stderr
    podman("rm", "-f", "-t", "0", "web6", "client6")
    assert not [n for n in host_ns.links() if n.startswith(("veth", "podman"))]
    assert "dport 8086" not in host_ns.run("nft", "list", "table", "inet", "pallet", check=False).stdout
