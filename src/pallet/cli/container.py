"""Container commands: run, create, start, ps, logs, stop, kill, restart, rm, exec, wait, inspect, top,
rename, port, attach, container prune. Thin: parse, call pallet.engine, render.

`pallet run --rm IMAGE true` is the hot path: nothing heavy is imported at module level.
"""

from __future__ import annotations

import sys

import click

from pallet.cli.common import each as _each
from pallet.cli.common import print_pruned, state
from pallet.cli.containerrun import engine
from pallet.cli.containerrun import env_item as _env_item
from pallet.cli.containerrun import parse_env_file as _parse_env_file
from pallet.engine.events import container_event
from pallet.errors import PalletError


def _engine():
    from pallet.cli.containerrun import engine

    return engine(state())


def _create_options(f):
    from pallet.cli.runflags import CREATE, HOST, apply

    return apply(f, [*CREATE, *HOST])   # pallet.cli.runflags: the table the fast parser reads too


def _run_options(f):
    from pallet.cli.runflags import RUN, apply

    return apply(f, RUN)


def _build_opts(image: str, command: tuple[str, ...], kw: dict, *, detach: bool):
    from pallet.cli.containerrun import build_opts

    return build_opts(image, command, kw, detach=detach)


CTX = {"ignore_unknown_options": False, "allow_interspersed_args": False}


class _RunCommand(click.Command):
    """`run`: `--trace` alone takes no value (runflags.optional_values), as in the fast parser."""

    def parse_args(self, ctx, args):
        from pallet.cli.runflags import optional_values

        return super().parse_args(ctx, optional_values(args))


@click.command("run", cls=_RunCommand, context_settings=CTX)
@_create_options
@_run_options
@click.option("--sig-proxy", type=click.BOOL, is_flag=False, flag_value=True, default=True, show_default=True,
              help="Proxy received signals to the container (--sig-proxy=false turns it off).")
@click.argument("image")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def run_cmd(image: str, command: tuple[str, ...], detach: bool, sig_proxy: bool, **kw) -> int:
    """Create and start a container from IMAGE, running COMMAND (default: the image's)."""
    # the console script runs common command lines through pallet.cli.fastrun, without click: both
    # call this same function with the same arguments (tests/cli/test_fastrun.py)
    from pallet.cli.containerrun import run

    return run(state(), image, command, kw, detach=detach, sig_proxy=sig_proxy)


@click.command("create", context_settings=CTX)
@_create_options
@click.argument("image")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def create_cmd(image: str, command: tuple[str, ...], **kw) -> None:
    """Create a container (not started); prints its ID."""
    from pallet.cli.containerrun import create

    eng = _engine()
    c = create(eng, _build_opts(image, command, kw, detach=True))   # (an engine's InvalidField: run's flag)
    click.echo(c.id)


@click.command("start")
@click.option("-a", "--attach", "do_attach", is_flag=True, help="Attach STDOUT/STDERR and forward signals.")
@click.option("-i", "--interactive", is_flag=True, help="Attach the container's STDIN.")
@click.argument("containers", nargs=-1, required=True)
def start_cmd(containers: tuple[str, ...], do_attach: bool, interactive: bool) -> int:
    """Start one or more stopped containers."""
    eng = _engine()
    if do_attach or interactive:
        if len(containers) > 1:
            raise PalletError("you cannot start and attach multiple containers at once")
        c = eng.get(containers[0])
        ours = eng.start(c, attach=True)
        from pallet.cli.attachtty import attach

        how, code = attach(ours, stdin=interactive, tty=bool(c.Config.get("Tty")))
        if how == "detached":
            container_event(eng, c, "detach")
        return code if how == "exited" else 0
    failed = 0
    for ref in containers:
        try:
            eng.start(eng.get(ref))
            click.echo(ref)
        except PalletError as e:
            click.echo(f"Error: {e.message}", err=True)
            failed = 1
    if failed:
        sys.exit(125)
    return 0


@click.command("attach")
@click.option("--no-stdin", is_flag=True, help="Do not attach STDIN.")
@click.option("--sig-proxy", type=click.BOOL, is_flag=False, flag_value=True, default=True,
              help="Proxy received signals to the container.")
@click.argument("container")
def attach_cmd(container: str, no_stdin: bool, sig_proxy: bool) -> int:
    """Attach to a running container's input and output (ctrl-p ctrl-q detaches)."""
    import socket

    from pallet.cli.attachtty import attach
    from pallet.engine.monitor import connect_unix

    eng = _engine()
    c = eng.get(container)
    if c.status != "running":
        raise PalletError(f"cannot attach to a stopped container {c.name}, start it first")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        connect_unix(s, eng.run_dir(c.id) / "attach")
    except OSError as e:
        raise PalletError(f"cannot attach to {c.name}: its monitor is not reachable ({e.strerror})") from None
    container_event(eng, c, "attach")
    how, code = attach(s, stdin=not no_stdin and bool(c.Config.get("OpenStdin")), tty=bool(c.Config.get("Tty")),
                       sig_proxy=sig_proxy)
    if how == "detached":
        container_event(eng, c, "detach")
    return code if how == "exited" else 0


