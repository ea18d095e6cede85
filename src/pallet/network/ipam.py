"""IPAM as pure functions: docker's default address pool, subnet/gateway/ip-range validation, the next
free address. The store (`pallet.network.networks`) keeps the leases; nothing here does I/O."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

from pallet.errors import PalletError
from pallet.records import record

# docker's default-address-pools: 172.17.0.0/16 … 172.31.0.0/16 (the first is the default bridge's),
# then 192.168.0.0/16 cut into /20s
DEFAULT_POOLS: tuple[tuple[str, int], ...] = (*((f"172.{n}.0.0/16", 16) for n in range(17, 32)),
                                              ("192.168.0.0/16", 20))


class InvalidNetworkConfig(PalletError):
    """A subnet, gateway or range that is malformed, inconsistent or overlaps another network."""


@record
class IPAMConfig:
    subnet: IPv4Network
    gateway: IPv4Address
    ip_range: IPv4Network | None = None

    def docker(self) -> dict:
        out = {"Subnet": str(self.subnet), "Gateway": str(self.gateway)}
        if self.ip_range is not None:
            out["IPRange"] = str(self.ip_range)
        return out


def candidates(pools: Iterable[tuple[str, int]] = DEFAULT_POOLS) -> Iterator[IPv4Network]:
    for base, size in pools:
        yield from IPv4Network(base).subnets(new_prefix=size)


def pick_subnet(taken: Iterable[IPv4Network], pools: Iterable[tuple[str, int]] = DEFAULT_POOLS) -> IPv4Network:
    """The first pool subnet that overlaps none of `taken` (other networks, routes in the namespace)."""
    taken = list(taken)
    for net in candidates(pools):
        if not any(net.overlaps(t) for t in taken):
            return net
    raise InvalidNetworkConfig("could not find an available, non-overlapping IPv4 address pool among the "
                               "defaults to assign to the network")


def parse_subnet(text: str, what: str = "subnet") -> IPv4Network:
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise InvalidNetworkConfig(f"invalid {what} {text!r}: expected an IPv4 CIDR such as 10.1.0.0/24") from None
    if "/" not in text:
        raise InvalidNetworkConfig(f"invalid {what} {text!r}: it needs a prefix length, e.g. {text}/24")
    if net.version != 4:
        raise InvalidNetworkConfig(f"invalid {what} {text!r}: IPv6 networks are not supported by pallet yet")
    if str(net.network_address) != text.split("/")[0]:
        raise InvalidNetworkConfig(f"invalid {what} {text!r}: host bits are set (did you mean {net}?)")
    return net


def parse_address(text: str, what: str = "gateway") -> IPv4Address:
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        raise InvalidNetworkConfig(f"invalid {what} {text!r}: expected an IPv4 address such as 10.1.0.1") from None
    if addr.version != 4:
        raise InvalidNetworkConfig(f"invalid {what} {text!r}: IPv6 addresses are not supported by pallet yet")
    return addr


def host_range(net: IPv4Network) -> tuple[int, int]:
    """First and last usable address (as ints) of `net`: not the network or broadcast address."""
    return int(net.network_address) + 1, int(net.broadcast_address) - 1


def make_config(subnet: str | IPv4Network, gateway: str | None = None, ip_range: str | None = None) -> IPAMConfig:
    """Validate a network's IPAM settings; the gateway defaults to the subnet's first address."""
    net = subnet if isinstance(subnet, IPv4Network) else parse_subnet(subnet)
    if net.prefixlen > 30:
        raise InvalidNetworkConfig(f"subnet {net} is too small: it needs room for a gateway and a container "
                                   f"(at most /30)")
    lo, hi = host_range(net)
    if gateway is None:
        gw = IPv4Address(lo)
    else:
        gw = parse_address(gateway)
        if gw not in net:
            raise InvalidNetworkConfig(f"gateway {gw} is not in subnet {net}")
        if not lo <= int(gw) <= hi:
            raise InvalidNetworkConfig(f"gateway {gw} is the network or broadcast address of subnet {net}")
    rng = None
    if ip_range is not None:
        rng = parse_subnet(ip_range, "ip-range")
        if not rng.subnet_of(net):
            raise InvalidNetworkConfig(f"ip-range {rng} is not inside subnet {net}")
    return IPAMConfig(subnet=net, gateway=gw, ip_range=rng)


def next_address(cfg: IPAMConfig, taken: Iterable[str | IPv4Address]) -> IPv4Address:
    """The lowest free address of the range (or subnet): never the network, broadcast or gateway address."""
    from _socket import inet_aton  # (leased addresses are canonical: 10x faster than IPv4Address)

    used = {int.from_bytes(inet_aton(str(a)), "big") for a in taken}
    used.add(int(cfg.gateway))
    lo, hi = host_range(cfg.subnet)
    if cfg.ip_range is not None:
        lo, hi = max(lo, int(cfg.ip_range.network_address)), min(hi, int(cfg.ip_range.broadcast_address))
    for a in range(lo, hi + 1):
        if a not in used:
            return IPv4Address(a)
    raise InvalidNetworkConfig(f"no address left in {cfg.ip_range or cfg.subnet}: every one is leased")


def check_requested(cfg: IPAMConfig, address: str, taken: Iterable[str]) -> IPv4Address:
    """A user-chosen address (--ip): inside the subnet, usable, not the gateway, not leased."""
    addr = parse_address(address, "IP address")
    lo, hi = host_range(cfg.subnet)
    if addr not in cfg.subnet or not lo <= int(addr) <= hi:
        raise InvalidNetworkConfig(f"IP address {addr} is not a usable address of subnet {cfg.subnet}")
    if addr == cfg.gateway:
        raise InvalidNetworkConfig(f"IP address {addr} is the network's gateway")
    if str(addr) in {str(t) for t in taken}:
        raise InvalidNetworkConfig(f"IP address {addr} is already in use on the network")
    return addr


def mac_for(addr: IPv4Address) -> str:
    """docker's MAC for an address: 02:42 then the four address bytes."""
    return "02:42:" + ":".join(f"{b:02x}" for b in addr.packed)


