"""`pallet trace CONTAINER|FILE [--summary] [--format json]`: the kernel calls `pallet run --trace` recorded."""

from __future__ import annotations

import click

from pallet.cli.common import print_json, state


@click.command("trace")
@click.argument("container")
@click.option("--summary", is_flag=True, help="Time per stage instead of every call.")
@click.option("--format", "fmt", type=click.Choice(["tree", "json"]), default="tree", show_default=True,
              help="tree (a terminal tree, colours on a tty) or json (docs/trace.md).")
def trace_cmd(container: str, summary: bool, fmt: str) -> None:
    """Show the trace of a container run with --trace (or a --trace=FILE)."""
    from pallet.cli.containerrun import engine
    from pallet.explain import trace as X

    doc = X.load(engine(state()), container)
    if fmt == "json":
        print_json(X.summary(doc) if summary else doc)
    elif summary:
        X.render_summary(doc)
    else:
        X.render_tree(doc)
