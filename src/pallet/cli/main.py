"""`pallet` entry point: a click group whose commands are imported only when used.

Each command lives in a module of its own noun (`pallet.cli.image`, ...). The
table below maps a command name to `module:attribute`; a module that does not
exist yet simply hides its commands. Keep this module light: it is imported by
every invocation, including the hot path `pallet run --rm IMAGE true`.
"""

from __future__ import annotations

import importlib
import os
import sys

import click

from pallet import __version__

# name -> "module:attribute". Top-level docker-style shortcuts point at the same objects.
COMMANDS: dict[str, str] = {
    # images (foundation)
    "image": "pallet.cli.image:image_group",
    "images": "pallet.cli.images:images_cmd",
    "tag": "pallet.cli.images:tag_cmd",
    "rmi": "pallet.cli.images:rmi_cmd",
    "history": "pallet.cli.images:history_cmd",
    "import": "pallet.cli.images:import_cmd",
    "save": "pallet.cli.images:save_cmd",
    "load": "pallet.cli.images:load_cmd",
    # registry client
    "pull": "pallet.cli.registry_client:pull_cmd",
    "push": "pallet.cli.registry_client:push_cmd",
    "login": "pallet.cli.registry_client:login_cmd",
    "logout": "pallet.cli.registry_client:logout_cmd",
    "manifest": "pallet.cli.registry_client:manifest_group",
    # registry server
    "registry": "pallet.cli.registry_server:registry_group",
    # OCI runtime (runc-compatible)
    "runtime": "pallet.runtime.cli:cli",
    # containers
    "container": "pallet.cli.container:container_group",
    "run": "pallet.cli.container:run_cmd",
    "create": "pallet.cli.container:create_cmd",
    "start": "pallet.cli.container:start_cmd",
    "ps": "pallet.cli.container:ps_cmd",
    "logs": "pallet.cli.container:logs_cmd",
    "stop": "pallet.cli.container:stop_cmd",
    "kill": "pallet.cli.container:kill_cmd",
    "restart": "pallet.cli.container:restart_cmd",
    "rm": "pallet.cli.container:rm_cmd",
    "exec": "pallet.cli.container:exec_cmd",
    "wait": "pallet.cli.container:wait_cmd",
    "inspect": "pallet.cli.container:inspect_cmd",
    "top": "pallet.cli.container:top_cmd",
    "rename": "pallet.cli.container:rename_cmd",
    "port": "pallet.cli.container:port_cmd",
    "attach": "pallet.cli.container:attach_cmd",
    "system": "pallet.cli.system:system_group",
    "events": "pallet.cli.events:events_cmd",
    # volumes, limits, files (issue 7)
    "volume": "pallet.cli.volume:volume_group",
    "network": "pallet.cli.network:network_group",
    "update": "pallet.cli.limits:update_cmd",
    "stats": "pallet.cli.limits:stats_cmd",
    "pause": "pallet.cli.limits:pause_cmd",
    "unpause": "pallet.cli.limits:unpause_cmd",
    "healthcheck": "pallet.cli.limits:healthcheck_group",
    "cp": "pallet.cli.files:cp_cmd",
    "diff": "pallet.cli.files:diff_cmd",
    "commit": "pallet.cli.files:commit_cmd",
    "export": "pallet.cli.files:export_cmd",
    "build": "pallet.cli.build:build_cmd",
    "builder": "pallet.cli.build:builder_group",
    "explain": "pallet.cli.explain:explain_group",
    "trace": "pallet.cli.trace:trace_cmd",
}


class LazyGroup(click.Group):
    """A group that imports a command's module only when that command is invoked."""

    def __init__(self, *args, lazy: dict[str, str], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        names = set(self.commands) | {n for n in self.lazy if self._load(n) is not None}
        return sorted(names)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.commands:
            return self.commands[name]
        return self._load(name)

    def _load(self, name: str) -> click.Command | None:
        target = self.lazy.get(name)
        if target is None:
            return None
        module_name, _, attr = target.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as e:
            if e.name and (module_name == e.name or module_name.startswith(e.name + ".")):
                return None  # that part of pallet is not built yet
            raise
        return getattr(module, attr, None)


@click.group(cls=LazyGroup, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", "-v", prog_name="pallet", message="%(prog)s version %(version)s")
@click.option("--root", type=click.Path(file_okay=False), envvar="PALLET_ROOT",
              help="Storage root (default /var/lib/pallet as root, ~/.local/share/pallet otherwise).")
@click.option("--runroot", type=click.Path(file_okay=False), envvar="PALLET_RUNROOT",
              help="Directory for volatile state (default /run/pallet as root).")
@click.option("--storage-driver", type=click.Choice(["overlay", "copy"]), envvar="PALLET_STORAGE_DRIVER",
              help="Snapshot driver (default: overlay where the kernel supports it, copy otherwise).")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), envvar="PALLET_CONFIG",
              help="Settings file (default pallet.toml in the config dir).")
@click.pass_context
def cli(ctx: click.Context, root: str | None, runroot: str | None, storage_driver: str | None,
        config_file: str | None) -> None:
    """pallet — run containers and see how they work.

    Images, layers, registries and an OCI runtime, with docker's command names.
    """
    from pallet.cli.common import State

    ctx.obj = State(root=root, runroot=runroot, storage_driver=storage_driver, config_file=config_file)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; every PalletError and usage error becomes one line and an exit code."""
    from pallet.errors import PalletError

    try:
        rv = cli.main(args=argv, prog_name="pallet", standalone_mode=False)
    except PalletError as e:
        click.echo(f"Error: {e.message}", err=True)
        sys.exit(e.exit_code)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        # docker exits 125 for a bad flag or flag value
        sys.exit(125 if isinstance(e, click.UsageError) else e.exit_code)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:
        # stdout closed early (`pallet images | head`): quiet exit
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(141)
    sys.exit(rv if isinstance(rv, int) else 0)


if __name__ == "__main__":
    main()
