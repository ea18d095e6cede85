"""`pallet cp`, `diff`, `commit`, `export`: files in and out of containers."""

from __future__ import annotations

import os
import sys

import click

from pallet.cli.container import _engine
from pallet.errors import PalletError


def _split(arg: str):
    """CONTAINER:PATH -> (container, path); a host path (absolute, ./x, or without a colon) -> (None, arg)."""
    if arg == "-" or arg.startswith("/") or arg.startswith("."):
        return None, arg
    ref, sep, path = arg.partition(":")
    if not sep:
        return None, arg
    return ref, path


@click.command("cp")
@click.option("-a", "--archive", is_flag=True, help="Keep uid/gid (always done).")
@click.option("-L", "--follow-link", is_flag=True, help="Follow a symlink at SRC_PATH (inside the container).")
@click.option("-q", "--quiet", is_flag=True)
@click.argument("src")
@click.argument("dest")
def cp_cmd(src: str, dest: str, archive: bool, follow_link: bool, quiet: bool) -> None:
    """Copy files between a container and the host: CONTAINER:SRC DEST|-  or  SRC|- CONTAINER:DEST.

    Paths in the container are resolved inside it (its symlinks never lead to the host's files).
    `-` is a tar stream on stdout/stdin. Owners, modes and symlinks are kept.
    """
    from pallet.engine import files

    sref, spath = _split(src)
    dref, dpath = _split(dest)
    if sref and dref:
        raise PalletError("copying between containers is not supported")
    if not sref and not dref:
        raise PalletError("must specify at least one container source")
    eng = _engine()
    if sref:
        c = eng.get(sref)
        if dpath == "-":
            if sys.stdout.isatty():
                raise PalletError("cowardly refusing to write a tar stream to a terminal")
            sys.stdout.flush()
            files.stream_out(eng, c, spath, sys.stdout.fileno(), follow=follow_link)
            return
        files.cp_out(eng, c, spath, dpath, follow=follow_link)
        if not quiet and sys.stderr.isatty():
            click.echo(f"Successfully copied to {dpath}", err=True)
        return
    c = eng.get(dref)
    files.cp_in(eng, c, spath, dpath, stdin_tar=spath == "-")


@click.command("diff")
@click.argument("container")
def diff_cmd(container: str) -> None:
    """Files added (A), changed (C) and deleted (D) in a container's filesystem."""
    from pallet.engine.files import changes

    eng = _engine()
    for kind, path in changes(eng, eng.get(container)):
        click.echo(f"{kind} {path}")


@click.command("commit")
@click.option("-a", "--author", help="Author (e.g. \"Jane <jane@example.com>\").")
@click.option("-c", "--change", "changes", multiple=True, help="Dockerfile instruction to apply (CMD, ENV, ...).")
@click.option("-m", "--message", help="Commit message.")
@click.option("-p", "--pause", type=click.BOOL, default=True, show_default=True,
              help="Pause the container while committing.")
@click.option("-q", "--quiet", is_flag=True)
@click.argument("container")
@click.argument("repository", required=False)
def commit_cmd(container: str, repository: str | None, author: str | None, changes: tuple[str, ...],
               message: str | None, pause: bool, quiet: bool) -> None:
    """Create a new image from a container's changes (a new layer on its image)."""
    from pallet.cli.images import tag_name
    from pallet.engine.files import commit

    name = tag_name(repository) if repository else None
    eng = _engine()
    rec = commit(eng, eng.get(container), name=name, changes=list(changes), message=message, author=author,
                 pause=pause)
    click.echo(rec.id)


@click.command("export")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to a file instead of stdout.")
@click.argument("container")
def export_cmd(container: str, output: str | None) -> None:
    """The container's filesystem as a tar archive."""
    from pallet.engine.files import export

    eng = _engine()
    c = eng.get(container)
    if output in (None, "-"):
        if sys.stdout.isatty():
            raise PalletError("cowardly refusing to save to a terminal. Use the -o flag or redirect")
        sys.stdout.flush()
        export(eng, c, sys.stdout.fileno())
        return
    from pallet.cli.common import check_output_path
    from pallet.fsutil import AtomicFile

    check_output_path(output, "export container")
    try:
        with AtomicFile(os.path.abspath(output), fsync=False) as f:
            f.file.flush()
            export(eng, c, f.file.fileno())
            f.commit()
    except OSError as e:
        raise PalletError(f"cannot write {output}: {e.strerror or e}") from None