# ---- IPv6 -------------------------------------------------------------------------------------------
@record
class IPAMConfig6:
    subnet: IPv6Network
    gateway: IPv6Address

    def docker(self) -> dict:
        return {"Subnet": str(self.subnet), "Gateway": str(self.gateway)}


def ula_subnet(seed: str, taken: Iterable[IPv6Network] = ()) -> IPv6Network:
    """A /64 of a unique local /48 (fd00::/8 and 40 bits from `seed`, RFC 4193), as docker picks one for
    `--ipv6` without `--subnet`; the next /64 of that /48 when one is taken."""
    import hashlib

    taken = list(taken)
    global_id = int.from_bytes(hashlib.sha256(seed.encode()).digest()[:5], "big")
    base = (0xFD << 120) | (global_id << 80)
    for subnet_id in range(1 << 16):
        net = IPv6Network((base | (subnet_id << 64), 64))
        if not any(net.overlaps(t) for t in taken):
            return net
    raise InvalidNetworkConfig("could not find a free IPv6 /64 in the unique local prefix")


def parse_subnet6(text: str, what: str = "subnet") -> IPv6Network:
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise InvalidNetworkConfig(f"invalid {what} {text!r}: expected a CIDR such as fd00:1::/64") from None
    if net.version != 6 or "/" not in text:
        raise InvalidNetworkConfig(f"invalid {what} {text!r}: expected an IPv6 CIDR such as fd00:1::/64")
    if net.network_address != ipaddress.ip_address(text.split("/")[0]):
        raise InvalidNetworkConfig(f"invalid {what} {text!r}: host bits are set (did you mean {net}?)")
    return net


def make_config6(subnet: str | IPv6Network, gateway: str | None = None) -> IPAMConfig6:
    """An IPv6 subnet and its gateway (default: the subnet's first address, ::1)."""
    net = subnet if isinstance(subnet, IPv6Network) else parse_subnet6(subnet)
    if net.prefixlen > 126:
        raise InvalidNetworkConfig(f"subnet {net} is too small: it needs room for a gateway and a container")
    if gateway is None:
        gw = IPv6Address(int(net.network_address) + 1)
    else:
        try:
            gw = IPv6Address(gateway)
        except ValueError:
            raise InvalidNetworkConfig(f"invalid gateway {gateway!r}: expected an IPv6 address") from None
        if gw not in net:
            raise InvalidNetworkConfig(f"gateway {gw} is not in subnet {net}")
        if gw == net.network_address:
            raise InvalidNetworkConfig(f"gateway {gw} is the subnet-router anycast address of subnet {net}")
    return IPAMConfig6(subnet=net, gateway=gw)


def next_address6(cfg: IPAMConfig6, taken: Iterable[str]) -> IPv6Address:
    """The lowest free address after the subnet's anycast address: never the gateway."""
    used = {int(IPv6Address(str(a))) for a in taken if a}
    used.add(int(cfg.gateway))
    first = int(cfg.subnet.network_address) + 1
    last = int(cfg.subnet.broadcast_address)
    a = first
    while a <= last:
        if a not in used:
            return IPv6Address(a)
        a += 1
    raise InvalidNetworkConfig(f"no address left in {cfg.subnet}: every one is leased")


def check_requested6(cfg: IPAMConfig6, address: str, taken: Iterable[str]) -> IPv6Address:
    """A user-chosen IPv6 address (--ip6): inside the subnet, not its anycast address, not the gateway,
    not leased."""
    try:
        addr = IPv6Address(address)
    except ValueError:
        raise InvalidNetworkConfig(f"invalid IPv6 address {address!r}") from None
    if addr not in cfg.subnet or addr == cfg.subnet.network_address:
        raise InvalidNetworkConfig(f"IPv6 address {addr} is not a usable address of subnet {cfg.subnet}")
    if addr == cfg.gateway:
        raise InvalidNetworkConfig(f"IPv6 address {addr} is the network's gateway")
    if str(addr) in {str(IPv6Address(t)) for t in taken if t}:
        raise InvalidNetworkConfig(f"IPv6 address {addr} is already in use on the network")
    return addr
