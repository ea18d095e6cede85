"""The engine's side of networking: `--network` modes, a container's endpoints, and the calls into
`pallet.network` when its init's namespace exists (attach) and when it is gone (detach).

A container's network settings live in its config:

    HostConfig.NetworkMode                     none | host | container:<id> | the (first) network's name
    NetworkingConfig.EndpointsConfig{NAME}     {"IPAMConfig": {"IPv4Address"} | None, "Aliases", "MacAddress"}

and its addresses in the network layer's leases (one per network while it runs). `none` and `host`
have no endpoints, and nothing here imports `pallet.network` for them: the hot path `run --network none`
pays nothing (and `run` on the default bridge only a query in the CLI: `plan`).
"""

from __future__ import annotations

from pallet.engine.options import EndpointSettings
from pallet.errors import InvalidField, NotFound, PalletError

MODES = ("none", "host")
HOST_GATEWAY = "host-gateway"


def _is_mac(text: str) -> bool:
    parts = text.split(":")
    return len(parts) == 6 and all(len(p) == 2 and all(ch in "0123456789abcdefABCDEF" for ch in p) for p in parts)


def _store(engine):
    """The engine's store with its database connection open (a forked monitor reopens it lazily)."""
    engine.db  # noqa: B018 - the property reopens the connection
    return engine.store


def endpoints(c) -> dict:
    """{network name: endpoint settings} of a container (empty for none, host and container:)."""
    return ((c.config.get("NetworkingConfig") or {}).get("EndpointsConfig")) or {}


def is_network(mode: str) -> bool:
    return mode not in MODES and not mode.startswith("container:")


