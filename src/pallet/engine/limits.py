"""HostConfig -> runtime spec (mounts, resources, caps, seccomp, devices, sysctls, rlimits), `update`, `stats`.

`apply_host_config(spec, c)` is called by the engine right after `spec.build_spec`
and edits the spec in place; docker's semantics for each field:

- Memory / MemorySwap (default 2x Memory, -1 unlimited) / MemoryReservation / OomKillDisable
- NanoCpus (CFS quota over a 100 ms period), CpuShares, CpuPeriod/CpuQuota, CpusetCpus/Mems, PidsLimit
- Ulimits, OomScoreAdj, ShmSize, Sysctls, ReadonlyRootfs
- CapAdd / CapDrop (ALL too), Privileged (every capability and host device, no seccomp, no masks)
- SecurityOpt seccomp=unconfined|FILE (docker's profile format), no-new-privileges
- Devices (a node in /dev plus a devices-cgroup rule)
"""

from __future__ import annotations

import os
import stat

from pallet.errors import PalletError

TYPE_CHECKING = False  # typing is not imported at run time (start-up)
if TYPE_CHECKING:
    from typing import Any


def resources_from(host: dict) -> dict:
    """The OCI linux.resources for the limit fields of a HostConfig (only the ones that are set)."""
    r: dict[str, Any] = {}
    mem: dict[str, Any] = {}
    if host.get("Memory"):
        mem["limit"] = host["Memory"]
        swap = host.get("MemorySwap")
        if swap in (None, 0):
            mem["swap"] = host["Memory"] * 2
        else:
            mem["swap"] = swap
    elif host.get("MemorySwap") == -1:
        mem["swap"] = -1
    if host.get("MemoryReservation"):
        mem["reservation"] = host["MemoryReservation"]
    if host.get("OomKillDisable"):
        mem["disableOOMKiller"] = True
    if mem:
        r["memory"] = mem
    cpu: dict[str, Any] = {}
    if host.get("CpuShares"):
        cpu["shares"] = host["CpuShares"]
    if host.get("NanoCpus"):
        cpu["period"] = 100000
        cpu["quota"] = host["NanoCpus"] * 100000 // 1_000_000_000
    if host.get("CpuPeriod"):
        cpu["period"] = host["CpuPeriod"]
    if host.get("CpuQuota"):
        cpu["quota"] = host["CpuQuota"]
    if host.get("CpusetCpus"):
        cpu["cpus"] = host["CpusetCpus"]
    if host.get("CpusetMems"):
        cpu["mems"] = host["CpusetMems"]
    if cpu:
        r["cpu"] = cpu
    if host.get("PidsLimit") not in (None, 0):
        r["pids"] = {"limit": host["PidsLimit"]}
    if host.get("BlkioWeight"):
        r["blockIO"] = {"weight": host["BlkioWeight"]}
    return r


def _caps(host: dict) -> list[str]:
    from pallet.engine.hostconfig import host_caps
    from pallet.engine.spec import DEFAULT_CAPS

    if host.get("Privileged"):
        return host_caps()
    add = host.get("CapAdd") or []
    drop = host.get("CapDrop") or []
    caps = [] if "ALL" in drop else list(DEFAULT_CAPS)
    if "ALL" in add:
        caps = host_caps()
    else:
        caps += [c for c in add if c not in caps]
    caps = [c for c in caps if c not in drop or c in add]
    return caps


def seccomp_from_profile(prof: dict, capabilities: list[str]) -> dict:
    """A docker-format seccomp profile (or an OCI one) -> linux.seccomp for this arch and cap set."""
    from pallet.engine import seccomp as sc

    if "syscalls" in prof and not prof.get("archMap") and not any(
            "includes" in r or "excludes" in r for r in prof.get("syscalls") or ()):
        return {k: v for k, v in prof.items() if k in ("defaultAction", "defaultErrnoRet", "architectures",
                                                        "flags", "syscalls", "listenerPath")}
    return sc.to_oci(prof, capabilities)


def _device_entry(path_on_host: str, path_in_ctr: str) -> dict | None:
    try:
        st = os.stat(path_on_host)
    except OSError:
        return None
    if stat.S_ISCHR(st.st_mode):
        kind = "c"
    elif stat.S_ISBLK(st.st_mode):
        kind = "b"
    else:
        return None
    return {"path": path_in_ctr, "type": kind, "major": os.major(st.st_rdev), "minor": os.minor(st.st_rdev),
            "fileMode": stat.S_IMODE(st.st_mode), "uid": st.st_uid, "gid": st.st_gid}


def _host_devices() -> list[dict]:
    out = []
    for dirpath, dirnames, filenames in os.walk("/dev"):
        dirnames[:] = [d for d in dirnames if d not in ("pts", "shm", "mqueue", "fd")]
        for n in filenames:
            p = os.path.join(dirpath, n)
            if p in ("/dev/console", "/dev/ptmx", "/dev/tty") or os.path.islink(p):
                continue
            e = _device_entry(p, p)
            if e:
                out.append(e)
    return out