@click.command("ps")
@click.option("-a", "--all", "show_all", is_flag=True, help="Show all containers (default: running only).")
@click.option("-q", "--quiet", is_flag=True, help="Only IDs.")
@click.option("-f", "--filter", "filters", multiple=True, help="name=, status=, label=, id=, ancestor=, exited=")
@click.option("--format", "fmt", help="table (default) or json (one object per line).")
@click.option("--no-trunc", is_flag=True)
@click.option("-n", "--last", type=int, default=-1)
@click.option("-l", "--latest", is_flag=True)
def ps_cmd(show_all: bool, quiet: bool, filters: tuple[str, ...], fmt: str | None, no_trunc: bool,
           last: int, latest: bool) -> None:
    """List containers."""
    import json

    from pallet.cli.common import print_table
    from pallet.engine.model import rfc3339
    from pallet.engine.networking import names as network_names
    from pallet.engine.ports import column, summary
    from pallet.engine.views import parse_filters, ps, status_text

    eng = _engine()
    cs = ps(eng, all=show_all, filters=parse_filters(filters), last=1 if latest else last)

    def ports_column(c) -> str:
        if c.status != "running":
            return ""
        return column(summary(c.Config.get("ExposedPorts"), c.config.get("Ports") or {}))
    if quiet:
        for c in cs:
            click.echo(c.id if no_trunc else c.short_id)
        return

    def command(c) -> str:
        cmd = " ".join((c.Config.get("Entrypoint") or []) + (c.Config.get("Cmd") or []))
        if not no_trunc and len(cmd) > 20:
            cmd = cmd[:19] + "…"
        return f'"{cmd}"'

    if fmt == "json" or fmt == "{{json .}}":
        from pallet.cli.common import human_ago

        for c in cs:
            labels = c.Config.get("Labels") or {}
            click.echo(json.dumps({
                "ID": c.id if no_trunc else c.short_id, "Image": c.image_name, "Command": command(c),
                "CreatedAt": rfc3339(c.created), "RunningFor": human_ago(c.created),
                "State": c.status, "Status": status_text(eng, c), "Names": c.name,
                "Labels": ",".join(f"{k}={v}" for k, v in labels.items()), "Mounts": "", "Networks":
                network_names(c), "ExitCode": c.exit_code, "Ports": ports_column(c)}))
        return
    if fmt and fmt != "table":
        from pallet.cli.common import human_ago, print_formatted

        print_formatted(fmt, [{"ID": c.id if no_trunc else c.short_id, "Names": c.name, "Image": c.image_name,
                               "Status": status_text(eng, c), "State": c.status, "Command": command(c),
                               "CreatedAt": rfc3339(c.created), "RunningFor": human_ago(c.created),
                               "Labels": c.Config.get("Labels") or {}, "Networks": network_names(c),
                               "Ports": ports_column(c)} for c in cs],
                        _render_template, id_header="CONTAINER ID")
        return
    from pallet.cli.common import human_ago

    rows = [[c.id if no_trunc else c.short_id, c.image_name, command(c), human_ago(c.created), status_text(eng, c),
             ports_column(c), c.name] for c in cs]
    print_table(["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"], rows)


def print_inspected(objects: list, fmt: str | None) -> None:
    """`inspect` output: each object through the -f template, or all of them as one JSON array."""
    if fmt:
        for o in objects:
            click.echo(_render_template(fmt, o))
    else:
        from pallet.cli.common import print_json

        print_json(objects)


def _render_template(fmt: str, obj) -> str:
    """The Go-template subset people use with -f/--format: {{.A.B}}, {{json .A}}, {{.A}} and literal text."""
    import json
    import re

    def lookup(path: str):
        cur = obj
        for part in [p for p in path.split(".") if p]:
            if isinstance(cur, dict):
                cur = cur.get(part)
            else:
                return None
        return cur

    def sub(m) -> str:
        expr = m.group(1).strip()
        if expr.startswith("json "):
            return json.dumps(lookup(expr[5:].strip()))
        if expr.startswith("."):
            v = lookup(expr)
            if isinstance(v, bool):
                return "true" if v else "false"
            if isinstance(v, (dict, list)):
                return json.dumps(v)
            return "<no value>" if v is None else str(v)
        raise PalletError(f"unsupported template expression {{{{{expr}}}}}")

    text = re.sub(r"\{\{(.*?)\}\}", sub, fmt)
    return text.replace("\\n", "\n").replace("\\t", "\t")


