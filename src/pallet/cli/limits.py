"""`pallet update`, `stats`, `pause`, `unpause`, `healthcheck run`."""

from __future__ import annotations

import json
import sys

import click

from pallet.cli.container import _each, _engine
from pallet.cli.hostflags import limit_options
from pallet.errors import PalletError


def _with_limits(f):
    for o in reversed(limit_options()):
        f = o(f)
    return f


@click.command("update")
@_with_limits
@click.option("--restart", help="Restart policy: no, on-failure[:N], always, unless-stopped.")
@click.argument("containers", nargs=-1, required=True)
def update_cmd(containers: tuple[str, ...], restart: str | None, **kw) -> None:
    """Change the resource limits (and restart policy) of containers, running or not."""
    from pallet.cli.hostflags import checked_resources, parse_restart
    from pallet.engine.limits import update

    res, changes = checked_resources(kw)
    policy = parse_restart(restart) if restart else None
    if not changes and policy is None:
        raise PalletError("you must provide one or more flags when using this command")
    eng = _engine()

    def one(ref):
        for w in update(eng, eng.get(ref), res, policy):
            click.echo(f"WARNING: {w}", err=True)

    _each(containers, one)


@click.command("pause")
@click.argument("containers", nargs=-1, required=True)
def pause_cmd(containers: tuple[str, ...]) -> None:
    """Freeze all processes of running containers (cgroup freezer)."""
    from pallet.engine.freezer import pause

    eng = _engine()
    _each(containers, lambda ref: pause(eng, eng.get(ref)))


@click.command("unpause")
@click.argument("containers", nargs=-1, required=True)
def unpause_cmd(containers: tuple[str, ...]) -> None:
    """Thaw paused containers."""
    from pallet.engine.freezer import unpause

    eng = _engine()
    _each(containers, lambda ref: unpause(eng, eng.get(ref)))


@click.command("stats")
@click.option("-a", "--all", "show_all", is_flag=True, help="All containers (default: running ones).")
@click.option("--no-stream", is_flag=True, help="One reading, then exit.")
@click.option("--no-trunc", is_flag=True)
@click.option("--format", "fmt", help="table (default), json, or a Go-template subset.")
@click.option("--interval", type=float, default=1.0, hidden=True)
@click.argument("containers", nargs=-1)
def stats_cmd(containers: tuple[str, ...], show_all: bool, no_stream: bool, no_trunc: bool, fmt: str | None,
              interval: float) -> None:
    """Live CPU, memory, pids, network and block IO of containers, from their cgroups."""
    from pallet.cli.common import print_table
    from pallet.engine.limits import stats

    eng = _engine()
    if containers:
        cs = [eng.get(r) for r in containers]
    else:
        cs = [c for c in eng.list(all=True) if show_all or c.status == "running"]
    for rows in stats(eng, cs, stream=not no_stream, interval=interval):
        if fmt in ("json", "{{json .}}"):
            for r in rows:
                click.echo(json.dumps(r))
        elif fmt and fmt != "table":
            from pallet.cli.container import _render_template

            for r in rows:
                click.echo(_render_template(fmt, r))
        else:
            if not no_stream:
                sys.stdout.write("\x1b[2J\x1b[H")
            print_table(["CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O", "BLOCK I/O",
                         "PIDS"], [[r["ID"], r["Name"], r["CPUPerc"], r["MemUsage"], r["MemPerc"], r["NetIO"],
                                    r["BlockIO"], r["PIDs"]] for r in rows])
        sys.stdout.flush()


@click.group("healthcheck")
def healthcheck_group() -> None:
    """Run health checks."""


@healthcheck_group.command("run")
@click.argument("container")
def healthcheck_run_cmd(container: str) -> int:
    """Run a container's health check now: prints healthy/unhealthy, exit 0/1."""
    from pallet.engine.health import run_once

    eng = _engine()
    c = eng.get(container)
    if c.status != "running":
        raise PalletError(f"container {c.name} is not running")
    h = run_once(eng, c, started_at=c.started_at)
    last = (h.get("Log") or [{}])[-1]
    ok = last.get("ExitCode") == 0
    click.echo("healthy" if ok else "unhealthy")
    return 0 if ok else 1
