"""`pallet explain run|image`: what a run flag set gives a process, what an image is made of.

Thin: parse, call pallet.explain, render (aligned plain text, or --format json).
"""

from __future__ import annotations

import click

from pallet.cli.common import human_size, print_json, state
from pallet.errors import PalletError

OWN = ("--compare", "--format")
PLACEHOLDER_ID = "0" * 64   # (pallet.explain.runspec's: the id the spec is built for)


@click.group("explain")
def explain_group() -> None:
    """Explain what pallet would do or has made, from the real code path."""


# ---- explain run: the same parser as `pallet run` ----------------------------------------------
def _arity() -> dict[str, str]:
    from pallet.cli.runflags import RUN_OPTIONS

    return {o: kind for names, _, kind, _, _ in RUN_OPTIONS for o in names}


def split_own(args: list[str], own: tuple[str, ...], own_flags: tuple[str, ...] = ()) -> tuple[dict[str, str], list[str]]:
    """Take explain's own options (`own`, each with a value; `own_flags`, without) out of a `run` command
    line, up to the image. Returns ({option: value ("" for a flag)}, the rest, for run's parser)."""
    from pallet.cli.runflags import FLAG, OPTIONAL

    kinds = _arity()
    mine: dict[str, str] = {}
    rest: list[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        name, eq, value = a.partition("=")
        if a in own_flags:
            mine[a] = ""
            i += 1
            continue
        if name in own:
            if not eq:
                if i + 1 >= len(args):
                    raise click.UsageError(f"option {name} requires a value")
                value = args[i + 1]
                i += 1
            mine[name] = value
            i += 1
            continue
        if a == "--" or a[:1] != "-" or a == "-":
            rest += args[i:]
            break
        rest.append(a)
        if a.startswith("--"):
            kind = kinds.get(name)
            if kind is not None and kind not in (FLAG, OPTIONAL) and not eq and i + 1 < len(args):
                rest.append(args[i + 1])
                i += 1
        else:   # short options, several in one token (-it, -eA=1, -e A=1)
            for j in range(1, len(a)):
                kind = kinds.get("-" + a[j])
                if kind is None or kind == FLAG:
                    continue
                if j == len(a) - 1 and i + 1 < len(args):
                    rest.append(args[i + 1])
                    i += 1
                break
        i += 1
    return mine, rest


def parse_run_args(args: list[str]):
    """A `run` command line -> (image, command, kw, detach), by `pallet run`'s own click command: its
    errors are run's (a click UsageError, exit 125)."""
    from pallet.cli.container import run_cmd

    parent = click.get_current_context(silent=True)
    root = parent.find_root() if parent is not None else None
    ctx = run_cmd.make_context("run", list(args), parent=root)
    kw = dict(ctx.params)
    image, command = kw.pop("image"), tuple(kw.pop("command") or ())
    detach = kw.pop("detach")
    kw.pop("sig_proxy", None)
    return image, command, kw, detach


def _build(st, args: list[str]) -> dict:
    """A `run` command line -> the explanation (pallet.explain.runspec), via run's parser and build_opts."""
    from pallet.cli.containerrun import build_opts, engine
    from pallet.explain import runspec

    image, cmd, kw, detach = parse_run_args(args)
    opts = build_opts(image, cmd, kw, detach=detach)
    flags = args[:len(args) - 1 - len(cmd)]
    pull = any(a == "--pull" or a.startswith("--pull=") for a in flags)   # (said on the command line)
    from pallet.errors import InvalidField

    try:
        built = runspec.build(engine(st), opts, args, pull=pull)
    except InvalidField as e:   # (checked as create checks it: -p, --expose, --init)
        from pallet.cli.hostflags import said

        raise said(e) from None
    return runspec.explain(built)


@explain_group.command("run", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False,
                                                 "help_option_names": ["--help"]})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def run_cmd(args: tuple[str, ...]) -> None:
    """What `pallet run [RUN FLAGS] IMAGE [COMMAND]` gives the process, without creating anything.

    \b
    Options of its own (before IMAGE, anywhere among the run flags):
      --compare 'OTHER FLAGS'   the difference to another flag set for the same image
                                (e.g. --compare --privileged, --compare '--cap-add SYS_ADMIN')
      --format text|json
      --cost                    what each stage of starting a container costs on this host, from
                                the traces of recent runs (`pallet run --trace`)

    The flags are parsed by `pallet run`'s own parser and the OCI runtime spec is built by the
    engine's spec builder from the image's config in the store; nothing is created, and nothing is
    pulled unless --pull is given (missing or always: as `pallet run` would).
    """
    import shlex

    from pallet.explain import runspec

    mine, rest = split_own(list(args), OWN, ("--cost",))
    fmt = mine.get("--format", "text")
    if fmt not in ("text", "json"):
        raise PalletError(f"invalid --format {fmt!r}: text or json")
    st = state()
    a = _build(st, rest)
    if "--cost" in mine:
        from pallet.engine.runtimes import default_runtime

        _cost(st, parse_run_args(rest)[2].get("runtime") or default_runtime(), fmt)
        return
    if "--compare" in mine:
        try:
            other_flags = shlex.split(mine["--compare"])
        except ValueError as e:
            raise PalletError(f"invalid --compare {mine['--compare']!r}: {e}") from None
        tail = rest[len(rest) - 1 - len(a["command"]):]   # IMAGE [COMMAND...] as run's parser read them
        own_flags = [x for x in rest[:len(rest) - len(tail)] if x != "--"]
        b = _build(st, [*other_flags, *tail])
        d = runspec.compare(a, b)
        if fmt == "json":
            print_json({"a": a, "b": b, "difference": d})
        else:
            _print_compare(d, own_flags, other_flags)
        return
    if fmt == "json":
        print_json(a)
        return
    _print_run(a)


