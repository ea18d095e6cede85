"""`pallet pull|push|login|logout|manifest inspect|image ls-remote`: the registry client's commands."""

from __future__ import annotations

import json
import sys
import time

import click

from pallet.cli.common import human_size, print_json, state
from pallet.errors import PalletError


def _common(f):
    """Flags every command that talks to a registry shares (podman's names)."""
    f = click.option("--tls-verify", "tls_verify", type=click.BOOL, is_flag=False, flag_value=True, default=None,
                     metavar="BOOL", help="Require HTTPS and verify certificates (default: true, "
                     "except insecure and localhost registries).")(f)
    f = click.option("--creds", metavar="USER[:PASS]", help="Credentials for the registry.")(f)
    f = click.option("--authfile", type=click.Path(dir_okay=False), envvar="REGISTRY_AUTH_FILE",
                     help="Auth file (default ${XDG_RUNTIME_DIR}/containers/auth.json).")(f)
    f = click.option("--cert-dir", type=click.Path(file_okay=False),
                     help="Directory with CA certificates (*.crt) and client certificates (*.cert, *.key).")(f)
    return f


def _options(tls_verify, creds, authfile, cert_dir, max_parallel: int | None = None):
    from pallet.registry.client.auth import Credentials
    from pallet.registry.client.settings import load_settings
    from pallet.registry.client.transport import Options

    settings = load_settings(state().config_file)
    return Options(tls_verify=tls_verify, creds=Credentials.parse(creds) if creds else None, authfile=authfile,
                   cert_dir=cert_dir, settings=settings, max_parallel=max_parallel or settings.max_parallel,
                   retries=settings.retries, backoff=settings.retry_delay, chunk_size=settings.upload_chunk_size)


class _PlainProgress:
    """One line per blob when it finishes (not a terminal)."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.totals: dict[str, tuple[str, int, float]] = {}

    def message(self, text: str) -> None:
        if not self.quiet:
            click.echo(text, err=True)

    def start(self, key: str, label: str, total: int) -> None:
        self.totals[key] = (label, total, time.monotonic())

    def advance(self, key: str, n: int) -> None:
        pass

    def reset(self, key: str, done: int) -> None:
        pass

    def finish(self, key: str, status: str) -> None:
        if self.quiet:
            return
        label, total, _ = self.totals.get(key, (key, 0, 0.0))
        click.echo(f"Copying blob {label} {human_size(total)}: {status}", err=True)


class _RichProgress:
    """rich progress bars: one per blob, with bytes and speed."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self.console = Console(stderr=True)
        self.bars = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                             TransferSpeedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[status]}"),
                             console=self.console, transient=False, auto_refresh=False)
        # no refresh thread: refreshed from the events below (at most 10 times a second), so the
        # pull can still fork its layer unpackers from a single-threaded process
        self._last = 0.0
        self.tasks: dict[str, int] = {}
        self.totals: dict[str, int] = {}

    def __enter__(self):
        self.bars.start()
        return self

    def __exit__(self, *exc) -> None:
        self.bars.stop()

    def message(self, text: str) -> None:
        self.bars.console.print(text, highlight=False)

    def start(self, key: str, label: str, total: int) -> None:
        self.tasks[key] = self.bars.add_task(label, total=total, status="")
        self.totals[key] = total
        self._refresh(force=True)

    def _refresh(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last >= 0.1:
            self._last = now
            self.bars.refresh()

    def advance(self, key: str, n: int) -> None:
        self.bars.advance(self.tasks[key], n)
        self._refresh()

    def reset(self, key: str, done: int) -> None:
        self.bars.update(self.tasks[key], completed=done)
        self._refresh()

    def finish(self, key: str, status: str) -> None:
        t = self.tasks.get(key)
        if t is not None:
            self.bars.update(t, completed=self.totals.get(key, 0), status=status)
            self._refresh(force=True)


class _Null:
    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass


def _progress(quiet: bool):
    if not quiet and sys.stderr.isatty():
        p = _RichProgress()
        return p, p
    return _PlainProgress(quiet), _Null()


def _format_opt(f):
    return click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
                        help="Output format.")(f)


