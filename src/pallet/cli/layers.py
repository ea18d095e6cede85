"""`pallet image mount|unmount|tree|efficiency`: an image's layers, as a view and layer by layer."""

from __future__ import annotations

import click

from pallet.cli.common import human_size, print_json, print_table, state


def _store():
    return state().store()


@click.command("mount")
@click.argument("ref")
def mount_cmd(ref: str) -> None:
    """Mount an image read-only (unpacking its layers if needed) and print the path."""
    from pallet.layers import images

    st = state()
    click.echo(str(images.mount(st.store(), ref, st.storage_driver)))


@click.command("unmount")
@click.argument("ref")
def unmount_cmd(ref: str) -> None:
    """Unmount the read-only view `pallet image mount` made."""
    from pallet.layers import images

    st = state()
    images.unmount(st.store(), ref, st.storage_driver)
    click.echo(ref)


def _short(d: str) -> str:
    return d.partition(":")[2][:12]


@click.command("tree")
@click.argument("ref")
@click.option("--layer", "layer", type=int, default=None, help="Show the files of layer N (0 = bottom).")
@click.option("--path", "prefix", default="/", show_default=True, help="Only paths under PREFIX.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def tree_cmd(ref: str, layer: int | None, prefix: str, fmt: str) -> None:
    """What each layer of an image adds (+), changes (~) and deletes (-)."""
    from pallet.errors import PalletError
    from pallet.layers.analysis import _under, analyze, image_layers

    store = _store()
    rec = store.resolve_image(ref)
    reports, _ = analyze(image_layers(store, rec))
    if layer is not None and not 0 <= layer < len(reports):
        raise PalletError(f"image {ref} has {len(reports)} layers; --layer must be 0..{len(reports) - 1}")
    chosen = [reports[layer]] if layer is not None else reports
    totals = {op: sum(r.count(op, prefix) for r in chosen) for op in "+~-"}
    if fmt == "json":
        print_json({
            "image": rec.id,
            "layers": [{
                "index": r.index, "digest": r.digest, "diff_id": r.diff_id, "created_by": r.created_by,
                "size": r.size, "added": r.count("+", prefix), "changed": r.count("~", prefix),
                "deleted": r.count("-", prefix),
                "changes": [{"op": c.op, "path": c.path, "type": c.type, "size": c.size}
                            for c in r.changes if _under(c.path, prefix)],
            } for r in chosen],
            "totals": {"size": sum(r.size for r in chosen), "added": totals["+"], "changed": totals["~"],
                       "deleted": totals["-"]},
        })
        return
    rows = [[r.index, _short(r.digest), human_size(r.size), r.count("+", prefix), r.count("~", prefix),
             r.count("-", prefix), (r.created_by or "")[:60]] for r in chosen]
    rows.append(["total", "", human_size(sum(r.size for r in chosen)), totals["+"], totals["~"], totals["-"], ""])
    print_table(["LAYER", "DIGEST", "SIZE", "+", "~", "-", "CREATED BY"], rows)
    if layer is not None or prefix.strip("/"):
        click.echo()
        lines = []
        for r in chosen:
            for c in r.changes:
                if _under(c.path, prefix):
                    lines.append([r.index, c.op, human_size(c.size) if c.type == "file" else "-", c.type, c.path])
        print_table(["LAYER", "OP", "SIZE", "TYPE", "PATH"], lines)


@click.command("efficiency")
@click.argument("ref")
@click.option("--top", type=int, default=10, show_default=True, help="How many offending paths to list.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def efficiency_cmd(ref: str, top: int, fmt: str) -> None:
    """Bytes that layers ship and later layers overwrite or delete (dive's efficiency score)."""
    from pallet.layers.analysis import analyze, efficiency, image_layers

    store = _store()
    rec = store.resolve_image(ref)
    reports, waste = analyze(image_layers(store, rec))
    eff = efficiency(reports, waste)
    if fmt == "json":
        print_json({"image": rec.id, **eff,
                    "top": [{"path": w.path, "count": w.count, "wasted_bytes": w.wasted} for w in waste[:top]]})
        return
    print_table(["EFFICIENCY", "WASTED", "TOTAL"],
                [[f"{eff['efficiency'] * 100:.2f}%", human_size(eff["wasted_bytes"]), human_size(eff["total_bytes"])]])
    if waste:
        click.echo()
        print_table(["COUNT", "WASTED", "PATH"], [[w.count, human_size(w.wasted), w.path] for w in waste[:top]])
