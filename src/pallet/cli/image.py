"""`pallet image ...`: the image noun's sub-commands, imported lazily by name."""

from __future__ import annotations

import click

from pallet.cli.main import LazyGroup

IMAGE_COMMANDS: dict[str, str] = {
    # store (foundation)
    "ls": "pallet.cli.images:images_cmd",
    "list": "pallet.cli.images:images_cmd",
    "inspect": "pallet.cli.images:inspect_cmd",
    "tag": "pallet.cli.images:tag_cmd",
    "rm": "pallet.cli.images:rmi_cmd",
    "prune": "pallet.cli.images:prune_cmd",
    "history": "pallet.cli.images:history_cmd",
    "import": "pallet.cli.images:import_cmd",
    "save": "pallet.cli.images:save_cmd",
    "load": "pallet.cli.images:load_cmd",
    "export-layout": "pallet.cli.images:export_layout_cmd",
    "import-layout": "pallet.cli.images:import_layout_cmd",
    # references
    "ref": "pallet.cli.reference:ref_group",
    # layers and snapshots
    "mount": "pallet.cli.layers:mount_cmd",
    "unmount": "pallet.cli.layers:unmount_cmd",
    "tree": "pallet.cli.layers:tree_cmd",
    "efficiency": "pallet.cli.layers:efficiency_cmd",
    # registry client
    "pull": "pallet.cli.registry_client:pull_cmd",
    "push": "pallet.cli.registry_client:push_cmd",
    "ls-remote": "pallet.cli.registry_client:ls_remote_cmd",
}


@click.group("image", cls=LazyGroup, lazy=IMAGE_COMMANDS)
def image_group() -> None:
    """Manage images: list, inspect, tag, remove, import, save, load, explore."""