def _cost(st, runtime: str, fmt: str) -> None:
    """--cost: the median time of each stage over the recent traced runs with this flag set's runtime."""
    from pallet.explain.trace import costs

    c = costs(str(st.root_path), runtime)
    if fmt == "json":
        print_json(c)
        return
    if not c["runs"]:
        flag = "" if runtime == "pallet" else f"--runtime {runtime} "
        click.echo(f"No traced runs with the {runtime} runtime on this host yet: run `pallet run --rm {flag}--trace "
                   "IMAGE true` a few times, then ask again.")
        return
    click.echo(f"What starting a container costs on this host: the median of the last {c['runs']} traced runs "
               f"with the {runtime} runtime (pallet run --trace), {c['total_ms']:.1f} ms from `pallet run` starting "
               "to its last kernel call (the teardown's). Each process's stages run one after the other; the "
               "processes overlap (the monitor's `runtime create` holds the runtime's and the init's stages).")
    rows = [("PROCESS", "STAGE", "MEDIAN", "MIN", "MAX", "SHARE")]
    for x in c["stages"]:
        rows.append((x["process"], x["stage"], f"{x['median_ms']:.2f} ms", f"{x['min_ms']:.2f}",
                     f"{x['max_ms']:.2f}", f"{x['share']:.0%}"))
    w = [max(len(r[i]) for r in rows) for i in range(6)]
    for r in rows:
        click.echo("   ".join(r[i].ljust(w[i]) if i < 2 else r[i].rjust(w[i]) for i in range(6)).rstrip())


# ---- text output -----------------------------------------------------------------------------
def _section(title: str) -> None:
    click.echo()
    click.secho(title, bold=True)   # (click drops the styling when stdout is not a terminal)


def _kv(rows: list[tuple[str, str]], indent: int = 2) -> None:
    if not rows:
        return
    w = max(len(k) for k, _ in rows) + 2
    for k, v in rows:
        click.echo(f"{' ' * indent}{k:<{w}}{v}".rstrip())


def _wrap(items: list[str], indent: int = 2, width: int = 100) -> None:
    line = " " * indent
    for it in items:
        if len(line) + len(it) + 2 > width and line.strip():
            click.echo(line.rstrip())
            line = " " * indent
        line += it + "  "
    if line.strip():
        click.echo(line.rstrip())


def _limit(k: str, v) -> str:
    if k == "memory":
        parts = []
        if v.get("limit"):
            parts.append(f"limit {human_size(v['limit'])}")
        if v.get("swap"):
            parts.append("swap unlimited" if v["swap"] == -1 else f"memory+swap {human_size(v['swap'])}")
        if v.get("reservation"):
            parts.append(f"reservation {human_size(v['reservation'])}")
        return ", ".join(parts)
    if k == "cpu":
        parts = []
        if v.get("quota") and v.get("period"):
            parts.append(f"{v['quota'] / v['period']:.2f} CPUs (quota {v['quota']}/{v['period']} µs)")
        for key in ("shares", "cpus", "mems"):
            if v.get(key):
                parts.append(f"{key} {v[key]}")
        return ", ".join(parts)
    if k == "pids":
        return f"at most {v.get('limit')} processes"
    return str(v)


