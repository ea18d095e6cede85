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


def _check_platform(value: str | None) -> None:
    """One platform, this host's (bad input: one line, exit 125, before anything is built)."""
    from pallet.build.executor import builtin_args
    from pallet.errors import PalletError

    if not value:
        return
    if "," in value:
        raise PalletError(f"building for several platforms ({value}) is not supported: give one --platform")
    here = builtin_args()["TARGETPLATFORM"]
    if value.lower().rstrip("/") not in (here, here.split("/", 1)[1]):
        raise PalletError(f"pallet build runs on this host's platform only: --platform {value} is not {here}")


def _hosts(values) -> list[str]:
    import ipaddress

    from pallet.build.executor import BuildError

    out = []
    for v in values:
        name, sep, ip = v.partition(":") if "=" not in v else v.partition("=")
        try:
            if not name or not sep:
                raise ValueError
            ipaddress.ip_address(ip)
        except ValueError:
            raise BuildError(f"invalid --add-host {v!r}: host:ip") from None
        out.append(f"{name}:{ip}")
    return out


def _contexts(values) -> dict[str, str]:
    from pallet.build.executor import BuildError

    out = {}
    for v in values:
        name, sep, where = v.partition("=")
        if not name or not sep or not where:
            raise BuildError(f"invalid --build-context {v!r}: NAME=DIR or NAME=docker-image://REF")
        if not where.startswith("docker-image://"):
            if "://" in where:
                raise BuildError(f"--build-context {name}: only directories and docker-image:// are supported")
            if not os.path.isdir(where):
                raise BuildError(f"--build-context {name}: {where} is not a directory")
            where = os.path.abspath(where)
        out[name.lower()] = where
    return out


def _output(value: str | None) -> tuple[str, str] | None:
    from pallet.errors import PalletError

    if not value:
        return None
    if "=" not in value:
        return ("tar", "-") if value == "-" else ("local", value)
    fields = dict(f.partition("=")[::2] for f in value.split(","))
    kind = fields.get("type", "local")
    if kind == "image":
        return None
    if kind not in ("local", "tar", "oci", "docker"):
        raise PalletError(f"output type {kind!r} is not supported (image, local, tar, oci, docker)")
    dest = fields.get("dest")
    if not dest:
        raise PalletError(f"-o type={kind} needs dest=")
    if kind in ("oci", "docker", "tar") and dest != "-":
        parent = os.path.dirname(os.path.abspath(dest))
        if os.path.isdir(dest) or not os.path.isdir(parent):
            raise PalletError(f"-o type={kind}: dest {dest} must be a file in an existing directory")
    return kind, dest


def _caches(cache_from, cache_to) -> dict:
    """--cache-from/--cache-to (type=local|registry) as the build options' fields."""
    out: dict = {"cache_from": [], "cache_from_registry": [], "cache_to": None, "cache_to_registry": None,
                 "cache_mode": "min"}
    if not cache_from and not cache_to:
        return out
    from pallet.build.regcache import parse_cache_option

    for value in cache_from:
        f = parse_cache_option(value, "src")
        if f["type"] == "local":
            out["cache_from"].append(os.path.abspath(f["src"]))
        else:
            out["cache_from_registry"].append(f["ref"])
    if cache_to:
        if "=" not in cache_to:
            cache_to = f"type=registry,ref={cache_to}"
        f = parse_cache_option(cache_to, "dest")
        out["cache_mode"] = f.get("mode", "min")
        if f["type"] == "local":
            out["cache_to"] = os.path.abspath(f["dest"])
        else:
            out["cache_to_registry"] = f["ref"]
    return out


def _client_options(st):
    from pallet.registry.client.settings import load_settings
    from pallet.registry.client.transport import Options

    settings = load_settings(st.config_file)
    return Options(tls_verify=None, creds=None, authfile=None, cert_dir=None, settings=settings,
                   max_parallel=settings.max_parallel, retries=settings.retries, backoff=settings.retry_delay,
                   chunk_size=settings.upload_chunk_size)


