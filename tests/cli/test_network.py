"""`pallet network …` run inside a namespace the test made (nsenter --net), against a private root."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.netns import host_ns_fixture, make_ns_fixture  # noqa: F401 (fixtures host_ns, make_ns)

pytestmark = [pytest.mark.root, pytest.mark.network]
BIN = Path(sys.executable).parent


@pytest.fixture
def npallet(host_ns, pallet_root: Path, tmp_path: Path):
    """conftest's `pallet`, run inside `host_ns`."""

    from helpers.cli import run_pallet

    def run(*args: str, check: bool = False, timeout: float = 60) -> subprocess.CompletedProcess:
        env = dict(os.environ, PALLET_ROOT=str(pallet_root), PALLET_RUNROOT=str(tmp_path / "run"),
                   PALLET_CONFIG_DIR=str(tmp_path / "config"))
        return run_pallet([*host_ns.prefix(), str(BIN / "pallet"), *args], check=check, env=env,
                          timeout=timeout)   # a traceback on stderr fails the test

    return run


def test_create_inspect_ls_rm(npallet, host_ns):
    net_id = npallet("network", "create", "--label", "tier=web", "web", check=True).stdout.strip()
    assert len(net_id) == 64
    (doc,) = json.loads(npallet("network", "inspect", "web", check=True).stdout)
    assert doc["Name"] == "web" and doc["Id"] == net_id and doc["Scope"] == "local"
    assert doc["Driver"] == "bridge" and doc["EnableIPv6"] is False and doc["Internal"] is False
    assert doc["IPAM"] == {"Driver": "default", "Options": {},
                           "Config": [{"Subnet": "172.18.0.0/16", "Gateway": "172.18.0.1"}]}
    assert doc["Containers"] == {} and doc["Labels"] == {"tier": "web"} and doc["Options"] == {}
    assert doc["Created"].endswith("Z") and "T" in doc["Created"]
    assert f"br-{net_id[:12]}" in host_ns.links()
    # by id prefix too
    assert json.loads(npallet("network", "inspect", net_id[:6], check=True).stdout)[0]["Name"] == "web"

    table = npallet("network", "ls", check=True).stdout.splitlines()
    assert table[0].split() == ["NETWORK", "ID", "NAME", "DRIVER", "SCOPE"]
    assert [ln.split()[1] for ln in table[1:]] == ["bridge", "host", "none", "web"]
    assert f"{net_id[:12]}   web" in "\n".join(table)
    assert npallet("network", "ls", "-q", "--filter", "label=tier=web", check=True).stdout.split() == [net_id[:12]]
    assert npallet("network", "ls", "-q", "--no-trunc", "-f", "name=we", check=True).stdout.split() == [net_id]
    assert npallet("network", "ls", "-q", "-f", "driver=null", check=True).stdout.count("\n") == 1
    rows = [json.loads(ln) for ln in npallet("network", "ls", "--format", "json", check=True).stdout.splitlines()]
    assert {r["Name"]: r["Driver"] for r in rows} == {"bridge": "bridge", "host": "host", "none": "null",
                                                      "web": "bridge"}
    assert npallet("network", "rm", "web", check=True).stdout.strip() == "web"
    assert f"br-{net_id[:12]}" not in host_ns.links()
    assert "nw-" not in host_ns.run("nft", "list", "ruleset").stdout


def test_subnet_gateway_range_internal_and_bridge_name(npallet, host_ns):
    npallet("network", "create", "--subnet", "10.9.0.0/24", "--gateway", "10.9.0.254", "--ip-range",
            "10.9.0.128/25", "--internal", "-o", "com.docker.network.bridge.name=plt-test", "priv", check=True)
    (doc,) = json.loads(npallet("network", "inspect", "priv", check=True).stdout)
    assert doc["IPAM"]["Config"] == [{"Subnet": "10.9.0.0/24", "Gateway": "10.9.0.254", "IPRange": "10.9.0.128/25"}]
    assert doc["Internal"] is True
    assert doc["Options"] == {"com.docker.network.bridge.name": "plt-test"}
    assert "10.9.0.254/24" in host_ns.run("ip", "-o", "addr", "show", "dev", "plt-test").stdout
    assert npallet("network", "inspect", "-f", "{{.Driver}}", "priv", check=True).stdout == "bridge\n"


