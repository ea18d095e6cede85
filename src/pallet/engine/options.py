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
    host_settings: HostSettings | None = None  # storage, devices, ulimits, security, sysctls, DNS, restart
    healthcheck: Healthcheck | None = None     # Config.Healthcheck over the image's (check_healthcheck)


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


@record
class HostSettings:
    """The rest of HostConfig, by docker's Engine API names and in its shapes: storage (Binds as
    "SRC:DST[:OPTS]" strings, Mounts entries, Tmpfs {path: options}), VolumesFrom, Ulimits
    ({Name, Soft, Hard}), Devices ({PathOnHost, PathInContainer, CgroupPermissions}), the PID and IPC
    namespace modes, SecurityOpt, Sysctls, Dns/DnsSearch/DnsOptions and RestartPolicy ({Name,
    MaximumRetryCount}); None (or empty) is "not given". `hostconfig.check_host_settings` validates them."""
    Binds: list[str] = field(default_factory=list)
    Mounts: list[dict] = field(default_factory=list)
    Tmpfs: dict[str, str] = field(default_factory=dict)
    VolumesFrom: list[str] = field(default_factory=list)
    Ulimits: list[dict] = field(default_factory=list)
    Devices: list[dict] = field(default_factory=list)
    PidMode: str | None = None            # "", host, private
    IpcMode: str | None = None            # "", host, private, shareable
    SecurityOpt: list[str] = field(default_factory=list)
    Sysctls: dict[str, str] = field(default_factory=dict)
    Dns: list[str] = field(default_factory=list)
    DnsSearch: list[str] = field(default_factory=list)
    DnsOptions: list[str] = field(default_factory=list)
    RestartPolicy: dict | None = None     # {"Name": no|always|on-failure|unless-stopped, "MaximumRetryCount": N}

    def given(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in fields(self) if getattr(self, k) not in (None, [], {})}


@record
class Healthcheck:
    """Config.Healthcheck by docker's names: Test (["NONE"], ["CMD", ...] or ["CMD-SHELL", "cmd"]) and the
    durations in nanoseconds (0 or None: the default); `hostconfig.check_healthcheck` validates it."""
    Test: list[str] | None = None
    Interval: int | None = None
    Timeout: int | None = None
    StartPeriod: int | None = None
    StartInterval: int | None = None
    Retries: int | None = None

    def given(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in fields(self) if getattr(self, k) is not None}


def _pick(cls, d: dict | None):
    """A record of `cls` from the fields of an Engine API dict that it has (others are left out)."""
    d = d or {}
    return cls(**{k: d[k] for k in fields(cls) if d.get(k) is not None})


# HostConfig fields pallet has no way to honour yet: what it takes of each (a body with another value is
# refused, naming the field, rather than given a container without it)
UNSUPPORTED = {"UTSMode": ("",), "UsernsMode": ("",), "CgroupnsMode": ("",), "Isolation": ("", "default"),
               "VolumeDriver": ("", "local"), "DeviceCgroupRules": (), "DeviceRequests": (), "Links": (),
               "GroupAdd": (), "CpuRealtimePeriod": (0,), "CpuRealtimeRuntime": (0,), "BlkioDeviceReadBps": (),
               "BlkioDeviceWriteBps": (), "BlkioDeviceReadIOps": (), "BlkioDeviceWriteIOps": (),
               "BlkioWeightDevice": ()}


def _refuse_unsupported(hc: dict) -> None:
    from pallet.errors import InvalidField

    for k, ok in UNSUPPORTED.items():
        v = hc.get(k)
        if v not in (None, [], {}) and v not in ok:
            raise InvalidField(k, "{name} {v!r} is not supported by pallet", v=v)
    log = (hc.get("LogConfig") or {}).get("Type")
    if log not in (None, "", "json-file"):
        raise InvalidField("LogConfig", "{name} type {v!r} is not supported by pallet (json-file)", v=log)


def from_api(body: dict) -> CreateOptions:
    """A `POST /containers/create` body of the Docker Engine API (Config's fields at the top, with
    HostConfig and NetworkingConfig) -> CreateOptions with its records. The values are checked when
    the container is created, as the CLI's are."""
    hc = body.get("HostConfig") or {}
    _refuse_unsupported(hc)
    net = hc.get("NetworkMode") or "bridge"
    eps = list(((body.get("NetworkingConfig") or {}).get("EndpointsConfig") or {}).items())
    first = eps[0][1] if eps else {}
    ipam = (first or {}).get("IPAMConfig") or {}
    entrypoint = body.get("Entrypoint")
    if isinstance(entrypoint, list):
        entrypoint = entrypoint[0] if entrypoint else ""
    publish = []
    for port, binds in (hc.get("PortBindings") or {}).items():
        for b in binds or [{}]:
            ip, hp = (b or {}).get("HostIp") or "", (b or {}).get("HostPort") or ""
            publish.append(f"{ip}:{hp}:{port}" if ip else f"{hp}:{port}" if hp else port)
    policy = hc.get("RestartPolicy") or None
    if policy is not None and not policy.get("Name"):
        policy = None
    settings = _pick(HostSettings, hc)
    settings.RestartPolicy = policy
    return CreateOptions(
        image=body["Image"], command=list(body.get("Cmd") or []) or None, name=body.get("name"),
        entrypoint=entrypoint, env=list(body.get("Env") or []), workdir=body.get("WorkingDir") or None,
        user=body.get("User") or None, hostname=body.get("Hostname") or None, network=net,
        extra_networks=[n for n, _ in eps[1:]], ip=ipam.get("IPv4Address") or None,
        ip6=ipam.get("IPv6Address") or None, aliases=list((first or {}).get("Aliases") or []),
        mac_address=(first or {}).get("MacAddress") or body.get("MacAddress") or None, publish=publish,
        publish_all=bool(hc.get("PublishAllPorts")), expose=list(body.get("ExposedPorts") or {}),
        add_hosts=list(hc.get("ExtraHosts") or []), init=bool(hc.get("Init")), stop_signal=body.get("StopSignal"),
        stop_timeout=body.get("StopTimeout"), labels=dict(body.get("Labels") or {}), runtime=hc.get("Runtime"),
        tty=bool(body.get("Tty")), interactive=bool(body.get("OpenStdin")),
        attach_stdin=bool(body.get("AttachStdin")), auto_remove=bool(hc.get("AutoRemove")),
        detach=not (body.get("AttachStdout") or body.get("AttachStderr")),
        resources=_pick(Resources, hc), host_options=_pick(HostOptions, hc), host_settings=settings,
        healthcheck=_pick(Healthcheck, body.get("Healthcheck")) if body.get("Healthcheck") else None)
