"""pallet's firewall: `table inet pallet`, changed by one nftables transaction per network change.

Layout (nothing outside this table is ever named):

    set  bridges  { type ifname }                         every pallet bridge
    map  fwd_in   { type ifname : verdict }               bridge -> jump nw-<id>-in   (traffic leaving it)
    map  fwd_out  { type ifname : verdict }               bridge -> jump nw-<id>-out  (traffic entering it)
    map  masq     { type ifname : verdict }               bridge -> jump nw-<id>-post (its outbound NAT)
    chain forward     (filter hook forward)      iifname vmap @fwd_in; oifname vmap @fwd_out
    chain postrouting (nat hook postrouting)     iifname vmap @masq

    map  ports    { type inet_proto . inet_service : verdict }    published host port -> jump ct-<id>
    chain prerouting, output (nat hooks)        fib daddr type local: meta l4proto . th dport vmap @ports
    chain ct-<container id[:12]>                the container's DNAT rules (a host address, if bound to one)

A network adds its own three chains and one element per map, and removes exactly those: no rule of
another network is rewritten, whatever the number of networks (the maps are hash lookups). A
container's published ports are likewise its own chain and its own `ports` elements, added (`create`:
a port another container holds fails the whole transaction) and removed in one transaction each. (The maps
are keyed by interface, not by subnet: nft 1.0.6 cannot add an element to an interval map created in
the same transaction.)
"""

from __future__ import annotations

from pallet.linux import nftables as nft

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pallet.network.model import Network


def _skeleton() -> list[dict]:
    return [
        nft.add(nft.table()),
        nft.add(nft.set_("bridges", "ifname")),
        nft.add(nft.map_("fwd_in", "ifname", "verdict")),
        nft.add(nft.map_("fwd_out", "ifname", "verdict")),
        nft.add(nft.map_("masq", "ifname", "verdict")),
        nft.add(nft.map_("ports", ["inet_proto", "inet_service"], "verdict")),
        nft.add(nft.chain("forward", type="filter", hook="forward", prio=0, policy="accept")),
        nft.add(nft.chain("postrouting", type="nat", hook="postrouting", prio=100, policy="accept")),
        nft.add(nft.chain("prerouting", type="nat", hook="prerouting", prio=-100, policy="accept")),
        nft.add(nft.chain("output", type="nat", hook="output", prio=-100, policy="accept")),
    ]


def _ports_key() -> dict:
    return {"concat": [nft.meta("l4proto"), nft.payload("th", "dport")]}


_LOCAL = nft.match({"fib": {"result": "type", "flags": ["daddr"]}}, "local")
_DNAT = nft.match({"ct": {"key": "status"}}, "dnat", "in")


def _base_rules() -> list[dict]:
    """The two base chains' dispatch rules (flushed and re-added in the same transaction: no packet
    ever sees them missing, and they are the same bytes each time)."""
    return [
        nft.flush(nft.chain("forward")),
        nft.flush(nft.chain("postrouting")),
        nft.flush(nft.chain("prerouting")),
        nft.flush(nft.chain("output")),
        nft.add(nft.rule("forward", nft.vmap(nft.meta("iifname"), "@fwd_in"))),
        nft.add(nft.rule("forward", nft.vmap(nft.meta("oifname"), "@fwd_out"))),
        nft.add(nft.rule("postrouting", nft.vmap(nft.meta("iifname"), "@masq"))),
        # a published port reached on 127.0.0.1 (route_localnet on the bridge): the container answers the gateway
        nft.add(nft.rule("postrouting", nft.match(nft.payload("ip", "saddr"), nft.prefix("127.0.0.0", 8)),
                         nft.match(nft.meta("oifname"), "@bridges"), nft.MASQUERADE)),
        nft.add(nft.rule("prerouting", _LOCAL, nft.vmap(_ports_key(), "@ports"))),
        nft.add(nft.rule("output", _LOCAL, nft.vmap(_ports_key(), "@ports"))),
    ]