def _print_run(e: dict) -> None:
    click.echo(f"pallet run {' '.join(e['argv'])}")
    click.echo(f"  image {e['image']} ({e['image_id'].partition(':')[2][:12]}), command {e['process']['args']}, cwd {e['process']['cwd']}")
    if e["warnings"]:
        _section("WARNINGS (what breaks isolation)")
        for w in e["warnings"]:
            click.secho(f"  ! {w}", fg="red")
    _section("NAMESPACES")
    _kv([(n["type"], f"{n['text']:<24}{n['isolates']}") for n in e["namespaces"]])
    u = e["user"]
    _section("USER")
    groups = ",".join(map(str, u["additional_gids"])) or "none"
    _kv([("uid", f"{u['uid']}" + (f" ({u['name']})" if u["name"] else "")), ("gid", str(u["gid"])),
         ("extra groups", groups), ("no_new_privs", "yes" if u["no_new_privileges"] else "no (setuid binaries work)")])
    caps = e["capabilities"]
    _section(f"CAPABILITIES  {caps['kept_count']} kept of {caps['full_count']}")
    _kv([(c["name"], c["allows"]) for c in caps["kept"]])
    if caps["dropped"]:
        click.echo(f"  dropped: {len(caps['dropped'])}")
        _wrap(caps["dropped"], indent=4)
    s = e["seccomp"]
    if s["enabled"]:
        _section(f"SECCOMP  {s['blocked_count']} of the {s['known_syscalls']} syscalls the profile knows are blocked")
        click.echo(f"  {s['allowed_count']} allowed, {len(s['filtered'])} allowed with argument filters; any other: "
                   f"{s['default_action']} ({s['rules']} rules, {', '.join(s['architectures'])})")
        click.echo("  blocked, notable:")
        _wrap(s["blocked_notable"], indent=4)
        if s["filtered"]:
            click.echo("  allowed only with some arguments: " + ", ".join(s["filtered"]))
    else:
        _section("SECCOMP  disabled: no filter, every syscall allowed")
    _section("PATHS")
    click.echo(f"  masked ({len(e['masked_paths'])}, read as empty):" + ("" if e["masked_paths"] else " none"))
    _wrap(e["masked_paths"], indent=4)
    click.echo(f"  read-only ({len(e['readonly_paths'])}):" + ("" if e["readonly_paths"] else " none"))
    _wrap(e["readonly_paths"], indent=4)
    click.echo("  root filesystem: " + ("read-only" if e["rootfs_readonly"] else "writable (the container's own layer)"))
    _section("MOUNTS")
    rows = []
    for m in e["mounts"]:
        origin = {"host": "HOST PATH", "pallet": "pallet's file", "volume": "volume"}.get(m["origin"], "")
        src = m["source"] if m["type"] == "bind" else m["type"]
        src = src.replace(e["files_dir"], "<container dir>")
        rows.append((m["destination"], f"{'ro' if m['readonly'] else 'rw'}  {src}" + (f"  [{origin}]" if origin else "")))
    _kv(rows)
    d = e["devices"]
    _section("DEVICES")
    if d["all_allowed"]:
        click.echo(f"  every device allowed; {len(d['nodes'])} host device nodes created in /dev")
    else:
        click.echo("  device cgroup: deny all but " + ", ".join(_rule(r) for r in d["rules"] if r.get("allow")))
        if d["nodes"]:
            click.echo("  extra nodes: " + ", ".join(n["path"] for n in d["nodes"]))
    _section("CGROUP")
    lim = e["cgroup"]["limits"]
    _kv([("path", str(e["cgroup"]["path"]).replace(PLACEHOLDER_ID, "<container id>"))] + [(k, _limit(k, v)) for k, v in lim.items()] +
        ([] if lim else [("limits", "none (what the host gives pallet)")]))
    n = e["network"]
    _section("NETWORK")
    how = {"none": "none: loopback only, no way out", "host": "the host's network stack",
           "bridge": "the default bridge: an address of its own, NAT to the outside, no DNS of names"}.get(
        n["mode"], f"network {n['mode']}")
    nets = n.get("networks") or []
    rows = [("mode", how)]
    if len(nets) > 1 or (nets and nets[0] != n["mode"]):
        rows.append(("networks", ", ".join(nets)))
    rows += [("published", p) for p in n["ports"]] or [("published", "nothing")]
    _kv(rows)