@click.command("logs")
@click.option("-f", "--follow", is_flag=True, help="Follow the output.")
@click.option("-n", "--tail", default="all", help="Lines from the end (default all).")
@click.option("--since", help="Since a time: unix seconds, RFC 3339 or a duration (10m).")
@click.option("--until", help="Until a time.")
@click.option("-t", "--timestamps", is_flag=True, help="Show timestamps.")
@click.argument("container")
def logs_cmd(container: str, follow: bool, tail: str, since: str | None, until: str | None,
             timestamps: bool) -> None:
    """Show a container's output (json-file log)."""
    from pallet.engine.logs import iter_logs

    if tail != "all":
        try:
            if int(tail) < 0:
                raise ValueError
        except ValueError:
            raise PalletError(f"invalid --tail {tail!r}: a number or all") from None
    eng = _engine()
    c = eng.get(container)
    for stream, ts, data in iter_logs(eng, c, follow=follow, tail=None if tail == "all" else int(tail),
                                      since=since, until=until):
        out = sys.stderr.buffer if stream == "stderr" else sys.stdout.buffer
        out.write(ts.encode() + b" " + data if timestamps else data)
        out.flush()


@click.command("stop")
@click.option("-t", "--time", "timeout", type=int, help="Seconds to wait before killing (default: 10).")
@click.option("-s", "--signal", "sig", help="Signal to send first (default: the container's stop signal).")
@click.argument("containers", nargs=-1, required=True)
def stop_cmd(containers: tuple[str, ...], timeout: int | None, sig: str | None) -> None:
    """Stop running containers (stop signal, then SIGKILL after the timeout)."""
    def stopper(eng):
        return lambda ref: eng.stop(_with_signal(eng.get(ref), sig), timeout)

    st = state()
    _each(containers, stopper(engine(st)), worker=lambda: stopper(engine(st.fresh())))


def _with_signal(c, sig):
    if sig:
        from pallet.engine.core import parse_signal

        parse_signal(sig)
        c.Config["StopSignal"] = sig
    return c


@click.command("kill")
@click.option("-s", "--signal", "sig", default="KILL", help="Signal to send (default KILL).")
@click.argument("containers", nargs=-1, required=True)
def kill_cmd(containers: tuple[str, ...], sig: str) -> None:
    """Send a signal to running containers."""
    from pallet.engine.core import parse_signal

    signum = parse_signal(sig)
    eng = _engine()
    _each(containers, lambda ref: eng.kill(eng.get(ref), signum))


@click.command("restart")
@click.option("-t", "--time", "timeout", type=int)
@click.argument("containers", nargs=-1, required=True)
def restart_cmd(containers: tuple[str, ...], timeout: int | None) -> None:
    """Restart containers."""
    eng = _engine()

    _each(containers, lambda ref: eng.restart(eng.get(ref), timeout))


@click.command("rm")
@click.option("-f", "--force", is_flag=True, help="Kill and remove a running container.")
@click.option("-v", "--volumes", is_flag=True, help="Remove the container's anonymous volumes too.")
@click.argument("containers", nargs=-1, required=True)
def rm_cmd(containers: tuple[str, ...], force: bool, volumes: bool) -> None:
    """Remove containers."""
    def remover(eng):
        eng.remove_volumes = volumes
        return lambda ref: eng.remove(eng.get(ref), force=force)

    st = state()
    eng = engine(st)
    if force and len(containers) > 1:
        eng.kill_for_removal(containers)
    _each(containers, remover(eng), worker=lambda: remover(engine(st.fresh())))


@click.command("exec", context_settings=CTX)
@click.option("-i", "--interactive", is_flag=True)
@click.option("-t", "--tty", is_flag=True)
@click.option("-d", "--detach", is_flag=True)
@click.option("-e", "--env", multiple=True)
@click.option("--env-file", multiple=True, type=click.Path(dir_okay=False))
@click.option("-u", "--user")
@click.option("-w", "--workdir")
@click.argument("container")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def exec_cmd(container: str, command: tuple[str, ...], interactive: bool, tty: bool, detach: bool,
             env: tuple[str, ...], env_file: tuple[str, ...], user: str | None, workdir: str | None) -> int:
    """Run a command in a running container."""
    from pallet.engine.execs import exec_in

    extra = []
    for path in env_file:
        extra += _parse_env_file(path)
    extra += [v for v in (_env_item(x) for x in env) if v is not None]
    eng = _engine()
    c = eng.get(container)
    return exec_in(eng, c, list(command), env=extra, user=user, workdir=workdir, tty=tty,
                   interactive=interactive, detach=detach)