def plan(engine, asked) -> tuple[str, dict]:
    """Check an `options.Networking` (NetworkMode, the endpoints' addresses, aliases and MAC address,
    ExtraHosts, PortBindings) before anything is created; returns (NetworkMode, EndpointsConfig). Bad
    input: one sentence (InvalidField names the field), nothing created."""
    mode = asked.NetworkMode or "bridge"
    first = asked.endpoint()
    ip, ip6, aliases, mac = first.IPv4Address, first.IPv6Address, list(first.Aliases or ()), first.MacAddress
    more = asked.more()
    for m in more:
        if asked.EndpointsConfig[m] != EndpointSettings():
            raise PalletError(f"endpoint settings on network {m!r} are not supported: only the first network "
                              f"({mode}) takes addresses, aliases and a MAC address")
    if more and not all(is_network(m) for m in (mode, *more)):
        raise PalletError("conflicting options: cannot attach both user-defined and non-user-defined "
                          "network-modes")
    if mac is not None and not _is_mac(mac):
        raise InvalidField("MacAddress", "invalid {name} {text!r}: expected six hex bytes such as 02:42:ac:11:00:02",
                           text=mac)
    for h in asked.ExtraHosts:
        name, sep, addr = h.partition(":")
        if not sep or not name or not addr:
            raise InvalidField("ExtraHosts", "invalid {name} {text!r}: expected HOST:IP", text=h)
        if addr != HOST_GATEWAY:
            import ipaddress

            try:
                ipaddress.ip_address(addr)
            except ValueError:
                raise InvalidField("ExtraHosts", "invalid {name} {text!r}: {addr!r} is not an IP address (or {gw})",
                                   text=h, addr=addr, gw=HOST_GATEWAY) from None
    if not is_network(mode):
        publish = asked.PortBindings
        if publish and mode == "none":
            raise InvalidField("PortBindings", "published ports ({name}) need a network: the container has {network} "
                               "none", network="NetworkMode")
        if (publish or asked.PublishAllPorts) and mode.startswith("container:"):
            raise PalletError("conflicting options: port publishing and the container type network mode")
        for field, given in (("IPv4Address", ip), ("IPv6Address", ip6), ("Aliases", aliases), ("MacAddress", mac)):
            if given:
                raise InvalidField(field, "{name} needs a network ({network} bridge or a user network), not "
                                   "{network} {mode}", network="NetworkMode", mode=mode)
        if mode.startswith("container:"):
            ref = mode.partition(":")[2]
            if not ref:
                raise InvalidField("NetworkMode", "invalid {name} container: it needs a container name or id")
            other = engine.get(ref)
            if other.status != "running":
                raise PalletError(f"cannot join the network of container {other.name}: it is not running")
            mode = "container:" + other.id
        return mode, {}
    if mode == "bridge" and not more and not ip and not aliases:
        try:   # the default bridge once recorded: a plain query, no import of the network layer (hot path)
            row = engine.db.query("SELECT id FROM networks WHERE name = 'bridge' AND subnet IS NOT NULL")
        except Exception:  # noqa: BLE001 - a store without the networks tables: the slow path makes them
            row = []
        if row:
            return "bridge", {"bridge": {"IPAMConfig": None, "Aliases": None,
                                         "MacAddress": mac.lower() if mac else "", "NetworkID": row[0][0]}}
    from pallet.network.networks import Networks

    nets = Networks(_store(engine))
    rest = {}
    for m in more:                  # the other networks: an endpoint each, --ip/--alias/--mac are the first's
        other = nets.get(m)
        if other.driver != "bridge" or other.ipam is None:
            raise InvalidField("NetworkMode", "network {net} (driver {driver}) cannot be used as {name} {m}",
                               net=other.name, driver=other.driver, m=m)
        if other.name in rest or other.id == nets.get(mode).id:
            raise PalletError(f"network {m!r} is specified multiple times")
        rest[other.name] = {"IPAMConfig": None, "Aliases": None, "MacAddress": "", "NetworkID": other.id}
    net = nets.get(mode)            # NotFound: "network NAME not found"
    if net.driver != "bridge" or net.ipam is None:
        raise InvalidField("NetworkMode", "network {net} (driver {driver}) cannot be used as {name} {m}",
                           net=net.name, driver=net.driver, m=mode)
    if (ip or aliases) and net.name == "bridge":
        raise InvalidField("IPv4Address" if ip else "Aliases", "{name} is supported on user-defined networks only, "
                           "not on the default bridge")
    if ip:
        from pallet.network import ipam

        taken = [le.address for le in nets.leases(net)]
        ipam.check_requested(net.ipam, ip, taken)
    if ip6:
        from pallet.network import ipam

        if net.ipam6 is None:
            raise InvalidField("IPv6Address", "{name} needs a network with IPv6: network {net} was not created "
                               "with {ipv6}", net=net.name, ipv6="EnableIPv6")
        ipam.check_requested6(net.ipam6, ip6, [le.address6 for le in nets.leases(net)])
    if asked.PortBindings and net.ipam6 is None:
        from pallet.engine import ports

        for key, binds in ports.check(asked.PortBindings).items():
            for b in binds:
                if ":" in b["HostIp"]:
                    raise InvalidField("PortBindings", "cannot publish [{ip}]:{port}->{key}: network {net} has no IPv6 "
                                       "address for the container (it was not created with {ipv6})",
                                       ip=b["HostIp"], port=b["HostPort"], key=key, net=net.name, ipv6="EnableIPv6")
    ep = {"IPAMConfig": _ipam_config(ip, ip6), "Aliases": aliases or None,
          "MacAddress": mac.lower() if mac else "", "NetworkID": net.id}
    return net.name, {net.name: ep, **rest}


def _ipam_config(ip: str | None, ip6: str | None) -> dict | None:
    """docker's EndpointSettings.IPAMConfig: the addresses the user asked for (None: none)."""
    out = {}
    if ip:
        out["IPv4Address"] = ip
    if ip6:
        import ipaddress

        out["IPv6Address"] = str(ipaddress.IPv6Address(ip6))
    return out or None


def check_container_mode(engine, mode: str) -> str:
    """The namespace path of the container whose network `container:<id>` joins (it must run)."""
    ref = mode.partition(":")[2]
    try:
        other = engine.get(ref)
    except NotFound:
        raise PalletError(f"cannot join the network of container {ref[:12]}: it no longer exists") from None
    if other.status != "running" or not other.pid:
        raise PalletError(f"cannot join the network of container {other.name}: it is not running")
    return f"/proc/{other.pid}/ns/net"


# ---- /etc/hosts ---------------------------------------------------------------------------------
def gateway_of(engine, network: str) -> str:
    from pallet.network.networks import Networks

    net = Networks(_store(engine)).get(network)
    return str(net.ipam.gateway) if net.ipam else ""


def extra_hosts(engine, c) -> list[str]:
    """--add-host entries with host-gateway resolved: the first network's gateway (the default
    bridge's for none/host, as docker does)."""
    out = []
    gw = None
    for h in c.HostConfig.get("ExtraHosts") or ():
        name, _, addr = h.partition(":")
        if addr == HOST_GATEWAY:
            if gw is None:
                eps = endpoints(c)
                gw = gateway_of(engine, next(iter(eps)) if eps else "bridge")
            addr = gw
        out.append(f"{name}:{addr}")
    return out