@click.command("pull")
@click.argument("image")
@click.option("--platform", help="Platform os/arch[/variant] to pull from a multi-platform image.")
@click.option("--all-platforms", "-a", is_flag=True, help="Pull every platform of a multi-platform image.")
@click.option("--quiet", "-q", is_flag=True, help="Print only the image ID.")
@click.option("--max-parallel", type=click.IntRange(1, 32), default=None,
              help="Layers downloaded at the same time (default 3).")
@_common
@_format_opt
def pull_cmd(image, platform, all_platforms, quiet, max_parallel, tls_verify, creds, authfile, cert_dir, fmt):
    """Pull an image from a registry into the store."""
    from pallet.oci.documents import Platform
    from pallet.registry.client.platforms import normalize
    from pallet.registry.client.pull import Client

    opts = _options(tls_verify, creds, authfile, cert_dir, max_parallel)
    plat = normalize(Platform.parse(platform)) if platform else None
    store = state().store()
    prog, ctx = _progress(quiet or fmt == "json")
    from pallet.registry.client.shortnames import pull_first

    with ctx, Client(opts) as client:
        res = pull_first(image, lambda ref: client.pull(store, ref, platform=plat, all_platforms=all_platforms,
                                                        progress=prog),
                         tty=sys.stdin.isatty() and sys.stderr.isatty())
    if fmt == "json":
        print_json({"Id": res.image_id, "Digest": res.digest, "ManifestDigest": res.manifest_digest,
                    "Names": res.names, "Platform": res.platform, "Images": res.images,
                    "Source": res.source, "Downloaded": res.downloaded})
    elif quiet:
        click.echo(res.image_id)
    else:
        click.echo(f"Digest: {res.digest}")
        for name in res.names:
            click.echo(f"Status: Image is up to date for {name}" if res.downloaded == 0 else
                       f"Status: Downloaded newer image for {name}")
        click.echo(res.image_id)


def _push_event(store, text: str, res) -> None:
    """docker's push event: the reference pushed (with its tag) as actor, the repository as name."""
    from pallet import reference
    from pallet.store import events

    try:
        ref = reference.normalize(text)
        actor = str(ref) if (ref.tag or ref.digest) else f"{ref}:latest"
    except PalletError:
        actor = res.name
    events.record(store.root, "image", "push", actor, {"name": res.name})


@click.command("push")
@click.argument("source")
@click.argument("destination", required=False)
@click.option("--quiet", "-q", is_flag=True, help="Print only the manifest digest.")
@click.option("--max-parallel", type=click.IntRange(1, 32), default=None,
              help="Blobs uploaded at the same time (default 3).")
@click.option("--digestfile", type=click.Path(dir_okay=False), help="Write the pushed manifest's digest here.")
@_common
@_format_opt
def push_cmd(source, destination, quiet, max_parallel, digestfile, tls_verify, creds, authfile, cert_dir, fmt):
    """Push an image from the store to a registry (DESTINATION defaults to SOURCE's name)."""
    from pallet.registry.client.pull import Client
    from pallet.registry.client.push import push

    opts = _options(tls_verify, creds, authfile, cert_dir, max_parallel)
    store = state().store()
    prog, ctx = _progress(quiet or fmt == "json")
    with ctx, Client(opts) as client:
        res = push(client, store, source, destination, progress=prog)
        _push_event(store, destination or source, res)
    if digestfile:
        with open(digestfile, "w") as f:
            f.write(res.digest)
    if fmt == "json":
        print_json({"Name": res.name, "Digest": res.digest, "Pushed": res.pushed, "Skipped": res.skipped,
                    "Mounted": res.mounted})
    elif quiet:
        click.echo(res.digest)
    else:
        click.echo(f"Pushed {res.name}: digest: {res.digest} ({res.pushed} uploaded, {res.skipped} existed, "
                   f"{res.mounted} mounted)")


def _registry_key(text: str) -> tuple[str, str]:
    """(domain, auth file key) for `login`/`logout`: `host[:port]` or `host/namespace`."""
    import re

    key = re.sub(r"^https?://", "", text.strip()).rstrip("/")
    if not key:
        raise PalletError("give a registry, e.g. pallet login 127.0.0.1:5000")
    if key in ("index.docker.io", "registry-1.docker.io", "index.docker.io/v1"):
        key = "docker.io"
    return key.split("/")[0], key


