"""pallet.toml's `[network]` settings of the default network (dockerd's --bridge and --bip):
`default_bridge` names its bridge, `default_subnet` its subnet (with host bits: also the gateway).
Through the CLI, inside a namespace the test made."""

from __future__ import annotations

import ipaddress
import json

import pytest

from engine.engine_support import IMAGE
from helpers.cli import assert_fails
from helpers.netns import host_ns_fixture  # noqa: F401 (fixture host_ns)

pytestmark = [pytest.mark.root, pytest.mark.network]


@pytest.fixture
def net(host_ns, pallet_env):
    pallet_env.prefix = ["nsenter", f"--net={host_ns.path}", "--"]
    pallet_env.ns = host_ns
    (pallet_env.tmp / "config").mkdir(exist_ok=True)
    return pallet_env


def _settings(env, text: str) -> None:
    (env.tmp / "config" / "pallet.toml").write_text(text)


def _bridge(env) -> dict:
    return json.loads(env("network", "inspect", "bridge", check=True).stdout)[0]


def test_default_bridge_and_subnet_from_pallet_toml(net):
    _settings(net, '[network]\ndefault_bridge = "mybr0"\ndefault_subnet = "10.77.0.0/24"\n')
    cid = net("run", "-d", IMAGE, "sleep", "60", check=True).stdout.strip()
    br = _bridge(net)
    assert br["IPAM"]["Config"] == [{"Subnet": "10.77.0.0/24", "Gateway": "10.77.0.1"}]
    assert br["Options"]["com.docker.network.bridge.name"] == "mybr0"
    assert "mybr0" in net.ns.links() and not any(n.startswith("pallet") for n in net.ns.links())
    assert "inet 10.77.0.1/24" in net.ns.run("ip", "-o", "addr", "show", "dev", "mybr0").stdout
    addr = json.loads(net("inspect", cid, check=True).stdout)[0]["NetworkSettings"]["IPAddress"]
    assert ipaddress.ip_address(addr) in ipaddress.ip_network("10.77.0.0/24")
    assert "master mybr0" in net.ns.run("ip", "-o", "link", "show", "master", "mybr0").stdout
    assert net.ns.run("busybox", "ping", "-c", "1", "-W", "2", addr, check=False).returncode == 0


def test_default_subnet_with_host_bits_is_the_gateway_as_bip(net):
    _settings(net, '[network]\ndefault_subnet = "10.78.0.254/16"\n')
    net("create", IMAGE, "true", check=True)
    assert _bridge(net)["IPAM"]["Config"] == [{"Subnet": "10.78.0.0/16", "Gateway": "10.78.0.254"}]


def test_config_flag_names_the_settings_file(net):
    other = net.tmp / "other.toml"
    other.write_text('[network]\ndefault_subnet = "10.79.0.0/24"\n')
    net("--config", str(other), "run", "--rm", IMAGE, "true", check=True)
    assert _bridge(net)["IPAM"]["Config"] == [{"Subnet": "10.79.0.0/24", "Gateway": "10.79.0.1"}]


@pytest.mark.parametrize("text, message", [
    ('[network]\ndefault_subnet = "10.80.0.0/33"\n', "invalid default_subnet"),
    ('[network]\ndefault_subnet = "fd00::/64"\n', "is IPv4"),
    ('[network]\ndefault_bridge = "a name with spaces"\n', "invalid bridge name"),
    ('[network]\ndefault_brige = "x"\n', "network.default_brige is not a setting"),
    ('[network]\ndefault_subnet = 5\n', "must be a non-empty string"),
    ('[network\n', "is not valid TOML"),
])
def test_bad_settings_are_one_sentence_and_nothing_is_created(net, text, message):
    _settings(net, text)
    assert_fails(net("run", "--rm", IMAGE, "true"), message)
    assert net("ps", "-aq").stdout == ""
    assert not [n for n in net.ns.links() if n not in ("lo",)]


def test_a_network_overlapping_the_configured_default_subnet_is_refused(net):
    _settings(net, '[network]\ndefault_subnet = "10.81.5.0/24"\n')
    assert_fails(net("network", "create", "--subnet", "10.81.0.0/16", "web"),
                 "overlaps subnet 10.81.5.0/24 of network bridge")
    assert net("network", "inspect", "web").returncode != 0


def test_default_bridge_that_exists_already_gets_the_gateway_and_rules(net):
    """dockerd --bridge names a bridge someone else made: pallet gives it the gateway's address and
    its rules, and containers on it reach the gateway."""
    net.ns.run("ip", "link", "add", "extbr0", "type", "bridge")
    net.ns.run("ip", "link", "set", "extbr0", "up")
    _settings(net, '[network]\ndefault_bridge = "extbr0"\ndefault_subnet = "10.82.0.0/24"\n')
    cp = net("run", "--rm", IMAGE, "ping", "-c", "1", "-W", "2", "10.82.0.1")
    assert cp.returncode == 0, cp.stdout + cp.stderr
    assert "inet 10.82.0.1/24" in net.ns.run("ip", "-o", "addr", "show", "dev", "extbr0").stdout
    assert "extbr0" in net.ns.run("nft", "list", "table", "inet", "pallet").stdout
