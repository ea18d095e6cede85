"""run/create flags for storage, limits, security, restart policy and health (docker's names).

Kept for callers of `host_options`/`limit_options`: the rows are in `pallet.cli.runflags`, the one
table from which click's options and the fast parser of `pallet run` are both made.
"""

from __future__ import annotations

from pallet.errors import PalletError


def limit_options() -> list:
    from pallet.cli.runflags import LIMITS, click_options

    return click_options(LIMITS)


def host_options(f):
    from pallet.cli.runflags import HOST, apply

    return apply(f, HOST)


# ---- the resource limits: flags <-> engine.options.Resources (docker's field names) ----------
HOST_FLAGS = {"Init": "--init", "Runtime": "--runtime", "AutoRemove": "--rm", "ShmSize": "--shm-size",
              "OomScoreAdj": "--oom-score-adj", "OomKillDisable": "--oom-kill-disable", "ReadonlyRootfs": "--read-only", "Privileged": "--privileged", "CapAdd": "--cap-add",
              "CapDrop": "--cap-drop"}
RESOURCE_FLAGS = {"Memory": "--memory", "MemorySwap": "--memory-swap", "MemoryReservation": "--memory-reservation",
                  "NanoCpus": "--cpus", "CpuShares": "--cpu-shares", "CpuPeriod": "--cpu-period",
                  "CpuQuota": "--cpu-quota", "CpusetCpus": "--cpuset-cpus", "CpusetMems": "--cpuset-mems",
                  "PidsLimit": "--pids-limit", "BlkioWeight": "--blkio-weight"}


def resources(kw: dict):
    """The limit flags of run/create/update (click's keyword names) -> `engine.options.Resources`: sizes,
    CPUs and numbers parsed as docker's CLI does before it calls the API; a bad one is a line naming
    the flag. The checks of the values are the engine's (`check_resources`, see `checked_resources`)."""
    from pallet.engine.options import Resources

    def given(k: str) -> bool:
        return kw.get(k) not in (None, "")

    def parse_bytes(text, what: str) -> int:   # (engine.units only when a size is given: run's hot path)
        from pallet.engine.units import parse_bytes

        return parse_bytes(text, what)

    def whole(k: str) -> int:
        try:
            return int(kw[k])
        except (TypeError, ValueError):
            raise PalletError(f"invalid --{k.replace('_', '-')} {kw[k]!r}: a whole number") from None

    r = Resources()
    if given("memory"):
        r.Memory = parse_bytes(kw["memory"], "--memory")
    if given("memory_swap"):
        r.MemorySwap = -1 if str(kw["memory_swap"]) == "-1" else parse_bytes(kw["memory_swap"], "--memory-swap")
    if given("memory_reservation"):
        r.MemoryReservation = parse_bytes(kw["memory_reservation"], "--memory-reservation")
    if given("cpus"):
        try:
            r.NanoCpus = int(round(float(kw["cpus"]) * 1e9))
        except ValueError:
            raise PalletError(f"invalid --cpus {kw['cpus']!r}: a number such as 1.5") from None
    for k, f in (("cpu_shares", "CpuShares"), ("cpu_period", "CpuPeriod"), ("cpu_quota", "CpuQuota"),
                 ("pids_limit", "PidsLimit"), ("blkio_weight", "BlkioWeight")):
        if given(k):
            setattr(r, f, whole(k))
    if given("cpuset_cpus"):
        r.CpusetCpus = kw["cpuset_cpus"]
    if given("cpuset_mems"):
        r.CpusetMems = kw["cpuset_mems"]
    return r


def checked_resources(kw: dict):
    """`resources(kw)` checked by the engine -> (Resources, the HostConfig fields given); the engine's
    message names the flag instead of the field."""
    from pallet.engine.hostconfig import check_resources
    from pallet.errors import InvalidField

    r = resources(kw)
    try:
        return r, check_resources(r)
    except InvalidField as e:
        raise PalletError(e.named(RESOURCE_FLAGS.get(e.field, e.field))) from None


