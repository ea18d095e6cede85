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
    entrypoint = ic.get("Entrypoint") or []
    cmd = ic.get("Cmd") or []
    if opts.entrypoint is not None:
        entrypoint = [opts.entrypoint] if opts.entrypoint else []
        cmd = []   # docker: --entrypoint resets the image's Cmd
    if opts.command:
        cmd = list(opts.command)
    labels = dict(ic.get("Labels") or {})
    labels.update(opts.labels)
    config = {
        "Hostname": opts.hostname or "",
        "Domainname": "",
        "User": opts.user if opts.user is not None else (ic.get("User") or ""),
        "AttachStdin": opts.attach_stdin,
        "AttachStdout": not opts.detach,
        "AttachStderr": not opts.detach,
        "ExposedPorts": ic.get("ExposedPorts") or {},
        "Tty": opts.tty,
        "OpenStdin": opts.interactive,
        "StdinOnce": opts.interactive and not opts.detach,
        "Env": merge_env(list(ic.get("Env") or []), opts.env),
        "Cmd": cmd,
        "Image": opts.image,
        "Volumes": ic.get("Volumes"),
        "WorkingDir": opts.workdir if opts.workdir is not None else (ic.get("WorkingDir") or ""),
        "Entrypoint": entrypoint or None,
        "OnBuild": None,
        "Labels": labels,
        "StopSignal": opts.stop_signal or ic.get("StopSignal") or "SIGTERM",
    }
    if opts.stop_timeout is not None:
        config["StopTimeout"] = opts.stop_timeout
    host = {
        "NetworkMode": opts.network,
        "AutoRemove": opts.auto_remove,
        "Init": opts.init,
        "Runtime": opts.runtime,
        "ExtraHosts": list(opts.add_hosts) or None,
        "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
        "LogConfig": {"Type": "json-file", "Config": {}},
        "PortBindings": {},
        "PublishAllPorts": opts.publish_all,
        "Binds": None,
        "Privileged": False,
        "CapAdd": None,
        "CapDrop": None,
        "ShmSize": 64 * 1024 * 1024,
        **opts.extra_host_config,
    }
    if opts.resources is not None:
        host.update(check_resources(opts.resources))
    if opts.host_options is not None:
        host.update(check_host_options(opts.host_options))
    if opts.host_settings is not None:
        host.update(check_host_settings(opts.host_settings, opts.network, opts.auto_remove))
    extra = dict(opts.extra_config)
    flags_hc = extra.pop("Healthcheck", None)
    if opts.healthcheck is not None:
        flags_hc = {**(flags_hc or {}), **check_healthcheck(opts.healthcheck)}
    hc = merge_healthcheck(ic.get("Healthcheck"), flags_hc)
    if hc:
        config["Healthcheck"] = hc
    config.update(extra)
    return config, host
