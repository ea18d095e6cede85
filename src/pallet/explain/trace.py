"""Traces of `pallet run --trace`: load one, render it as a tree grouped by process and stage, sum the stages.

The document is `pallet.linux.trace.document`'s (docs/trace.md): events ordered by time, each one kernel
call (or one engine step) with its process, stage, arguments and result. "stage" events mark where a
stage begins; they give the per-stage times of `--summary` and are not shown in the tree.
"""

from __future__ import annotations

import os

from pallet.errors import NotFound, PalletError
from pallet.linux.trace import segments

PROCESS_NAMES = {"cli": "CLI (pallet run)", "monitor": "monitor", "runtime-parent": "runtime parent (in the monitor)",
                 "runtime-child": "runtime child (namespaces)", "init": "container init"}


def load(engine, ref: str) -> dict:
    """The trace of container `ref` (name or id), or of a trace file `ref` (a --trace=FILE)."""
    from pallet.jsonfast import loads

    path = None
    if os.sep in ref or ref.endswith(".json"):
        if not os.path.isfile(ref):
            raise NotFound(f"no such trace file: {ref}")
        path = ref
    else:
        try:
            c = engine.get(ref)
        except NotFound:
            raise NotFound(f"no such container: {ref}") from None
        path = str(engine.dir(c.id) / "trace.json")
        if not os.path.isfile(path):
            raise PalletError(f"container {c.name} was not run with --trace: no trace is kept for it")
    try:
        with open(path) as f:
            doc = loads(f.read())
    except (OSError, ValueError) as e:
        raise PalletError(f"cannot read the trace {path}: {e}") from None
    if not isinstance(doc, dict) or doc.get("version") != 1:
        raise PalletError(f"{path} is not a pallet trace")
    return doc


def summary(doc: dict) -> dict:
    """Time per stage (`--summary`) and the whole: {"total_ms", "stages": [segments]}."""
    evs = doc.get("events") or ()
    total = max((e["t_ms"] + e["dur_ms"] for e in evs), default=0.0)
    return {"container": doc.get("container"), "runtime": doc.get("runtime"), "total_ms": round(total, 3),
            "calls": sum(1 for e in evs if e["op"] != "stage"), "stages": segments(doc)}


def describe(e: dict) -> str:
    """One line for an event's arguments, in the kernel's terms."""
    a = e.get("args") or {}
    op = e["op"]
    if op == "mount":
        flags = "|".join(a.get("flag_names") or ()) or "0"
        s = f"{a.get('source') or '-'} → {a.get('target')}"
        if a.get("fstype"):
            s += f" type {a['fstype']}"
        s += f" {flags}"
        if a.get("data"):
            s += f" {a['data']}"
        return s
    if op == "umount2":
        return f"{a.get('target')} flags {a.get('flags')}"
    if op == "unshare":
        return "|".join(a.get("flags") or ()) or "0"
    if op == "setns":
        return f"{a.get('ns')} {'|'.join(a.get('nstype') or ())}"
    if op == "write":
        return f"{a.get('path')} ← {a.get('value', '')!r}"
    if op == "prctl":
        args = a.get("args") or []
        return f"{a.get('option')}" + (f" {a['cap']}" if a.get("cap") else f" {args[0]}" if args else "")
    if op == "capset":
        return "; ".join(f"{k} {len(a.get(k) or ())}" for k in ("effective", "permitted", "inheritable"))
    if op == "capability sets":
        return "; ".join(f"{k} {len(v)}" for k, v in a.items())
    if op == "seccomp":
        return (f"{a.get('rules')} rules ({a.get('syscalls')} syscalls), default {a.get('default_action')}, "
                f"{', '.join(a.get('architectures') or ()) or 'native arch'}"
                + (f", {a['bpf_instructions']} BPF instructions" if a.get("bpf_instructions") else ""))
    if op == "execve":
        return f"{a.get('path')} {a.get('argv')}"
    if op == "exec runtime":
        return " ".join(a.get("argv") or ()) + f" → exit {a.get('exit')}"
    if op == "etc files":
        return f"{a.get('dir')}: " + ", ".join(f"{k} ({len(v)} bytes)" for k, v in (a.get("files") or {}).items())
    if op in ("mkdir", "rmdir"):
        return str(a.get("path")) + (" (it existed)" if a.get("existed") else "")
    if op == "layers":
        return ", ".join(f"{x['lowerdir']}={x['chain_id'][:19]}" for x in a.get("lowerdirs") or ())
    if op == "pivot_root":
        return f"{a.get('new_root')} {a.get('put_old')} (in {a.get('cwd')})"
    if op == "nft transaction":   # (the whole JSON of the transaction is in --format json)
        how = a.get("library") or " ".join((a.get("argv") or ())[:1]) or "nft"
        objs = ", ".join(a.get("objects") or ())
        return f"{a.get('commands')} commands through {how}" + (f": {objs}" if objs else "")
    if op == "netlink":
        ns = a.get("netns")
        return str(a.get("call")) + (f" (in {ns})" if ns else "") + (" batched" if a.get("batched") else "")
    return " ".join(f"{k}={v}" for k, v in a.items())


