"""run/create flags for storage, limits, security, restart policy and health (docker's names).

`host_options` adds them to a click command; `engine.hostconfig.parse_flags(kw)` turns the
values into HostConfig/Config fields before anything is created.

A new option of `run` must be added to `pallet.cli.fastrun.OPTIONS` too (the click-free path of
`pallet run`; tests/cli/test_fastrun.py fails until it is, and meanwhile the fast path hands any
command line using it to click).
"""

from __future__ import annotations

import click


def limit_options() -> list:
    return [
        click.option("-m", "--memory", help="Memory limit (e.g. 64m, 1g)."),
        click.option("--memory-swap", help="Memory plus swap limit (-1: unlimited; default twice --memory)."),
        click.option("--memory-reservation", help="Memory soft limit."),
        click.option("--cpus", help="Number of CPUs (CFS quota), e.g. 1.5."),
        click.option("-c", "--cpu-shares", help="CPU shares (relative weight)."),
        click.option("--cpu-period", help="CFS period in microseconds."),
        click.option("--cpu-quota", help="CFS quota in microseconds."),
        click.option("--cpuset-cpus", help="CPUs in which to allow execution (0-3, 0,1)."),
        click.option("--cpuset-mems", help="Memory nodes in which to allow execution."),
        click.option("--pids-limit", help="Maximum number of processes (-1: unlimited)."),
        click.option("--blkio-weight", help="Block IO weight (10-1000)."),
    ]


def host_options(f):
    opts = [
        click.option("-v", "--volume", multiple=True,
                     help="Bind mount HOST:CTR[:ro|rw], named volume NAME:CTR, or anonymous volume CTR."),
        click.option("--mount", multiple=True, help="type=bind|volume|tmpfs,src=...,dst=...[,ro][,...]"),
        click.option("--tmpfs", multiple=True, help="Mount a tmpfs at PATH[:OPTIONS]."),
        click.option("--read-only", is_flag=True, help="Mount the container's root filesystem read-only."),
        click.option("--volumes-from", multiple=True, help="Mount the volumes of CONTAINER[:ro|rw]."),
        *limit_options(),
        click.option("--ulimit", multiple=True, help="NAME=SOFT[:HARD] (never above the host's hard limit)."),
        click.option("--oom-score-adj", help="Tune the OOM killer's preference (-1000 to 1000)."),
        click.option("--oom-kill-disable", is_flag=True, help="Disable the OOM killer."),
        click.option("--device", multiple=True, help="Add a host device HOST[:CTR][:rwm]."),
        click.option("--cap-add", multiple=True, help="Add a Linux capability (or ALL)."),
        click.option("--cap-drop", multiple=True, help="Drop a Linux capability (or ALL)."),
        click.option("--privileged", is_flag=True, help="Every capability, every host device, no seccomp."),
        click.option("--security-opt", multiple=True,
                     help="seccomp=unconfined|PROFILE.json, no-new-privileges[=true]."),
        click.option("--sysctl", multiple=True, help="Namespaced kernel parameter KEY=VALUE."),
        click.option("--shm-size", help="Size of /dev/shm (default 64m)."),
        click.option("--restart", help="Restart policy: no, on-failure[:N], always, unless-stopped."),
        click.option("--health-cmd", help="Command to run to check health (run by /bin/sh -c)."),
        click.option("--health-interval", help="Time between checks (default 30s)."),
        click.option("--health-timeout", help="Maximum time a check may take (default 30s)."),
        click.option("--health-retries", help="Consecutive failures needed to report unhealthy (default 3)."),
        click.option("--health-start-period", help="Start period during which failures do not count."),
        click.option("--health-start-interval", help="Time between checks during the start period."),
        click.option("--no-healthcheck", is_flag=True, help="Disable any container-specified HEALTHCHECK."),
    ]
    for o in reversed(opts):
        f = o(f)
    return f
