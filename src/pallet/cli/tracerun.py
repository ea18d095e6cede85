"""`pallet run --trace[=FILE]`: where the trace goes, the CLI's own records, the tree printed at the exit.

The CLI records its part (image, snapshot, /etc files) and hands the records, with the trace's path, to
the monitor in its "G" message; the monitor records its part and its runtime's (whose children send
theirs over the runtime's channel) and writes the document (`pallet.linux.trace.document`):

- `--trace`: `<root>/containers/<id>/trace.json`, shown later by `pallet trace NAME`;
- `--trace=FILE`: FILE (also with --rm: the container's directory goes, FILE stays);
- `--rm --trace`: a file in the run root the CLI prints (the tree, on stderr) and removes at the exit.
"""

from __future__ import annotations

import os

from pallet.errors import PalletError

UNSEEN = ("{rt} makes the container's kernel calls itself (clone, namespaces, id maps, mounts, pivot_root, "
          "masked paths, hostname, rlimits, capabilities, no_new_privs, seccomp, setgroups/setgid/setuid, "
          "execve): pallet sees its command lines, their exit status and time, not what happens inside them")


class Plan:
    def __init__(self, value: str, t0: int) -> None:
        self.file = os.path.abspath(value) if value else None
        self.t0 = t0
        self.print_at_exit = False
        self.path = ""


def begin(kw: dict, *, detach: bool) -> Plan | None:
    """Check the --trace value and start recording (before anything is created)."""
    value = kw.get("trace")
    if value is None:
        return None
    from pallet.linux import trace as T

    if value:
        d = os.path.dirname(os.path.abspath(value)) or "."
        if os.path.isdir(value) or not os.path.isdir(d) or not os.access(d, os.W_OK):
            raise PalletError(f"cannot write the trace to {value}: not a writable file path")
    elif kw.get("auto_remove") and detach:
        raise PalletError("--rm -d --trace keeps nothing to show: give the trace a file (--trace=FILE)")
    plan = Plan(value, T.now())
    T.start("cli", "start-up, image")   # (the engine's imports, the store, the image's config)
    return plan


def handoff(plan: Plan, eng, st, c, opts) -> dict:
    """What the monitor needs (the "trace" key of its "G" message); the CLI stops recording here."""
    from pallet.linux import trace as T

    r = T.recorder
    if r is not None and r.stage == "etc files":   # what the engine wrote for the container's /etc
        d = eng.dir(c.id)
        files = {}
        for name in ("hostname", "hosts", "resolv.conf"):
            try:
                files[name] = (d / name).read_text()
            except OSError:
                pass
        T.note("etc files", dir=str(d), files=files)
    T.stage("handed to the monitor")   # (ends the /etc files stage)
    records = T.stop()
    at_exit_only = False
    if plan.file:
        path = plan.file
    elif opts.host_options.AutoRemove:
        path = str(st.runroot_path / "traces" / f"{c.id}.json")
        plan.print_at_exit = at_exit_only = True
    else:
        path = str(eng.dir(c.id) / "trace.json")
    plan.path = path
    unseen = None if c.runtime == "pallet" else UNSEEN.format(rt=os.path.basename(c.runtime))
    return {"path": path, "t0_ns": plan.t0, "records": records, "unseen": unseen, "at_exit_only": at_exit_only}


def at_exit(plan: Plan) -> None:
    """`--rm --trace`: print the tree on stderr, remove the file."""
    if not plan.print_at_exit:
        return
    import sys

    from pallet.jsonfast import loads

    try:
        with open(plan.path) as f:
            doc = loads(f.read())
    except OSError:
        sys.stderr.write("trace: the monitor wrote no trace (see its log)\n")
        return
    try:
        os.unlink(plan.path)
    except OSError:
        pass
    from pallet.explain.trace import render_tree

    render_tree(doc, sys.stderr)