def hosts_text(engine, c, leases=None) -> str:
    from pallet.engine.spec import etc_hosts

    mode = c.HostConfig.get("NetworkMode") or "none"
    hostname = c.Config.get("Hostname") or c.short_id
    addresses = None
    if is_network(mode):
        eps = endpoints(c)
        addresses = []
        for le in leases or ():
            names = [hostname] + ([c.name] if c.name and c.name != hostname else [])
            names += [a for a in (eps.get(le.network, {}).get("Aliases") or ()) if a not in names]
            addresses.append((le.address, names))
            if le.address6:
                addresses.append((le.address6, names))
    return etc_hosts(hostname, mode, extra_hosts(engine, c), addresses)


def write_in_place(path, text: str) -> None:
    """Rewrite a file a running container has bind-mounted (same inode: the mount keeps seeing it)."""
    import os

    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        data = text.encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)
    finally:
        os.close(fd)


# ---- name resolution ----------------------------------------------------------------------------
def dns_names(c, ep: dict) -> list[str]:
    """The names a network's DNS server answers for the container (besides its 12-char id): its
    name, its hostname and its aliases on that network, as docker's embedded DNS."""
    names = [c.name, c.Config.get("Hostname") or ""] + list(ep.get("Aliases") or ())
    return list(dict.fromkeys(n for n in names if n))


def resolv_text(engine, c) -> str:
    """The container's /etc/resolv.conf. On a network with DNS (the first of its networks that has
    it): the network's server (the gateway) as the name server, the host's search and options lines (or
    --dns-search, --dns-option), and --dns as the server's upstreams for this container (docker's
    "ExtServers" comment) instead of name servers of its own; elsewhere the host's resolvers
    (spec.resolv_conf)."""
    from pallet.engine.spec import resolv_conf

    hc = c.HostConfig
    mode = hc.get("NetworkMode") or "none"
    dns, search, options = hc.get("Dns"), hc.get("DnsSearch"), hc.get("DnsOptions")
    net = None
    users = [name for name in endpoints(c) if name != "bridge"]  # docker's default bridge has no DNS: no import
    if users:
        from pallet.network.networks import Networks

        nets = Networks(_store(engine))
        for name in users:
            try:
                got = nets.get(name)
            except NotFound:
                continue
            if got.dns and got.ipam is not None:
                net = got
                break
    if net is None:
        return resolv_conf(mode, dns, search, options)
    base = resolv_conf(mode, None, search, options)
    lines = [ln for ln in base.splitlines() if (ln.split() or [""])[0] != "nameserver"]
    lines.append(f"nameserver {net.ipam.gateway}")
    if dns:
        lines.append(f"# ExtServers: [{' '.join(dns)}]")
    return "\n".join(lines) + "\n"


def rewrite_resolv(engine, c) -> None:
    """After `network connect`/`disconnect`: the container's /etc/resolv.conf again, in place, when the
    network that answers its names changed (its first one with DNS, as docker's sandbox rebuilds it
    when an endpoint that needs its embedded DNS joins)."""
    path = engine.dir(c.id) / "resolv.conf"
    try:
        before = path.read_text()
    except FileNotFoundError:
        return
    text = resolv_text(engine, c)
    if text != before:
        write_in_place(path, text)


# ---- attach / detach ----------------------------------------------------------------------------
def leases(engine, cid: str) -> list:
    from pallet.network.networks import Networks

    return Networks(_store(engine)).leases(container_id=cid)


def has_leases(engine, cid: str) -> bool:
    """Whether the network layer holds an address for the container (a plain query: no import)."""
    try:
        return bool(engine.db.query("SELECT 1 FROM network_leases WHERE container_id = ? LIMIT 1", (cid,)))
    except Exception:  # noqa: BLE001 - a store without the networks tables has no leases
        return False


