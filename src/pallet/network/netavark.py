"""`pallet-netavark`: podman's network backend contract (netavark's command line and JSON) on pallet's
network layer, so that podman (`network_backend = "netavark"`, `helper_binaries_dir` naming a directory
where this command is called `netavark`) runs its containers on pallet's bridges, firewall and DNS.

    pallet-netavark [--config DIR] [--rootless[=BOOL]] [--aardvark-binary=PATH] [-f FILE] setup NETNS
    pallet-netavark ... teardown NETNS        NetworkOptions JSON on stdin (or -f FILE)
    pallet-netavark ... create                a network's JSON on stdin -> the completed network JSON
    pallet-netavark version

`setup` prints `{network name: StatusBlock}` (the interfaces made in the container's namespace, their
addresses and the DNS server of each network with `dns_enabled`); errors are netavark's: `{"error": "..."}`
on stdout, the message on stderr, exit code 1.

What maps where: podman does its own IPAM (`static_ips` of each network), so a network's record and a
container's lease are written as podman says — into a pallet store of their own at `DIR/pallet` (podman's
network run directory, volatile as netavark's state). The bridge is the network's `network_interface`,
the veth is named by `interface_name`, the firewall is pallet's `table inet pallet` (one transaction for a
container's published ports, `port_mappings`), and a network with `dns_enabled` gets pallet's DNS server
on its gateway (aardvark-dns's role: the container's name and aliases, also under the `dns.podman`
domain, the rest forwarded to `dns_servers` or the host's resolvers). The last container's teardown
removes the network's bridge and chains (as netavark does).
"""

from __future__ import annotations

import json
import os
import sys
import time

DNS_DOMAIN = "dns.podman"          # podman's default dns_domain (containers.conf)
NETAVARK_VERSION = "1.4.0"         # the netavark release whose contract this follows (podman 4.3's)


class ContractError(Exception):
    """Input podman should not have sent (one sentence, exit 1 as netavark)."""


# ---- the command line ------------------------------------------------------------------------------
def parse_args(argv: list[str]) -> dict:
    """netavark's options (clap: `--opt VALUE` and `--opt=VALUE`; --rootless with or without a value)."""
    opts = {"config": "/tmp", "rootless": False, "file": None, "aardvark": None, "command": None, "args": []}
    it = iter(argv)
    for a in it:
        key, eq, val = a.partition("=")

        def value(key=key, eq=eq, val=val) -> str:
            v = val if eq else next(it, None)
            if v is None:
                raise ContractError(f"option {key} needs a value")
            return v

        if opts["command"] is not None:
            opts["args"].append(a)
        elif key in ("--config", "-c"):
            opts["config"] = value()
        elif key in ("--file", "-f"):
            opts["file"] = value()
        elif key in ("--rootless", "-r"):
            opts["rootless"] = (val if eq else "true").lower() == "true"
        elif key in ("--aardvark-binary", "-a"):
            opts["aardvark"] = value()
        elif key == "--plugin-directory":
            value()
        elif key in ("--version", "-V"):
            opts["command"] = "--version"
        elif a.startswith("-"):
            raise ContractError(f"unknown option {a!r}")
        else:
            opts["command"] = a
    return opts


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    try:
        opts = parse_args(argv)
        cmd = opts["command"]
        if cmd == "--version":
            print(f"pallet-netavark {NETAVARK_VERSION}")
            return
        if cmd == "version":
            from pallet import __version__

            print(json.dumps({"version": NETAVARK_VERSION, "commit": f"pallet {__version__}",
                              "build_time": "", "target": "x86_64-unknown-linux-gnu"}, indent=2))
            return
        if cmd not in ("setup", "teardown", "create"):
            raise ContractError(f"unknown command {cmd!r} (pallet-netavark has: setup, teardown, create, version)"
                                if cmd else "a command is needed: setup, teardown, create or version")
        doc = _read_input(opts["file"])
        if cmd == "create":
            out = create(opts["config"], doc)
        else:
            if len(opts["args"]) != 1:
                raise ContractError(f"{cmd} needs one argument: the path of the container's network namespace")
            netns = opts["args"][0]
            if cmd == "setup" and not os.path.exists(netns):   # (teardown works from the leases: it may be gone)
                raise ContractError(f"failed to open the network namespace {netns}: no such file or directory")
            out = (setup if cmd == "setup" else teardown)(opts["config"], netns, doc)
        if out is not None:
            print(json.dumps(out))
    except Exception as e:  # noqa: BLE001 - every failure is netavark's one JSON error
        msg = getattr(e, "message", None) or str(e) or type(e).__name__
        print(json.dumps({"error": msg}))
        print(f"Error: {msg}", file=sys.stderr)
        sys.exit(1)


def _read_input(path: str | None) -> dict:
    try:
        text = open(path).read() if path else sys.stdin.read()
    except OSError as e:
        raise ContractError(f"cannot read {path}: {e.strerror}") from None
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise ContractError(f"invalid JSON input: {e}") from None
    if not isinstance(doc, dict):
        raise ContractError("invalid JSON input: an object is expected")
    return doc