def apply_host_config(spec: dict, c) -> None:
    from pallet.engine import volumes
    from pallet.engine.seccomp import default_seccomp

    host = c.HostConfig
    proc = spec["process"]
    linux = spec["linux"]
    # mounts: user mounts replace defaults at the same destination; /dev/shm's size
    user = volumes.spec_mounts(c)
    dests = {os.path.normpath(m["destination"]) for m in user}
    mounts = [m for m in spec["mounts"] if os.path.normpath(m["destination"]) not in dests]
    shm = host.get("ShmSize")
    for m in mounts:
        if m["destination"] == "/dev/shm" and shm:
            m["options"] = [o for o in m["options"] if not o.startswith("size=")] + [f"size={shm}"]
    privileged = bool(host.get("Privileged"))
    if privileged:
        for m in mounts:
            if m["type"] in ("sysfs", "cgroup"):
                m["options"] = [o for o in m["options"] if o != "ro"] + ["rw"]
    spec["mounts"] = mounts + user
    if host.get("ReadonlyRootfs"):
        spec["root"]["readonly"] = True
    # resources
    res = linux.setdefault("resources", {})
    res.update(resources_from(host))
    # capabilities and seccomp
    caps = _caps(host)
    proc["capabilities"] = {"bounding": list(caps), "effective": list(caps), "permitted": list(caps)}
    secopts = host.get("SecurityOpt") or []
    seccomp_opt = None
    for o in secopts:
        k, _, v = o.partition("=") if "=" in o else o.partition(":")
        if k == "seccomp":
            seccomp_opt = v
        elif k == "no-new-privileges" and v in ("", "true"):
            proc["noNewPrivileges"] = True
        elif k == "systempaths" and v == "unconfined":   # (docker's: nothing masked, /proc not read-only)
            linux["maskedPaths"] = []
            linux["readonlyPaths"] = []
    if privileged and seccomp_opt is None or seccomp_opt == "unconfined":
        linux.pop("seccomp", None)
    elif seccomp_opt:
        from pallet.engine.hostconfig import load_seccomp_file

        linux["seccomp"] = seccomp_from_profile(load_seccomp_file(seccomp_opt), caps)
    elif host.get("CapAdd") or host.get("CapDrop"):
        linux["seccomp"] = default_seccomp(caps)
    if privileged:
        linux["maskedPaths"] = []
        linux["readonlyPaths"] = []
        linux["devices"] = _host_devices()
        res["devices"] = [{"allow": True, "access": "rwm"}]
    # devices
    for d in host.get("Devices") or ():
        e = _device_entry(d["PathOnHost"], d["PathInContainer"])
        if e is None:
            raise PalletError(f"device {d['PathOnHost']} does not exist or is not a device")
        linux.setdefault("devices", []).append(e)
        res.setdefault("devices", []).append({"allow": True, "type": e["type"], "major": e["major"],
                                              "minor": e["minor"], "access": d.get("CgroupPermissions") or "rwm"})
    # process
    if host.get("Ulimits"):
        from pallet.engine.hostconfig import ULIMITS

        rl = {r["type"]: r for r in proc.get("rlimits") or ()}
        for u in host["Ulimits"]:
            if u["Name"] in ULIMITS:
                t = "RLIMIT_" + u["Name"].upper()
                inf = 2 ** 64 - 1
                rl[t] = {"type": t, "soft": inf if u["Soft"] == -1 else u["Soft"],
                         "hard": inf if u["Hard"] == -1 else u["Hard"]}
        proc["rlimits"] = list(rl.values())
    if host.get("OomScoreAdj"):
        proc["oomScoreAdj"] = host["OomScoreAdj"]
    if host.get("Sysctls"):
        linux["sysctl"] = dict(host["Sysctls"])


# ---- update ---------------------------------------------------------------------------------
def update(engine, c, host_changes, restart: dict | None = None) -> list[str]:
    """`pallet update`: new limits (`options.Resources`, checked here, or HostConfig fields) into the row
    and, when running, into the cgroup through the runtime."""
    import json

    from pallet.engine.hostconfig import check_resources
    from pallet.engine.options import Resources

    if isinstance(host_changes, Resources):
        host_changes = check_resources(host_changes)
    host = dict(c.HostConfig)
    if "MemorySwap" in host_changes and "Memory" not in host_changes and not host.get("Memory"):
        raise PalletError("you should always set the memory limit when using the memory swap limit")
    if host_changes.get("Memory") and host.get("MemorySwap", 0) not in (0, -1, None) \
            and "MemorySwap" not in host_changes and host_changes["Memory"] > host["MemorySwap"]:
        raise PalletError("Memory limit should be smaller than already set memoryswap limit, update the "
                          "memoryswap at the same time")
    merged = dict(host, **host_changes)
    if "Memory" in host_changes and host_changes["Memory"] and "MemorySwap" not in host_changes:
        # docker keeps an explicit swap setting only if it still fits; the default follows memory
        if host.get("MemorySwap") in (None, 0) or (host.get("MemorySwap", -1) != -1
                                                    and host["MemorySwap"] < host_changes["Memory"]):
            merged["MemorySwap"] = host_changes["Memory"] * 2
    if restart is not None:
        from pallet.engine.hostconfig import check_restart

        restart = check_restart(restart)   # (docker's RestartPolicy record: a bad one names the field)
        if restart["Name"] != "no" and host.get("AutoRemove"):
            raise PalletError("Restart policy cannot be updated because AutoRemove is enabled for the container")
        merged["RestartPolicy"] = restart
    warnings: list[str] = []
    if c.status == "running":
        res = resources_from({k: merged.get(k) for k in host_changes} | (
            {"Memory": merged.get("Memory"), "MemorySwap": merged.get("MemorySwap")}
            if "Memory" in host_changes or "MemorySwap" in host_changes else {}))
        if res:
            warnings = _runtime_update(engine, c, res)
    c.config["HostConfig"] = merged
    engine._update(c.id, config=json.dumps(c.config))
    return warnings