def up(engine, c, init_pid: int) -> list:
    """Plug the container's init (created, not started) into each of its networks, then write its
    /etc/hosts with the addresses. A failure undoes what was done and raises."""
    from pallet import network

    store = _store(engine)
    if has_leases(engine, c.id):       # left by a monitor that was killed, or a reboot
        if _bindings(c):               # (and its published ports: else they hold its own host ports)
            unpublish(engine, c)
        network.detach_all(store, c.id)
    netns = f"/proc/{init_pid}/ns/net"
    got = []
    try:
        for i, (name, ep) in enumerate(endpoints(c).items()):   # (a fresh namespace: eth0, eth1, …)
            ip = (ep.get("IPAMConfig") or {}).get("IPv4Address") or None
            ip6 = (ep.get("IPAMConfig") or {}).get("IPv6Address") or None
            got.append(network.attach(store, netns, name, c.id, c.name, ip=ip, ip6=ip6,
                                      mac=ep.get("MacAddress") or None, ifname=f"eth{i}",
                                      dns_names=dns_names(c, ep), dns_servers=c.HostConfig.get("Dns")))
        write_in_place(engine.dir(c.id) / "hosts", hosts_text(engine, c, got))
        if got and _bindings(c):
            publish(engine, c, got[0])
    except BaseException:
        try:
            network.detach_all(store, c.id)
        except Exception:  # noqa: BLE001 - the first error is the one to report
            pass
        raise
    return got


def _bindings(c) -> dict:
    from pallet.engine import ports

    return ports.bindings(c)


def _host_socket(proto: str, host_ip: str):
    """A socket of `proto` for `host_ip`'s family, to bind like a host process would (None: this kernel
    has no such protocol, e.g. SCTP without its module: no host process can hold such a port)."""
    import socket

    family = socket.AF_INET6 if ":" in host_ip else socket.AF_INET
    kind, number = {"tcp": (socket.SOCK_STREAM, 0), "udp": (socket.SOCK_DGRAM, 0),
                    "sctp": (socket.SOCK_STREAM, socket.IPPROTO_SCTP)}[proto]
    try:
        s = socket.socket(family, kind, number)
    except OSError:
        if proto == "sctp":
            return None
        raise
    if family == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    return s


def _free_port(proto: str, host_ip: str, published: set) -> int:
    """A random host port as docker picks one: in the kernel's ephemeral range (bind to port 0), free
    on the host, and not published by another container already (`published`: (proto, port))."""
    import random

    for _ in range(64):
        s = _host_socket(proto, host_ip)
        if s is None:    # (no such protocol here: any port of the range is free on the host)
            lo, hi = (int(x) for x in open("/proc/sys/net/ipv4/ip_local_port_range").read().split())
            port = random.randint(lo, hi)
        else:
            with s:
                s.bind((host_ip or "0.0.0.0", 0))
                port = s.getsockname()[1]
        if (proto, port) not in published:
            published.add((proto, port))
            return port
    raise PalletError(f"cannot publish a random {proto} port: no free port found in the ephemeral range")


def _hostport(host_ip: str, port: int) -> str:
    from pallet.engine.ports import _join

    return _join(host_ip, port)


def _check_unbound(proto: str, host_ip: str, port: int) -> None:
    """A host process that holds the port (DNAT would steal its traffic): an error, as docker's."""
    import errno

    s = _host_socket(proto, host_ip)
    if s is None:
        return
    with s:
        try:
            s.bind((host_ip or "0.0.0.0", port))
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise PalletError(f"cannot publish {_hostport(host_ip, port)}/{proto}: the port is already in "
                                  "use on the host") from None
            if e.errno == errno.EADDRNOTAVAIL:
                raise PalletError(f"cannot publish {_hostport(host_ip, port)}/{proto}: {host_ip} is not an address of "
                                  "this host") from None
            raise