def chains(net: Network) -> tuple[str, str, str]:
    base = "nw-" + net.id[:12]
    return base + "-in", base + "-out", base + "-post"


def _elements(net: Network) -> list[dict]:
    c_in, c_out, c_post = chains(net)
    br = net.bridge
    out = [nft.element("bridges", br),
           nft.element("fwd_in", [br, nft.jump(c_in)]),
           nft.element("fwd_out", [br, nft.jump(c_out)])]
    if not net.internal:
        out.append(nft.element("masq", [br, nft.jump(c_post)]))
    return out


def network_up(net: Network) -> list[dict]:
    """The transaction that gives `net` its rules (idempotent: running it twice changes nothing)."""
    c_in, c_out, c_post = chains(net)
    br = net.bridge
    cmds = _skeleton() + _base_rules()
    for c in (c_in, c_out, c_post):
        cmds += [nft.add(nft.chain(c)), nft.flush(nft.chain(c))]
    if net.internal:
        # nothing leaves or enters the bridge but between its own ports
        cmds.append(nft.add(nft.rule(c_in, nft.match(nft.meta("oifname"), br, "!="), nft.DROP)))
        cmds.append(nft.add(nft.rule(c_out, nft.match(nft.meta("iifname"), br, "!="), nft.DROP)))
    else:
        # a published port (DNAT) is reachable from every network, as through the host; on the same
        # bridge (hairpin) the answer must come back through the gateway: masquerade
        cmds.append(nft.add(nft.rule(c_in, _DNAT, nft.ACCEPT)))
        cmds.append(nft.add(nft.rule(c_out, _DNAT, nft.ACCEPT)))
        cmds.append(nft.add(nft.rule(c_post, nft.match(nft.meta("oifname"), br), _DNAT, nft.MASQUERADE)))
        # isolation: no traffic between two pallet networks
        cmds.append(nft.add(nft.rule(c_in, nft.match(nft.meta("oifname"), br, "!="),
                                     nft.match(nft.meta("oifname"), "@bridges"), nft.DROP)))
        cmds.append(nft.add(nft.rule(c_out, nft.match(nft.meta("iifname"), br, "!="),
                                     nft.match(nft.meta("iifname"), "@bridges"), nft.DROP)))
        subnet = net.ipam.subnet
        cmds.append(nft.add(nft.rule(c_post, nft.match(nft.payload("ip", "saddr"),
                                                        nft.prefix(str(subnet.network_address), subnet.prefixlen)),
                                     nft.match(nft.meta("oifname"), br, "!="), nft.MASQUERADE)))
        if net.ipam6 is not None:   # (a ULA subnet leaving the host: masqueraded too, as docker's)
            s6 = net.ipam6.subnet
            cmds.append(nft.add(nft.rule(c_post, nft.match(nft.payload("ip6", "saddr"),
                                                            nft.prefix(str(s6.network_address), s6.prefixlen)),
                                         nft.match(nft.meta("oifname"), br, "!="), nft.MASQUERADE)))
    cmds += [nft.add(e) for e in _elements(net)]
    return cmds


def network_down(net: Network) -> list[dict]:
    """The transaction that removes `net`'s elements and chains (and succeeds when they are gone
    already: each is added first, so its delete always finds it)."""
    cmds = _skeleton()
    names = chains(net)
    cmds += [nft.add(nft.chain(c)) for c in names]
    elements = _elements(net)
    cmds += [nft.add(e) for e in elements] + [nft.delete(e) for e in elements]
    cmds += [nft.flush(nft.chain(c)) for c in names] + [nft.delete(nft.chain(c)) for c in names]
    return cmds


# ---- published ports --------------------------------------------------------------------------
def container_chain(container_id: str) -> str:
    return "ct-" + container_id[:12]


