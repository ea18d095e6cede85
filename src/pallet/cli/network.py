"""`pallet network create|ls|inspect|rm|prune` (docker's bridge networks)."""

from __future__ import annotations

import json
import sys

import click

from pallet.cli.common import each, label_filters, print_table, state
from pallet.errors import PalletError


def _nets():
    from pallet.network.networks import Networks

    return Networks(state().store())


def _pairs(items: tuple[str, ...], what: str, *, need_value: bool) -> dict[str, str]:
    out = {}
    for item in items:
        k, sep, v = item.partition("=")
        if not k or (need_value and not sep):
            raise PalletError(f"invalid {what} {item!r}: expected KEY={'VALUE' if need_value else '[VALUE]'}")
        out[k] = v
    return out


@click.group("network")
def network_group() -> None:
    """Manage networks."""


@network_group.command("create")
@click.option("-d", "--driver", default="bridge", help="Driver (bridge).")
@click.option("--subnet", multiple=True, help="Subnet in CIDR form (default: the next free one of docker's pool).")
@click.option("--gateway", multiple=True, help="Gateway of the subnet (default: its first address).")
@click.option("--ip-range", multiple=True, help="Allocate container addresses from this sub-range.")
@click.option("--ipv6", is_flag=True, help="Enable IPv6 (an IPv6 --subnet, or a unique local /64 picked for it).")
@click.option("--internal", is_flag=True, help="No route out of the network.")
@click.option("--attachable", is_flag=True, hidden=True)
@click.option("-l", "--label", multiple=True, help="Set a label KEY=VALUE.")
@click.option("-o", "--opt", multiple=True, help="Driver option, e.g. com.docker.network.bridge.name=NAME.")
@click.option("--disable-dns", is_flag=True, help="No name resolution between the network's containers.")
@click.argument("name")
def create_cmd(name: str, driver: str, subnet: tuple[str, ...], gateway: tuple[str, ...], ip_range: tuple[str, ...],
               ipv6: bool, internal: bool, attachable: bool, label: tuple[str, ...], opt: tuple[str, ...],
               disable_dns: bool) -> None:
    """Create a network; prints its id."""
    # one IPv4 and one IPv6 subnet (and gateway), told apart by their family
    subnet4, subnet6 = _by_family(subnet, "--subnet")
    gateway4, gateway6 = _by_family(gateway, "--gateway")
    if len(ip_range) > 1:
        raise PalletError(f"--ip-range was given {len(ip_range)} times: pallet supports one per network")
    options = _pairs(opt, "driver option", need_value=True)
    net = _nets().create(name, driver=driver, subnet=subnet4, gateway=gateway4,
                         ip_range=ip_range[0] if ip_range else None, ipv6=ipv6, subnet6=subnet6, gateway6=gateway6,
                         internal=internal, labels=_pairs(label, "label", need_value=False), options=options,
                         dns=not disable_dns)
    click.echo(net.id)


def _by_family(values: tuple[str, ...], flag: str) -> tuple[str | None, str | None]:
    """(the IPv4 one, the IPv6 one) of a repeated --subnet or --gateway."""
    v4 = [v for v in values if ":" not in v]
    v6 = [v for v in values if ":" in v]
    for family, got in (("IPv4", v4), ("IPv6", v6)):
        if len(got) > 1:
            raise PalletError(f"{flag} was given {len(got)} {family} values: pallet supports one {family} "
                              f"{flag[2:]} per network")
    return (v4[0] if v4 else None), (v6[0] if v6 else None)


def _matches(net, filters: dict[str, list[str]]) -> bool:
    for key, values in filters.items():
        if key == "name" and not any(v in net.name for v in values):
            return False
        if key == "id" and not any(net.id.startswith(v) for v in values):
            return False
        if key == "driver" and net.driver not in values:
            return False
        if key == "label":
            for v in values:
                k, sep, val = v.partition("=")
                if k not in net.labels or (sep and net.labels[k] != val):
                    return False
        if key == "type":
            kinds = {"builtin" if net.predefined else "custom"}
            if not kinds & set(values):
                return False
    return True


