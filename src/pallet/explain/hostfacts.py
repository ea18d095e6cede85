"""Kernel facts of the live host, read from /proc, /sys and the tools themselves (never assumed).

    namespaces(pid)      {type: inode} of /proc/PID/ns/*
    host_namespaces()    pid 1's (else this process's: the ones pallet runs in)
    cgroups()            version (v1, v2, hybrid) and each hierarchy, from /proc/self/mountinfo
    overlay_mounts()     every overlayfs mount: mount point and its lowerdir/upperdir options
    seccomp()            libseccomp's version (through the runtime's kernel layer), the kernel's actions
    seccomp_mode(pid)    the Seccomp line of /proc/PID/status (0 off, 1 strict, 2 filter)
    nft_tables()         `nft list tables` when nft is installed
    link_exists(name)    whether this network namespace has the link (a network's bridge)
    processes()          pid -> argv of every process (/proc/*/cmdline)
    runtimes()           pallet (in-process), runc, crun: installed or not, path, version line
"""

from __future__ import annotations

import os
import shutil
import subprocess

NS_TYPES = ("cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts")


def namespaces(pid: int | str = "self") -> dict[str, int]:
    out: dict[str, int] = {}
    for t in NS_TYPES:
        try:
            link = os.readlink(f"/proc/{pid}/ns/{t}")     # "mnt:[4026531841]"
        except OSError:
            continue
        out[t] = int(link[link.index("[") + 1:-1])
    return out


def host_namespaces() -> tuple[str, dict[str, int]]:
    """("1", pid 1's namespaces), or ("self", this process's) when /proc/1/ns cannot be read (no
    ptrace access to pid 1, e.g. without CAP_SYS_PTRACE)."""
    ns = namespaces(1)
    return ("1", ns) if ns else ("self", namespaces("self"))


def _unescape(text: str) -> str:
    """mountinfo's octal escapes (\\040 for a space)."""
    if "\\" not in text:
        return text
    import re

    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), text)


def mountinfo(path: str = "/proc/self/mountinfo") -> list[dict]:
    """Each line of mountinfo as {id, parent, root, mountpoint, options, fstype, source, super}."""
    out = []
    try:
        lines = open(path).read().splitlines()
    except OSError:
        return out
    for line in lines:
        left, sep, right = line.partition(" - ")
        f = left.split()
        r = right.split()
        if not sep or len(f) < 6 or len(r) < 2:
            continue
        out.append({"id": int(f[0]), "parent": int(f[1]), "root": _unescape(f[3]),
                    "mountpoint": _unescape(f[4]), "options": f[5], "fstype": r[0],
                    "source": _unescape(r[1]), "super": r[2] if len(r) > 2 else ""})
    return out


def cgroups(mounts: list[dict] | None = None) -> dict:
    """{"version": "v1"|"v2"|"hybrid"|"none", "hierarchies": [{mountpoint, type, controllers}]}."""
    mounts = mountinfo() if mounts is None else mounts
    hier = []
    for m in mounts:
        if m["fstype"] == "cgroup2":
            ctrls: list[str] = []
            try:
                with open(os.path.join(m["mountpoint"], "cgroup.controllers")) as f:
                    ctrls = f.read().split()
            except OSError:
                pass
            hier.append({"mountpoint": m["mountpoint"], "type": "cgroup2", "controllers": ctrls})
        elif m["fstype"] == "cgroup":
            opts = m["super"].split(",")
            known = [o for o in opts if o not in ("rw", "ro") and "=" not in o and o not in
                     ("nsdelegate", "memory_recursiveprot", "clone_children", "noprefix", "xattr")]
            named = [o for o in opts if o.startswith("name=")]
            hier.append({"mountpoint": m["mountpoint"], "type": "cgroup", "controllers": known + named})
    v1 = any(h["type"] == "cgroup" for h in hier)
    v2 = any(h["type"] == "cgroup2" for h in hier)
    version = "hybrid" if v1 and v2 else "v1" if v1 else "v2" if v2 else "none"
    return {"version": version, "hierarchies": hier}


