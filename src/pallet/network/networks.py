"""Networks as data: the `networks` and `network_leases` tables of the store's database.

    nets = Networks(store)
    nets.create("web", subnet="10.5.0.0/24")          # validated, recorded, bridge and rules set up
    lease = nets.attach("/proc/PID/ns/net", "web", container_id, "ctr-name")
    nets.detach("web", container_id); nets.remove("web"); nets.prune()

A lease is taken in one write transaction (BEGIN IMMEDIATE: concurrent processes queue), so two
containers never get the same address; the kernel work happens after it, and a failure gives the
lease back. The predefined networks `bridge` (docker's default, 172.17.0.0/16 unless routed here),
`host` and `none` are recorded on first use.
"""

from __future__ import annotations

import time
from ipaddress import IPv4Address, IPv4Network, IPv6Network

from pallet import jsonfast as json  # (not `json`: 1 ms of the monitor's warm-up)
from pallet.errors import Conflict, NotFound
from pallet.network import ipam
from pallet.network.ipam import InvalidNetworkConfig, IPAMConfig
from pallet.network.model import PREDEFINED, Lease, Network

DEFAULT_NETWORK = "bridge"
DEFAULT_BRIDGE = "pallet0"
BRIDGE_NAME_OPTION = "com.docker.network.bridge.name"
SUPPORTED_OPTIONS = (BRIDGE_NAME_OPTION,)


def docker_time(ts: float) -> str:
    """RFC 3339 with nanoseconds, as docker prints Created."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts % 1 * 1e9):09d}Z"


def host_ifname(network_id: str, container_id: str) -> str:
    return "veth" + _sha256(f"{network_id}/{container_id}".encode()).hexdigest()[:11]


def _sha256(data: bytes):
    """sha256 without importing hashlib (OpenSSL's _hashlib: 2-4 ms of the monitor's start)."""
    try:
        from _sha256 import sha256  # (CPython 3.11's built-in module; _sha2 from 3.12)
    except ImportError:
        from hashlib import sha256
    return sha256(data)


def _new_id() -> str:
    import secrets

    return secrets.token_hex(32)


def default_bridge_name(links, used) -> str:
    """The default bridge's interface: pallet0, or the first palletN that no interface of this namespace
    and no network of this store has — another store's default bridge here (a second PALLET_ROOT, the
    test suite's stores) is never taken over with a subnet that is not its own."""
    taken = set(links) | set(used)
    n, name = 0, DEFAULT_BRIDGE
    while name in taken:
        n += 1
        name = f"pallet{n}"
    return name


def _row_network(r) -> Network:
    cfg = None
    if r["subnet"]:
        cfg = IPAMConfig(subnet=IPv4Network(r["subnet"]), gateway=IPv4Address(r["gateway"]),
                         ip_range=IPv4Network(r["ip_range"]) if r["ip_range"] else None)
    return Network(id=r["id"], name=r["name"], driver=r["driver"], created=r["created"], ipam=cfg,
                   bridge=r["bridge"], internal=bool(r["internal"]), ipv6=bool(r["ipv6"]),
                   labels=json.loads(r["labels"]), options=json.loads(r["options"]),
                   dns=bool(r["dns"]) if "dns" in r.keys() else False,
                   ipam6=ipam.make_config6(r["subnet6"], r["gateway6"]) if r["subnet6"] else None)


