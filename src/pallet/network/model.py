"""A network and a lease as records (what the store's rows mean to the rest of pallet)."""

from __future__ import annotations

from pallet.network.ipam import IPAMConfig, IPAMConfig6
from pallet.records import field, record

PREDEFINED = {"bridge": "bridge", "host": "host", "none": "null"}   # name -> driver


@record
class Network:
    id: str
    name: str
    driver: str
    created: float
    ipam: IPAMConfig | None
    bridge: str | None
    internal: bool = False
    ipv6: bool = False
    labels: dict = field(default_factory=dict)
    options: dict = field(default_factory=dict)
    dns: bool = False           # a DNS server on the gateway (user networks unless --disable-dns)
    ipam6: IPAMConfig6 | None = None   # --ipv6: the IPv6 subnet and gateway

    @property
    def predefined(self) -> bool:
        return self.name in PREDEFINED


@record
class Lease:
    network_id: str
    network: str
    container_id: str
    name: str
    address: str
    prefixlen: int
    gateway: str
    mac: str
    host_ifname: str            # the veth end on the bridge
    ifname: str                 # the end in the container (eth0, eth1, …)
    address6: str = ""          # on an --ipv6 network: its IPv6 address, prefix length and gateway
    prefixlen6: int = 0
    gateway6: str = ""

    @property
    def endpoint_id(self) -> str:
        try:   # (CPython 3.11's built-in sha256: no hashlib, 2.6 ms, on the monitor's path)
            from _sha256 import sha256
        except ImportError:
            from hashlib import sha256
        return sha256(f"{self.network_id}/{self.container_id}".encode()).hexdigest()