def host_fields(kw: dict):
    """The process, runtime and privilege flags (click's keyword names) -> `engine.options.HostOptions`,
    sizes and numbers parsed (a bad one: a line naming the flag)."""
    from pallet.engine.options import HostOptions

    h = HostOptions(Init=bool(kw.get("init")), Runtime=kw.get("runtime") or None,
                    AutoRemove=bool(kw.get("auto_remove")), OomKillDisable=bool(kw.get("oom_kill_disable")),
                    ReadonlyRootfs=bool(kw.get("read_only")),
                    Privileged=bool(kw.get("privileged")), CapAdd=list(kw.get("cap_add") or ()),
                    CapDrop=list(kw.get("cap_drop") or ()))
    if kw.get("shm_size") not in (None, ""):
        from pallet.engine.units import parse_bytes

        h.ShmSize = parse_bytes(kw["shm_size"], "--shm-size")
    if kw.get("oom_score_adj") not in (None, ""):
        try:
            h.OomScoreAdj = int(kw["oom_score_adj"])
        except (TypeError, ValueError):
            raise PalletError(f"invalid --oom-score-adj {kw['oom_score_adj']!r}: a whole number") from None
    return h


def checked_host_fields(kw: dict):
    """`host_fields(kw)` checked by the engine -> (HostOptions, the HostConfig fields given); the
    engine's message names the flag instead of the field."""
    from pallet.engine.hostconfig import check_host_options
    from pallet.errors import InvalidField

    h = host_fields(kw)
    try:
        return h, check_host_options(h)
    except InvalidField as e:
        raise PalletError(e.named(HOST_FLAGS.get(e.field, e.field))) from None


# ---- the rest of HostConfig and Config.Healthcheck: flags <-> HostSettings / Healthcheck ------------
SETTINGS_FLAGS = {"Binds": "-v", "Mounts": "--mount", "Tmpfs": "--tmpfs", "VolumesFrom": "--volumes-from",
                  "Ulimits": "--ulimit", "Devices": "--device", "PidMode": "--pid", "IpcMode": "--ipc",
                  "SecurityOpt": "--security-opt", "Sysctls": "--sysctl", "Dns": "--dns",
                  "DnsSearch": "--dns-search", "DnsOptions": "--dns-option", "RestartPolicy": "--restart",
                  "NetworkMode": "--network", "AutoRemove": "--rm"}
HEALTH_FLAGS = {"Test": "--health-cmd", "Interval": "--health-interval", "Timeout": "--health-timeout",
                "StartPeriod": "--health-start-period", "StartInterval": "--health-start-interval",
                "Retries": "--health-retries"}
OTHER_FLAGS = {"PortBindings": "-p", "ExposedPorts": "--expose", "IPv4Address": "--ip",
               "IPv6Address": "--ip6", "Aliases": "--network-alias", "MacAddress": "--mac-address",
               "ExtraHosts": "--add-host", "EnableIPv6": "--ipv6"}
_NAMED = ("other", "network", "ipv6")   # values of an InvalidField that name another field
_SETTINGS_KW = ("volume", "mount", "tmpfs", "volumes_from", "ulimit", "device", "pid", "ipc", "security_opt",
                "sysctl", "dns", "dns_search", "dns_option", "restart")


def said(e, flags: dict | None = None, text: str | None = None):
    """An engine's InvalidField as the CLI says it: the sentence with the flag (`flags`: field -> flag;
    all of run's by default) and, with `text`, the value as the user wrote it; any other error as it is.
    (For what create checks itself, say -p, --expose, --init: containerrun.create.)"""
    from pallet.errors import InvalidField

    if not isinstance(e, InvalidField):
        return e
    if flags is None:
        flags = {**RESOURCE_FLAGS, **HOST_FLAGS, **SETTINGS_FLAGS, **HEALTH_FLAGS, **OTHER_FLAGS}
    values = {k: flags.get(v, v) if k in _NAMED else v for k, v in e.values.items()}
    if text is not None and "text" in values:
        values["text"] = text
    if text is not None and "item" in values:
        name, _, val = text.partition("=")
        values["item"] = f"{name.strip().lower()}={val}"
    e.values = values
    return PalletError(e.named(flags.get(e.field, e.field)), exit_code=e.exit_code)


def _flagged(flags: dict, text: str | None = None):
    """A check of the engine, its InvalidField said with the CLI's flag (and the text the user gave)."""
    from pallet.errors import InvalidField

    class _Said:
        def __enter__(self):
            return self

        def __exit__(self, t, e, tb):
            if isinstance(e, InvalidField):
                raise said(e, flags, text) from None
            return False

    return _Said()