def publish(container_id: str, address: str, bindings: list[tuple[str, str, int, int]],
            address6: str = "") -> list[dict]:
    """The transaction that forwards each (proto, host ip or "", host port, container port) to the
    container's `address` (an IPv4 host ip) or `address6` (an IPv6 one); "" (any) to both when the
    container has an IPv6 address. `create` of each map element: a port already published fails it all."""
    ch = container_chain(container_id)
    cmds = _skeleton() + _base_rules() + [nft.add(nft.chain(ch)), nft.flush(nft.chain(ch))]
    keys = set()
    for proto, host_ip, host_port, ctr_port in bindings:
        if not host_ip:
            families = ["ipv4", "ipv6"] if address6 else ["ipv4"]
        else:
            families = ["ipv6" if ":" in host_ip else "ipv4"]
        for fam in families:
            v6 = fam == "ipv6"
            expr = [nft.match(nft.meta("nfproto"), fam)]
            if host_ip and host_ip not in ("0.0.0.0", "::"):
                expr.append(nft.match(nft.payload("ip6" if v6 else "ip", "daddr"), host_ip))
            expr += [nft.match(nft.meta("l4proto"), proto), nft.match(nft.payload("th", "dport"), host_port),
                     {"dnat": {"family": "ip6" if v6 else "ip", "addr": address6 if v6 else address,
                               "port": ctr_port}}]
            cmds.append(nft.add(nft.rule(ch, *expr)))
        keys.add((proto, host_port))
    for proto, port in sorted(keys):
        cmds.append({"create": nft.element("ports", [{"concat": [proto, port]}, nft.jump(ch)])})
    return cmds


def unpublish(container_id: str) -> list[dict]:
    """The transaction that removes the container's chain and the `ports` elements that jump to it
    (read from the table: an element another container holds now is left alone)."""
    ch = container_chain(container_id)
    mine = []
    objects = nft.list_table()
    for obj in objects:
        m = obj.get("map")
        if not m or m.get("name") != "ports":
            continue
        for key, verdict in m.get("elem") or ():
            val = key.get("elem", {}).get("val") if isinstance(key, dict) and "elem" in key else key
            if (verdict.get("jump") or {}).get("target") == ch:
                mine.append(val)
    if not mine and not any((o.get("chain") or {}).get("name") == ch for o in objects):
        return []
    cmds = _skeleton() + [nft.add(nft.chain(ch))]
    cmds += [nft.delete(nft.element("ports", k)) for k in mine]
    return cmds + [nft.flush(nft.chain(ch)), nft.delete(nft.chain(ch))]


def unpublish_elements(keys) -> list[dict]:
    """The `ports` elements of `keys` ((proto, host port)) deleted (the start of a re-publish's
    transaction: its `publish` then creates them again, jumping to the same chain)."""
    return [nft.delete(nft.element("ports", {"concat": [proto, int(port)]})) for proto, port in sorted(set(keys))]


def unpublish_known(container_id: str, keys) -> list[dict]:
    """The transaction that removes the container's chain and the `ports` elements of `keys` ((proto,
    host port): what its record says it published), without reading the table (`unpublish` reads all
    of it: ~20-35 ms of JSON in a fresh process with 200 containers). It fails whole when one of them is
    not there (a reboot, a killed monitor): then `unpublish`."""
    ch = container_chain(container_id)
    return unpublish_elements(keys) + [nft.flush(nft.chain(ch)), nft.delete(nft.chain(ch))]


def apply(commands: list[dict]) -> None:
    nft.run(commands)


def published() -> set[tuple[str, int]]:
    """The (proto, host port) keys of the `ports` map: the host ports containers publish now."""
    out = set()
    for obj in nft.list_table():
        m = obj.get("map")
        if not m or m.get("name") != "ports":
            continue
        for key, _ in m.get("elem") or ():
            val = key.get("elem", {}).get("val") if isinstance(key, dict) and "elem" in key else key
            parts = (val or {}).get("concat") if isinstance(val, dict) else None
            if parts and len(parts) == 2:
                out.add((str(parts[0]), int(parts[1])))
    return out