# ---- the store -------------------------------------------------------------------------------------
def _store(config: str):
    from pallet.store import Store

    os.makedirs(config, exist_ok=True)
    return Store(os.path.join(config, "pallet"))


def _ipv4_subnet(info: dict) -> dict:
    for s in info.get("subnets") or ():
        if ":" not in s.get("subnet", ""):
            return s
    raise ContractError(f"network {info.get('name')} has no IPv4 subnet: pallet-netavark supports IPv4 bridge "
                        "networks")


def _ipv6_subnet(info: dict) -> dict | None:
    """The network's IPv6 subnet (podman network create --ipv6), if it has one."""
    return next((s for s in info.get("subnets") or () if ":" in s.get("subnet", "")), None)


def _record(store, info: dict):
    """The network podman describes, as a row of pallet's networks table (made or brought up to date)."""
    from ipaddress import IPv4Network

    from pallet.network.networks import Networks

    name, net_id, driver = info.get("name"), info.get("id"), info.get("driver")
    if not name or not net_id:
        raise ContractError("a network in network_info has no name or id")
    if driver != "bridge":
        raise ContractError(f"unsupported driver {driver}: pallet-netavark has the bridge driver")
    sub = _ipv4_subnet(info)
    subnet = IPv4Network(sub["subnet"], strict=False)
    gateway = sub.get("gateway") or str(next(subnet.hosts()))
    bridge = info.get("network_interface") or "podman0"
    from pallet.network.dns import DOMAIN_OPTION

    options = {DOMAIN_OPTION: DNS_DOMAIN} if info.get("dns_enabled") else {}
    with store.db.transaction() as c:
        for (other,) in c.execute("SELECT id FROM networks WHERE (name = ? OR bridge = ?) AND id != ?",
                                  (name, bridge, net_id)).fetchall():   # removed and made again by podman
            if c.execute("SELECT 1 FROM network_leases WHERE network_id = ?", (other,)).fetchone():
                raise ContractError(f"network {name} (bridge {bridge}) is still in use by a network with another id")
            c.execute("DELETE FROM networks WHERE id = ?", (other,))
        row = (name, str(subnet), gateway, bridge, int(bool(info.get("internal"))), json.dumps(options),
               int(bool(info.get("dns_enabled"))))
        if c.execute("SELECT 1 FROM networks WHERE id = ?", (net_id,)).fetchone():
            c.execute("UPDATE networks SET name = ?, subnet = ?, gateway = ?, bridge = ?, internal = ?, options = ?,"
                      " dns = ? WHERE id = ?", (*row, net_id))
        else:
            c.execute("INSERT INTO networks(id, driver, created, name, subnet, gateway, bridge, internal, options, dns)"
                      " VALUES (?,?,?,?,?,?,?,?,?,?)", (net_id, "bridge", time.time(), *row))
        sub6 = _ipv6_subnet(info)
        if sub6 is not None:       # (IPv6 as pallet's own --ipv6 networks: the bridge's second address, a route)
            from ipaddress import IPv6Network

            subnet6 = IPv6Network(sub6["subnet"], strict=False)
            gateway6 = sub6.get("gateway") or str(next(subnet6.hosts()))
            c.execute("UPDATE networks SET ipv6 = 1, subnet6 = ?, gateway6 = ? WHERE id = ?",
                      (str(subnet6), gateway6, net_id))
        else:
            c.execute("UPDATE networks SET ipv6 = 0, subnet6 = NULL, gateway6 = NULL WHERE id = ?", (net_id,))
    return Networks(store).get(net_id)


def _bindings(mappings) -> list[tuple[str, str, int, int]]:
    out = []
    for m in mappings or ():
        count = int(m.get("range") or 1)
        for proto in (m.get("protocol") or "tcp").split(","):
            if proto not in ("tcp", "udp", "sctp"):
                raise ContractError(f"unsupported protocol {proto} in port mapping")
            for i in range(count):
                out.append((proto, m.get("host_ip") or "", int(m["host_port"]) + i, int(m["container_port"]) + i))
    return out