def parse_ulimit(text: str) -> dict:
    """--ulimit NAME=SOFT[:HARD] -> {Name, Soft, Hard} (the engine checks the values: check_ulimit)."""
    from pallet.engine.hostconfig import ULIMITS

    name, eq, val = text.partition("=")
    name = name.strip().lower()
    if not eq or name not in ULIMITS:
        raise PalletError(f"invalid --ulimit {text!r}: expected NAME=SOFT[:HARD] with NAME one of "
                          f"{', '.join(sorted(ULIMITS))}")
    soft_s, _, hard_s = val.partition(":")
    try:
        soft = int(soft_s)
        hard = int(hard_s) if hard_s else soft
    except ValueError:
        raise PalletError(f"invalid --ulimit {text!r}: limits are integers (-1 for unlimited)") from None
    return {"Name": name, "Soft": soft, "Hard": hard}


def parse_device(text: str) -> dict:
    """--device HOST[:CONTAINER][:PERMISSIONS] -> {PathOnHost, PathInContainer, CgroupPermissions}."""
    import re

    parts = text.split(":")
    if len(parts) > 3 or not parts[0]:
        raise PalletError(f"invalid --device {text!r}: expected HOST[:CONTAINER][:PERMISSIONS]")
    host, ctr, perms = parts[0], parts[0], "rwm"
    if len(parts) == 2:
        if re.fullmatch(r"[rwm]+", parts[1]):
            perms = parts[1]
        else:
            ctr = parts[1]
    elif len(parts) == 3:
        ctr, perms = parts[1], parts[2]
    return {"PathOnHost": host, "PathInContainer": ctr, "CgroupPermissions": perms}


def _truthy(v: str, what: str) -> bool:
    if v in ("", "1", "true"):
        return True
    if v in ("0", "false"):
        return False
    raise PalletError(f"invalid {what}: {v!r} is not true or false")


def parse_mount(spec: str) -> dict:
    """--mount type=bind|volume|tmpfs,src=,dst=,ro,... -> docker's HostConfig.Mounts entry (its values
    checked by the engine: volumes.check_mount)."""
    from pallet.engine.units import parse_bytes
    from pallet.engine.volumes import MOUNT_TYPES, PROPAGATIONS

    what = f"--mount {spec!r}"
    m: dict = {"Type": "volume", "Source": "", "Target": "", "ReadOnly": False}
    for field in [f for f in spec.split(",") if f]:
        k, _, v = field.partition("=")
        k = k.strip().lower()
        if k == "type":
            if v not in MOUNT_TYPES:
                raise PalletError(f"invalid {what}: type must be bind, volume or tmpfs")
            m["Type"] = v
        elif k in ("source", "src"):
            m["Source"] = v
        elif k in ("destination", "dst", "target"):
            m["Target"] = v
        elif k in ("readonly", "ro"):
            m["ReadOnly"] = _truthy(v, what)
        elif k == "bind-propagation":
            if v not in PROPAGATIONS:
                raise PalletError(f"invalid {what}: bind-propagation must be one of {', '.join(PROPAGATIONS)}")
            m.setdefault("BindOptions", {})["Propagation"] = v
        elif k == "volume-nocopy":
            m.setdefault("VolumeOptions", {})["NoCopy"] = _truthy(v, what)
        elif k == "volume-label":
            lk, _, lv = v.partition("=")
            m.setdefault("VolumeOptions", {}).setdefault("Labels", {})[lk] = lv
        elif k == "tmpfs-size":
            m.setdefault("TmpfsOptions", {})["SizeBytes"] = parse_bytes(v, "tmpfs-size")
        elif k == "tmpfs-mode":
            try:
                m.setdefault("TmpfsOptions", {})["Mode"] = int(v, 8)
            except ValueError:
                raise PalletError(f"invalid {what}: tmpfs-mode must be octal, e.g. 1777") from None
        elif k in ("consistency", "volume-driver", "volume-opt"):
            if k == "volume-opt":
                raise PalletError(f"invalid {what}: volume-opt is not supported by pallet's local driver")
        else:
            raise PalletError(f"invalid {what}: unknown field {k!r}")
    return m


def parse_restart(text: str) -> dict:
    """--restart NAME[:N] -> {Name, MaximumRetryCount} (checked: the engine's check_restart)."""
    from pallet.engine.hostconfig import check_restart

    name, _, n = text.partition(":")
    if name in ("no", "always", "unless-stopped") and n:
        raise PalletError(f"invalid restart policy {text!r}: only on-failure takes a maximum retry count")
    try:
        count = int(n) if n else 0
    except ValueError:
        count = -1 if name == "on-failure" else 0
    with _flagged(SETTINGS_FLAGS, text):
        check_restart({"Name": name, "MaximumRetryCount": count})
    return {"Name": name, "MaximumRetryCount": count}