def _rule(r: dict) -> str:
    names = {(1, 3): "null", (1, 5): "zero", (1, 7): "full", (1, 8): "random", (1, 9): "urandom", (5, 0): "tty",
             (5, 2): "ptmx", (10, 200): "tun", (136, None): "pts/*"}
    if r.get("major") is None:
        return f"mknod of any {r.get('type')}" if r.get("access") == "m" else f"all {r.get('type') or ''}".strip()
    name = names.get((r["major"], r.get("minor")))
    return name or f"{r['type']} {r['major']}:{r.get('minor', '*')}"


def _print_compare(d: dict, a_flags: list[str], b_flags: list[str]) -> None:
    la = " ".join(a_flags) or "(default flags)"
    lb = " ".join(b_flags) or "(default flags)"
    click.echo(f"A: {la}")
    click.echo(f"B: {lb}")
    same = True
    if d["warnings"]["added"] or d["warnings"]["removed"]:
        same = False
        _section("WARNINGS")
        for w in d["warnings"]["added"]:
            click.secho(f"  + ! {w}", fg="red")
        for w in d["warnings"]["removed"]:
            click.echo(f"  - ! {w}")
    if d["namespaces"]:
        same = False
        _section("NAMESPACES")
        _kv([(t, f"{v['from']} -> {v['to']}") for t, v in d["namespaces"].items()])
    if d["user"]:
        same = False
        _section("USER")
        _kv([(k, f"{v['from']} -> {v['to']}") for k, v in d["user"].items()])
    c = d["capabilities"]
    if c["added"] or c["removed"]:
        same = False
        _section(f"CAPABILITIES  {c['from_count']} -> {c['to_count']}")
        _kv([("+ " + x["name"], x["allows"]) for x in c["added"]] + [("- " + x["name"], x["allows"]) for x in c["removed"]])
    s = d["seccomp"]
    if s["changed"]:
        same = False
        _section("SECCOMP")
        click.echo(f"  {s['from']} -> {s['to']}")
        if s["now_allowed"]:
            click.echo("  now allowed, notable:")
            _wrap(s["now_allowed"], indent=4)
        if s["now_blocked"]:
            click.echo("  now blocked, notable:")
            _wrap(s["now_blocked"], indent=4)
    for key, title, gone in (("masked_paths", "MASKED PATHS", "unmasked"), ("readonly_paths", "READ-ONLY PATHS",
                                                                           "now writable"), ("mounts", "MOUNTS", "")):
        x = d[key]
        if x["added"] or x["removed"]:
            same = False
            _section(title)
            if key == "mounts":
                for p in x["added"]:
                    click.echo(f"  + {p}")
                for p in x["removed"]:
                    click.echo(f"  - {p}")
                continue
            if x["added"]:
                click.echo(f"  + {len(x['added'])} {'masked' if key == 'masked_paths' else 'read-only'}:")
                _wrap(x["added"], indent=4)
            if x["removed"]:
                click.echo(f"  - {len(x['removed'])} {gone}:")
                _wrap(x["removed"], indent=4)
    if d["rootfs_readonly"]:
        same = False
        _section("ROOT FILESYSTEM")
        click.echo(f"  read-only: {d['rootfs_readonly']['from']} -> {d['rootfs_readonly']['to']}")
    dv = d["devices"]
    if dv["added"] or dv["removed"] or dv["all_allowed"]:
        same = False
        _section("DEVICES")
        if dv["all_allowed"]:
            yn = {True: "yes", False: "no"}
            click.echo(f"  every device allowed: {yn[dv['all_allowed']['from']]} -> {yn[dv['all_allowed']['to']]}")
        if dv["added"]:
            click.echo(f"  + {len(dv['added'])} device nodes: " + ", ".join(dv["added"][:12]) +
                       (" …" if len(dv["added"]) > 12 else ""))
        if dv["removed"]:
            click.echo(f"  - {len(dv['removed'])} device nodes: " + ", ".join(dv["removed"][:12]))
    if d["cgroup_limits"]:
        same = False
        _section("CGROUP LIMITS")
        _kv([(k, f"{_limit(k, v['from']) if v['from'] else 'none'} -> {_limit(k, v['to']) if v['to'] else 'none'}")
             for k, v in d["cgroup_limits"].items()])
    if d["network"]:
        same = False
        _section("NETWORK")
        n = d["network"]
        a, b = n["from"], n["to"]
        if a["mode"] != b["mode"]:
            click.echo(f"  mode {a['mode']} -> {b['mode']}")
        for key in ("networks", "ports"):
            was, now = a.get(key) or [], b.get(key) or []
            for x in now:
                if x not in was:
                    click.echo(f"  + {'published ' if key == 'ports' else 'network '}{x}")
            for x in was:
                if x not in now:
                    click.echo(f"  - {'published ' if key == 'ports' else 'network '}{x}")
    if same:
        click.echo()
        click.echo("No difference: both flag sets give the process the same isolation.")


