"""pallet's firewall: `table inet pallet`, changed by one nftables transaction per network change.

Layout (nothing outside this table is ever named):

    set  bridges  { type ifname }                         every pallet bridge
    map  fwd_in   { type ifname : verdict }               bridge -> jump nw-<id>-in   (traffic leaving it)
    map  fwd_out  { type ifname : verdict }               bridge -> jump nw-<id>-out  (traffic entering it)
    map  masq     { type ifname : verdict }               bridge -> jump nw-<id>-post (its outbound NAT)
    chain forward     (filter hook forward)      iifname vmap @fwd_in; oifname vmap @fwd_out
    chain postrouting (nat hook postrouting)     iifname vmap @masq

A network adds its own three chains and one element per map, and removes exactly those: no rule of
another network is rewritten, whatever the number of networks (the maps are hash lookups). (The maps
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
        nft.add(nft.chain("forward", type="filter", hook="forward", prio=0, policy="accept")),
        nft.add(nft.chain("postrouting", type="nat", hook="postrouting", prio=100, policy="accept")),
    ]


def _base_rules() -> list[dict]:
    """The two base chains' dispatch rules (flushed and re-added in the same transaction: no packet
    ever sees them missing, and they are the same bytes each time)."""
    return [
        nft.flush(nft.chain("forward")),
        nft.flush(nft.chain("postrouting")),
        nft.add(nft.rule("forward", nft.vmap(nft.meta("iifname"), "@fwd_in"))),
        nft.add(nft.rule("forward", nft.vmap(nft.meta("oifname"), "@fwd_out"))),
        nft.add(nft.rule("postrouting", nft.vmap(nft.meta("iifname"), "@masq"))),
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
        # isolation: no traffic between two pallet networks
        cmds.append(nft.add(nft.rule(c_in, nft.match(nft.meta("oifname"), br, "!="),
                                     nft.match(nft.meta("oifname"), "@bridges"), nft.DROP)))
        cmds.append(nft.add(nft.rule(c_out, nft.match(nft.meta("iifname"), br, "!="),
                                     nft.match(nft.meta("iifname"), "@bridges"), nft.DROP)))
        subnet = net.ipam.subnet
        cmds.append(nft.add(nft.rule(c_post, nft.match(nft.payload("ip", "saddr"),
                                                        nft.prefix(str(subnet.network_address), subnet.prefixlen)),
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


def apply(commands: list[dict]) -> None:
    nft.run(commands)
