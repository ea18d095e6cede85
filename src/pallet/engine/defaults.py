"""docker's Config and HostConfig of a new container: the defaults, the image's config and the options."""

from __future__ import annotations

from pallet.engine.hostconfig import (
    check_healthcheck,
    check_host_options,
    check_host_settings,
    check_resources,
    merge_healthcheck,
)
from pallet.engine.spec import merge_env

TYPE_CHECKING = False  # typing is not imported at run time (start-up)
if TYPE_CHECKING:
    from pallet.engine.options import CreateOptions


def build_config(opts: CreateOptions, image_config) -> tuple[dict, dict]:
    """docker's Config and HostConfig of a new container: the image's config, then the options over it."""
    ic = dict(image_config.config or {})
    cfg, net, proc = opts.config, opts.networking, opts.host_options
    entrypoint, cmd = cfg.Entrypoint, cfg.Cmd or []
    if not entrypoint:      # docker's merge (daemon/commit.go): the image's Cmd unless one is given
        cmd = cmd or ic.get("Cmd") or []
        entrypoint = ic.get("Entrypoint") if entrypoint is None else []
    elif entrypoint == [""]:
        entrypoint = []
    labels = dict(ic.get("Labels") or {})
    labels.update(cfg.Labels)
    attached = not opts.detach
    config = {
        "Hostname": cfg.Hostname or "",
        "Domainname": "",
        "User": cfg.User if cfg.User is not None else (ic.get("User") or ""),
        "AttachStdin": cfg.AttachStdin,
        "AttachStdout": attached,
        "AttachStderr": attached,
        "ExposedPorts": ic.get("ExposedPorts") or {},
        "Tty": cfg.Tty,
        "OpenStdin": cfg.OpenStdin,
        "StdinOnce": cfg.OpenStdin and attached,
        "Env": merge_env(list(ic.get("Env") or []), cfg.Env),
        "Cmd": list(cmd),
        "Image": cfg.Image,
        "Volumes": ic.get("Volumes"),
        "WorkingDir": cfg.WorkingDir if cfg.WorkingDir is not None else (ic.get("WorkingDir") or ""),
        "Entrypoint": list(entrypoint or ()) or None,
        "OnBuild": None,
        "Labels": labels,
        "StopSignal": cfg.StopSignal or ic.get("StopSignal") or "SIGTERM",
    }
    if cfg.StopTimeout is not None:
        config["StopTimeout"] = cfg.StopTimeout
    host = {
        "NetworkMode": net.NetworkMode,
        "AutoRemove": proc.AutoRemove,
        "Init": proc.Init,
        "Runtime": proc.Runtime,
        "ExtraHosts": list(net.ExtraHosts) or None,
        "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
        "LogConfig": {"Type": "json-file", "Config": {}},
        "PortBindings": {},
        "PublishAllPorts": net.PublishAllPorts,
        "Binds": None,
        "Privileged": False,
        "CapAdd": None,
        "CapDrop": None,
        "ShmSize": 64 * 1024 * 1024,
    }
    if opts.resources is not None:
        host.update(check_resources(opts.resources))
    host.update(check_host_options(proc))
    if opts.host_settings is not None:
        host.update(check_host_settings(opts.host_settings, net.NetworkMode, proc.AutoRemove))
    flags_hc = check_healthcheck(cfg.Healthcheck) if cfg.Healthcheck is not None else None
    hc = merge_healthcheck(ic.get("Healthcheck"), flags_hc)
    if hc:
        config["Healthcheck"] = hc
    return config, host
