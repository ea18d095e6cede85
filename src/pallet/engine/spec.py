"""The OCI runtime spec (config.json) for a container: docker's defaults plus the image config and flags.

Pure functions of their inputs (the container's Config/HostConfig dicts, the resolved
user, the rootfs and per-container file paths), so they are easy to test and to show.
"""

from __future__ import annotations

import os
import resource

from pallet.errors import InvalidField

TYPE_CHECKING = False  # typing is not imported at run time (start-up)
if TYPE_CHECKING:
    from typing import Any


DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# moby oci/caps/defaults.go DefaultCapabilities()
DEFAULT_CAPS = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
]

# moby oci/defaults.go
MASKED_PATHS = [
    "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
    "/sys/devices/virtual/powercap",
]
READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]

SHM_SIZE = 64 * 1024 * 1024
INIT_PATH = "/run/pallet-init"   # where --init's reaper is bind-mounted (docker: /sbin/docker-init)


def _dev(kind: str, major: int | None, minor: int | None, access: str = "rwm", allow: bool = True) -> dict:
    d: dict[str, Any] = {"allow": allow, "type": kind, "access": access}
    if major is not None:
        d["major"] = major
    if minor is not None:
        d["minor"] = minor
    return d


# the device cgroup rules docker gives a non-privileged container
DEVICE_RULES = [
    {"allow": False, "access": "rwm"},
    _dev("c", None, None, "m"), _dev("b", None, None, "m"),
    _dev("c", 1, 3), _dev("c", 1, 8), _dev("c", 1, 7), _dev("c", 5, 0), _dev("c", 1, 5), _dev("c", 1, 9),
    _dev("c", 136, None), _dev("c", 5, 2), _dev("c", 10, 200),
]