def publish(engine, c, lease, keep: dict | None = None, replace: list | None = None) -> None:
    """DNAT of the container's published ports to `lease`'s address: one nftables transaction; the
    host ports actually used (a random one for an empty HostPort; `keep`'s, the ones used before, when
    it is re-published) are kept in the row (`Ports`). `replace`: the (proto, host port) keys it
    published before, deleted in the same transaction (its NftError, when refused, is the caller's)."""
    from pallet import jsonfast
    from pallet.linux import sysctl
    from pallet.linux.nftables import NftError
    from pallet.network import firewall
    from pallet.network.networks import Networks

    v6 = getattr(lease, "address6", "")
    net = Networks(_store(engine)).get(lease.network_id)
    published = None
    for attempt in range(3):
        actual: dict = {}
        rules = []
        random_ports = False
        for key, binds in _bindings(c).items():
            port, _, proto = key.partition("/")
            before = (keep or {}).get(key) or []
            seen: dict[str, int] = {}
            for b in binds or ():
                host_ip = b.get("HostIp") or ""
                if ":" in host_ip and not v6:
                    raise PalletError(f"cannot publish [{host_ip}]:{b.get('HostPort') or ''}->{key}: container {c.name} "
                                      f"has no IPv6 address (its first network was not created with --ipv6)")
                shown = host_ip or "0.0.0.0"
                k = seen[shown] = seen.get(shown, -1) + 1
                earlier = [x for x in before if x.get("HostIp") == shown]     # (the k-th bind of this address)
                if b.get("HostPort"):
                    hp = int(b["HostPort"])
                elif k < len(earlier) and earlier[k].get("HostPort"):
                    hp = int(earlier[k]["HostPort"])
                else:
                    if published is None:
                        published = firewall.published()
                    hp = _free_port(proto, host_ip, published)
                    random_ports = True
                if not keep:
                    _check_unbound(proto, host_ip, hp)
                    if not host_ip and v6:
                        _check_unbound(proto, "::", hp)
                rules.append((proto, host_ip, hp, int(port)))
                actual.setdefault(key, []).append({"HostIp": shown, "HostPort": str(hp)})
                if not host_ip and v6:       # (docker's: a port published on any address is so on IPv6 too)
                    actual[key].append({"HostIp": "::", "HostPort": str(hp)})
        try:
            sysctl.write(f"net.ipv4.conf.{net.bridge}.route_localnet", "1")   # 127.0.0.1:PORT reaches it
            firewall.apply(firewall.unpublish_elements(replace or ()) + firewall.publish(c.id, lease.address, rules, v6))
            break
        except NftError as e:
            if replace:
                raise
            if "File exists" in str(e):
                if random_ports and attempt < 2:    # another container's start took a port we picked: again
                    published = firewall.published()
                    continue
                raise PalletError("cannot publish " + ", ".join(f"{hp}/{p}" for p, _, hp, _ in rules) +
                                  ": a host port is already published by another container") from None
            raise PalletError(f"cannot publish the ports of container {c.name}: {e}") from None
    c.config["Ports"] = actual
    engine._update(c.id, config=jsonfast.dumps(c.config))


def _published_keys(c) -> list[tuple[str, str]]:
    """(proto, host port) of what the container's record says it published."""
    return [(key.partition("/")[2] or "tcp", b["HostPort"]) for key, binds in (c.config.get("Ports") or {}).items()
            for b in binds or () if b.get("HostPort")]


def unpublish(engine, c) -> None:
    """Remove the container's published ports: the elements its record names (no read of the table),
    else (that transaction refused: a reboot, a killed monitor) what the table says is its."""
    from pallet.linux.nftables import NftError
    from pallet.network import firewall

    keys = _published_keys(c)
    if keys:
        try:
            firewall.apply(firewall.unpublish_known(c.id, keys))
            return
        except NftError:
            pass
    firewall.apply(firewall.unpublish(c.id))


def republish(engine, c, leases) -> None:
    """After connect/disconnect of a running container: its published ports forward to its first
    network's (new) address, on the same host ports."""
    if not _bindings(c):
        return
    if leases:    # one transaction: the old elements out, the chain's rules to the new address
        from pallet.linux.nftables import NftError

        try:
            publish(engine, c, leases[0], keep=c.config.get("Ports") or {}, replace=_published_keys(c))
            return
        except NftError:     # (its elements were not all there: a reboot, a killed monitor)
            pass
    unpublish(engine, c)
    if leases:
        publish(engine, c, leases[0], keep=c.config.get("Ports") or {})


def release(engine, c) -> list:
    """Give the container's addresses back (and remove its published ports); the leases, whose veths
    `unplug` deletes (its namespace may be gone already, and them with it: fine)."""
    if not has_leases(engine, c.id):   # (whoever gave them back removed its published ports first: the
        return []                      # monitor at the exit, then rm -f's own call, makes one transaction)
    if _bindings(c):
        unpublish(engine, c)
    from pallet.network.networks import Networks

    nets = Networks(_store(engine))
    got = nets.leases(container_id=c.id)
    for le in got:
        nets.release(le)
    return got