class Networks:
    def __init__(self, store) -> None:
        self.store = store
        self.db = store.db

    # ---- reading -------------------------------------------------------------------------
    def ensure_defaults(self) -> None:
        """Record the predefined networks the first time they are needed (no kernel change here:
        the default bridge is made when its first container attaches)."""
        have = {r[0] for r in self.db.query("SELECT name FROM networks WHERE name IN ('bridge','host','none')")}
        if len(have) == 3:
            return
        cfg, br_name, existing = None, DEFAULT_BRIDGE, False
        if "bridge" not in have:
            cfg, br_name, existing = self._default_bridge()
        now = time.time()
        with self.db.transaction() as c:
            for name, driver in PREDEFINED.items():
                if name in have:
                    continue
                if name == "bridge":
                    c.execute("INSERT OR IGNORE INTO networks(id, name, driver, created, subnet, gateway, bridge,"
                              " options, dns) VALUES (?,?,?,?,?,?,?,?,0)",
                              (_new_id(), name, driver, now, str(cfg.subnet), str(cfg.gateway),
                               br_name, json.dumps({
                                   "com.docker.network.bridge.default_bridge": "true",
                                   BRIDGE_NAME_OPTION: br_name})))
                else:
                    c.execute("INSERT OR IGNORE INTO networks(id, name, driver, created, dns) VALUES (?,?,?,?,0)",
                              (_new_id(), name, driver, now))
        if existing:    # pallet.toml's default_bridge is a bridge made by someone else: its address and rules now
            from pallet.network import bridge

            net = self.get("bridge")
            try:
                bridge.network_up(net, force=True)
            except BaseException:
                self._forget(net)
                raise

    def _default_bridge(self) -> tuple[IPAMConfig, str, bool]:
        """The default network's IPAM and bridge: pallet.toml's `[network]` `default_subnet` (a CIDR;
        with host bits, e.g. 172.30.0.1/16, that address is the gateway: dockerd's --bip) and
        `default_bridge` (dockerd's --bridge; True: that bridge exists already, made by someone else),
        else the first free pool subnet and pallet0 (or the first free palletN)."""
        from ipaddress import ip_interface

        from pallet.config import network_settings
        from pallet.network import bridge

        settings = network_settings()
        others = [n for n in self._all() if n.name != "bridge"]
        want = settings.get("default_subnet")
        if want:
            try:
                iface = ip_interface(want)
            except ValueError:
                raise InvalidNetworkConfig(f"invalid default_subnet {want!r} in pallet.toml: expected an IPv4 "
                                           "CIDR such as 172.30.0.0/16") from None
            if iface.version != 4:
                raise InvalidNetworkConfig(f"invalid default_subnet {want!r} in pallet.toml: the default network's "
                                           "subnet is IPv4")
            gw = str(iface.ip) if iface.ip != iface.network.network_address else None
            cfg = ipam.make_config(iface.network, gw)
            for n in others:
                if n.ipam and n.ipam.subnet.overlaps(cfg.subnet):
                    raise InvalidNetworkConfig(f"default_subnet {cfg.subnet} in pallet.toml overlaps subnet "
                                               f"{n.ipam.subnet} of network {n.name}")
        else:
            taken = [IPv4Network(f"{a}/{p}", strict=False) for a, p in bridge.routed_subnets()]
            taken += [n.ipam.subnet for n in others if n.ipam]
            cfg = ipam.make_config(ipam.pick_subnet(taken))
        name = settings.get("default_bridge")
        existing = False
        if name:
            bridge.check_bridge_name(name)
            for n in others:
                if n.bridge == name:
                    raise InvalidNetworkConfig(f"default_bridge {name!r} in pallet.toml is the bridge of network "
                                               f"{n.name}")
            existing = name in bridge.link_names()
        else:
            name = default_bridge_name(bridge.link_names(), [n.bridge for n in others])
        return cfg, name, existing

    def _all(self) -> list[Network]:
        return [_row_network(r) for r in self.db.query("SELECT * FROM networks ORDER BY created, name")]

    def list(self) -> list[Network]:
        self.ensure_defaults()
        return self._all()

    def get(self, ref: str) -> Network:
        """By name, full id or a unique id prefix (docker's lookup order)."""
        if ref in PREDEFINED:
            self.ensure_defaults()
        rows = self.db.query("SELECT * FROM networks WHERE name = ? OR id = ?", (ref, ref))
        if not rows and ref and all(c in "0123456789abcdef" for c in ref):
            rows = self.db.query("SELECT * FROM networks WHERE id LIKE ?", (ref + "%",))
            if len(rows) > 1:
                raise NotFound(f"network {ref} is ambiguous ({len(rows)} networks have ids starting with it)")
        if not rows:
            raise NotFound(f"network {ref} not found")
        return _row_network(rows[0])

    def leases(self, net: Network | None = None, container_id: str | None = None) -> list[Lease]:
        sql = ("SELECT l.*, n.name AS network, n.subnet, n.gateway, n.subnet6, n.gateway6 FROM network_leases l"
               " JOIN networks n ON n.id = l.network_id WHERE 1=1")
        params: list = []
        if net is not None:
            sql += " AND l.network_id = ?"
            params.append(net.id)
        if container_id is not None:
            sql += " AND l.container_id = ?"
            params.append(container_id)
        return [Lease(network_id=r["network_id"], network=r["network"], container_id=r["container_id"],
                      name=r["name"], address=r["address"], prefixlen=IPv4Network(r["subnet"]).prefixlen,
                      gateway=r["gateway"], mac=r["mac"], host_ifname=r["ifname"],
                      ifname=r["container_ifname"], address6=r["address6"] or "",
                      prefixlen6=IPv6Network(r["subnet6"]).prefixlen if r["address6"] else 0,
                      gateway6=r["gateway6"] if r["address6"] else "")
                for r in self.db.query(sql + " ORDER BY l.created", tuple(params))]

    def inspect(self, net: Network) -> dict:
        """docker's network inspect JSON."""
        containers = {le.container_id: {"Name": le.name, "EndpointID": le.endpoint_id, "MacAddress": le.mac,
                                        "IPv4Address": f"{le.address}/{le.prefixlen}",
                                        "IPv6Address": f"{le.address6}/{le.prefixlen6}" if le.address6 else ""}
                      for le in self.leases(net)}
        return {
            "Name": net.name, "Id": net.id, "Created": docker_time(net.created), "Scope": "local",
            "Driver": net.driver, "EnableIPv4": net.ipam is not None, "EnableIPv6": net.ipv6,
            "IPAM": {"Driver": "default", "Options": {} if net.driver == "bridge" else None,
                     "Config": ([net.ipam.docker()] if net.ipam else []) +
                               ([net.ipam6.docker()] if net.ipam6 else [])},
            "Internal": net.internal, "Attachable": False, "Ingress": False,
            "ConfigFrom": {"Network": ""}, "ConfigOnly": False,
            "Containers": containers, "Options": net.options, "Labels": net.labels,
        }

    # ---- creating and removing -----------------------------------------------------------
    def create(self, name: str, *, driver: str = "bridge", subnet: str | None = None, gateway: str | None = None,
               ip_range: str | None = None, internal: bool = False, labels: dict | None = None,
               options: dict | None = None, dns: bool = True, ipv6: bool = False, subnet6: str | None = None,
               gateway6: str | None = None) -> Network:
        """Validate, record, then set up the bridge and its rules (a kernel failure removes the record).
        `dns`: containers resolve each other by name (a DNS server on the gateway; --disable-dns)."""
        from pallet.network import bridge

        check_name(name)
        if driver != "bridge":
            raise InvalidNetworkConfig(f"network driver {driver!r} is not supported (pallet has: bridge)")
        options = dict(options or {})
        for k in options:
            if k not in SUPPORTED_OPTIONS:
                raise InvalidNetworkConfig(f"network option {k!r} is not supported by the bridge driver "
                                           f"(supported: {', '.join(SUPPORTED_OPTIONS)})")
        if subnet is None and (gateway or ip_range):
            raise InvalidNetworkConfig(f"--{'gateway' if gateway else 'ip-range'} needs --subnet")
        cfg = ipam.make_config(subnet, gateway, ip_range) if subnet else None
        if (subnet6 or gateway6) and not ipv6:
            ipv6 = True            # (an IPv6 --subnet enables IPv6, as podman's)
        if gateway6 and not subnet6:
            raise InvalidNetworkConfig("an IPv6 --gateway needs an IPv6 --subnet")
        cfg6 = ipam.make_config6(subnet6, gateway6) if subnet6 else None
        self.ensure_defaults()
        if self.db.query("SELECT 1 FROM networks WHERE name = ?", (name,)):
            raise Conflict(f"network with name {name} already exists")
        net_id = _new_id()
        br = options.get(BRIDGE_NAME_OPTION) or "br-" + net_id[:12]
        bridge.check_bridge_name(br)
        routed = []
        if cfg is None:
            routed = [IPv4Network(f"{a}/{p}", strict=False) for a, p in bridge.routed_subnets()]
        with self.db.transaction() as c:
            if c.execute("SELECT 1 FROM networks WHERE name = ?", (name,)).fetchone():
                raise Conflict(f"network with name {name} already exists")
            if c.execute("SELECT 1 FROM networks WHERE bridge = ?", (br,)).fetchone():
                raise Conflict(f"bridge name {br} is already used by another network")
            others = [(r["name"], IPv4Network(r["subnet"]))
                      for r in c.execute("SELECT name, subnet FROM networks WHERE subnet IS NOT NULL")]
            if cfg is None:
                cfg = ipam.make_config(ipam.pick_subnet(routed + [s for _, s in others]))
            for other, s in others:
                if s.overlaps(cfg.subnet):
                    raise InvalidNetworkConfig(f"subnet {cfg.subnet} overlaps subnet {s} of network {other}")
            if ipv6:
                others6 = [(r["name"], IPv6Network(r["subnet6"]))
                           for r in c.execute("SELECT name, subnet6 FROM networks WHERE subnet6 IS NOT NULL")]
                if cfg6 is None:
                    cfg6 = ipam.make_config6(ipam.ula_subnet(net_id, [s for _, s in others6]))
                for other, s in others6:
                    if s.overlaps(cfg6.subnet):
                        raise InvalidNetworkConfig(f"subnet {cfg6.subnet} overlaps subnet {s} of network {other}")
            c.execute("INSERT INTO networks(id, name, driver, created, subnet, gateway, ip_range, bridge, internal,"
                      " labels, options, dns) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                      (net_id, name, driver, time.time(), str(cfg.subnet), str(cfg.gateway),
                       str(cfg.ip_range) if cfg.ip_range else None, br, int(internal),
                       json.dumps(labels or {}), json.dumps(options), int(dns)))
            if cfg6 is not None:
                c.execute("UPDATE networks SET ipv6 = 1, subnet6 = ?, gateway6 = ? WHERE id = ?",
                          (str(cfg6.subnet), str(cfg6.gateway), net_id))
        net = self.get(net_id)
        try:
            bridge.network_up(net, force=True)
        except BaseException:
            self._forget(net)
            raise
        self._event(net, "create")
        return net

    def _event(self, net: Network, action: str, container_id: str | None = None) -> None:
        """docker's network events: the network's ID as actor, its name and type (and the container)."""
        from pallet.store import events

        attrs = {"container": container_id} if container_id else {}
        events.record(self.store.root, "network", action, net.id, {**attrs, "name": net.name, "type": net.driver})

    def _lease_event(self, lease: Lease, action: str) -> None:
        from pallet.store import events

        events.record(self.store.root, "network", action, lease.network_id,
                      {"container": lease.container_id, "name": lease.network, "type": "bridge"})

    def _forget(self, net: Network) -> None:
        with self.db.transaction() as c:
            c.execute("DELETE FROM networks WHERE id = ?", (net.id,))

    def remove(self, ref: str) -> Network:
        from pallet.network import bridge

        net = self.get(ref)
        if net.predefined:
            raise Conflict(f"{net.name} is a pre-defined network and cannot be removed")
        with self.db.transaction() as c:
            users = [r[0] for r in c.execute("SELECT name FROM network_leases WHERE network_id = ?", (net.id,))]
            if users:
                raise Conflict(f"network {net.name} is in use by container{'s' if len(users) > 1 else ''} "
                               f"{', '.join(users)}: disconnect or remove {'them' if len(users) > 1 else 'it'} "
                               f"first")
            c.execute("DELETE FROM networks WHERE id = ?", (net.id,))
        from pallet.network import dns

        dns.stop(self.store, net.id)
        bridge.network_down(net)
        self._event(net, "destroy")
        return net

    def prune(self, labels: list[str] | None = None) -> list[str]:
        """Remove every user network no container uses; the names removed."""
        gone = []
        used = {r[0] for r in self.db.query("SELECT DISTINCT network_id FROM network_leases")}
        for net in self._all():
            if net.predefined or net.id in used or not _labels_match(net.labels, labels or []):
                continue
            try:
                self.remove(net.id)
            except Conflict:
                continue
            gone.append(net.name)
        return gone

    # ---- containers ----------------------------------------------------------------------
    def attach(self, netns_path: str, network: str, container_id: str, name: str, *,
               ip: str | None = None, mac: str | None = None, ifname: str | None = None,
               dns_names: list[str] | None = None, dns_servers: list[str] | None = None,
               ip6: str | None = None) -> Lease:
        """Lease an address on `network` and plug the namespace at `netns_path` into it (`mac`: the
        interface's MAC instead of docker's 02:42 + the address; `ifname`: the interface's name in the
        namespace when the caller knows it is free — a fresh namespace's eth0 — instead of the first
        free ethN, which costs a netlink socket in that namespace; `dns_names`: the names the network's
        DNS server answers for it besides its 12-char id — name, hostname, aliases; `dns_servers`: its
        --dns, the upstreams its other queries go to)."""
        from pallet.network import bridge

        net = self.get(network)
        if net.driver != "bridge" or net.ipam is None:
            raise InvalidNetworkConfig(f"containers cannot be attached to network {net.name} "
                                       f"(driver {net.driver}): it is a mode, not a network")
        lease = self._lease(net, container_id, name, ip, ifname or bridge.container_ifname(netns_path), mac,
                            dns_names, dns_servers, ip6)
        try:
            bridge.attach(net, lease, netns_path)
            if net.dns:
                from pallet.network import dns

                dns.ensure(self.store, net)
        except BaseException:
            self._release(lease)
            raise
        self._event(net, "connect", container_id)
        return lease

    def _lease(self, net: Network, container_id: str, name: str, ip: str | None, ifname: str,
               mac: str | None = None, dns_names: list[str] | None = None,
               dns_servers: list[str] | None = None, ip6: str | None = None) -> Lease:
        with self.db.transaction() as c:
            if c.execute("SELECT 1 FROM networks WHERE id = ?", (net.id,)).fetchone() is None:
                raise NotFound(f"network {net.name} not found")
            if c.execute("SELECT 1 FROM network_leases WHERE network_id = ? AND container_id = ?",
                         (net.id, container_id)).fetchone():
                raise Conflict(f"container {name} is already attached to network {net.name}")
            taken = [r[0] for r in c.execute("SELECT address FROM network_leases WHERE network_id = ?", (net.id,))]
            addr = ipam.check_requested(net.ipam, ip, taken) if ip else ipam.next_address(net.ipam, taken)
            lease = Lease(network_id=net.id, network=net.name, container_id=container_id, name=name,
                          address=str(addr), prefixlen=net.ipam.subnet.prefixlen, gateway=str(net.ipam.gateway),
                          mac=mac or ipam.mac_for(addr), host_ifname=host_ifname(net.id, container_id), ifname=ifname)
            names = list(dict.fromkeys(n for n in (dns_names if dns_names is not None else [name]) if n))
            c.execute("INSERT INTO network_leases(network_id, address, container_id, name, mac, ifname,"
                      " container_ifname, created, dns_names, dns_servers) VALUES (?,?,?,?,?,?,?,?,?,?)",
                      (net.id, lease.address, container_id, name, lease.mac, lease.host_ifname, ifname,
                       time.time(), json.dumps(names), json.dumps(list(dns_servers or ()))))
            if net.ipam6 is not None:     # (--ipv6) the IPv6 address, the lowest free one or --ip6
                taken6 = [r[0] for r in c.execute("SELECT address6 FROM network_leases WHERE network_id = ?"
                                                  " AND address6 IS NOT NULL", (net.id,))]
                addr6 = ipam.check_requested6(net.ipam6, ip6, taken6) if ip6 else ipam.next_address6(net.ipam6, taken6)
                c.execute("UPDATE network_leases SET address6 = ? WHERE network_id = ? AND container_id = ?",
                          (str(addr6), net.id, container_id))
                from pallet.records import replace

                lease = replace(lease, address6=str(addr6), prefixlen6=net.ipam6.subnet.prefixlen,
                                gateway6=str(net.ipam6.gateway))
        return lease

    def release(self, lease: Lease) -> None:
        """Give the lease's address back without touching the kernel (the caller deletes the veth,
        `bridge.detach`, when it likes: after a container's exit its namespace took it already)."""
        self._release(lease)
        self._lease_event(lease, "disconnect")

    def _release(self, lease: Lease) -> None:
        with self.db.transaction() as c:
            c.execute("DELETE FROM network_leases WHERE network_id = ? AND container_id = ?",
                      (lease.network_id, lease.container_id))
        if (self.store.root / "network" / f"dns-{lease.network_id[:12]}.pid").exists():   # (dns._pidfile)
            from pallet.network import dns

            dns.stop_if_unused(self.store, lease.network_id)

    def detach(self, network: str, container_id: str) -> Lease | None:
        """Unplug a container from one network and give its address back (None: it was not attached)."""
        from pallet.network import bridge

        net = self.get(network)
        found = self.leases(net, container_id)
        if not found:
            return None
        bridge.detach(found[0])
        self._release(found[0])
        self._lease_event(found[0], "disconnect")
        return found[0]

    def detach_all(self, container_id: str) -> list[Lease]:
        """Unplug a container from every network (its removal; a namespace already gone is fine)."""
        from pallet.network import bridge

        out = []
        for lease in self.leases(container_id=container_id):
            bridge.detach(lease)
            self._release(lease)
            self._lease_event(lease, "disconnect")
            out.append(lease)
        return out


def check_name(name: str) -> None:
    """docker's network name rule: [a-zA-Z0-9][a-zA-Z0-9_.-]*"""
    ok = name and name[0].isascii() and name[0].isalnum() and all(
        c.isascii() and (c.isalnum() or c in "_.-") for c in name)
    if not ok:
        raise InvalidNetworkConfig(f"invalid network name {name!r}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")


def _labels_match(labels: dict, wanted: list[str]) -> bool:
    for w in wanted:
        k, sep, v = w.partition("=")
        if k not in labels or (sep and labels[k] != v):
            return False
    return True


