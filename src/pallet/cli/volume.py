"""`pallet volume create|ls|inspect|rm|prune` (docker's local volumes)."""

from __future__ import annotations

import json
import sys

import click

from pallet.cli.common import each, label_filters, print_pruned
from pallet.cli.containerrun import labels as parse_labels
from pallet.errors import PalletError


def _vols():
    from pallet.cli.container import _engine
    from pallet.engine.volumes import Volumes

    return Volumes(_engine())


@click.group("volume")
def volume_group() -> None:
    """Manage volumes."""


@volume_group.command("create")
@click.option("-d", "--driver", default="local", help="Volume driver (only local).")
@click.option("-l", "--label", multiple=True, help="Set a label KEY=VALUE.")
@click.option("-o", "--opt", multiple=True, help="Driver options (none supported by the local driver yet).")
@click.argument("name", required=False)
def create_cmd(name: str | None, driver: str, label: tuple[str, ...], opt: tuple[str, ...]) -> None:
    """Create a volume (a random name when none is given)."""
    if driver != "local":
        raise PalletError(f"volume driver {driver!r} is not supported (only local)")
    if opt:
        raise PalletError("volume options (-o) are not supported by pallet's local driver yet")
    v, _ = _vols().create(name, labels=parse_labels(label))
    click.echo(v["Name"])


def _filter(vols, vs: list[dict], filters) -> list[dict]:
    used: set[str] = set()
    if any(f.startswith("dangling=") for f in filters):
        for r in vs:
            if vols.users(r["Name"]):
                used.add(r["Name"])
    out = []
    for v in vs:
        ok = True
        for f in filters:
            k, sep, val = f.partition("=")
            if not sep:
                raise PalletError(f"invalid filter {f!r}: expected KEY=VALUE")
            if k == "name":
                ok = ok and val in v["Name"]
            elif k == "label":
                lk, s2, lv = val.partition("=")
                labels = v.get("Labels") or {}
                ok = ok and lk in labels and (not s2 or labels[lk] == lv)
            elif k == "dangling":
                ok = ok and ((v["Name"] not in used) == (val in ("true", "1")))
            elif k == "driver":
                ok = ok and v["Driver"] == val
            else:
                raise PalletError(f"invalid filter {k!r} (name, label, dangling, driver)")
        if ok:
            out.append(v)
    return out


@volume_group.command("ls")
@click.option("-q", "--quiet", is_flag=True, help="Only names.")
@click.option("-f", "--filter", "filters", multiple=True, help="name=, label=, dangling=true|false, driver=")
@click.option("--format", "fmt", help="table (default), json, or a Go template ('table {{.Name}}\\t{{.Driver}}').")
def ls_cmd(quiet: bool, filters: tuple[str, ...], fmt: str | None) -> None:
    """List volumes."""
    from pallet.cli.common import print_table

    vols = _vols()
    vs = _filter(vols, vols.list(), filters)
    if quiet:
        for v in vs:
            click.echo(v["Name"])
        return
    rows = [{"Driver": v["Driver"], "Labels": ",".join(f"{k}={x}" for k, x in (v.get("Labels") or {}).items()),
             "Mountpoint": v["Mountpoint"], "Name": v["Name"], "Scope": v["Scope"]} for v in vs]
    if fmt in ("json", "{{json .}}"):
        for row in rows:
            click.echo(json.dumps(row))
        return
    if fmt not in (None, "table"):
        from pallet.cli.common import print_formatted
        from pallet.cli.images import render_template

        print_formatted(fmt, rows, render_template, headers={"Name": "VOLUME NAME"})
        return
    print_table(["DRIVER", "VOLUME NAME"], [[v["Driver"], v["Name"]] for v in vs])


@volume_group.command("inspect")
@click.option("-f", "--format", "fmt", help="Go-template subset, e.g. '{{.Mountpoint}}'.")
@click.argument("names", nargs=-1, required=True)
def inspect_cmd(names: tuple[str, ...], fmt: str | None) -> None:
    """Show volumes (docker's JSON)."""
    from pallet.cli.container import print_inspected

    vols = _vols()
    out = []
    for n in names:
        v = dict(vols.get(n))
        v.pop("Anonymous", None)
        out.append(v)
    print_inspected(out, fmt)


@volume_group.command("rm")
@click.option("-f", "--force", is_flag=True, help="Remove even if containers use it.")
@click.argument("names", nargs=-1, required=True)
def rm_cmd(names: tuple[str, ...], force: bool) -> None:
    """Remove volumes (a volume in use needs -f)."""
    vols = _vols()
    each(names, lambda n: vols.remove(n, force=force))


@volume_group.command("prune")
@click.option("-a", "--all", "all_", is_flag=True, help="Named volumes too, not only anonymous ones.")
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation.")
@click.option("--filter", "filters", multiple=True, help="label=KEY[=VALUE]")
def prune_cmd(all_: bool, force: bool, filters: tuple[str, ...]) -> None:
    """Remove unused volumes (anonymous only, unless -a)."""
    if not force and sys.stdin.isatty():
        click.confirm("WARNING! This will remove anonymous local volumes not used by at least one container.\n"
                      "Are you sure you want to continue?", abort=True)
    labels = label_filters(filters)
    gone = _vols().prune(all=all_, labels=labels)
    print_pruned("Volumes", gone)
