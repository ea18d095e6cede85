"""`pallet run` / `pallet create` semantics, shared by the click commands (`pallet.cli.container`) and
the click-free fast path of the console script (`pallet.cli.fastrun`).

Both front ends parse the command line into the same `kw` dict (click's keyword arguments: one key per
option of `run`) and call `run()` / `build_opts()` here: there is one implementation of what the flags
mean. This module must not import click (the fast path exists to avoid it).
"""

from __future__ import annotations

import os
import sys

from pallet.errors import PalletError


def engine(st):
    """The engine for the global options in `st` (a `pallet.cli.common.State`)."""
    from pallet.engine.core import Engine

    return Engine(st.store(), st.runroot_path, storage_driver=st.storage_driver)


def parse_env_file(path: str) -> list[str]:
    try:
        text = open(path).read()
    except OSError as e:
        raise PalletError(f"cannot read env file {path}: {e.strerror}") from None
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        out.append(env_item(line))
    return [x for x in out if x is not None]


def env_item(item: str) -> str | None:
    if "=" in item:
        if item.startswith("="):
            raise PalletError(f"invalid environment variable: {item}")
        return item
    val = os.environ.get(item)
    return None if val is None else f"{item}={val}"


def labels(items: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for item in items:
        k, _, v = item.partition("=")
        if not k:
            raise PalletError(f"invalid label {item!r}: expected KEY[=VALUE]")
        out[k] = v
    return out


def networks(kw: dict) -> list[str]:
    """The --network values, in order (several: one endpoint each; the first is the NetworkMode)."""
    nets = kw.get("network") or ()
    return [nets] if isinstance(nets, str) else list(nets) or ["bridge"]


def build_opts(image: str, command: tuple[str, ...], kw: dict, *, detach: bool):
    """click-style keyword arguments of `run`/`create` -> `pallet.engine.options.CreateOptions` (docker's
    Config, HostConfig and NetworkingConfig in records)."""
    env: list[str] = []
    for path in kw.get("env_file") or ():
        env += parse_env_file(path)
    for item in kw.get("env") or ():
        v = env_item(item)
        if v is not None:
            env.append(v)
    if kw.get("stop_timeout") is not None:
        try:
            kw["stop_timeout"] = int(kw["stop_timeout"])
            if kw["stop_timeout"] < -1:
                raise ValueError
        except ValueError:
            raise PalletError(f"invalid --stop-timeout {kw['stop_timeout']!r}: a number of seconds") from None
    if kw.get("pull") not in ("missing", "always", "never"):
        raise PalletError(f"invalid --pull {kw.get('pull')!r}: missing, always or never")
    from pallet.cli.hostflags import checked_host_fields, checked_resources, healthcheck, settings

    # (checked now, in docker's order: a bad value names its flag, nothing is created)
    mode, *more = networks(kw)
    host_settings = settings(kw, mode)
    health = healthcheck(kw)
    resources, _ = checked_resources(kw)
    host_options, _ = checked_host_fields(kw)
    bindings, exposed = {}, {}
    if kw.get("publish") or kw.get("expose") or kw.get("init"):   # (create checks them too: docker's CLI first)
        from pallet.cli.hostflags import said
        from pallet.errors import InvalidField

        try:
            from pallet.engine import ports

            bindings = ports.parse(kw.get("publish") or ())
            exposed = ports.parse_expose(kw.get("expose") or ())
            if kw.get("init"):
                from pallet.engine.spec import require_init_binary

                require_init_binary()
        except InvalidField as e:
            raise said(e) from None
    if mode == "host" and kw.get("publish"):
        sys.stderr.write("WARNING: Published ports are discarded when using host network mode\n")
    from pallet.engine.options import Config, CreateOptions, EndpointSettings, Networking

    endpoint = EndpointSettings(IPv4Address=kw.get("ip") or None, IPv6Address=kw.get("ip6") or None,
                                Aliases=list(kw.get("network_alias") or ()), MacAddress=kw.get("mac_address") or None)
    endpoints = {}
    for m in more:                 # (one endpoint each: a network given twice cannot be an EndpointsConfig)
        if m == mode or m in endpoints:
            raise PalletError(f"network {m!r} is specified multiple times")
        endpoints[m] = EndpointSettings()
    if endpoint != EndpointSettings():
        endpoints = {mode: endpoint, **endpoints}
    entrypoint = kw.get("entrypoint")
    config = Config(
        Image=image, Cmd=list(command) or None, Entrypoint=None if entrypoint is None else [entrypoint], Env=env,
        WorkingDir=kw.get("workdir"), User=kw.get("user"), Hostname=kw.get("hostname"),
        Labels=labels(kw.get("label") or ()), StopSignal=kw.get("stop_signal"), StopTimeout=kw.get("stop_timeout"),
        Tty=kw.get("tty", False), OpenStdin=kw.get("interactive", False),
        AttachStdin=kw.get("interactive", False) and not detach, ExposedPorts=exposed, Healthcheck=health)
    networking = Networking(NetworkMode=mode, EndpointsConfig=endpoints, PortBindings=bindings,
                            PublishAllPorts=kw.get("publish_all", False), ExtraHosts=list(kw.get("add_host") or ()))
    return CreateOptions(config, name=kw.get("name"), platform=kw.get("platform"), pull=kw.get("pull") or "missing",
                         detach=detach, networking=networking, host_options=host_options, resources=resources,
                         host_settings=host_settings)


def create(eng, opts):
    """`eng.create(opts)`; an engine's error naming a field is said with the flag (hostflags.said)."""
    from pallet.errors import InvalidField

    try:
        return eng.create(opts)
    except InvalidField as e:
        from pallet.cli.hostflags import said

        raise said(e) from None


def run(st, image: str, command: tuple[str, ...], kw: dict, *, detach: bool, sig_proxy: bool) -> int:
    """`pallet run`: create the container, start its monitor, then print its id (-d) or attach to it
    and return its exit code.

    The monitor is forked first, before the store is opened (no SQLite state may cross a fork): it
    loads what starting a container needs on the other CPU while this process creates the container
    (row, snapshot, files, volumes), then is told its id ("G", see `pallet.engine.monitor.preforked`).
    If creating fails, closing our end of the socket ends it.
    """
    from pallet.engine import running

    tr = None
    if kw.get("trace") is not None:
        from pallet.cli import tracerun

        tr = tracerun.begin(kw, detach=detach)   # (a bad --trace FILE: nothing created)
    mode = networks(kw)[0]
    net = mode not in ("none", "host") and not mode.startswith("container:")
    pre = running.prefork(lambda: engine(st), "ports" if net and (kw.get("publish") or kw.get("publish_all")) else net)
    c = None
    try:
        eng = engine(st)
        opts = build_opts(image, command, kw, detach=detach)
        c = create(eng, opts)
        ws = None
        if opts.config.Tty:
            from pallet.engine.attach import winsize

            ws = winsize(0) or winsize(1)
        extra = {} if tr is None else {"trace": tracerun.handoff(tr, eng, st, c, opts)}
        if not detach:   # (docker's order: create, attach, start)
            from pallet.engine.events import container_event

            container_event(eng, c, "attach")
        pre.go(eng, c, winsize=ws, **extra)
    except BaseException as e:
        pre.close()
        if c is not None:   # created (and mounted), but no monitor will start it
            running.abandon(eng, c, opts)
            if isinstance(e, (BrokenPipeError, ConnectionResetError)):   # the monitor is gone
                raise PalletError(f"container {c.name} failed to start (its monitor exited)") from e
        if isinstance(e, Exception) and not isinstance(e, PalletError):
            raise PalletError(f"{type(e).__name__}: {e}") from e   # one line, exit 125, not a traceback
        raise
    ours = pre.started(eng, c, opts)
    if detach:
        ours.close()
        sys.stdout.write(c.id + "\n")
        sys.stdout.flush()
        return 0
    from pallet import long_lived
    from pallet.cli.attachtty import attach

    long_lived()   # attached: as long as the container runs
    import socket

    ours = socket.socket(fileno=ours.detach())
    how, code = attach(ours, stdin=opts.config.OpenStdin, tty=opts.config.Tty, sig_proxy=sig_proxy)
    ours.close()
    if tr is not None:
        tracerun.at_exit(tr)
    if how == "exited":
        return code
    if how == "detached":
        from pallet.engine.events import container_event

        container_event(eng, c, "detach")
        return 0
    c = eng.get(c.id)
    return c.exit_code if c.exit_code is not None else 125
