"""`pallet registry serve` and `pallet registry gc`: pallet's OCI distribution registry."""

from __future__ import annotations

import click


@click.group("registry")
def registry_group() -> None:
    """Run an OCI distribution registry (serve) and collect its garbage (gc)."""


def _config(config_file: str | None, **flags):
    from pallet.cli.common import state
    from pallet.registry.server.config import load_config

    return load_config(config_file, flags, default_storage=str(state().root_path / "registry"))


@registry_group.command("serve")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, exists=True),
              help="TOML file with the same keys as these flags (flags override it).")
@click.option("--addr", help="HOST:PORT to listen on (default 127.0.0.1:5000).")
@click.option("--storage", type=click.Path(file_okay=False),
              help="Storage directory (default: registry/ in pallet's storage root).")
@click.option("--tls-cert", type=click.Path(dir_okay=False, exists=True), help="Serve HTTPS with this certificate.")
@click.option("--tls-key", type=click.Path(dir_okay=False, exists=True), help="Private key of --tls-cert.")
@click.option("--htpasswd", type=click.Path(dir_okay=False, exists=True), help="bcrypt htpasswd file: Basic auth.")
@click.option("--token-realm", help="Token server URL clients are sent to (bearer token auth).")
@click.option("--token-service", help="Service name: the audience tokens must carry.")
@click.option("--token-issuer", help="Issuer tokens must carry.")
@click.option("--token-cert", type=click.Path(dir_okay=False, exists=True),
              help="PEM certificate bundle whose keys sign tokens.")
@click.option("--anonymous-pull", is_flag=True, default=None, help="Allow pulls without credentials.")
@click.option("--read-only", is_flag=True, default=None, help="Refuse every push and delete (405).")
@click.option("--no-delete", is_flag=True, default=None, help="Refuse deletes (405 UNSUPPORTED).")
@click.option("--proxy-remote", multiple=True, help="Upstream registry URL for pull-through caching (repeatable).")
@click.option("--workers", type=click.IntRange(min=1), help="Worker processes sharing the socket (default 1).")
def serve_cmd(config_file: str | None, **flags) -> None:
    """Serve the OCI distribution API (v1.1) from a storage directory."""
    from pallet.registry.server.serve import serve

    serve(_config(config_file, **flags))


@registry_group.command("gc")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, exists=True),
              help="The server's TOML config file (for `storage` and `gc_grace`).")
@click.option("--storage", type=click.Path(file_okay=False), help="Storage directory.")
@click.option("--dry-run", is_flag=True, help="Report what would be removed, remove nothing.")
@click.option("--delete-untagged", is_flag=True, help="Also remove manifests no tag or index reaches.")
@click.option("--grace", type=float, default=None,
              help="Seconds a recently written blob is kept regardless (default 3600).")
def gc_cmd(config_file: str | None, storage: str | None, dry_run: bool, delete_untagged: bool,
           grace: float | None) -> None:
    """Remove blobs and manifests nothing references any more; safe while the server runs."""
    from pathlib import Path

    from pallet.errors import NotFound
    from pallet.registry.server.gc import collect
    from pallet.registry.server.storage import FilesystemStorage

    cfg = _config(config_file, storage=storage, gc_grace=grace)
    if not (Path(cfg.storage) / "blobs").is_dir():
        raise NotFound(f"no registry storage at {cfg.storage} (give --storage DIR, the server's storage)")
    report = collect(FilesystemStorage(cfg.storage), grace=cfg.gc_grace, dry_run=dry_run,
                     delete_untagged=delete_untagged, log=click.echo)
    verb = "would remove" if dry_run else "removed"
    click.echo(f"{verb} {report.manifests} manifest(s), {report.blobs} blob(s) ({report.bytes} bytes), "
               f"{report.links} repository link(s); kept {report.kept_blobs} blob(s)")