def default_mounts() -> list[dict]:
    return [
        {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["ro", "nosuid", "noexec", "nodev"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", f"size={SHM_SIZE}"]},
    ]


def rlimits() -> list[dict]:
    """RLIMIT_NOFILE like docker's (1048576), never above what the host allows us."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 1048576 if hard == resource.RLIM_INFINITY else min(1048576, hard)
    return [{"type": "RLIMIT_NOFILE", "hard": want, "soft": want}]


def merge_env(base: list[str], extra: list[str]) -> list[str]:
    """KEY=VALUE lists: later entries replace earlier ones with the same key, order kept."""
    out: dict[str, str] = {}
    for item in [*base, *extra]:
        k, _, _ = item.partition("=")
        out.pop(k, None)
        out[k] = item
    return list(out.values())


def process_env(config: dict, *, home: str, hostname: str) -> list[str]:
    env = list(config.get("Env") or [])
    keys = {e.partition("=")[0] for e in env}
    pre = []
    if "PATH" not in keys:
        pre.append(f"PATH={DEFAULT_PATH}")
    pre.append(f"HOSTNAME={hostname}")
    if config.get("Tty") and "TERM" not in keys:
        pre.append("TERM=xterm")
    if "HOME" not in keys:
        pre.append(f"HOME={home}")
    return merge_env(pre, env)


def command(config: dict) -> list[str]:
    return list(config.get("Entrypoint") or []) + list(config.get("Cmd") or [])


def etc_hosts(hostname: str, network: str, extra_hosts: list[str],
              addresses: list[tuple[str, list[str]]] | None = None) -> str:
    """docker's /etc/hosts: the defaults, the --add-host lines, then the container's own name — on
    127.0.0.1 without a network, else one line per address it has (`addresses`: [(ip, [names])];
    empty until it is attached)."""
    if network == "host":
        try:
            base = open("/etc/hosts").read()
        except OSError:
            base = "127.0.0.1\tlocalhost\n"
        if base and not base.endswith("\n"):
            base += "\n"
    else:
        base = ("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\n"
                "ff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n")
        if addresses is None:
            base += f"127.0.0.1\t{hostname}\n"
    for h in extra_hosts:
        name, _, ip = h.partition(":")
        base += f"{ip}\t{name}\n"
    for ip, names in addresses or ():
        base += f"{ip}\t{' '.join(names)}\n"
    return base


def resolv_conf(network: str, dns: list[str] | None = None, search: list[str] | None = None,
                options: list[str] | None = None) -> str:
    """The host's resolv.conf ($PALLET_RESOLV_CONF if set); without host networking, loopback name
    servers (unreachable) are dropped.
    docker's --dns (the name servers instead), --dns-search (the search line instead; "." for none)
    and --dns-option (the options line instead) apply to either."""
    try:
        text = open(os.environ.get("PALLET_RESOLV_CONF") or "/etc/resolv.conf").read()
    except OSError:
        text = ""
    if dns or search or options:
        return _resolv_override(text if network == "host" else resolv_conf(network), dns, search, options)
    if network == "host":
        return text
    lines, servers = [], 0
    for line in text.splitlines():
        parts = line.split()
        if parts[:1] == ["nameserver"] and len(parts) > 1:
            if parts[1].startswith("127.") or parts[1] == "::1":
                continue
            servers += 1
        lines.append(line)
    if not servers:
        lines += ["nameserver 8.8.8.8", "nameserver 8.8.4.4"]
    return "\n".join(lines) + "\n"


def _resolv_override(text: str, dns, search, options) -> str:
    lines = []
    for line in text.splitlines():
        key = (line.split() or [""])[0]
        if (dns and key == "nameserver") or (search and key in ("search", "domain")) or \
                (options and key == "options"):
            continue
        lines.append(line)
    lines += [f"nameserver {d}" for d in dns or ()]
    if search and [s for s in search if s != "."]:
        lines.append("search " + " ".join(s for s in search if s != "."))
    if options:
        lines.append("options " + " ".join(options))
    return "\n".join(lines) + "\n"


INIT_CANDIDATES = ("/usr/bin/catatonit", "/usr/libexec/podman/catatonit", "/usr/bin/tini-static", "/usr/bin/tini",
                   "/usr/bin/docker-init")


def init_binary() -> str | None:
    """The reaper `--init` runs as PID 1: catatonit (podman's) or tini (docker's docker-init)."""
    import shutil

    for p in INIT_CANDIDATES:
        if os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    return shutil.which("catatonit") or shutil.which("tini")


def require_init_binary() -> str:
    init = init_binary()
    if init is None:
        raise InvalidField("Init", "{name} needs an init binary, and neither catatonit nor tini was found "
                           "(apt-get install catatonit)")
    return init


def build_spec(*, cid: str, config: dict, host_config: dict, rootfs: str, files_dir: str,
               user, hostname: str, cgroups_path: str | None = None, netns_path: str | None = None) -> dict:
    """The runtime spec. `user` is an engine.users.ExecUser already resolved in the rootfs; `netns_path`:
    the network namespace to join (`--network container:X`) instead of a new one."""
    network = host_config.get("NetworkMode") or "none"
    args = command(config)
    if host_config.get("Init"):
        args = [INIT_PATH, "--", *args]
    caps = list(DEFAULT_CAPS)
    from pallet.engine.seccomp import default_seccomp

    mounts = default_mounts()
    for name in ("hostname", "hosts", "resolv.conf"):
        mounts.append({"destination": f"/etc/{name}", "type": "bind", "source": os.path.join(files_dir, name),
                       "options": ["rbind", "rprivate"]})
    if host_config.get("Init"):
        mounts.append({"destination": INIT_PATH, "type": "bind", "source": require_init_binary(),
                       "options": ["bind", "ro", "nosuid", "nodev"]})
    namespaces = [{"type": t} for t, mode in (("pid", "PidMode"), ("ipc", "IpcMode"))   # (host: the host's)
                  if host_config.get(mode) != "host"]
    namespaces += [{"type": "uts"}, {"type": "mount"}, {"type": "cgroup"}]
    if netns_path:
        namespaces.append({"type": "network", "path": netns_path})
    elif network != "host":
        namespaces.append({"type": "network"})
    linux: dict[str, Any] = {
        "namespaces": namespaces,
        "maskedPaths": list(MASKED_PATHS),
        "readonlyPaths": list(READONLY_PATHS),
        "resources": {"devices": [dict(d) for d in DEVICE_RULES]},
        "seccomp": default_seccomp(caps),
    }
    if cgroups_path:
        linux["cgroupsPath"] = cgroups_path
    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": bool(config.get("Tty")),
            "user": {"uid": user.uid, "gid": user.gid,
                     **({"additionalGids": list(user.additional_gids)} if user.additional_gids else {})},
            "args": args,
            "env": process_env(config, home=user.home, hostname=hostname),
            "cwd": config.get("WorkingDir") or "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "rlimits": rlimits(),
            "noNewPrivileges": False,
        },
        "root": {"path": rootfs, "readonly": False},
        "hostname": hostname,
        "mounts": mounts,
        "linux": linux,
        "annotations": {"io.pallet.container.id": cid},
    }