@click.command("login")
@click.argument("registry")
@click.option("--username", "-u", help="User name.")
@click.option("--password", "-p", help="Password (prefer --password-stdin).")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.option("--get-login", is_flag=True, help="Print the user name logged in to REGISTRY.")
@_common
def login_cmd(registry, username, password, password_stdin, get_login, tls_verify, creds, authfile, cert_dir):
    """Log in to a registry: the credentials are checked against it, then saved to the auth file."""
    from pallet.registry.client import auth
    from pallet.registry.client.transport import Registry

    domain, key = _registry_key(registry)
    if get_login:
        c = auth.lookup(domain, key.partition("/")[2], authfile=authfile)
        if c is None:
            raise PalletError(f"not logged into {key}")
        click.echo(c.username)
        return
    if creds:
        username, _, password = creds.partition(":")
    if password_stdin:
        if password is not None:
            raise click.UsageError("--password and --password-stdin cannot be used together")
        password = sys.stdin.read().rstrip("\r\n")
    if not username:
        if not sys.stdin.isatty():
            raise PalletError("a user name is needed: pass --username")
        username = click.prompt("Username")
    if password is None:
        if not sys.stdin.isatty():
            raise PalletError("a password is needed: pass --password-stdin or --password")
        password = click.prompt("Password", hide_input=True)
    c = auth.Credentials(username, password)
    opts = _options(tls_verify, None, authfile, cert_dir)
    opts.creds = c
    with Registry(domain, opts) as reg:
        verify_login(reg)
    auth.save_login(key, c, authfile=authfile)
    click.echo("Login Succeeded!")


def verify_login(reg) -> None:
    """Check credentials: GET /v2/ with Basic, or a token from the realm (no scope), as podman does."""
    from pallet.errors import RegistryError

    resp = reg.ping()
    if reg._challenge is None:
        if resp is not None and resp.status_code == 200:
            return  # the registry does not ask for credentials: nothing to check
        return
    if reg._challenge.scheme == "bearer":
        reg._fetch_token(reg._challenge, frozenset())  # raises on wrong credentials
        return
    r = reg.request("GET", "/v2/", retry=True)
    r.close()
    if r.status_code != 200:
        raise RegistryError(f"login to {reg.domain} failed: the registry answered {r.status_code} "
                            f"(wrong user name or password?)")


@click.command("logout")
@click.argument("registry", required=False)
@click.option("--all", "-a", "all_", is_flag=True, help="Remove the credentials of every registry.")
@click.option("--authfile", type=click.Path(dir_okay=False), envvar="REGISTRY_AUTH_FILE",
              help="Auth file (default ${XDG_RUNTIME_DIR}/containers/auth.json).")
def logout_cmd(registry, all_, authfile):
    """Remove saved credentials for a registry (or all of them)."""
    from pallet.registry.client import auth

    if all_:
        auth.remove_login(None, authfile=authfile)
        click.echo("Removed login credentials for all registries")
        return
    if not registry:
        raise click.UsageError("give a registry, or --all")
    _, key = _registry_key(registry)
    if not auth.remove_login(key, authfile=authfile):
        raise PalletError(f"not logged into {key}")
    click.echo(f"Removed login credentials for {key}")


@click.group("manifest")
def manifest_group() -> None:
    """Look at manifests in registries."""


@manifest_group.command("inspect")
@click.argument("image")
@click.option("--raw", is_flag=True, help="Print the manifest's exact bytes.")
@_common
@_format_opt
def manifest_inspect_cmd(image, raw, tls_verify, creds, authfile, cert_dir, fmt):
    """Show a remote image's manifest (or index) without pulling it."""
    from pallet.registry.client.pull import Client, inspect_remote

    opts = _options(tls_verify, creds, authfile, cert_dir)
    with Client(opts) as client:
        data, media_type, digest = inspect_remote(client, image)
    if raw:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    doc = json.loads(data)
    if fmt == "json":
        print_json(doc)
        return
    print_json(doc)


@click.command("ls-remote")
@click.argument("image")
@_common
@_format_opt
def ls_remote_cmd(image, tls_verify, creds, authfile, cert_dir, fmt):
    """List the tags of a repository in a registry."""
    from pallet.registry.client.pull import Client, remote_tags

    opts = _options(tls_verify, creds, authfile, cert_dir)
    with Client(opts) as client:
        name, tags = remote_tags(client, image)
    if fmt == "json":
        print_json({"Repository": name, "Tags": tags})
        return
    for t in tags:
        click.echo(t)
