"""What `create`/`run` take: the options of a new container (the CLI's flags and an API's body map to it)."""

from __future__ import annotations

from pallet.records import field, record

TYPE_CHECKING = False  # typing is not imported at run time (start-up)
if TYPE_CHECKING:
    from typing import Any


@record
class CreateOptions:
    image: str
    command: list[str] | None = None
    name: str | None = None
    entrypoint: str | None = None          # "" clears the image's entrypoint
    env: list[str] = field(default_factory=list)
    workdir: str | None = None
    user: str | None = None
    hostname: str | None = None
    network: str = "none"                  # none, host, container:NAME, bridge or a network's name
    extra_networks: list[str] = field(default_factory=list)   # several --network: the ones after the first
    ip: str | None = None
    aliases: list[str] = field(default_factory=list)
    mac_address: str | None = None
    publish: list[str] = field(default_factory=list)
    publish_all: bool = False              # -P: every exposed port to a random host port
    expose: list[str] = field(default_factory=list)          # --expose PORT[-PORT][/PROTO]
    add_hosts: list[str] = field(default_factory=list)
    init: bool = False
    stop_signal: str | None = None
    stop_timeout: int | None = None
    labels: dict[str, str] = field(default_factory=dict)
    runtime: str | None = None
    platform: str | None = None
    pull: str = "missing"
    tty: bool = False
    interactive: bool = False
    attach_stdin: bool = False
    auto_remove: bool = False
    detach: bool = False
    extra_host_config: dict[str, Any] = field(default_factory=dict)   # room for volumes/limits/restart
    extra_config: dict[str, Any] = field(default_factory=dict)        # Config fields (Healthcheck)
