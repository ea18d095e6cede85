"""The one table of `run`/`create` options: click's options and the click-free fast parser are both made from it.

Each row: (option strings, keyword name, kind, help, extra). `kind` is FLAG (is_flag), VALUE (one
string) or MULTI (repeatable); `extra` holds what click needs beyond that (a default shown in the
help, a path type). `pallet.cli.container` and `pallet.cli.limits` turn rows into click options
(`click_options`); `pallet.cli.fastrun` parses `pallet run` with the same rows, without importing
click (start-up is the hot path). `pallet.cli.hostflags` and `containerrun.build_opts` turn the values
into the engine's records (`engine.options`: docker's Config/HostConfig field names).
"""

from __future__ import annotations

from pallet.flagtable import FLAG, MULTI, OPTIONAL, VALUE  # noqa: F401 - the kinds (OPTIONAL: --opt or --opt=VALUE, "" alone)

CREATE = [
    (("--name",), "name", VALUE, "Assign a name to the container.", {}),
    (("--rm",), "auto_remove", FLAG, "Remove the container when it exits.", {}),
    (("-i", "--interactive"), "interactive", FLAG, "Keep STDIN open.", {}),
    (("-t", "--tty"), "tty", FLAG, "Allocate a pseudo-TTY.", {}),
    (("-e", "--env"), "env", MULTI, "Set an environment variable (KEY=VALUE or KEY).", {}),
    (("--env-file",), "env_file", MULTI, "Read variables from a file.", {"file": True}),
    (("-w", "--workdir"), "workdir", VALUE, "Working directory inside the container.", {}),
    (("-u", "--user"), "user", VALUE, "USER[:GROUP] (names from the container's /etc/passwd, /etc/group).", {}),
    (("-h", "--hostname"), "hostname", VALUE, "Container host name (default: the short container ID).", {}),
    (("--entrypoint",), "entrypoint", VALUE, "Override the image's ENTRYPOINT (\"\" clears it).", {}),
    (("--network", "--net"), "network", MULTI,
     "Network: bridge (the default: docker's default bridge network, no name resolution on it), a "
     "network's name, host, none (loopback only) or container:NAME (repeat it for several networks; --ip, "
     "--network-alias apply to the first).", {}),
    (("--ip",), "ip", VALUE, "IPv4 address on the (user-defined) network, e.g. 10.1.0.20.", {}),
    (("--ip6",), "ip6", VALUE, "IPv6 address on the (user-defined, --ipv6) network, e.g. fd00:1::20.", {}),
    (("--network-alias", "--net-alias"), "network_alias", MULTI, "Another name of the container on its network.", {}),
    (("--mac-address",), "mac_address", VALUE, "MAC address of the container's interface (02:42:ac:11:00:02).", {}),
    (("-p", "--publish"), "publish", MULTI,
     "Publish [hostIP:][hostPort:]containerPort[/tcp|udp|sctp] (ranges: 8000-8001:80-81).", {}),
    (("-P", "--publish-all"), "publish_all", FLAG, "Publish every exposed port to a random host port.", {}),
    (("--expose",), "expose", MULTI, "Expose a port or a range of ports (80, 8000-8003/udp).", {}),
    (("--dns",), "dns", MULTI, "A name server for /etc/resolv.conf (instead of the host's).", {}),
    (("--dns-search",), "dns_search", MULTI, "A search domain for /etc/resolv.conf (\".\": none).", {}),
    (("--dns-option", "--dns-opt"), "dns_option", MULTI, "An options line item for /etc/resolv.conf (ndots:2).", {}),
    (("--add-host",), "add_host", MULTI, "Add a HOST:IP line to /etc/hosts (IP host-gateway: the network's gateway).",
     {}),
    (("--init",), "init", FLAG, "Run a small init (catatonit) as PID 1 that reaps zombies.", {}),
    (("--stop-signal",), "stop_signal", VALUE, "Signal to stop the container (default: the image's or SIGTERM).", {}),
    (("--stop-timeout",), "stop_timeout", VALUE, "Seconds to wait for stop before SIGKILL (default 10).", {}),
    (("-l", "--label"), "label", MULTI, "Set a label KEY=VALUE.", {}),
    (("--runtime",), "runtime", VALUE, "OCI runtime: pallet, runc, crun or a path (default: pallet).", {}),
    (("--platform",), "platform", VALUE, "Require the image to be this os/arch.", {}),
    (("--pull",), "pull", VALUE, "Pull the image: missing, always or never.", {"default": "missing"}),
]

LIMITS = [
    (("-m", "--memory"), "memory", VALUE, "Memory limit (e.g. 64m, 1g).", {}),
    (("--memory-swap",), "memory_swap", VALUE, "Memory plus swap limit (-1: unlimited; default twice --memory).", {}),
    (("--memory-reservation",), "memory_reservation", VALUE, "Memory soft limit.", {}),
    (("--cpus",), "cpus", VALUE, "Number of CPUs (CFS quota), e.g. 1.5.", {}),
    (("-c", "--cpu-shares"), "cpu_shares", VALUE, "CPU shares (relative weight).", {}),
    (("--cpu-period",), "cpu_period", VALUE, "CFS period in microseconds.", {}),
    (("--cpu-quota",), "cpu_quota", VALUE, "CFS quota in microseconds.", {}),
    (("--cpuset-cpus",), "cpuset_cpus", VALUE, "CPUs in which to allow execution (0-3, 0,1).", {}),
    (("--cpuset-mems",), "cpuset_mems", VALUE, "Memory nodes in which to allow execution.", {}),
    (("--pids-limit",), "pids_limit", VALUE, "Maximum number of processes (-1: unlimited).", {}),
    (("--blkio-weight",), "blkio_weight", VALUE, "Block IO weight (10-1000).", {}),
]

