"""Image commands with docker's names and flags: images, inspect, tag, rmi, prune, history,
import, save, load, export-layout, import-layout. Thin: parse, call pallet.store, render."""

from __future__ import annotations

import os
import re
import sys
import time
from typing import Any

import click

from pallet.cli.common import human_ago, human_size, print_json, print_pruned, print_table, state
from pallet.engine.images import familiar as _familiar
from pallet.errors import InvalidReference, PalletError

# ---- helpers ----------------------------------------------------------------------------------


def _split(name: str) -> tuple[str, str | None, str | None]:
    """A stored full name → (familiar repository, tag, digest)."""
    from pallet import reference

    ref = reference.parse(name)
    return reference.familiar_name(ref), ref.tag, ref.digest


def _timestamp(text: str | None) -> float | None:
    """RFC 3339 (with nanoseconds, Z or an offset) → unix time."""
    if not text:
        return None
    from datetime import datetime

    m = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)?$", text.strip())
    if not m:
        return None
    tz = m.group(3) or "Z"
    try:
        dt = datetime.fromisoformat(m.group(1) + ("+00:00" if tz == "Z" else tz))
    except ValueError:
        return None
    return dt.timestamp() + float("0." + (m.group(2) or "0"))


def _created(rec) -> float:
    ts = _timestamp(rec.created)
    return ts if ts is not None else rec.added


def _records_for(store, refs: tuple[str, ...]) -> list[tuple[Any, list[str]]]:
    """(record, names to record) per distinct image, as docker save picks them: a tag names itself, a
    bare repository name (`busybox`) every tag of that repository, an ID no name at all."""
    from pallet import reference

    out: dict[str, tuple[Any, list[str]]] = {}

    def add(rec, names: list[str]) -> None:
        item = out.setdefault(rec.id, (rec, []))
        item[1].extend(n for n in names if n not in item[1])

    for text in refs:
        bare = None
        try:
            parsed = reference.parse_normalized_named(text)
            if parsed.tag is None and parsed.digest is None:
                bare = parsed.name
        except InvalidReference:
            pass
        if bare is not None:
            hits = [(rec, [t for t in rec.tags if t.rpartition(":")[0] == bare]) for rec in store.images()]
            hits = [(rec, names) for rec, names in hits if names]
            if hits:
                for rec, names in hits:
                    add(rec, names)
                continue
        rec = store.resolve_image(text)
        names: list[str] = []
        try:
            ref = reference.normalize(text)
            if str(ref) in rec.tags:
                names = [str(ref)]
        except InvalidReference:
            pass
        add(rec, names)
    return list(out.values())