def cgroup_paths(pid: int | str) -> list[str]:
    """The lines of /proc/PID/cgroup as 'controllers:path' ('' controllers is the v2 hierarchy)."""
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            return [ln.split(":", 1)[1] for ln in f.read().splitlines() if ":" in ln]
    except OSError:
        return []


def main_cgroup(lines: list[str]) -> str:
    """The path most hierarchies give (the container's own cgroup), '/' if all are the root."""
    counts: dict[str, int] = {}
    for ln in lines:
        path = ln.split(":", 1)[1] if ":" in ln else ln
        if path != "/":
            counts[path] = counts.get(path, 0) + 1
    return max(counts, key=lambda p: (counts[p], -len(p))) if counts else "/"


def overlay_mounts(mounts: list[dict] | None = None) -> list[dict]:
    mounts = mountinfo() if mounts is None else mounts
    out = []
    for m in mounts:
        if m["fstype"] != "overlay":
            continue
        opts = {}
        for o in m["super"].split(","):
            k, _, v = o.partition("=")
            opts[k] = v
        lowers = [x for x in opts.get("lowerdir", "").split(":") if x]
        out.append({"mount_id": m["id"], "mountpoint": m["mountpoint"], "lowers": len(lowers),
                    "upperdir": opts.get("upperdir", ""), "readonly": "upperdir" not in opts})
    return out


def seccomp() -> dict:
    """libseccomp's version (via the runtime's kernel layer) and the actions this kernel offers."""
    out: dict = {"libseccomp": None}
    try:
        from pallet.linux import seccomp as sc

        out["libseccomp"] = sc.version()
    except Exception as e:  # noqa: BLE001 - libseccomp missing or unloadable: say so, do not fail
        out["error"] = str(e) or type(e).__name__
    try:
        with open("/proc/sys/kernel/seccomp/actions_avail") as f:
            out["actions"] = f.read().split()
    except OSError:
        pass
    return out


def seccomp_mode(pid: int | str) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("Seccomp:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def nft_tables() -> dict:
    """{"installed": bool, "tables": [{"family", "name"}], "error"?}: `nft list tables` as it is."""
    nft = shutil.which("nft") or next((p for p in ("/usr/sbin/nft", "/sbin/nft") if os.path.exists(p)), None)
    if nft is None:
        return {"installed": False, "tables": []}
    try:
        cp = subprocess.run([nft, "list", "tables"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as e:
        return {"installed": True, "tables": [], "error": str(e)}
    if cp.returncode != 0:
        return {"installed": True, "tables": [], "error": (cp.stderr.strip().splitlines() or [""])[0]}
    tables = []
    for line in cp.stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "table":
            tables.append({"family": parts[1], "name": parts[2]})
    return {"installed": True, "tables": tables}


def link_exists(name: str) -> bool:
    """Whether this network namespace has a link of that name (by ioctl: /sys/class/net shows the
    namespace of whoever mounted /sys, which need not be ours)."""
    import socket

    try:
        socket.if_nametoindex(name)
        return True
    except OSError:
        return False


def processes() -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for e in os.scandir("/proc"):
        if not e.name.isdigit():
            continue
        try:
            with open(f"/proc/{e.name}/cmdline", "rb") as f:
                raw = f.read()
        except OSError:
            continue
        if raw:
            out[int(e.name)] = [a.decode(errors="replace") for a in raw.rstrip(b"\0").split(b"\0")]
    return out


def runtimes() -> list[dict]:
    """The runtimes `--runtime` can name, and which are installed here."""
    from pallet.engine.runtimes import available_pallet_runtime, default_runtime

    default = default_runtime()
    out = [{"name": "pallet", "installed": available_pallet_runtime(), "path": "(in-process)",
            "version": "", "default": default == "pallet"}]
    for name in ("runc", "crun"):
        path = shutil.which(name)
        version = ""
        if path:
            try:
                cp = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=5)
                version = (cp.stdout.splitlines() or [""])[0]
            except (OSError, subprocess.TimeoutExpired):
                pass
        out.append({"name": name, "installed": path is not None, "path": path or "", "version": version,
                    "default": default == name})
    return out
