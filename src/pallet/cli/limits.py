"""`pallet update`, `stats`, `pause`, `unpause`, `healthcheck run`."""

from __future__ import annotations

import json
import sys
import time

import click

from pallet.cli.container import _each, _engine
from pallet.cli.hostflags import limit_options
from pallet.errors import Conflict, PalletError


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
    from pallet.cli.hostflags import checked_resources
    from pallet.engine.hostconfig import parse_restart
    from pallet.engine.limits import update

    res, changes = checked_resources(kw)
    policy = parse_restart(restart) if restart else None
    if not changes and policy is None:
        raise PalletError("you must provide one or more flags when using this command")
    eng = _engine()

    def one(ref):
        c = eng.get(ref)
        if "MemorySwap" in changes and "Memory" not in changes and not c.HostConfig.get("Memory"):
            raise PalletError("you should always set the memory limit when using the memory swap limit")
        if "Memory" in changes and changes["Memory"] and c.HostConfig.get("MemorySwap", 0) not in (0, -1, None) \
                and "MemorySwap" not in changes and changes["Memory"] > c.HostConfig["MemorySwap"]:
            raise PalletError("Memory limit should be smaller than already set memoryswap limit, update the "
                              "memoryswap at the same time")
        for w in update(eng, c, res, policy):
            click.echo(f"WARNING: {w}", err=True)

    _each(containers, one)


def _runtime_call(eng, c, verb: str) -> None:
    from pallet.errors import RuntimeFailure

    rt = eng.runtime(c.runtime)
    try:
        (rt.pause if verb == "pause" else rt.resume)(c.id)
    except RuntimeFailure as e:
        raise PalletError(f"cannot {verb} container {c.name}: {e.message}") from None


@click.command("pause")
@click.argument("containers", nargs=-1, required=True)
def pause_cmd(containers: tuple[str, ...]) -> None:
    """Freeze all processes of running containers (cgroup freezer)."""
    from pallet.engine.freezer import paused

    eng = _engine()

    def one(ref):
        c = eng.get(ref)
        if c.status != "running":
            raise Conflict(f"container {c.name} is not running")
        if paused(c):
            raise Conflict(f"container {c.name} is already paused")
        _runtime_call(eng, c, "pause")

    _each(containers, one)


@click.command("unpause")
@click.argument("containers", nargs=-1, required=True)
def unpause_cmd(containers: tuple[str, ...]) -> None:
    """Thaw paused containers."""
    from pallet.engine.freezer import paused

    eng = _engine()

    def one(ref):
        c = eng.get(ref)
        if not paused(c):
            raise Conflict(f"container {c.name} is not paused")
        _runtime_call(eng, c, "resume")

    _each(containers, one)


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
    from pallet.engine.limits import sample, stats_row

    eng = _engine()
    if containers:
        cs = [eng.get(r) for r in containers]
    else:
        cs = [c for c in eng.list(all=True) if show_all or c.status == "running"]
    first = True
    prev = {c.id: sample(c) if c.status == "running" else None for c in cs}
    while True:
        time.sleep(0.5 if first and no_stream else (interval if not first else 0.5))
        rows = []
        for c in cs:
            c = eng.get(c.id)
            if c.status != "running":
                rows.append({"Container": c.short_id, "ID": c.short_id, "Name": c.name, "CPUPerc": "0.00%",
                             "MemUsage": "0B / 0B", "MemPerc": "0.00%", "NetIO": "0B / 0B",
                             "BlockIO": "0B / 0B", "PIDs": "0"})
                prev[c.id] = None
                continue
            cur = sample(c)
            rows.append(stats_row(c, prev.get(c.id) or cur, cur))
            prev[c.id] = cur
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
        first = False
        if no_stream:
            return


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