# ---- explain image -----------------------------------------------------------------------------
@explain_group.command("image")
@click.argument("image")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def image_cmd(image: str, fmt: str) -> None:
    """What IMAGE is: its full name and API URL, its base image, what each layer adds (top directories,
    package databases), what runs, and the space it wastes. Only images in the store (no pull)."""
    from pallet.cli.reference import explain
    from pallet.explain.image import explain_image

    e = explain_image(state().store(), image)
    names = []
    for t in e["names"]:
        try:
            names.append(explain(t))
        except PalletError:   # a stored name that does not parse is shown as is
            names.append({"input": t})
    e["names"] = names
    if fmt == "json":
        print_json(e)
        return
    _print_image(e)


def _print_image(e: dict) -> None:
    short = e["id"].partition(":")[2][:12]
    click.echo(f"IMAGE {e['input']}  ({short}, {e['platform']}, {human_size(e['size'])}, created {e['created'] or '?'})")
    _section("NAMES")
    if not e["names"]:
        click.echo("  none (untagged: known by its ID only)")
    for n in e["names"]:
        if "domain" not in n:
            click.echo(f"  {n['input']}")
            continue
        click.echo(f"  {n['input']}")
        _kv([("registry", n["domain"]), ("repository", n["path"]), ("tag", str(n["tag"] or "<none>")),
             ("digest", str(n["digest"] or "<none>")), ("API URL", n["api_url"])]
            + ([("HTTP fallback", n["http_fallback"])] if n.get("http_fallback") else []), indent=4)
    click.echo(f"  manifest digest (in this store): {e['manifest_digest']}")
    _section("BASE")
    b = e["base"]
    if b is None:
        click.echo(f"  no local image is a base of this one: all {len(e['layers'])} layers are its own")
    else:
        click.echo(f"  built on {', '.join(b['tags']) or b['id'][:19]} ({b['layers']} layer{'s' if b['layers'] != 1 else ''}, "
                   f"{human_size(b['size'])}); adds {e['layers_added']} layer{'s' if e['layers_added'] != 1 else ''}, "
                   f"{human_size(e['size_added'])}")
    _section("LAYERS (bottom first)")
    for layer in e["layers"]:
        tag = "base" if layer["from_base"] else "own "
        by = " ".join((layer["created_by"] or "").split())
        if len(by) > 70:
            by = by[:69] + "…"
        click.echo(f"  {layer['index']:>2} {tag} {layer['digest'].partition(':')[2][:12]}  {human_size(layer['size']):>9}  "
                   f"+{layer['added']} ~{layer['changed']} -{layer['deleted']}  {by}")
        if layer["top_dirs"]:
            click.echo("       " + ", ".join(f"{d['path']} {human_size(d['size'])}" for d in layer["top_dirs"]))
        for db in layer["package_dbs"]:
            n = "" if db["packages"] is None else f": {db['packages']} packages"
            click.echo(f"       {db['manager']} database {db['path']}{n}")
    r = e["runs"]
    _section("RUNS")
    _kv([("entrypoint", str(r["entrypoint"] or "none")), ("cmd", str(r["cmd"] or "none")),
         ("user", r["user"] or "root (none set)"), ("workdir", r["workdir"] or "/"),
         ("ports", ", ".join(r["ports"]) or "none"), ("volumes", ", ".join(r["volumes"]) or "none")]
        + [("env", v) for v in r["env"]])
    w = e["waste"]
    _section(f"WASTE  {human_size(w['wasted_bytes'])} of {human_size(w['total_bytes'])} "
             f"(efficiency {w['efficiency'] * 100:.1f}%)")
    for t in w["top"][:5]:
        click.echo(f"  {human_size(t['wasted_bytes']):>9}  {t['count']}x  {t['path']}")


