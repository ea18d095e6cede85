"""What `create`/`run` and `update` take: the options of a new container and its resource limits (the
CLI's flags and an API's body map to them; the records use docker's Engine API field names)."""

from __future__ import annotations

from pallet.records import field, fields, record

TYPE_CHECKING = False  # typing is not imported at run time (start-up)
if TYPE_CHECKING:
    from typing import Any


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
    """HostConfig's fields for the container's process, runtime and privileges, by docker's Engine API
    names (the part beside Resources); None (or empty) is "not given". `hostconfig.check_host_options`
    validates them."""
    Init: bool = False                    # an init process (catatonit) as PID 1
    Runtime: str | None = None            # pallet, runc, crun or a configured runtime; None: the default
    AutoRemove: bool = False              # --rm
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


@record
class Config:
    """The container's Config of `POST /containers/create`, by the Engine API's names; None (or empty) is
    "the image's". Entrypoint and Cmd follow docker's merge: a non-empty Entrypoint also drops the
    image's Cmd, and [""] clears the image's Entrypoint. ExposedPorts ({"80/tcp": {}}) and Healthcheck
    are merged over the image's."""
    Image: str
    Cmd: list[str] | None = None
    Entrypoint: list[str] | None = None
    Env: list[str] = field(default_factory=list)
    WorkingDir: str | None = None
    User: str | None = None
    Hostname: str | None = None
    Labels: dict[str, str] = field(default_factory=dict)
    StopSignal: str | None = None
    StopTimeout: int | None = None
    Tty: bool = False
    OpenStdin: bool = False
    AttachStdin: bool = False
    ExposedPorts: dict[str, dict] = field(default_factory=dict)
    Healthcheck: Healthcheck | None = None


@record
class EndpointSettings:
    """NetworkingConfig.EndpointsConfig[network] as far as pallet honours it: the addresses asked for
    (docker nests them in IPAMConfig), the aliases and a MAC address."""
    IPv4Address: str | None = None
    IPv6Address: str | None = None
    Aliases: list[str] = field(default_factory=list)
    MacAddress: str | None = None


@record
class Networking:
    """HostConfig's network fields with NetworkingConfig's endpoints, by docker's names: NetworkMode
    (none, host, container:NAME, bridge or a network's name); EndpointsConfig {network: EndpointSettings},
    where NetworkMode's entry holds its settings and any other network is one more to join; PortBindings in
    docker's shape ({"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}, an empty HostPort: a random one);
    PublishAllPorts; ExtraHosts ("NAME:IP" or "NAME:host-gateway")."""
    NetworkMode: str = "none"
    EndpointsConfig: dict[str, EndpointSettings] = field(default_factory=dict)
    PortBindings: dict[str, list[dict]] = field(default_factory=dict)
    PublishAllPorts: bool = False
    ExtraHosts: list[str] = field(default_factory=list)

    def endpoint(self) -> EndpointSettings:
        """The settings asked for on NetworkMode's network."""
        return self.EndpointsConfig.get(self.NetworkMode) or EndpointSettings()

    def more(self) -> list[str]:
        """The networks to join beside NetworkMode's, in order."""
        return [n for n in self.EndpointsConfig if n != self.NetworkMode]

    def plain(self) -> bool:
        """No network and nothing asked of one (the hot path: nothing to check)."""
        return self.NetworkMode == "none" and not (self.EndpointsConfig or self.PortBindings or self.ExtraHosts)


@record
class CreateOptions:
    """What `create`/`run` take, in the shape of the Engine API's `POST /containers/create`: the body's
    Config (`config`), its HostConfig in records (`host_options`, `resources`, `host_settings`) and its
    network fields with NetworkingConfig (`networking`); the query's `name` and `platform`; and what a
    client decides around the call: `pull` (missing, always, never) and `detach` (not attached)."""
    config: Config
    name: str | None = None
    platform: str | None = None
    pull: str = "missing"
    detach: bool = False
    networking: Networking = field(default_factory=Networking)
    host_options: HostOptions = field(default_factory=HostOptions)
    resources: Resources | None = None     # the resource limits (checked by hostconfig.check_resources)
    host_settings: HostSettings | None = None  # storage, devices, ulimits, security, sysctls, DNS, restart


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
    HostConfig and NetworkingConfig; the query's name as "name") -> CreateOptions with its records. The
    values are checked when the container is created, as the CLI's are."""
    from pallet.errors import InvalidField

    if not isinstance(body.get("Image"), str) or not body["Image"]:
        raise InvalidField("Image", "{name} is required: the image to create the container from")
    hc = body.get("HostConfig") or {}
    _refuse_unsupported(hc)
    net = hc.get("NetworkMode") or "bridge"
    if net == "default":
        net = "bridge"
    endpoints = {}
    for name, ep in ((body.get("NetworkingConfig") or {}).get("EndpointsConfig") or {}).items():
        ep = ep or {}
        if not isinstance(ep, dict):
            raise InvalidField("EndpointsConfig", "invalid {name} for network {net!r}: an object of endpoint "
                               "settings", net=name)
        ipam = ep.get("IPAMConfig") or {}
        endpoints[name] = EndpointSettings(IPv4Address=ipam.get("IPv4Address") or None,
                                           IPv6Address=ipam.get("IPv6Address") or None,
                                           Aliases=list(ep.get("Aliases") or []), MacAddress=ep.get("MacAddress") or None)
    if body.get("MacAddress"):     # (API < 1.44: the MAC address in Config)
        endpoints.setdefault(net, EndpointSettings()).MacAddress = body["MacAddress"]
    policy = hc.get("RestartPolicy") or None
    if policy is not None and not policy.get("Name"):
        policy = None
    settings = _pick(HostSettings, hc)
    settings.RestartPolicy = policy
    config = _pick(Config, body)
    config.Healthcheck = _pick(Healthcheck, body["Healthcheck"]) if body.get("Healthcheck") else None
    for f in ("Cmd", "Entrypoint"):   # (docker's strslice: a string is a list of one)
        if isinstance(getattr(config, f), str):
            setattr(config, f, [getattr(config, f)])
    config.Cmd = list(config.Cmd) if config.Cmd else None
    config.WorkingDir, config.User, config.Hostname = config.WorkingDir or None, config.User or None, \
        config.Hostname or None
    return CreateOptions(
        config, name=body.get("name"), platform=body.get("platform") or None,
        detach=not (body.get("AttachStdout") or body.get("AttachStderr")),
        networking=Networking(NetworkMode=net, EndpointsConfig=endpoints, PortBindings=dict(hc.get("PortBindings") or {}),
                              PublishAllPorts=bool(hc.get("PublishAllPorts")), ExtraHosts=list(hc.get("ExtraHosts") or [])),
        host_options=_pick(HostOptions, hc), resources=_pick(Resources, hc), host_settings=settings)