def settings(kw: dict, network: str = "none"):
    """The storage, device, ulimit, security, sysctl, DNS and restart flags (click's keyword names) ->
    `engine.options.HostSettings`, each value checked by the engine as it is read (so the first bad
    flag is the one reported, in the order docker's CLI reads them); None when none is given."""
    if not any(kw.get(k) for k in _SETTINGS_KW):
        return None
    import os

    from pallet.engine import hostconfig as hc
    from pallet.engine import volumes
    from pallet.engine.options import HostSettings

    s = HostSettings()
    f = SETTINGS_FLAGS
    for b in kw.get("volume") or ():
        volumes.parse_bind(b)
        s.Binds.append(b)
    for m in kw.get("mount") or ():
        item = parse_mount(m)
        with _flagged(f, m):
            s.Mounts.append(volumes.check_mount(item))
    for t in kw.get("tmpfs") or ():
        path, _, opts = t.partition(":")
        with _flagged(f, t):
            hc.check_tmpfs(path, opts)
        s.Tmpfs[os.path.normpath(path)] = opts
    volumes.check_duplicates({"Binds": s.Binds, "Mounts": s.Mounts, "Tmpfs": s.Tmpfs})
    for v in kw.get("volumes_from") or ():
        with _flagged(f, v):
            hc.check_volumes_from(v)
        s.VolumesFrom.append(v)
    for u in kw.get("ulimit") or ():
        item = parse_ulimit(u)
        with _flagged(f, u):
            s.Ulimits.append(hc.check_ulimit(item))
    for d in kw.get("device") or ():
        item = parse_device(d)
        with _flagged(f, d):
            s.Devices.append(hc.check_device(item))
    for flag, field in (("pid", "PidMode"), ("ipc", "IpcMode")):
        if kw.get(flag) is not None:
            with _flagged(f, kw[flag]):
                hc.check_namespace_mode(field, kw[flag])
            setattr(s, field, kw[flag])
    for o in kw.get("security_opt") or ():
        with _flagged(f, o):
            hc.check_security_opt(o)
        s.SecurityOpt.append(o)
    for x in kw.get("sysctl") or ():
        k, eq, v = x.partition("=")
        if not eq or not k:
            raise PalletError(f"invalid --sysctl {x!r}: expected KEY=VALUE")
        with _flagged(f):
            hc.check_sysctl(k.strip(), network)
        s.Sysctls[k.strip()] = v
    for d in kw.get("dns") or ():
        with _flagged(f, d):
            hc.check_dns(d)
        s.Dns.append(d)
    s.DnsSearch = list(kw.get("dns_search") or ())
    s.DnsOptions = list(kw.get("dns_option") or ())
    if kw.get("restart"):
        s.RestartPolicy = parse_restart(kw["restart"])
        with _flagged(f):
            hc.check_restart(s.RestartPolicy, bool(kw.get("auto_remove")))
    return s


def healthcheck(kw: dict):
    """The --health-* flags and --no-healthcheck -> `engine.options.Healthcheck` (durations in ns), checked
    by the engine; None when none is given."""
    keys = ("health_cmd", "health_interval", "health_timeout", "health_retries", "health_start_period",
            "health_start_interval")
    if not kw.get("no_healthcheck") and not any(kw.get(k) not in (None, "") for k in keys):
        return None
    from pallet.engine.hostconfig import check_healthcheck
    from pallet.engine.options import Healthcheck
    from pallet.engine.units import parse_duration

    h = Healthcheck()
    if kw.get("no_healthcheck"):
        if any(kw.get(k) for k in keys[:5]):
            raise PalletError("--no-healthcheck conflicts with --health-* options")
        h.Test = ["NONE"]
    if kw.get("health_cmd"):
        h.Test = ["CMD-SHELL", kw["health_cmd"]]
    for opt, field in (("health_interval", "Interval"), ("health_timeout", "Timeout"),
                       ("health_start_period", "StartPeriod"), ("health_start_interval", "StartInterval")):
        if kw.get(opt):
            setattr(h, field, parse_duration(kw[opt], HEALTH_FLAGS[field]))
            with _flagged(HEALTH_FLAGS):
                check_healthcheck(Healthcheck(**{field: getattr(h, field)}))
    if kw.get("health_retries") not in (None, ""):
        try:
            h.Retries = int(kw["health_retries"])
        except (TypeError, ValueError):
            raise PalletError(f"invalid --health-retries {kw['health_retries']!r}: a whole number") from None
    with _flagged(HEALTH_FLAGS):
        check_healthcheck(h)
    return h