# ---- explain container -------------------------------------------------------------------------
@explain_group.command("container")
@click.argument("container")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def container_cmd(container: str, fmt: str) -> None:
    """What a running CONTAINER's process has, read from /proc: capability sets, seccomp mode, its
    namespaces against the host's, its cgroup usage against the limits, its mounts (overlay layers
    named by image and layer), and its processes with in-container and host PIDs."""
    from pallet.cli.containerrun import engine
    from pallet.explain.container import explain_container

    e = explain_container(engine(state()), container)
    if fmt == "json":
        print_json(e)
        return
    click.echo(f"CONTAINER {e['name']} ({e['id'][:12]}), image {e['image']}, host PID {e['pid']}")
    _section("NAMESPACES  (inode: the container's / the host's)")
    _kv([(n["type"], f"{'own ' if n['state'] == 'own' else 'HOST' if n['state'] == 'host' else '?   '}  "
          f"{n['inode'] or '-'}  /  {n['host_inode'] or '-'}") for n in e["namespaces"]])
    _section("PROCESS")
    u = e["user"]
    _kv([("uid (real eff saved fs)", " ".join(u["uid"])), ("gid", " ".join(u["gid"])),
         ("groups", " ".join(u["groups"]) or "none"),
         ("seccomp", f"{e['seccomp']['mode']}" + (f", {e['seccomp']['filters']} filter(s)"
                                                  if e["seccomp"]["filters"] else "")),
         ("no_new_privs", "yes" if e["no_new_privs"] else "no")])
    caps = e["capabilities"]
    _section(f"CAPABILITIES  effective {len(caps['effective'])}, bounding {len(caps['bounding'])}, "
             f"ambient {len(caps['ambient'])}")
    _kv([(x["name"], x["allows"]) for x in caps["effective"]])
    cg = e["cgroup"]
    _section(f"CGROUP v{cg['version']}  {cg.get('path') or ''}")
    mem, pids = cg["memory"], cg["pids"]
    limit = mem["max"]
    if limit and limit.isdigit():
        limit = "no limit" if int(limit) >= 1 << 62 else human_size(int(limit))
    _kv([("memory", f"{human_size(mem['current']) if mem['current'] is not None else '?'} of {limit or '?'}"),
         ("pids", f"{pids['current']} of {pids['max'] or '?'}")]
        + ([("cpu.max", str(cg["cpu"].get("max")))] if cg.get("cpu") else []))
    n = e["network"]
    _section(f"NETWORK  {n['mode']}")
    rows = [("inside", ", ".join(f"{i['name']} ({human_size(i['rx_bytes'])} in, {human_size(i['tx_bytes'])} out)"
                                 for i in n["interfaces"]) or "no interface")]
    for ep in n["endpoints"]:
        host_end = (f"veth {ep['veth']} on bridge {ep['bridge']}" if ep["bridge"] else
                    f"veth {ep['veth']}" + ("" if ep["veth_present"] else " (not on the host!)"))
        rows.append((ep["network"], f"{ep['ifname']} {ep['address']} {ep['mac']}  <->  {host_end}"))
    rows += [("published", p) for p in n["ports"]] or [("published", "nothing")]
    _kv(rows)
    _section("PROCESSES  (PID in the container / on the host)")
    _kv([(f"{p['pid']} / {p['host_pid']}", p["command"]) for p in e["processes"]])
    _section("MOUNTS")
    for m in e["mounts"]:
        click.echo(f"  {m['destination']:<24} {m['type']:<8} {m['source']}  ({m['options']})")
        for low in m.get("lowers") or ():
            click.echo(f"      lower {low['dir']}  {low['layer']}")