def _go_value(v: Any) -> str:
    if v is None:
        return "<no value>"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list):
        return "[" + " ".join(_go_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "map[" + " ".join(f"{k}:{_go_value(x)}" for k, x in sorted(v.items())) + "]"
    return str(v)


def render_template(template: str, obj: Any) -> str:
    """The part of Go templates that scripts use: `{{.A.B}}`, `{{json .A}}`, `{{.}}`."""
    import json

    def sub(m: re.Match) -> str:
        v = obj
        path = m.group(2)
        for part in [p for p in path.split(".") if p]:
            v = v.get(part) if isinstance(v, dict) else None
        if m.group(1):
            return json.dumps(v, ensure_ascii=False)
        return _go_value(v)

    out = re.sub(r"\{\{\s*(json\s+)?\.([\w.]*)\s*\}\}", sub, template)
    if "{{" in out:
        raise PalletError(f"unsupported --format template {template!r}: only {{{{.Field}}}} and {{{{json .Field}}}}")
    return out.replace("\\n", "\n").replace("\\t", "\t")


# ---- images / image ls ------------------------------------------------------------------------


def _image_rows(rec) -> list[tuple[str, str, str]]:
    """(repository, tag, digest) rows of one image, docker's way."""
    digests: dict[str, str] = {}
    for rd in rec.repo_digests:
        repo, _, dg = _split(rd)
        digests.setdefault(repo, dg or "<none>")
    rows = []
    seen = set()
    for t in rec.tags:
        repo, tag, _ = _split(t)
        rows.append((repo, tag or "<none>", digests.get(repo, "<none>")))
        seen.add(repo)
    for repo, dg in digests.items():
        if repo not in seen:
            rows.append((repo, "<none>", dg))
    if not rows:
        rows.append(("<none>", "<none>", "<none>"))
    return rows


def _filter_images(store, recs, filters: tuple[str, ...], repository: str | None):
    from pallet import reference

    wanted: dict[str, list[str]] = {}
    for f in filters:
        key, eq, val = f.partition("=")
        if not eq or key not in ("dangling", "reference", "label"):
            raise PalletError(f"invalid filter {f!r} (dangling=true|false, reference=PATTERN, label=KEY[=VALUE])")
        if key == "dangling" and val not in ("true", "false", "1", "0"):
            raise PalletError(f"invalid filter {f!r}: dangling takes true or false")
        wanted.setdefault(key, []).append(val)
    repo_ref = None
    if repository:
        repo_ref = reference.parse_normalized_named(repository)
    out = []
    for rec in recs:
        if "dangling" in wanted:
            dangling = not rec.tags
            if any((v in ("true", "1")) != dangling for v in wanted["dangling"]):
                continue
        if "reference" in wanted:
            refs = [reference.parse(t) for t in rec.tags]
            try:
                if not any(any(reference.familiar_match(p, r) or reference.familiar_match(p, reference.trim_named(r))
                               for r in refs) for p in wanted["reference"]):
                    continue
            except ValueError as e:
                raise PalletError(f"invalid reference filter pattern: {e}") from None
        if "label" in wanted:
            labels = store.config(rec).config.get("Labels") or {}
            ok = True
            for v in wanted["label"]:
                k, eq, lv = v.partition("=")
                if k not in labels or (eq and labels[k] != lv):
                    ok = False
            if not ok:
                continue
        if repo_ref is not None:
            names = [reference.parse(t) for t in rec.tags]
            if not any(r.name == repo_ref.name and (repo_ref.tag is None or r.tag == repo_ref.tag) for r in names):
                continue
        out.append(rec)
    return out


@click.command("images")
@click.argument("repository", required=False)
@click.option("-a", "--all", "all_", is_flag=True, help="Show all images (pallet keeps no intermediate images).")
@click.option("-q", "--quiet", is_flag=True, help="Only show image IDs.")
@click.option("--digests", is_flag=True, help="Show digests.")
@click.option("--no-trunc", is_flag=True, help="Don't truncate output.")
@click.option("-f", "--filter", "filters", multiple=True,
              help="Filter: dangling=true|false, reference=PATTERN, label=KEY[=VALUE].")
@click.option("--format", "fmt", default="table", help="table, json, or a Go template ({{.ID}} ...).")
@click.option("--tree", is_flag=True, help="Show images as a tree of shared layers (which image is built on which).")
def images_cmd(repository: str | None, all_: bool, quiet: bool, digests: bool, no_trunc: bool,
               filters: tuple[str, ...], fmt: str, tree: bool) -> None:
    """List images."""
    store = state().store()
    if tree:
        from pallet.explain import tree as images_tree

        forest = images_tree.tree(store)
        if fmt == "json":
            print_json(forest)
        else:
            click.echo("\n".join(images_tree.lines(forest, human_size)))
        return
    recs = sorted(store.images(), key=lambda r: (-_created(r), r.id))
    recs = _filter_images(store, recs, filters, repository)
    ident = (lambda r: r.id) if no_trunc else (lambda r: r.short_id)
    if quiet:
        for r in recs:
            click.echo(ident(r))
        return
    if fmt == "json":
        print_json([{
            "Id": r.id,
            "RepoTags": [_familiar(t) for t in r.tags],
            "RepoDigests": [_familiar(d) for d in r.repo_digests],
            "Names": r.tags,
            "Digest": r.manifest_digest,
            "Created": r.created,
            "CreatedAt": int(_created(r)),
            "Size": r.size,
            "Dangling": not r.tags,
        } for r in recs])
        return
    now = time.time()
    rows = []
    only = None
    if repository:
        from pallet import reference

        only = reference.parse_normalized_named(repository)
        only = (reference.familiar_name(only), only.tag)
    for r in recs:
        for repo, tag, dg in _image_rows(r):
            if only and (repo != only[0] or (only[1] is not None and tag != only[1])):
                continue
            row = {"Repository": repo, "Tag": tag, "Digest": dg, "ID": ident(r),
                   "CreatedSince": human_ago(_created(r), now), "CreatedAt": r.created or "",
                   "Size": human_size(r.size)}
            rows.append(row)
    if fmt != "table":
        from pallet.cli.common import print_formatted

        print_formatted(fmt, rows, render_template, id_header="IMAGE ID")
        return
    headers = ["REPOSITORY", "TAG", *(["DIGEST"] if digests else []), "IMAGE ID", "CREATED", "SIZE"]
    print_table(headers, [[row["Repository"], row["Tag"], *([row["Digest"]] if digests else []), row["ID"],
                           row["CreatedSince"], row["Size"]] for row in rows])


# ---- inspect ----------------------------------------------------------------------------------

@click.command("inspect")
@click.argument("images", nargs=-1, required=True)
@click.option("-f", "--format", "fmt", default=None, help="json (default) or a Go template ({{.Id}} ...).")
def inspect_cmd(images: tuple[str, ...], fmt: str | None) -> None:
    """Show the details of one or more images (docker's JSON)."""
    from pallet.engine.images import inspect_image
    store = state().store()
    docs, errors = [], []
    for text in images:
        try:
            docs.append(inspect_image(store, store.resolve_image(text)))
        except PalletError as e:
            errors.append(e)
    if fmt and fmt != "json":
        for d in docs:
            click.echo(render_template(fmt, d))
    else:
        print_json(docs)
    if errors:
        for e in errors[:-1]:
            click.echo(f"Error: {e.message}", err=True)
        raise PalletError(errors[-1].message, exit_code=1)


# ---- tag / rmi / prune ------------------------------------------------------------------------


@click.command("tag")
@click.argument("source")
@click.argument("target")
def tag_cmd(source: str, target: str) -> None:
    """Create a tag TARGET that refers to SOURCE (a name, an image ID or a unique ID prefix)."""
    store = state().store()
    name = tag_name(target)
    rec = store.resolve_image(source)
    store.tag(rec, name)


def tag_name(text: str) -> str:
    """The normalized name a new tag gets (tag, import, commit); a digest reference cannot be one."""
    from pallet import reference

    ref = reference.normalize(text)
    if ref.digest:
        raise InvalidReference(f"refusing to create a tag with a digest reference: {text}")
    return str(ref)


@click.command("rmi")
@click.argument("images", nargs=-1, required=True)
@click.option("-f", "--force", is_flag=True, help="Force removal of the image (all its names).")
@click.option("--no-prune", is_flag=True, help="Accepted for docker compatibility.")
def rmi_cmd(images: tuple[str, ...], force: bool, no_prune: bool) -> None:
    """Remove one or more images."""
    store = state().store()
    errors = []
    for text in images:
        try:
            for action, what in store.remove_image(text, force=force):
                click.echo(f"{action}: {_familiar(what) if action == 'Untagged' else what}")
        except PalletError as e:
            errors.append(e)
            click.echo(f"Error: {e.message}", err=True)
    if errors:
        sys.exit(1)


def _blob_bytes(store) -> int:
    total = 0
    for d in store.blobs:
        try:
            total += store.blobs.size(d)
        except PalletError:
            pass
    return total


@click.command("prune")
@click.option("-a", "--all", "all_", is_flag=True, help="Remove all images not used by a container, not only dangling ones.")
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation.")
def prune_cmd(all_: bool, force: bool) -> None:
    """Remove unused images (dangling ones, or all with -a) and blobs no image uses."""
    if not force:
        what = "all images without at least one container associated to them" if all_ else "all dangling images"
        try:
            ok = click.confirm(f"WARNING! This will remove {what}.\nAre you sure you want to continue?",
                               default=False)
        except click.exceptions.Abort:
            ok = False
        if not ok:
            return
    store = state().store()
    before = _blob_bytes(store)
    lines = []
    for rec in store.images():
        if (rec.tags and not all_) or store.image_in_use(rec.id):
            continue
        try:
            for action, what in store.remove_image(rec.id, force=True):
                lines.append(f"{action.lower()}: {_familiar(what) if action == 'Untagged' else what}")
        except PalletError as e:
            click.echo(f"Error: {e.message}", err=True)
    store.gc()
    freed = max(0, before - _blob_bytes(store))
    print_pruned("Images", lines, freed)


# ---- history ----------------------------------------------------------------------------------


@click.command("history")
@click.argument("image")
@click.option("-H", "--human", type=bool, default=True, show_default=True,
              help="Sizes and dates in human readable form.")
@click.option("--no-trunc", is_flag=True, help="Don't truncate output.")
@click.option("-q", "--quiet", is_flag=True, help="Only show image IDs.")
@click.option("--format", "fmt", default="table", help="table, json, or a Go template.")
def history_cmd(image: str, human: bool, no_trunc: bool, quiet: bool, fmt: str) -> None:
    """Show the history of an image (newest first)."""
    store = state().store()
    rec = store.resolve_image(image)
    config, manifest = store.config(rec), store.manifest(rec)
    sizes = []
    for desc in manifest.layers:
        info = store.layer_info(desc.digest)
        sizes.append(info[1] if info else desc.size)
    history = [dict(h) for h in config.history] or [{"created": config.created} for _ in manifest.layers]
    entries = []
    li = 0
    for h in history:
        size = 0
        if not h.get("empty_layer"):
            size = sizes[li] if li < len(sizes) else 0
            li += 1
        entries.append({"created": h.get("created"), "createdBy": h.get("created_by", "") or "",
                        "size": size, "comment": h.get("comment", "") or ""})
    entries.reverse()
    for i, e in enumerate(entries):
        e["id"] = (rec.id if no_trunc else rec.short_id) if i == 0 else "<missing>"
        e["tags"] = [_familiar(t) for t in rec.tags] if i == 0 else []
    if quiet:
        for e in entries:
            click.echo(e["id"])
        return
    if fmt == "json":
        print_json([{"id": rec.id if i == 0 else "<missing>", "created": e["created"], "createdBy": e["createdBy"],
                     "size": e["size"], "comment": e["comment"], "tags": e["tags"]} for i, e in enumerate(entries)])
        return
    now = time.time()
    rows = []
    for e in entries:
        ts = _timestamp(e["created"])
        created = (human_ago(ts, now) if ts is not None else "N/A") if human else (e["created"] or "N/A")
        by = " ".join(e["createdBy"].split()) if not no_trunc else e["createdBy"]
        if not no_trunc and len(by) > 45:
            by = by[:44] + "…"
        size = human_size(e["size"]) if human else str(e["size"])
        rows.append({"ID": e["id"], "CreatedSince": created, "CreatedBy": by, "Size": size,
                     "Comment": e["comment"]})
    if fmt != "table":
        from pallet.cli.common import print_formatted

        print_formatted(fmt, rows, render_template, id_header="IMAGE")
        return
    print_table(["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"],
                [[r["ID"], r["CreatedSince"], r["CreatedBy"], r["Size"], r["Comment"]] for r in rows])


# ---- import / save / load ---------------------------------------------------------------------


def _stdin_binary(what: str):
    if sys.stdin is None or sys.stdin.isatty():
        raise PalletError(f"requested {what} from stdin, but stdin is a terminal (use a file or a pipe)")
    return sys.stdin.buffer


@click.command("import")
@click.argument("source")
@click.argument("reference", required=False)
@click.option("-c", "--change", "changes", multiple=True,
              help="Apply a Dockerfile instruction (CMD, ENTRYPOINT, ENV, WORKDIR, USER, EXPOSE, LABEL, VOLUME, STOPSIGNAL).")
@click.option("-m", "--message", default=None, help="Commit message for the imported image.")
@click.option("-q", "--quiet", is_flag=True, help="Accepted for podman compatibility.")
def import_cmd(source: str, reference: str | None, changes: tuple[str, ...], message: str | None,
               quiet: bool) -> None:
    """Import a root filesystem tarball (file or - for stdin; plain, gzip, zstd, bzip2, xz) as an image."""
    from pallet.store.changes import apply_changes
    from pallet.store.rootfs import import_rootfs

    name = tag_name(reference) if reference else None
    apply_changes({}, list(changes))
    if re.match(r"^[a-z]+://", source):
        raise PalletError(f"importing from a URL is not supported ({source}): download it and import the file")
    store = state().store()
    if source == "-":
        rec = import_rootfs(store, _stdin_binary("import"), name=name, changes=list(changes),
                            message=message, source="-")
    else:
        try:
            f = open(source, "rb")
        except OSError as e:
            raise PalletError(f"cannot read {source}: {e.strerror}") from None
        with f:
            rec = import_rootfs(store, f, name=name, changes=list(changes), message=message, source=source)
    _image_event(store, "import", [rec])
    click.echo(rec.id)


def _image_event(store, action: str, recs) -> None:
    """docker's image events of import, load and save: the image's ID as actor and name."""
    from pallet.store import events

    for rec in recs:
        events.record(store.root, "image", action, rec.id, {"name": rec.id})


@click.command("save")
@click.argument("images", nargs=-1, required=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="Write to a file instead of stdout.")
@click.option("--format", "fmt", type=click.Choice(["docker-archive", "oci-archive"]), default="docker-archive",
              show_default=True, help="Archive format.")
def save_cmd(images: tuple[str, ...], output: str | None, fmt: str) -> None:
    """Save one or more images to a tar archive (stdout when not a terminal)."""
    from pallet.fsutil import AtomicFile
    from pallet.store.archive import save_archive

    store = state().store()
    items = _records_for(store, images)
    if output is None or output == "-":
        if sys.stdout.isatty():
            raise PalletError("cowardly refusing to save to a terminal. Use the -o flag or redirect")
        sys.stdout.flush()
        save_archive(store, items, sys.stdout.buffer, fmt)
        sys.stdout.buffer.flush()
        _image_event(store, "save", [rec for rec, _ in items])
        return
    from pallet.cli.common import check_output_path

    check_output_path(output, "save image")
    target = os.path.abspath(output)
    try:
        with AtomicFile(target, fsync=False) as f:
            save_archive(store, items, f.file, fmt)
            f.commit()
    except OSError as e:
        raise PalletError(f"cannot write {output}: {e.strerror or e}") from None
    _image_event(store, "save", [rec for rec, _ in items])


def _print_loaded(loaded, quiet: bool) -> None:
    if quiet:
        return
    for lo in loaded:
        if lo.names:
            for n in lo.names:
                click.echo(f"Loaded image: {_familiar(n)}")
        else:
            click.echo(f"Loaded image ID: {lo.record.id}")


@click.command("load")
@click.option("-i", "--input", "input_", type=click.Path(dir_okay=False), default=None,
              help="Read from a tar archive file instead of stdin.")
@click.option("-q", "--quiet", is_flag=True, help="Suppress the load output.")
def load_cmd(input_: str | None, quiet: bool) -> None:
    """Load images from a docker-archive or oci-archive (optionally gzip/zstd/bzip2/xz compressed)."""
    from pallet.store.archive import load_archive

    store = state().store()
    if input_ is None or input_ == "-":
        loaded = load_archive(store, _stdin_binary("load"), what="the archive on stdin")
    else:
        try:
            f = open(input_, "rb")
        except OSError as e:
            raise PalletError(f"cannot read {input_}: {e.strerror}") from None
        with f:
            loaded = load_archive(store, f, what=input_)
    _image_event(store, "load", [lo.record for lo in loaded])
    _print_loaded(loaded, quiet)


@click.command("export-layout")
@click.argument("directory", type=click.Path(file_okay=False))
@click.argument("images", nargs=-1, required=True)
def export_layout_cmd(directory: str, images: tuple[str, ...]) -> None:
    """Write images into an OCI image layout directory (created, or added to)."""
    from pallet.store.layout import save_layout

    store = state().store()
    try:
        save_layout(store, directory, _records_for(store, images))
    except OSError as e:
        raise PalletError(f"cannot write the layout {directory}: {e.strerror or e}") from None


@click.command("import-layout")
@click.argument("directory", type=click.Path(file_okay=False))
@click.argument("reference", required=False)
@click.option("-q", "--quiet", is_flag=True, help="Suppress the output.")
def import_layout_cmd(directory: str, reference: str | None, quiet: bool) -> None:
    """Load the images of an OCI image layout directory (all, or the one named REFERENCE)."""
    from pallet.store.layout import load_layout

    _print_loaded(load_layout(state().store(), directory, reference), quiet)