HOST = [
    (("-v", "--volume"), "volume", MULTI,
     "Bind mount HOST:CTR[:ro|rw], named volume NAME:CTR, or anonymous volume CTR.", {}),
    (("--mount",), "mount", MULTI, "type=bind|volume|tmpfs,src=...,dst=...[,ro][,...]", {}),
    (("--tmpfs",), "tmpfs", MULTI, "Mount a tmpfs at PATH[:OPTIONS].", {}),
    (("--read-only",), "read_only", FLAG, "Mount the container's root filesystem read-only.", {}),
    (("--volumes-from",), "volumes_from", MULTI, "Mount the volumes of CONTAINER[:ro|rw].", {}),
    *LIMITS,
    (("--ulimit",), "ulimit", MULTI, "NAME=SOFT[:HARD] (never above the host's hard limit).", {}),
    (("--oom-score-adj",), "oom_score_adj", VALUE, "Tune the OOM killer's preference (-1000 to 1000).", {}),
    (("--oom-kill-disable",), "oom_kill_disable", FLAG, "Disable the OOM killer.", {}),
    (("--device",), "device", MULTI, "Add a host device HOST[:CTR][:rwm].", {}),
    (("--cap-add",), "cap_add", MULTI, "Add a Linux capability (or ALL).", {}),
    (("--cap-drop",), "cap_drop", MULTI, "Drop a Linux capability (or ALL).", {}),
    (("--privileged",), "privileged", FLAG, "Every capability, every host device, no seccomp.", {}),
    (("--security-opt",), "security_opt", MULTI, "seccomp=unconfined|PROFILE.json, no-new-privileges[=true], "
     "systempaths=unconfined.", {}),
    (("--pid",), "pid", VALUE, "PID namespace: host (share the host's) or private (default).", {}),
    (("--ipc",), "ipc", VALUE, "IPC namespace: host (share the host's), private or shareable (default).", {}),
    (("--sysctl",), "sysctl", MULTI, "Namespaced kernel parameter KEY=VALUE.", {}),
    (("--shm-size",), "shm_size", VALUE, "Size of /dev/shm (default 64m).", {}),
    (("--restart",), "restart", VALUE, "Restart policy: no, on-failure[:N], always, unless-stopped.", {}),
    (("--health-cmd",), "health_cmd", VALUE, "Command to run to check health (run by /bin/sh -c).", {}),
    (("--health-interval",), "health_interval", VALUE, "Time between checks (default 30s).", {}),
    (("--health-timeout",), "health_timeout", VALUE, "Maximum time a check may take (default 30s).", {}),
    (("--health-retries",), "health_retries", VALUE, "Consecutive failures needed to report unhealthy (default 3).", {}),
    (("--health-start-period",), "health_start_period", VALUE, "Start period during which failures do not count.", {}),
    (("--health-start-interval",), "health_start_interval", VALUE, "Time between checks during the start period.", {}),
    (("--no-healthcheck",), "no_healthcheck", FLAG, "Disable any container-specified HEALTHCHECK.", {}),
]

# run's own (besides --sig-proxy, a click.BOOL with an optional value that both parsers handle apart)
RUN = [
    (("-d", "--detach"), "detach", FLAG, "Run in the background and print the container ID.", {}),
    (("--trace",), "trace", OPTIONAL,
     "Record every kernel call that makes the container (`pallet trace NAME`); --trace=FILE writes it to FILE.",
     {"metavar": "[=FILE]"}),
]

RUN_OPTIONS = [*CREATE, *HOST, *RUN]


def optional_values(args: list[str], rows=None) -> list[str]:
    """`--trace` given alone (before the image) becomes `--trace=`: click would otherwise take the next
    word (the image) as its value; `--trace=FILE` is the only form with a value, as for the fast parser."""
    rows = RUN_OPTIONS if rows is None else rows
    kinds = {o: kind for names, _, kind, _, _ in rows for o in names}
    out = list(args)
    i = 0
    while i < len(out):
        a = out[i]
        if a == "--" or a[:1] != "-" or a == "-":
            break
        if a.startswith("--"):
            kind = kinds.get(a)
            if kind == OPTIONAL:
                out[i] = a + "="
            elif kind in (VALUE, MULTI) or a == "--sig-proxy" and i + 1 < len(out) and out[i + 1][:1] != "-":
                i += 1   # its value
        else:
            for j in range(1, len(a)):
                if kinds.get("-" + a[j]) in (VALUE, MULTI):
                    if j == len(a) - 1:
                        i += 1   # the value is the next word
                    break
        i += 1
    return out


def click_options(rows) -> list:
    """click.option decorators for `rows`, in order."""
    import click

    out = []
    for names, dest, kind, help_text, extra in rows:
        kw: dict = {"help": help_text}
        if kind == FLAG:
            kw["is_flag"] = True
        elif kind == OPTIONAL:
            kw["is_flag"], kw["flag_value"], kw["default"] = False, "", None
        elif kind == MULTI:
            kw["multiple"] = True
        if "default" in extra:
            kw["default"], kw["show_default"] = extra["default"], True
        if extra.get("metavar"):
            kw["metavar"] = extra["metavar"]
        if extra.get("file"):
            kw["type"] = click.Path(dir_okay=False)
        out.append(click.option(*names, dest, **kw))
    return out


def apply(f, rows):
    for o in reversed(click_options(rows)):
        f = o(f)
    return f