def _registry_client(st):
    """() -> a registry Client with the settings (pallet.toml, auth files): the registry caches."""
    def make():
        from pallet.registry.client.pull import Client

        return Client(_client_options(st), unpack=False)
    return make


def _puller(st):
    """pull(store, ref) -> image id, with the registry client's settings (pallet.toml, auth files)."""
    def pull(store, ref: str) -> str:
        from pallet.registry.client.pull import Client, Progress

        with Client(_client_options(st)) as client:
            client.fork_unpack = False   # the build runs threads: no forked unpackers
            return client.pull(store, ref, progress=Progress()).image_id
    return pull


def _epoch(timestamp: int | None = None) -> int | None:
    from pallet.build.executor import BuildError

    if timestamp is not None:
        return timestamp
    v = os.environ.get("SOURCE_DATE_EPOCH")
    if not v:
        return None
    try:
        return int(v)
    except ValueError:
        raise BuildError(f"invalid SOURCE_DATE_EPOCH: {v!r}") from None


class _BuildCommand(click.Command):
    """`--pull` alone is docker's boolean flag (always); `--pull=VALUE` is podman's policy."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        args = ["--pull=always" if a == "--pull" else a for a in args]
        return super().parse_args(ctx, args)


@click.command("build", cls=_BuildCommand, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-t", "--tag", "tags", multiple=True, help="Name and optionally a tag (name:tag).")
@click.option("-f", "--file", "file", default=None, help="Name of the Dockerfile (- for stdin).")
@click.option("--build-arg", "build_args", multiple=True, help="Set a build-time variable (K=V or K).")
@click.option("--target", default=None, help="Build this stage.")
@click.option("--no-cache", is_flag=True, help="Do not use the step cache.")
@click.option("--label", "labels", multiple=True, help="Set a label on the image (K=V).")
@click.option("--network", default="default", type=click.Choice(["none", "host", "default"]),
              help="Network mode for RUN: default (the default bridge network, as `pallet run` and docker), "
                   "none (loopback only) or host.")
@click.option("--secret", "secrets", multiple=True,
              help="A secret for RUN --mount=type=secret: id=ID,src=PATH or id=ID,env=VAR.")
@click.option("--add-host", "add_hosts", multiple=True, help="A custom host-to-IP mapping for RUN (host:ip).")
@click.option("--build-context", "build_contexts", multiple=True,
              help="An additional named context (NAME=DIR or NAME=docker-image://REF).")
@click.option("--platform", default=None, help="The platform to build for (this host's only).")
@click.option("-o", "--output", default=None,
              help="type=image (the default) | type=local,dest=DIR | type=tar,dest=FILE|- (the filesystem "
                   "instead of an image) | type=oci|docker,dest=FILE|- (the image as an oci-/docker-archive); "
                   "a bare DIR or - as well.")
@click.option("--cache-from", "cache_from", multiple=True,
              help="Steps from an exported cache: type=local,src=DIR or type=registry,ref=REF (or REF).")
@click.option("--cache-to", "cache_to", default=None,
              help="Export this build's steps: type=local,dest=DIR or type=registry,ref=REF; mode=min (the "
                   "final stage, default) or mode=max (every stage).")
@click.option("--format", "format_", default="oci", type=click.Choice(["oci", "docker"]),
              help="Manifest and config media types (the config keeps docker's fields either way).")
@click.option("--squash", is_flag=True, help="Merge the layers this build adds into one.")
@click.option("--pull", "pull", default="missing", type=click.Choice(["always", "missing", "never", "true", "false"]),
              help="Pull base images: missing (default), always (--pull alone), never.")
@click.option("--timestamp", type=int, default=None,
              help="Seconds since the epoch for the image's times and the new files' mtimes (SOURCE_DATE_EPOCH).")
@click.option("--iidfile", default=None, type=click.Path(dir_okay=False), help="Write the image ID to the file.")
@click.option("-q", "--quiet", is_flag=True, help="Print only the image ID.")
@click.option("--progress", default="auto", type=click.Choice(["auto", "plain", "tty", "rawjson"]),
              help="Progress output: a live view on a terminal (tty), lines otherwise (plain), "
                   "BuildKit's SolveStatus JSON lines (rawjson).")
@click.argument("context")
def build_cmd(tags, file, build_args, target, no_cache, labels, network, secrets, add_hosts, build_contexts,
              platform, output, cache_from, cache_to, format_, squash, pull, timestamp, iidfile, quiet,
              progress, context) -> None:
    """Build an image from a Dockerfile."""
    from pallet import reference
    from pallet.build.executor import BuildError
    from pallet.errors import PalletError

    st = state()
    _check_platform(platform)
    extra = {"extra_hosts": _hosts(add_hosts), "build_contexts": _contexts(build_contexts),
             "output": _output(output), **_caches(cache_from, cache_to), "format": format_,
             "squash": squash, "pull": {"true": "always", "false": "missing"}.get(pull, pull),
             "timestamp": timestamp}
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
               secrets, iidfile, quiet, extra, progress)
    finally:
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)


def _build(st, store, context, file, stdin_dockerfile, names, build_args, target, no_cache, labels, network,
           secrets, iidfile, quiet, extra, progress="plain") -> None:
    from pallet.build.executor import BuildError

    if not os.path.isdir(context):
        raise BuildError(f"unable to prepare context: path {context!r} not found")
    secret_tmp: list[str] = []
    try:
        _build2(st, store, context, file, stdin_dockerfile, names, build_args, target, no_cache, labels, network,
                secrets, iidfile, quiet, extra, progress, secret_tmp)
    finally:
        for p in secret_tmp:
            try:
                os.unlink(p)
            except OSError:
                pass


def _build2(st, store, context, file, stdin_dockerfile, names, build_args, target, no_cache, labels, network,
            secrets, iidfile, quiet, extra, progress, secret_tmp) -> None:
    from pallet.build.executor import Builder, BuildError, BuildOptions
    from pallet.build.progress import Progress
    from pallet.errors import PalletError

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
        var = fields.get("env")
        if not sid or not (src or var):
            raise BuildError(f"invalid secret {spec!r}: id=ID,src=PATH or id=ID,env=VAR")
        if src is None:
            if var not in os.environ:
                raise BuildError(f"secret {sid}: the environment variable {var} is not set")
            import tempfile

            fd, src = tempfile.mkstemp(prefix="build-secret-env-", dir=str(store.tmp))
            with os.fdopen(fd, "w") as f:
                f.write(os.environ[var])
            os.chmod(src, 0o400)
            secret_tmp.append(src)
        if not os.path.isfile(src):
            raise BuildError(f"failed to stat {src}: no such file or directory")
        secret_files[sid] = src
    opts = BuildOptions(context=context, dockerfile=text, dockerfile_name=df_name, dockerfile_path=df_path,
                        tags=names, build_args=_kv(build_args, env_fallback=True), target=target,
                        no_cache=no_cache, labels=_kv(labels, env_fallback=False),
                        network=network, secrets=secret_files,
                        source_date_epoch=_epoch(extra.pop("timestamp")), **extra)
    if progress == "rawjson" and not quiet:
        from pallet.build.progress import RawJsonProgress

        prog = RawJsonProgress(sys.stderr)
    elif quiet or progress == "plain" or (progress == "auto" and not sys.stderr.isatty()):
        prog = Progress(sys.stderr, quiet=quiet)
    else:
        from pallet.build.progress import TtyProgress

        prog = TtyProgress(sys.stderr)
    builder = Builder(store, run_dir=str(st.runroot_path), storage_driver=st.storage_driver, progress=prog,
                      puller=_puller(st), registry_client=_registry_client(st))
    try:
        image_id = builder.build(opts)
    except KeyboardInterrupt:
        raise
    except PalletError as e:
        raise BuildError(e.message) from None
    finally:
        prog.close()
    if not image_id:   # -o local/tar: no image
        return
    if iidfile:
        with open(iidfile, "w") as f:
            f.write(image_id)
    click.echo(image_id if quiet else f"Successfully built {image_id}")


@click.group("builder")
def builder_group() -> None:
    """Manage the build cache."""


@builder_group.command("prune")
@click.option("-a", "--all", "all_", is_flag=True, help="Remove the cache mounts (RUN --mount=type=cache) too.")
@click.option("-f", "--force", is_flag=True, help="Do not prompt.")
@click.option("--keep-storage", default=None,
              help="Keep the most recently used steps, up to this much disk space (e.g. 512m, 2g).")
@click.option("--filter", "filters", multiple=True,
              help="until=DURATION (or unused-for=): only steps not used for that long (e.g. 24h, 90m).")
def prune_cmd(all_, force, keep_storage, filters) -> None:
    """Remove the build cache (step entries, the layers only they hold; with -a the cache mounts too)."""
    import shutil

    from pallet.build.cache import Usage, prune
    from pallet.build.workspace import remove_stale
    from pallet.engine.units import human_size, parse_bytes, parse_duration
    from pallet.errors import PalletError

    keep = parse_bytes(keep_storage, "--keep-storage") if keep_storage is not None else None
    unused_for = None
    for f in filters:
        k, eq, v = f.partition("=")
        if not eq or k not in ("until", "unused-for"):
            raise PalletError(f"invalid filter {f!r}: until=DURATION or unused-for=DURATION")
        unused_for = parse_duration(v, "until duration") / 1e9
    st = state()
    store = st.store()
    from pallet.build.run import release_stale_leases, remove_stale_runs

    runs = remove_stale_runs(os.path.join(str(st.runroot_path), "build"))
    if runs:
        click.echo(f"Deleted {runs} RUN containers of builds that were killed")
    stale = remove_stale(store, st.storage_driver)
    if stale:
        click.echo(f"Removed {stale} workspaces of builds that were killed")
    leases = release_stale_leases(store, os.path.join(str(st.runroot_path), "build"))
    if leases:
        click.echo(f"Gave back {leases} network leases of builds that were killed")
    n, freed = prune(store, keep_storage=keep, unused_for=unused_for)
    mounts = Usage(store).dir / "mounts"
    if all_ and mounts.is_dir():
        freed += Usage(store).mounts()[1]
        shutil.rmtree(mounts)
    click.echo(f"Deleted {n} build cache entries")
    click.echo(f"Total reclaimed space: {human_size(freed)}")


@builder_group.command("du")
@click.option("--format", "fmt", default=None, help="json: the numbers as one JSON object.")
def du_cmd(fmt) -> None:
    """Show the disk usage of the build cache."""
    import json

    from pallet.build.cache import Usage
    from pallet.cli.common import human_size, print_table

    u = Usage(state().store())
    meta = sum(p.stat().st_size for p in u.entries if p.exists())
    blobs = u.cache_blobs(u.entries.values())
    blob_bytes = u.blob_bytes(blobs)
    n_unpacked, unpacked_bytes = u.unpacked(u.cache_chains(u.entries.values()))
    n_mounts, mount_bytes = u.mounts()
    rows = [("steps", len(u.entries), meta), ("layer blobs (cache only)", len(blobs), blob_bytes),
            ("unpacked layers (cache only)", n_unpacked, unpacked_bytes), ("cache mounts", n_mounts, mount_bytes)]
    total = meta + blob_bytes + unpacked_bytes + mount_bytes
    if fmt == "json":
        click.echo(json.dumps({"rows": [{"type": t, "count": c, "size": b} for t, c, b in rows], "total": total}))
        return
    if fmt is not None:
        from pallet.errors import PalletError

        raise PalletError(f"invalid --format {fmt!r}: json")
    print_table(["TYPE", "COUNT", "SIZE"], [[t, c, human_size(b)] for t, c, b in rows])
    click.echo(f"Total: {human_size(total)}")