@click.command("wait")
@click.argument("containers", nargs=-1, required=True)
def wait_cmd(containers: tuple[str, ...]) -> None:
    """Block until containers stop, then print their exit codes."""
    eng = _engine()
    for ref in containers:
        c = eng.wait_exit(eng.get(ref))
        click.echo(c.exit_code if c.exit_code is not None else 0)


@click.command("inspect")
@click.option("-f", "--format", "fmt", help="Go-template subset, e.g. '{{.State.Pid}}' or '{{json .Config}}'.")
@click.option("--type", "kind", type=click.Choice(["container", "image"]))
@click.option("-s", "--size", is_flag=True)
@click.argument("objects", nargs=-1, required=True)
def inspect_cmd(objects: tuple[str, ...], fmt: str | None, kind: str | None, size: bool) -> None:
    """Low-level information on containers (docker's JSON)."""
    from pallet.errors import NotFound

    eng = _engine()
    out = []
    for ref in objects:
        try:
            if kind == "image":
                raise NotFound(ref)
            out.append(eng.inspect(eng.get(ref)))
        except NotFound:
            if kind == "container":
                raise
            try:
                out.append(eng.inspect_image(ref))   # (docker's inspect of an image is image inspect's)
            except PalletError:
                raise NotFound(f"No such object: {ref}") from None
    print_inspected(out, fmt)


@click.command("top", context_settings={"ignore_unknown_options": True})   # (docker: ps's options after the name)
@click.argument("container")
@click.argument("ps_args", nargs=-1, type=click.UNPROCESSED)
def top_cmd(container: str, ps_args: tuple[str, ...]) -> None:
    """The processes of a container (host `ps` over the container's cgroup)."""
    from pallet.cli.common import print_table
    from pallet.engine.execs import top

    eng = _engine()
    t = top(eng, eng.get(container), ps_args)
    print_table(t["Titles"], t["Processes"])


@click.command("rename")
@click.argument("container")
@click.argument("new_name")
def rename_cmd(container: str, new_name: str) -> None:
    """Rename a container."""
    eng = _engine()
    eng.rename(eng.get(container), new_name)


@click.command("port")
@click.argument("container")
@click.argument("private_port", required=False)
def port_cmd(container: str, private_port: str | None) -> None:
    """Published ports of a running container (`80/tcp -> 0.0.0.0:8080`)."""
    from pallet.engine.ports import describe

    eng = _engine()
    c = eng.get(container)
    bindings = (c.config.get("Ports") or {}) if c.status == "running" else {}
    if private_port:
        key = private_port if "/" in private_port else private_port + "/tcp"
        if key not in bindings:
            raise PalletError(f"No public port '{key}' published for {c.name}")
        for line in describe({key: bindings[key]}):
            click.echo(line.partition(" -> ")[2])
        return
    for line in describe(bindings):
        click.echo(line)


@click.command("prune")
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation.")
@click.option("--filter", "filters", multiple=True)
def prune_cmd(force: bool, filters: tuple[str, ...]) -> None:
    """Remove all stopped containers."""
    if not force and sys.stdin.isatty():
        click.confirm("WARNING! This will remove all stopped containers.\nAre you sure you want to continue?",
                      abort=True)
    from pallet.engine.views import matches, parse_filters

    eng = _engine()
    wanted = parse_filters(filters)
    gone = []
    for c in eng.list(all=True):
        if c.status in ("exited", "created") and matches(eng, c, wanted):
            try:
                eng.remove(c)
                gone.append(c.id)
            except PalletError:
                pass
    print_pruned("Containers", gone)


@click.command("ls")
@click.pass_context
@click.option("-a", "--all", "show_all", is_flag=True)
@click.option("-q", "--quiet", is_flag=True)
@click.option("-f", "--filter", "filters", multiple=True)
@click.option("--format", "fmt")
def ls_cmd(ctx, show_all, quiet, filters, fmt) -> None:
    """List containers (same as ps)."""
    ctx.invoke(ps_cmd, show_all=show_all, quiet=quiet, filters=filters, fmt=fmt, no_trunc=False, last=-1,
               latest=False)


@click.group("container")
def container_group() -> None:
    """Manage containers."""


for _name, _cmd in [("run", run_cmd), ("create", create_cmd), ("start", start_cmd), ("ps", ps_cmd),
                    ("ls", ls_cmd), ("list", ls_cmd), ("logs", logs_cmd), ("stop", stop_cmd), ("kill", kill_cmd),
                    ("restart", restart_cmd), ("rm", rm_cmd), ("exec", exec_cmd), ("wait", wait_cmd),
                    ("inspect", inspect_cmd), ("top", top_cmd), ("rename", rename_cmd), ("port", port_cmd),
                    ("attach", attach_cmd), ("prune", prune_cmd)]:
    container_group.add_command(_cmd, _name)