def _short_ids(text: str) -> str:
    """64-hex ids (container ids, chain ids) in a line, cut to 12 digits: the tree's lines stay readable."""
    import re

    return re.sub(r"\b([0-9a-f]{12})[0-9a-f]{52}\b", r"\1", text)


def render_tree(doc: dict, stream=None, *, color: bool | None = None) -> None:
    """The trace as a tree: process → stage → one line per call (time offset, duration, call, result)."""
    import sys

    from rich.console import Console
    from rich.markup import escape
    from rich.tree import Tree

    stream = stream or sys.stdout
    s = summary(doc)
    c = doc.get("container") or {}
    title = (f"[bold]trace of {escape(c.get('name') or '')}[/bold] ({(c.get('id') or '')[:12]}) · runtime "
             f"{escape(str(doc.get('runtime')))} · {s['total_ms']:.1f} ms · {s['calls']} calls"
             + ("" if doc.get("complete") else " · teardown not included")
             + " [dim](ids cut to 12 digits; --format json has every argument whole)[/dim]")
    root = Tree(title)
    if doc.get("unseen"):
        root.add(f"[yellow]not seen: {escape(doc['unseen'])}[/yellow]")
    procs: dict[str, Tree] = {}
    stage_nodes: dict[tuple, Tree] = {}
    segs = {(x["process"], x["start_ms"]): x for x in s["stages"]}
    last: dict[str, tuple] = {}
    for e in doc.get("events") or ():
        p = e["process"]
        if p not in procs:
            procs[p] = root.add(f"[bold cyan]{escape(PROCESS_NAMES.get(p, p))}[/bold cyan] pid {e['pid']}")
        st = e["stage"] or "-"
        if last.get(p, (None,))[0] != st:
            seg = segs.get((p, e["t_ms"]))
            ms = f"{seg['ms']:.2f} ms" if seg else ""
            node = procs[p].add(f"[bold]{escape(st)}[/bold] [dim]{ms}[/dim]")
            last[p] = (st, node)
            stage_nodes[(p, st)] = node
        if e["op"] == "stage":
            continue
        res = "" if e["result"] == "ok" else f" [red]{escape(e.get('error') or 'error')}[/red]"
        last[p][1].add(f"[dim]+{e['t_ms']:8.2f} {e['dur_ms']:6.2f} ms[/dim] [green]{escape(e['op'])}[/green] "
                       f"{escape(_short_ids(describe(e)))}{res}")
    isatty = getattr(stream, "isatty", lambda: False)()
    Console(file=stream, width=100000 if not isatty else None, no_color=not (isatty if color is None else color),
            highlight=False, soft_wrap=True).print(root)


def render_summary(doc: dict, stream=None) -> None:
    import sys

    stream = stream or sys.stdout
    s = summary(doc)
    rows = [(PROCESS_NAMES.get(x["process"], x["process"]), x["stage"], f"{x['ms']:.2f} ms", str(x["calls"]))
            for x in s["stages"]]
    head = ("PROCESS", "STAGE", "TIME", "CALLS")
    w = [max(len(r[i]) for r in [head, *rows]) for i in range(4)]
    for r in [head, *rows]:
        stream.write("   ".join((r[i].rjust(w[i]) if i >= 2 else r[i].ljust(w[i])) for i in range(4)).rstrip() + "\n")
    stream.write(f"total {s['total_ms']:.2f} ms, {s['calls']} calls\n")


def costs(root: str, runtime: str) -> dict:
    """Each stage's median, min and max over the recent traced runs with `runtime` (the store's rolling
    record, `pallet.linux.trace.record_costs`), in the order a run goes through them."""
    import statistics

    from pallet.linux.trace import recent_costs

    runs = [r for r in recent_costs(root) if (r.get("runtime") or "pallet") == runtime]
    by: dict[tuple, list[float]] = {}
    order: dict[tuple, float] = {}
    for r in runs:
        per_run: dict[tuple, float] = {}
        for i, (proc, stage, ms) in enumerate(r.get("stages") or ()):
            per_run[(proc, stage)] = per_run.get((proc, stage), 0.0) + ms   # (a stage a process enters twice)
            order.setdefault((proc, stage), i)
        for key, ms in per_run.items():
            by.setdefault(key, []).append(round(ms, 3))
    total = statistics.median([r["total_ms"] for r in runs]) if runs else 0.0
    stages = []
    for key in sorted(by, key=lambda k: order[k]):
        v = by[key]
        med = statistics.median(v)
        stages.append({"process": key[0], "stage": key[1], "median_ms": round(med, 3), "min_ms": min(v),
                       "max_ms": max(v), "runs": len(v), "share": round(med / total, 4) if total else 0.0})
    return {"runtime": runtime, "runs": len(runs), "total_ms": round(total, 3), "stages": stages}