# ---- setup / teardown ----------------------------------------------------------------------------
def setup(config: str, netns: str, opts: dict) -> dict:
    from pallet.linux import sysctl
    from pallet.network import firewall
    from pallet.network.networks import Networks

    cid, cname = opts.get("container_id"), opts.get("container_name") or ""
    networks, infos = opts.get("networks") or {}, opts.get("network_info") or {}
    if not cid:
        raise ContractError("container_id is missing")
    for name in networks:
        if name not in infos:
            raise ContractError(f"network {name} is in networks but not in network_info")
    store = _store(config)
    nets = Networks(store)
    out, done = {}, []
    try:
        for name, per in networks.items():
            net = _record(store, infos[name])
            ips = [ip for ip in per.get("static_ips") or () if ":" not in ip]
            ips6 = [ip for ip in per.get("static_ips") or () if ":" in ip] if net.ipam6 is not None else []
            names = [cname, opts.get("container_hostname") or ""] + list(per.get("aliases") or ())
            lease = nets.attach(netns, net.id, cid, cname, ip=ips[0] if ips else None,
                                mac=per.get("static_mac") or None, ifname=per.get("interface_name") or None,
                                dns_names=[n for n in dict.fromkeys(names) if n],
                                dns_servers=list(opts.get("dns_servers") or ()), ip6=ips6[0] if ips6 else None)
            done.append((net, lease))
            subnets = [{"ipnet": f"{lease.address}/{lease.prefixlen}", "gateway": lease.gateway}]
            if lease.address6:
                subnets.append({"ipnet": f"{lease.address6}/{lease.prefixlen6}", "gateway": lease.gateway6})
            block: dict = {"interfaces": {lease.ifname: {"mac_address": lease.mac, "subnets": subnets}}}
            if net.dns:
                block["dns_server_ips"] = [lease.gateway]
                block["dns_search_domains"] = [DNS_DOMAIN]
            out[name] = block
        rules = _bindings(opts.get("port_mappings"))
        if rules and done:
            net, lease = done[0]
            sysctl.write(f"net.ipv4.conf.{net.bridge}.route_localnet", "1")
            firewall.apply(firewall.publish(cid, lease.address, rules, lease.address6))
    except BaseException:
        for net, _lease in done:
            try:
                nets.detach(net.id, cid)
            except Exception:  # noqa: BLE001 - the first error is the one to report
                pass
        raise
    return out


def teardown(config: str, netns: str, opts: dict) -> None:
    from pallet.errors import NotFound
    from pallet.network import bridge, firewall
    from pallet.network.networks import Networks

    cid = opts.get("container_id")
    if not cid:
        raise ContractError("container_id is missing")
    store = _store(config)
    nets = Networks(store)
    errors = []
    try:
        firewall.apply(firewall.unpublish(cid))
    except OSError as e:
        errors.append(str(e))
    for name in opts.get("networks") or {}:
        info = (opts.get("network_info") or {}).get(name) or {}
        try:
            net = nets.get(info.get("id") or name)
        except NotFound:
            continue
        try:
            nets.detach(net.id, cid)
        except Exception as e:  # noqa: BLE001 - the other networks are torn down all the same
            errors.append(getattr(e, "message", None) or str(e))
        if not nets.leases(net):        # its last container: the bridge and its chains go (netavark's way)
            try:
                bridge.network_down(net)
                with store.db.transaction() as c:
                    c.execute("DELETE FROM networks WHERE id = ? AND NOT EXISTS"
                              " (SELECT 1 FROM network_leases WHERE network_id = ?)", (net.id, net.id))
            except Exception as e:  # noqa: BLE001
                errors.append(getattr(e, "message", None) or str(e))
    if errors:
        raise ContractError("; ".join(errors))


# ---- create ------------------------------------------------------------------------------------------
def create(config: str, info: dict) -> dict:
    """netavark's `create`: a network config (name, id, driver filled in by podman) completed — a subnet
    of docker's pool when none is given, the gateway, the bridge's name (podmanN) — and validated."""
    from ipaddress import IPv4Network, ip_address

    from pallet.network import ipam

    if not info.get("name") or not info.get("id"):
        raise ContractError("the network config needs a name and an id")
    if (info.get("driver") or "bridge") != "bridge":
        raise ContractError(f"unsupported driver {info.get('driver')}: pallet-netavark has the bridge driver")
    out = dict(info, driver="bridge")
    subnets = [dict(s) for s in info.get("subnets") or ()]
    store = _store(config)
    taken = [IPv4Network(r[0]) for r in store.db.query("SELECT subnet FROM networks WHERE subnet IS NOT NULL")]
    if not [s for s in subnets if ":" not in s.get("subnet", "")]:
        subnets.append({"subnet": str(ipam.pick_subnet(taken))})
    for s in subnets:
        if ":" in s["subnet"]:
            continue
        try:
            cfg = ipam.make_config(s["subnet"], s.get("gateway"))
        except Exception as e:  # noqa: BLE001 - ipam's sentence
            raise ContractError(getattr(e, "message", None) or str(e)) from None
        s["subnet"], s["gateway"] = str(cfg.subnet), str(cfg.gateway)
        ip_address(s["gateway"])
    out["subnets"] = subnets
    if not out.get("network_interface"):
        used = {r[0] for r in store.db.query("SELECT bridge FROM networks WHERE bridge IS NOT NULL")}
        n = 1
        while f"podman{n}" in used:
            n += 1
        out["network_interface"] = f"podman{n}"
    out.setdefault("ipv6_enabled", any(":" in s["subnet"] for s in subnets))
    out.setdefault("internal", False)
    out.setdefault("dns_enabled", False)
    out.setdefault("options", {})
    out.setdefault("ipam_options", {"driver": "host-local"})
    return out


if __name__ == "__main__":
    main()