@pytest.mark.parametrize("args,message", [
    (["--subnet", "10.9.0.0/33", "x"], "invalid subnet"),
    (["--subnet", "10.9.0.0/16", "x"], "overlaps subnet 10.9.0.0/24 of network taken"),
    (["--subnet", "172.17.8.0/24", "x"], "overlaps subnet 172.17.0.0/16 of network bridge"),
    (["--subnet", "10.10.0.0/24", "--gateway", "10.11.0.1", "x"], "gateway 10.11.0.1 is not in subnet"),
    (["--gateway", "10.11.0.1", "x"], "needs --subnet"),
    (["--subnet", "10.10.0.0/24", "--ip-range", "10.12.0.0/25", "x"], "not inside subnet"),
    (["taken"], "network with name taken already exists"),
    (["--driver", "macvlan", "x"], "not supported"),
    (["-o", "com.docker.network.bridge.name=lo", "x"], "not a bridge"),
    (["-o", "mtu", "x"], "invalid driver option"),
    (["bad/name"], "invalid network name"),
])
def test_bad_input_is_one_sentence_exit_125_and_nothing_created(npallet, host_ns, args, message):
    npallet("network", "create", "--subnet", "10.9.0.0/24", "taken", check=True)
    links, rules = host_ns.links(), host_ns.run("nft", "list", "ruleset").stdout
    before = npallet("network", "ls", "-q", "--no-trunc", check=True).stdout
    cp = npallet("network", "create", *args)
    assert cp.returncode == 125, cp.stderr
    assert cp.stderr.count("\n") == 1 and message in cp.stderr, cp.stderr
    assert npallet("network", "ls", "-q", "--no-trunc", check=True).stdout == before
    assert host_ns.links() == links and host_ns.run("nft", "list", "ruleset").stdout == rules


def test_unknown_predefined_in_use_and_prune(npallet, host_ns, make_ns, pallet_root):
    for args, message in [(["inspect", "nope"], "network nope not found"), (["rm", "nope"], "network nope not found"),
                          (["rm", "bridge"], "bridge is a pre-defined network and cannot be removed")]:
        cp = npallet("network", *args)
        assert cp.returncode == 125 and message in cp.stderr and cp.stderr.count("\n") == 1, cp.stderr
    cp = npallet("network", "rm", "-f", "nope")
    assert (cp.returncode, cp.stdout, cp.stderr) == (0, "", "")
    npallet("network", "create", "used", check=True)
    npallet("network", "create", "--label", "keep=1", "kept", check=True)
    npallet("network", "create", "idle", check=True)
    ctr = make_ns("c")
    host_ns.run(sys.executable, "-c", "import sys; from pallet.network import attach; from pallet.store import Store;"
                f"attach(Store(sys.argv[1]), {ctr.path!r}, 'used', 'c' * 64, 'ctr')", str(pallet_root))
    cp = npallet("network", "rm", "used")
    assert cp.returncode == 125 and "network used is in use by container ctr" in cp.stderr
    (doc,) = json.loads(npallet("network", "inspect", "used", check=True).stdout)
    assert doc["Containers"]["c" * 64]["IPv4Address"] == "172.18.0.2/16"
    assert doc["Containers"]["c" * 64]["MacAddress"] == "02:42:ac:12:00:02"
    assert npallet("network", "prune", "-f", "--filter", "label=nope", check=True).stdout == ""
    assert npallet("network", "prune", "-f", check=True).stdout == "Deleted Networks:\nkept\nidle\n"
    names = [ln.split()[1] for ln in npallet("network", "ls", check=True).stdout.splitlines()[1:]]
    assert names == ["bridge", "host", "none", "used"]