def _runtime_update(engine, c, res: dict) -> list[str]:
    from pallet.errors import RuntimeFailure

    try:
        engine.runtime(c.runtime).update(c.id, res)
    except RuntimeFailure as e:
        raise PalletError(f"Cannot update container {c.name}: {e.message}") from None
    return []


# ---- stats ----------------------------------------------------------------------------------
def sample(c) -> dict:
    """One reading of the container's cgroup counters (`cgroups.Cgroup.usage`) and its network namespace."""
    import time

    from pallet.linux import cgroups

    cg = cgroups.of_pid(c.pid) if c.pid else None
    s: dict[str, Any] = {"time": time.monotonic()}
    s.update(cg.usage() if cg else {"cpu_ns": 0, "mem": 0, "mem_limit": None, "mem_cache": 0, "pids": 0,
                                    "blk": (0, 0)})
    rx = tx = 0
    lines = []
    if (c.HostConfig.get("NetworkMode") or "none") != "host":   # (host: the host's, not the container's)
        try:   # the container's own namespace: its veths' (ethN) counters, lo left out as docker's
            with open(f"/proc/{c.pid}/net/dev") as f:
                lines = f.read().splitlines()[2:]
        except OSError:
            pass
    for line in lines:
        name, _, rest = line.partition(":")
        f = rest.split()
        if len(f) >= 9 and name.strip() != "lo":
            rx += int(f[0])
            tx += int(f[8])
    s["net"] = (rx, tx)
    return s


STOPPED_ROW = {"CPUPerc": "0.00%", "MemUsage": "0B / 0B", "MemPerc": "0.00%", "NetIO": "0B / 0B",
               "BlockIO": "0B / 0B", "PIDs": "0"}


def stats(engine, containers, *, stream: bool = True, interval: float = 1.0):
    """docker stats' readings: one list of rows (docker's columns, `stats_row`) per reading, the first
    0.5 s after the call (CPU % needs two samples), then every `interval` seconds while `stream`. A
    container that is not running reads zero. The caller renders them (a table, JSON, a template)."""
    import time

    prev = {c.id: sample(c) if c.status == "running" else None for c in containers}
    delay = 0.5
    while True:
        time.sleep(delay)
        rows = []
        for c in containers:
            c = engine.get(c.id)
            if c.status != "running":
                rows.append({"Container": c.short_id, "ID": c.short_id, "Name": c.name, **STOPPED_ROW})
                prev[c.id] = None
                continue
            cur = sample(c)
            rows.append(stats_row(c, prev.get(c.id) or cur, cur))
            prev[c.id] = cur
        yield rows
        if not stream:
            return
        delay = interval


def host_memory() -> int:
    for line in open("/proc/meminfo"):
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return 0


def stats_row(c, a: dict, b: dict) -> dict:
    """docker stats' columns from two samples."""
    from pallet.engine.units import human_size

    dt = max(b["time"] - a["time"], 1e-6)
    cpu = (b["cpu_ns"] - a["cpu_ns"]) / (dt * 1e9) * 100.0
    mem = max(0, b["mem"] - b.get("mem_cache", 0))
    limit = b["mem_limit"] or host_memory()
    limit = min(limit, host_memory()) if host_memory() else limit

    def binu(n: float) -> str:
        units = ["B", "KiB", "MiB", "GiB", "TiB"]
        i = 0
        while n >= 1024 and i < len(units) - 1:
            n /= 1024.0
            i += 1
        return f"{n:.4g}{units[i]}"

    return {"Container": c.short_id, "ID": c.short_id, "Name": c.name,
            "CPUPerc": f"{cpu:.2f}%", "MemUsage": f"{binu(mem)} / {binu(limit)}",
            "MemPerc": f"{(mem / limit * 100.0) if limit else 0:.2f}%",
            "NetIO": f"{human_size(b['net'][0], 3)} / {human_size(b['net'][1], 3)}",
            "BlockIO": f"{human_size(b['blk'][0], 3)} / {human_size(b['blk'][1], 3)}",
            "PIDs": str(b["pids"])}