def unplug(leases, *, exited: bool = False) -> None:
    """The leases' veths, after the container's init is gone (every caller: the monitor after the exit
    — `exited` —, `rm -f` and a failed start after the kill): its namespace's destruction takes them
    10-40 ms later. Nobody waits for that (neither a CLI's `rm -f`, 16-40 ms per veth, nor the monitor,
    whose exit `rm -f` of a --rm container waits for): a detached process deletes what is still there
    after the grace period (`bridge.reap_later`), so none is left behind."""
    if leases:
        from pallet.network import bridge

        bridge.reap_later(leases)


def settle() -> None:
    """Wait for the veths `unplug(exited=True)` left to the kernel (the monitor, when nobody waits)."""
    import sys

    bridge = sys.modules.get("pallet.network.bridge")
    if bridge is not None:
        bridge.settle()


def down(engine, c) -> None:
    unplug(release(engine, c))


# ---- connect / disconnect -----------------------------------------------------------------------
def connect(engine, c, network: str, *, ip: str | None = None, aliases=(), mac: str | None = None,
            ip6: str | None = None) -> None:
    """`network connect`: record the endpoint; a running container is plugged in at once."""
    from pallet import jsonfast
    from pallet.engine.model import alive
    from pallet.network import ipam
    from pallet.network.networks import Networks

    mode = c.HostConfig.get("NetworkMode") or "none"
    if not is_network(mode):
        raise InvalidField("NetworkMode", "container {c} uses {name} {m}: it cannot be connected to a network",
                           c=c.name, m=mode.partition(":")[0])
    nets = Networks(_store(engine))
    net = nets.get(network)
    if net.driver != "bridge" or net.ipam is None:
        raise PalletError(f"container {c.name} cannot be connected to network {net.name} (driver {net.driver})")
    eps = dict(endpoints(c))
    if net.name in eps:
        raise PalletError(f"container {c.name} is already connected to network {net.name}")
    if (ip or aliases) and net.name == "bridge":
        raise InvalidField("IPv4Address" if ip else "Aliases", "{name} is supported on user-defined networks only, "
                           "not on the default bridge")
    if ip:
        ipam.check_requested(net.ipam, ip, [le.address for le in nets.leases(net)])
    if ip6:
        if net.ipam6 is None:
            raise InvalidField("IPv6Address", "{name} needs a network with IPv6: network {net} was not created "
                               "with {ipv6}", net=net.name, ipv6="EnableIPv6")
        ipam.check_requested6(net.ipam6, ip6, [le.address6 for le in nets.leases(net)])
    ep = {"IPAMConfig": _ipam_config(ip, ip6), "Aliases": list(aliases) or None,
          "MacAddress": mac or "", "NetworkID": net.id}
    with engine.locked(c):
        c = engine.get(c.id)
        running = c.status == "running" and alive(c.pid, c.pid_start)
        if running:
            nets.attach(f"/proc/{c.pid}/ns/net", net.id, c.id, c.name, ip=ip, mac=mac,
                        dns_names=dns_names(c, ep), dns_servers=c.HostConfig.get("Dns"), ip6=ip6)
        eps = dict(endpoints(c))
        eps[net.name] = ep
        c.config.setdefault("NetworkingConfig", {})["EndpointsConfig"] = eps
        engine._update(c.id, config=jsonfast.dumps(c.config))
        if running:
            now = nets.leases(container_id=c.id)
            write_in_place(engine.dir(c.id) / "hosts", hosts_text(engine, c, now))
            if len(now) == 1:      # its first network: the published ports go there
                republish(engine, c, now)
        rewrite_resolv(engine, c)


def disconnect(engine, c, network: str, *, force: bool = False) -> None:
    """`network disconnect`: unplug a running container and forget the endpoint."""
    from pallet import jsonfast
    from pallet.network.networks import Networks

    nets = Networks(_store(engine))
    try:
        net = nets.get(network)
    except NotFound:
        if not force:
            raise
        net = None
    with engine.locked(c):
        c = engine.get(c.id)
        eps = dict(endpoints(c))
        name = net.name if net is not None else network
        if name not in eps and not (net is not None and nets.leases(net, c.id)):
            if force:
                return
            raise PalletError(f"container {c.name} is not connected to network {name}")
        if net is not None:
            nets.detach(net.id, c.id)
        eps.pop(name, None)
        c.config.setdefault("NetworkingConfig", {})["EndpointsConfig"] = eps
        engine._update(c.id, config=jsonfast.dumps(c.config))
        if c.status == "running":
            now = nets.leases(container_id=c.id)
            write_in_place(engine.dir(c.id) / "hosts", hosts_text(engine, c, now))
            republish(engine, c, now)
        rewrite_resolv(engine, c)


