"""`pallet system info`: what this host and this storage root look like to pallet."""

from __future__ import annotations

import os

import click

from pallet.cli.common import print_json, state


def _cgroup_version() -> str:
    if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        return "2"
    if os.path.exists("/sys/fs/cgroup/unified"):
        return "1 (hybrid: cgroup2 at /sys/fs/cgroup/unified)"
    return "1"


def system_info() -> dict:
    from pallet import __version__
    from pallet.engine import snapshots
    from pallet.engine.core import Engine
    from pallet.engine.runtimes import default_runtime

    st = state()
    store = st.store()
    eng = Engine(store, st.runroot_path, storage_driver=st.storage_driver)
    cs = eng.list(all=True)
    storage = snapshots.storage_info(eng)
    u = os.uname()
    return {
        "ID": "",
        "Containers": len(cs),
        "ContainersRunning": sum(c.status == "running" for c in cs),
        "ContainersPaused": 0,
        "ContainersStopped": sum(c.status != "running" for c in cs),
        "Images": len(store.images()),
        "Driver": storage.get("Driver", ""),
        "DriverStatus": [[k, str(v)] for k, v in storage.items() if k != "Driver"],
        "LoggingDriver": "json-file",
        "CgroupDriver": "cgroupfs",
        "CgroupVersion": _cgroup_version(),
        "DefaultRuntime": default_runtime(),
        "Runtimes": {"pallet": {"path": "(in-process)"}, "runc": {"path": "runc"}, "crun": {"path": "crun"}},
        "KernelVersion": u.release,
        "OperatingSystem": _os_name(),
        "OSType": "linux",
        "Architecture": u.machine,
        "NCPU": os.cpu_count(),
        "Name": u.nodename,
        "ServerVersion": __version__,
        "DockerRootDir": str(st.root_path),
        "RunRoot": str(st.runroot_path),
        "SecurityOptions": ["name=seccomp,profile=builtin"],
    }


def _os_name() -> str:
    try:
        for line in open("/etc/os-release"):
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return "Linux"


@click.group("system")
def system_group() -> None:
    """Manage pallet's host state."""


@system_group.command("info")
@click.option("--format", "fmt", help="json for machine-readable output.")
def info_cmd(fmt: str | None) -> None:
    """Host, storage and runtime information."""
    info = system_info()
    if fmt == "json" or fmt == "{{json .}}":
        print_json(info)
        return
    click.echo(f"Containers: {info['Containers']}")
    click.echo(f" Running: {info['ContainersRunning']}")
    click.echo(f" Stopped: {info['ContainersStopped']}")
    click.echo(f"Images: {info['Images']}")
    click.echo(f"Storage Driver: {info['Driver']}")
    for k, v in info["DriverStatus"]:
        click.echo(f" {k}: {v}")
    click.echo(f"Logging Driver: {info['LoggingDriver']}")
    click.echo(f"Cgroup Driver: {info['CgroupDriver']}")
    click.echo(f"Cgroup Version: {info['CgroupVersion']}")
    click.echo(f"Default Runtime: {info['DefaultRuntime']}")
    click.echo(f"Kernel Version: {info['KernelVersion']}")
    click.echo(f"Operating System: {info['OperatingSystem']}")
    click.echo(f"Architecture: {info['Architecture']}")
    click.echo(f"CPUs: {info['NCPU']}")
    click.echo(f"Name: {info['Name']}")
    click.echo(f"Root Dir: {info['DockerRootDir']}")
    click.echo(f"Run Root: {info['RunRoot']}")


@system_group.command("diagram")
@click.option("-o", "--output", help="Write to FILE (the format follows its extension: .svg .html .dot .txt .json).")
@click.option("--format", "fmt", help="svg, html, dot, text or json (default: text on a terminal, else svg).")
def diagram_cmd(output: str | None, fmt: str | None) -> None:
    """A picture of the live host: kernel facilities, pallet's processes, store, containers, registries."""
    import sys

    from pallet.engine.core import Engine
    from pallet.explain import diagram

    f = diagram.choose_format(fmt, output, sys.stdout.isatty())
    if output is not None:
        diagram.check_output(output)
    st = state()
    store = st.store()
    eng = Engine(store, st.runroot_path, storage_driver=st.storage_driver)
    doc = diagram.collect(store, eng, config_file=st.config_file, storage_driver=st.storage_driver)
    text = diagram.render(doc, f)
    if output is None:
        sys.stdout.write(text)
    else:
        diagram.write(output, text)


def _add_events() -> None:
    from pallet.cli.events import events_cmd  # `system events` is docker's other name for `events`

    system_group.add_command(events_cmd, "events")


_add_events()
