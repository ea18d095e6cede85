"""`pallet build` (docker build / podman build) and `pallet builder prune`."""

from __future__ import annotations

import os
import sys

import click

from pallet.cli.common import state


def _kv(values: tuple[str, ...], *, env_fallback: bool) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in values:
        k, eq, v = item.partition("=")
        if not k:
            raise click.BadParameter(f"invalid key/value: {item!r}")
        if eq:
            out[k] = v
        elif env_fallback:
            if k in os.environ:   # docker: --build-arg K takes K from the environment, if it is set
                out[k] = os.environ[k]
        else:
            out[k] = ""
    return out


def _epoch() -> int | None:
    from pallet.build.executor import BuildError

    v = os.environ.get("SOURCE_DATE_EPOCH")
    if not v:
        return None
    try:
        return int(v)
    except ValueError:
        raise BuildError(f"invalid SOURCE_DATE_EPOCH: {v!r}") from None


@click.command("build", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-t", "--tag", "tags", multiple=True, help="Name and optionally a tag (name:tag).")
@click.option("-f", "--file", "file", default=None, help="Name of the Dockerfile (- for stdin).")
@click.option("--build-arg", "build_args", multiple=True, help="Set a build-time variable (K=V or K).")
@click.option("--target", default=None, help="Build this stage.")
@click.option("--no-cache", is_flag=True, help="Do not use the step cache.")
@click.option("--label", "labels", multiple=True, help="Set a label on the image (K=V).")
@click.option("--network", default="host", type=click.Choice(["none", "host", "default"]),
              help="Network mode for RUN (default: host until pallet has networks).")
@click.option("--secret", "secrets", multiple=True, help="A secret for RUN --mount=type=secret: id=ID,src=PATH.")
@click.option("--iidfile", default=None, type=click.Path(dir_okay=False), help="Write the image ID to the file.")
@click.option("-q", "--quiet", is_flag=True, help="Print only the image ID.")
@click.option("--progress", default="auto", type=click.Choice(["auto", "plain", "tty"]), help="Progress output.")
@click.argument("context")
def build_cmd(tags, file, build_args, target, no_cache, labels, network, secrets, iidfile, quiet, progress,
              context) -> None:
    """Build an image from a Dockerfile."""
    from pallet import reference
    from pallet.build.executor import BuildError
    from pallet.errors import PalletError

    st = state()
    names = []
    for t in tags:
        try:
            names.append(str(reference.normalize(t)))
        except PalletError as e:
            raise PalletError(f"invalid tag {t!r}: {e.message}") from None
    import shutil
    import tempfile

    store = st.store()
    scratch = None
    stdin_dockerfile = None
    if context == "-":
        # a tar on stdin is the context (its Dockerfile inside); anything else is the Dockerfile itself
        from pallet.build.copy import archive_kind, unpack_archive

        if file == "-":
            raise BuildError("the context and the Dockerfile cannot both come from stdin")
        with tempfile.NamedTemporaryFile(dir=str(store.tmp), prefix="build-stdin-") as tmp:
            shutil.copyfileobj(sys.stdin.buffer, tmp)
            tmp.flush()
            kind = archive_kind(tmp.name)
            if kind is None:
                tmp.seek(0)
                stdin_dockerfile = tmp.read()
                scratch = tempfile.mkdtemp(dir=str(store.tmp), prefix="build-ctx-")
            else:
                try:
                    scratch = unpack_archive(tmp.name, kind, str(store.tmp))
                except PalletError as e:
                    raise BuildError(f"the context tar on stdin: {e.message}") from None
        context = scratch
    try:
        _build(st, store, context, file, stdin_dockerfile, names, build_args, target, no_cache, labels, network,
               secrets, iidfile, quiet)
    finally:
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)


def _build(st, store, context, file, stdin_dockerfile, names, build_args, target, no_cache, labels, network,
           secrets, iidfile, quiet) -> None:
    from pallet.build.executor import Builder, BuildError, BuildOptions
    from pallet.build.progress import Progress
    from pallet.errors import PalletError

    if not os.path.isdir(context):
        raise BuildError(f"unable to prepare context: path {context!r} not found")
    if stdin_dockerfile is not None:
        text = stdin_dockerfile
        df_name, df_path = "Dockerfile", None
    elif file == "-":
        text = sys.stdin.buffer.read()
        df_name, df_path = "Dockerfile", None
    else:
        if file is None:
            cands = [os.path.join(context, n) for n in ("Dockerfile", "Containerfile")]
            path = next((c for c in cands if os.path.isfile(c)), cands[0])
        else:
            path = file if os.path.isabs(file) or os.path.exists(file) else os.path.join(context, file)
        try:
            with open(path, "rb") as f:
                text = f.read()
        except OSError:
            raise BuildError(f"failed to read dockerfile: open {path}: no such file or directory") from None
        df_name, df_path = os.path.basename(path), path
    secret_files = {}
    for spec in secrets:
        fields = dict(f.partition("=")[::2] for f in spec.split(","))
        sid = fields.get("id")
        src = fields.get("src") or fields.get("source")
        if not sid or not src:
            raise BuildError(f"invalid secret {spec!r}: id=ID,src=PATH (env= is not supported yet)")
        if not os.path.isfile(src):
            raise BuildError(f"failed to stat {src}: no such file or directory")
        secret_files[sid] = src
    opts = BuildOptions(context=context, dockerfile=text, dockerfile_name=df_name, dockerfile_path=df_path,
                        tags=names, build_args=_kv(build_args, env_fallback=True), target=target,
                        no_cache=no_cache, labels=_kv(labels, env_fallback=False),
                        network="host" if network == "default" else network, secrets=secret_files,
                        source_date_epoch=_epoch())
    builder = Builder(store, run_dir=str(st.runroot_path), storage_driver=st.storage_driver,
                      progress=Progress(sys.stderr, quiet=quiet))
    try:
        image_id = builder.build(opts)
    except KeyboardInterrupt:
        raise
    except PalletError as e:
        raise BuildError(e.message) from None
    if iidfile:
        with open(iidfile, "w") as f:
            f.write(image_id)
    click.echo(image_id if quiet else f"Successfully built {image_id}")


@click.group("builder")
def builder_group() -> None:
    """Manage the build cache."""


@builder_group.command("prune")
@click.option("-a", "--all", "all_", is_flag=True, help="Remove all cache (the same here).")
@click.option("-f", "--force", is_flag=True, help="Do not prompt.")
def prune_cmd(all_, force) -> None:
    """Remove the build cache."""
    from pallet.build.cache import StepCache

    store = state().store()
    n = StepCache(store.root, store.blobs).prune()
    click.echo(f"Deleted {n} build cache entries")
