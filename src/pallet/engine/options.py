"""What `create`/`run` and `update` take: the options of a new container and its resource limits (the
CLI's flags and an API's body map to them; the records use docker's Engine API field names)."""

from __future__ import annotations

from pallet.records import field, fields, record

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
    ip6: str | None = None                 # --ip6: the IPv6 address on the first (--ipv6) network
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
    resources: Resources | None = None     # the resource limits (checked by hostconfig.check_resources)
    host_options: HostOptions | None = None   # process and privileges (hostconfig.check_host_options)


@record
class Resources:
    """The resource limits of HostConfig, by docker's Engine API names and in its units (bytes, nano-CPUs,
    CFS microseconds); None is "not given". `hostconfig.check_resources` validates them."""
    Memory: int | None = None             # bytes; 0 = no limit
    MemorySwap: int | None = None         # memory + swap, bytes; -1 = unlimited swap
    MemoryReservation: int | None = None  # soft limit, bytes
    NanoCpus: int | None = None           # CPUs x 1e9
    CpuShares: int | None = None
    CpuPeriod: int | None = None          # microseconds
    CpuQuota: int | None = None           # microseconds per period; -1 = none
    CpusetCpus: str | None = None         # "0-1", "0,2"
    CpusetMems: str | None = None
    PidsLimit: int | None = None          # -1 or 0 = unlimited
    BlkioWeight: int | None = None        # 10-1000; 0 = the default

    def given(self) -> dict[str, Any]:
        """The fields that were given, as HostConfig's dict has them."""
        return {k: getattr(self, k) for k in fields(self) if getattr(self, k) is not None}


@record
class HostOptions:
    """HostConfig's fields for the container's process and privileges, by docker's Engine API names
    (the part beside Resources); None (or empty) is "not given". `hostconfig.check_host_options`
    validates them."""
    ShmSize: int | None = None            # bytes of /dev/shm
    OomScoreAdj: int | None = None        # -1000 to 1000
    OomKillDisable: bool = False
    ReadonlyRootfs: bool = False
    Privileged: bool = False
    CapAdd: list[str] = field(default_factory=list)    # names, with or without CAP_, or ALL
    CapDrop: list[str] = field(default_factory=list)

    def given(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in fields(self) if getattr(self, k) not in (None, False, [])}