def _parse_filters(items: tuple[str, ...]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for f in items:
        k, sep, v = f.partition("=")
        if not sep:
            raise PalletError(f"invalid filter {f!r}: expected KEY=VALUE")
        if k not in ("name", "id", "driver", "label", "type"):
            raise PalletError(f"invalid filter {k!r} (name, id, driver, label, type)")
        out.setdefault(k, []).append(v)
    return out


@network_group.command("ls")
@click.option("-q", "--quiet", is_flag=True, help="Only network ids.")
@click.option("-f", "--filter", "filters", multiple=True, help="name=, id=, driver=, label=KEY[=VALUE], type=")
@click.option("--format", "fmt", help="table (default), json, or a Go template ('table {{.Name}}\\t{{.Driver}}').")
@click.option("--no-trunc", is_flag=True, help="Full network ids.")
def ls_cmd(quiet: bool, filters: tuple[str, ...], fmt: str | None, no_trunc: bool) -> None:
    """List networks."""
    from pallet.network.networks import docker_time

    wanted = _parse_filters(filters)
    nets = sorted((n for n in _nets().list() if _matches(n, wanted)), key=lambda n: n.name)
    ident = (lambda n: n.id) if no_trunc else (lambda n: n.id[:12])
    if quiet:
        for n in nets:
            click.echo(ident(n))
        return
    rows = [{"CreatedAt": docker_time(n.created), "Driver": n.driver, "ID": ident(n),
             "IPv6": str(n.ipv6).lower(), "Internal": str(n.internal).lower(),
             "Labels": ",".join(f"{k}={v}" for k, v in n.labels.items()), "Name": n.name, "Scope": "local"}
            for n in nets]
    if fmt in ("json", "{{json .}}"):
        for row in rows:
            sys.stdout.write(json.dumps(row) + "\n")
        return
    if fmt not in (None, "table"):
        from pallet.cli.common import print_formatted
        from pallet.cli.images import render_template

        print_formatted(fmt, rows, render_template, id_header="NETWORK ID")
        return
    print_table(["NETWORK ID", "NAME", "DRIVER", "SCOPE"], [[ident(n), n.name, n.driver, "local"] for n in nets])


@network_group.command("inspect")
@click.option("-f", "--format", "fmt", help="Go-template subset, e.g. '{{.IPAM.Config}}'.")
@click.argument("names", nargs=-1, required=True)
def inspect_cmd(names: tuple[str, ...], fmt: str | None) -> None:
    """Show networks (docker's JSON)."""
    from pallet.cli.container import print_inspected

    nets = _nets()
    docs = [nets.inspect(nets.get(n)) for n in names]
    if any(d["Containers"] for d in docs):
        # pallet's containers that do not run are left out: a lease a killed monitor left (given back
        # by the container's rm or next start); a lease of no pallet container (another client of the
        # network layer) is shown as it is
        from pallet.errors import NotFound

        eng = _engine()
        for d in docs:
            for cid in list(d["Containers"]):
                try:
                    live = eng.get(cid).status == "running"
                except NotFound:
                    live = True
                if not live:
                    del d["Containers"][cid]
    print_inspected(docs, fmt)


@network_group.command("rm")
@click.option("-f", "--force", is_flag=True, help="No error for a network that does not exist.")
@click.argument("names", nargs=-1, required=True)
def rm_cmd(names: tuple[str, ...], force: bool) -> None:
    """Remove networks (one in use by a container is refused)."""
    from pallet.errors import NotFound

    nets = _nets()
    if force:
        known = []
        for n in names:
            try:
                nets.get(n)
            except NotFound:
                continue
            known.append(n)
        names = tuple(known)
    each(names, nets.remove)


def _engine():
    from pallet.cli.containerrun import engine

    return engine(state())


@network_group.command("connect")
@click.option("--ip", help="IPv4 address on the network.")
@click.option("--ip6", help="IPv6 address on the network (one created with --ipv6).")
@click.option("--alias", multiple=True, help="Another name of the container on the network.")
@click.argument("network")
@click.argument("container")
def connect_cmd(network: str, container: str, ip: str | None, ip6: str | None, alias: tuple[str, ...]) -> None:
    """Connect a container to a network (a running one at once, a stopped one at its next start)."""
    from pallet.cli.hostflags import said
    from pallet.engine import networking
    from pallet.errors import InvalidField

    eng = _engine()
    c = eng.get(container)
    try:
        networking.connect(eng, c, network, ip=ip, aliases=alias, ip6=ip6)
    except InvalidField as e:   # (the engine names docker's fields: connect's flags here)
        raise said(e, {"NetworkMode": "--network", "IPv4Address": "--ip", "IPv6Address": "--ip6",
                       "Aliases": "--alias", "EnableIPv6": "--ipv6"}) from None


@network_group.command("disconnect")
@click.option("-f", "--force", is_flag=True, help="No error when the container is not connected.")
@click.argument("network")
@click.argument("container")
def disconnect_cmd(network: str, container: str, force: bool) -> None:
    """Disconnect a container from a network."""
    from pallet.engine import networking

    eng = _engine()
    c = eng.get(container)
    networking.disconnect(eng, c, network, force=force)


@network_group.command("prune")
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation.")
@click.option("--filter", "filters", multiple=True, help="label=KEY[=VALUE]")
def prune_cmd(force: bool, filters: tuple[str, ...]) -> None:
    """Remove every network no container uses (the predefined ones stay)."""
    labels = label_filters(filters)
    if not force and sys.stdin.isatty():
        click.confirm("WARNING! This will remove all custom networks not used by at least one container.\n"
                      "Are you sure you want to continue?", abort=True)
    gone = _nets().prune(labels)
    if gone:
        click.echo("Deleted Networks:")
        for name in gone:
            click.echo(name)