# ---- inspect, ps ----------------------------------------------------------------------------------
def _endpoint_dns_names(c, ep: dict) -> list[str]:
    """docker's DNSNames of an endpoint on a user network: the name, the aliases, the short id and the
    hostname, without repeats."""
    names = [c.name, *(ep.get("Aliases") or ()), c.short_id, c.Config.get("Hostname") or ""]
    return list(dict.fromkeys(n for n in names if n))


def _endpoint(ep: dict | None, lease, net_id: str = "", dns_names=None) -> dict:
    """docker's EndpointSettings (the Engine API's field order); a stopped container's endpoint keeps
    its configuration and loses its addresses."""
    ep = ep or {}
    v6 = getattr(lease, "address6", "") if lease else ""
    return {
        "IPAMConfig": ep.get("IPAMConfig"), "Links": None, "Aliases": ep.get("Aliases"),
        "MacAddress": lease.mac if lease else (ep.get("MacAddress") or ""), "DriverOpts": None,
        "GwPriority": 0,
        "NetworkID": lease.network_id if lease else (ep.get("NetworkID") or net_id),
        "EndpointID": lease.endpoint_id if lease else "",
        "Gateway": lease.gateway if lease else "", "IPAddress": lease.address if lease else "",
        "IPPrefixLen": lease.prefixlen if lease else 0,
        "IPv6Gateway": (getattr(lease, "gateway6", "") or "") if v6 else "",
        "GlobalIPv6Address": v6 or "", "GlobalIPv6PrefixLen": getattr(lease, "prefixlen6", 0) if v6 else 0,
        "DNSNames": dns_names,
    }


def settings(engine, c) -> dict:
    """docker's NetworkSettings: Networks{NAME: endpoint}; the deprecated top-level address fields are
    the default bridge's endpoint (empty on user networks, as docker's); Ports only while it runs
    ({"80/tcp": [{"HostIp", "HostPort"}], "81/tcp": None for an exposed port not published})."""
    import hashlib

    mode = c.HostConfig.get("NetworkMode") or "none"
    eps = endpoints(c)
    running = c.status == "running" and bool(c.pid)
    nets: dict = {}
    if eps:
        by_net = {le.network: le for le in leases(engine, c.id)} if running else {}
        for name, ep in eps.items():
            nets[name] = _endpoint(ep, by_net.get(name),
                                   dns_names=None if name == "bridge" else _endpoint_dns_names(c, ep))
    elif mode in MODES:
        try:
            row = engine.db.query("SELECT id FROM networks WHERE name = ?", (mode,))
        except Exception:  # noqa: BLE001 - a store without the networks tables
            row = []
        nets[mode] = _endpoint(None, None, row[0][0] if row else "")
    top = nets.get("bridge") or _endpoint(None, None)
    ports: dict = {}
    if running:
        live = c.config.get("Ports") or {}
        ports = {p: None for p in (c.Config.get("ExposedPorts") or {})}
        for key in _bindings(c):
            ports[key] = live.get(key)
    sandbox = running and mode != "host" and not mode.startswith("container:")
    return {
        "Bridge": "",
        "SandboxID": hashlib.sha256(f"{c.id}/{c.pid}".encode()).hexdigest() if sandbox else "",
        "SandboxKey": f"/proc/{c.pid}/ns/net" if sandbox else "",
        "Ports": ports, "HairpinMode": False, "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0,
        "SecondaryIPAddresses": None, "SecondaryIPv6Addresses": None,
        "EndpointID": top["EndpointID"], "Gateway": top["Gateway"], "GlobalIPv6Address": top["GlobalIPv6Address"],
        "GlobalIPv6PrefixLen": top["GlobalIPv6PrefixLen"], "IPAddress": top["IPAddress"],
        "IPPrefixLen": top["IPPrefixLen"], "IPv6Gateway": top["IPv6Gateway"], "MacAddress": top["MacAddress"],
        "Networks": nets,
    }


def names(c) -> str:
    """ps's Networks column: the networks' names (the mode for none/host/container:)."""
    eps = endpoints(c)
    if eps:
        return ",".join(eps)
    mode = c.HostConfig.get("NetworkMode") or ""
    return "container:" + mode[10:22] if mode.startswith("container:") else mode
