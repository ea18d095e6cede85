"""IPAM as pure functions: docker's pool, validation sentences, the next free address."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

import pytest

from pallet.network import ipam
from pallet.network.ipam import InvalidNetworkConfig


def test_pool_starts_at_docker0_and_skips_what_is_taken():
    assert ipam.pick_subnet([]) == IPv4Network("172.17.0.0/16")
    assert ipam.pick_subnet([IPv4Network("172.17.0.0/16")]) == IPv4Network("172.18.0.0/16")
    # a route inside a candidate (or one covering it) makes it taken
    taken = [IPv4Network("172.17.0.0/16"), IPv4Network("172.18.5.0/24"), IPv4Network("172.19.0.0/16")]
    assert ipam.pick_subnet(taken) == IPv4Network("172.20.0.0/16")
    assert ipam.pick_subnet([IPv4Network("172.16.0.0/12")]) == IPv4Network("192.168.0.0/20")


def test_pool_exhausted_is_a_sentence():
    with pytest.raises(InvalidNetworkConfig, match="non-overlapping"):
        ipam.pick_subnet([IPv4Network("172.16.0.0/12"), IPv4Network("192.168.0.0/16")])


def test_config_defaults_and_docker_shape():
    cfg = ipam.make_config("10.5.0.0/24")
    assert cfg.gateway == IPv4Address("10.5.0.1")
    assert cfg.docker() == {"Subnet": "10.5.0.0/24", "Gateway": "10.5.0.1"}
    cfg = ipam.make_config("10.5.0.0/24", "10.5.0.254", "10.5.0.128/25")
    assert cfg.docker() == {"Subnet": "10.5.0.0/24", "Gateway": "10.5.0.254", "IPRange": "10.5.0.128/25"}


@pytest.mark.parametrize("subnet,gateway,ip_range,message", [
    ("10.5.0.0/33", None, None, "invalid subnet"),
    ("10.5.0.0", None, None, "prefix length"),
    ("banana", None, None, "invalid subnet"),
    ("10.5.0.7/24", None, None, "host bits"),
    ("fd00::/64", None, None, "IPv6"),
    ("10.5.0.0/31", None, None, "too small"),
    ("10.5.0.0/24", "10.6.0.1", None, "not in subnet"),
    ("10.5.0.0/24", "10.5.0.255", None, "broadcast"),
    ("10.5.0.0/24", "nope", None, "invalid gateway"),
    ("10.5.0.0/24", None, "10.6.0.0/25", "not inside subnet"),
])
def test_bad_config_is_one_sentence(subnet, gateway, ip_range, message):
    with pytest.raises(InvalidNetworkConfig, match=message) as e:
        ipam.make_config(subnet, gateway, ip_range)
    assert "\n" not in e.value.message and e.value.exit_code == 125


def test_next_address_skips_gateway_and_leases_and_stays_in_range():
    cfg = ipam.make_config("10.5.0.0/29")            # .1 gateway, .2-.6 usable
    assert ipam.next_address(cfg, []) == IPv4Address("10.5.0.2")
    assert ipam.next_address(cfg, ["10.5.0.2", "10.5.0.3"]) == IPv4Address("10.5.0.4")
    assert ipam.next_address(cfg, ["10.5.0.2", "10.5.0.4"]) == IPv4Address("10.5.0.3")  # a freed one comes back
    with pytest.raises(InvalidNetworkConfig, match="no address left"):
        ipam.next_address(cfg, [f"10.5.0.{i}" for i in range(2, 7)])
    ranged = ipam.make_config("10.5.0.0/24", ip_range="10.5.0.128/25")
    assert ipam.next_address(ranged, []) == IPv4Address("10.5.0.128")
    top = ipam.make_config("10.5.0.0/24", gateway="10.5.0.254", ip_range="10.5.0.252/30")
    with pytest.raises(InvalidNetworkConfig):
        ipam.next_address(top, ["10.5.0.252", "10.5.0.253"])   # .254 is the gateway, .255 broadcast


def test_requested_address_checks():
    cfg = ipam.make_config("10.5.0.0/24")
    assert ipam.check_requested(cfg, "10.5.0.9", []) == IPv4Address("10.5.0.9")
    for ip, msg in [("10.6.0.9", "not a usable"), ("10.5.0.1", "gateway"), ("10.5.0.255", "not a usable"),
                    ("10.5.0.0", "not a usable")]:
        with pytest.raises(InvalidNetworkConfig, match=msg):
            ipam.check_requested(cfg, ip, [])
    with pytest.raises(InvalidNetworkConfig, match="already in use"):
        ipam.check_requested(cfg, "10.5.0.9", ["10.5.0.9"])


def test_mac_is_dockers():
    assert ipam.mac_for(IPv4Address("172.17.0.2")) == "02:42:ac:11:00:02"
