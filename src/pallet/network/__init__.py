"""Container networking: networks as data, IPAM, the bridge driver, pallet's firewall table.

    ipam      docker's default pool, subnet/gateway/ip-range validation, the next free address (pure)
    model     the Network and Lease records
    networks  `Networks(store)`: the networks and leases in the store's database; create/rm/prune/attach
    bridge    the bridge driver: Linux bridge, veth pair into a container's netns, addresses, routes
    firewall  `table inet pallet`: one nftables transaction per change
    dns       a DNS server per user network on its gateway: containers' names from the leases, the rest forwarded

The engine's calls: `attach(store, netns_path, network, container_id, name)` when a container's
network namespace exists (before its process runs), `detach(store, network, container_id)` or
`detach_all(store, container_id)` when it stops or is removed.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pallet.network.model import Lease


def attach(store, netns_path: str, network: str, container_id: str, name: str, *, ip: str | None = None,
           mac: str | None = None, ifname: str | None = None, dns_names: list[str] | None = None,
           dns_servers: list[str] | None = None, ip6: str | None = None) -> Lease:
    """Lease an address on `network` (name or id) and plug the netns at `netns_path` into it (its DNS
    names and upstreams: `Networks.attach`)."""
    from pallet.network.networks import Networks

    return Networks(store).attach(netns_path, network, container_id, name, ip=ip, mac=mac, ifname=ifname,
                                  dns_names=dns_names, dns_servers=dns_servers, ip6=ip6)


def detach(store, network: str, container_id: str) -> Lease | None:
    from pallet.network.networks import Networks

    return Networks(store).detach(network, container_id)


def detach_all(store, container_id: str) -> list[Lease]:
    from pallet.network.networks import Networks

    return Networks(store).detach_all(container_id)
