"""`pallet explain container`: what a running container's process has, read from the live process.

Everything comes from /proc and the cgroup filesystem: the capability sets and seccomp mode in
/proc/PID/status, each namespace's inode against the host's, the cgroup with its current usage
against its limits, the mount table (the overlay's lowerdirs named by image and layer), and the
processes in its PID namespace with their in-container and host PIDs; its network: the links inside
its namespace (/proc/PID/net/dev), each network's address and the host end of its veth pair with the
bridge it is a port of (netlink), the ports published.
"""

from __future__ import annotations

import os

from pallet.errors import PalletError

NS_FILES = {"mnt": "mount", "pid": "pid", "net": "network", "ipc": "ipc", "uts": "uts", "cgroup": "cgroup",
            "user": "user", "time": "time"}
SECCOMP_MODES = {"0": "disabled", "1": "strict", "2": "filter"}


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def status(pid: int) -> dict[str, str]:
    out = {}
    for line in (_read(f"/proc/{pid}/status") or "").splitlines():
        k, _, v = line.partition(":")
        out[k] = v.strip()
    return out


def cap_names(mask_hex: str) -> list[str]:
    from pallet.engine.hostconfig import ALL_CAPS

    try:
        mask = int(mask_hex, 16)
    except ValueError:
        return []
    return [c for i, c in enumerate(ALL_CAPS) if mask >> i & 1]


def _ns(pid: int | str) -> dict[str, str | None]:
    out = {}
    for f in NS_FILES:
        try:
            out[f] = os.readlink(f"/proc/{pid}/ns/{f}")
        except OSError:
            out[f] = None
    return out


def _host_ns() -> dict[str, str | None]:
    ns = _ns(1)
    return ns if any(ns.values()) else _ns("self")


def _cgroup(pid: int) -> dict:
    from pallet.linux import cgroups

    paths = cgroups.proc_paths(pid)
    cg = cgroups.of_pid(pid, paths=paths)
    if cg is None:
        return {"version": 1, "paths": {}, "path": None, "memory": {"current": None, "max": None},
                "pids": {"current": None, "max": ""}}
    if cg.version == 2:
        usage = {}
        for line in (cg.read("cpu", "cpu.stat") or "").splitlines():
            k, _, v = line.partition(" ")
            if k == "usage_usec":
                usage["cpu_usec"] = int(v)
        return {"version": 2, "path": paths[""], "dir": cg.dir_of(""),
                "memory": {"current": _int(cg.read("memory", "memory.current")), "max": cg.read("memory", "memory.max")},
                "pids": {"current": _int(cg.read("pids", "pids.current")), "max": cg.read("pids", "pids.max")},
                "cpu": {"max": cg.read("cpu", "cpu.max"), **usage}}
    per_ctrl = {ctrl: path for key, path in paths.items() for ctrl in (key.split(",") if key else [""])}
    return {"version": 1, "paths": per_ctrl, "path": per_ctrl.get("memory") or per_ctrl.get("pids"),
            "memory": {"current": _int(cg.read("memory", "memory.usage_in_bytes")),
                       "max": cg.read("memory", "memory.limit_in_bytes") or None},
            "pids": {"current": _int(cg.read("pids", "pids.current")), "max": cg.read("pids", "pids.max") or ""}}


def _int(text: str | None) -> int | None:
    try:
        return int((text or "").strip())
    except ValueError:
        return None


def _layer_names(store, snaps_dir: str, image_id: str | None = None) -> dict[str, str]:
    """Short link name and chain id of every local layer -> 'IMAGE layer N'."""
    from pallet.explain.tree import _familiar
    from pallet.layers.chain import chain_ids

    names: dict[str, str] = {}
    for rec in sorted(store.images(), key=lambda r: r.id != image_id):   # the container's image first
        label = _familiar(rec.tags[0]) if rec.tags else rec.short_id
        for i, cid in enumerate(chain_ids(list(store.config(rec).diff_ids))):
            hexid = cid.partition(":")[2]
            names.setdefault(hexid, f"{label} layer {i}")
    out = {}
    for hexid, label in names.items():
        link = _read(os.path.join(snaps_dir, hexid, "link"))
        if link:
            out["l/" + link.strip()] = label
        out[os.path.join(snaps_dir, hexid, "diff")] = label
    return out


def _mounts(pid: int, store, image_id: str | None = None) -> list[dict]:
    layers_dir = os.path.join(str(store.root), "layers")
    names = None
    out = []
    for line in (_read(f"/proc/{pid}/mountinfo") or "").splitlines():
        left, _, right = line.partition(" - ")
        f = left.split()
        r = right.split()
        if len(f) < 6 or len(r) < 3:
            continue
        m = {"destination": f[4], "options": f[5], "type": r[0], "source": r[1], "super_options": r[2]}
        if r[0] == "overlay":
            if names is None:
                names = _layer_names(store, layers_dir, image_id)
            lowers = []
            for opt in r[2].split(","):
                if opt.startswith("lowerdir="):
                    for low in opt[len("lowerdir="):].split(":"):
                        short = "l/" + low.rpartition("/l/")[2] if "/l/" in low else low
                        lowers.append({"dir": low, "layer": names.get(short) or names.get(os.path.normpath(
                            os.path.join(layers_dir, low))) or ""})
            m["lowers"] = lowers
        out.append(m)
    return out


def _processes(pid: int) -> list[dict]:
    """Processes in the container's PID namespace: host PID, in-container PID, parent, command."""
    try:
        target = os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return []
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            if os.readlink(f"/proc/{name}/ns/pid") != target:
                continue
        except OSError:
            continue
        st = status(int(name))
        nspid = st.get("NSpid", "").split()
        cmd = (_read(f"/proc/{name}/cmdline") or "").replace("\0", " ").strip() or f"[{st.get('Name', '')}]"
        out.append({"host_pid": int(name), "pid": int(nspid[-1]) if nspid else None,
                    "ppid_host": _int(st.get("PPid")), "user": st.get("Uid", "").split()[:1], "command": cmd})
    out.sort(key=lambda p: p["pid"] or 0)
    return out


def _interfaces(pid: int) -> list[dict]:
    """The links of the container's network namespace, as its /proc/PID/net/dev lists them (with the bytes
    each has carried)."""
    out = []
    for line in (_read(f"/proc/{pid}/net/dev") or "").splitlines()[2:]:
        name, _, rest = line.partition(":")
        f = rest.split()
        if len(f) >= 9:
            out.append({"name": name.strip(), "rx_bytes": int(f[0]), "tx_bytes": int(f[8])})
    return out


def _network(eng, c) -> dict:
    """The network mode, each network's lease (address, MAC, the veth pair) checked against the host's
    links (the veth and the bridge it is a port of), the interfaces seen inside, the published ports."""
    from pallet.engine import networking

    out = {"mode": c.HostConfig.get("NetworkMode") or "none", "interfaces": _interfaces(c.pid), "endpoints": [],
           "ports": []}
    masters: dict = {}
    try:
        from pallet.linux.netlink import Netlink

        with Netlink() as nl:
            masters = nl.link_masters()
    except OSError:
        pass
    try:
        leases = networking.leases(eng, c.id) if networking.endpoints(c) else []
    except Exception:  # noqa: BLE001 - a store without the networks tables
        leases = []
    for le in leases:
        out["endpoints"].append({"network": le.network, "address": f"{le.address}/{le.prefixlen}", "mac": le.mac,
                                 "ifname": le.ifname, "veth": le.host_ifname,
                                 "veth_present": le.host_ifname in masters, "bridge": masters.get(le.host_ifname)})
    for key, binds in sorted((c.config.get("Ports") or {}).items()):
        for b in binds or ():
            out["ports"].append(f"{b.get('HostIp') or '0.0.0.0'}:{b.get('HostPort')} -> {key}")
    return out


def explain_container(eng, ref: str) -> dict:
    from pallet.explain.capabilities import meaning

    c = eng.get(ref)
    if c.status != "running" or not c.pid:
        raise PalletError(f"container {c.name} is {c.status}: explain container reads the live process, so it "
                          "must be running (start it, or use `pallet explain run` with its flags)")
    pid = c.pid
    st = status(pid)
    if not st:
        raise PalletError(f"container {c.name}: its process {pid} is gone")
    sets = {k: cap_names(st.get(f"Cap{k}", "0")) for k in ("Inh", "Prm", "Eff", "Bnd", "Amb")}
    host_ns, ctr_ns = _host_ns(), _ns(pid)
    namespaces = [{"type": NS_FILES[f], "inode": ctr_ns[f], "host_inode": host_ns[f],
                   "state": "unknown" if ctr_ns[f] is None else ("host" if ctr_ns[f] == host_ns[f] else "own")}
                  for f in NS_FILES]
    return {
        "id": c.id, "name": c.name, "image": c.image_name, "pid": pid,
        "capabilities": {"effective": [{"name": x, "allows": meaning(x)} for x in sets["Eff"]],
                         "permitted": sets["Prm"], "bounding": sets["Bnd"], "inheritable": sets["Inh"],
                         "ambient": sets["Amb"]},
        "seccomp": {"mode": SECCOMP_MODES.get(st.get("Seccomp", ""), st.get("Seccomp")),
                    "filters": _int(st.get("Seccomp_filters"))},
        "no_new_privs": st.get("NoNewPrivs") == "1",
        "user": {"uid": st.get("Uid", "").split(), "gid": st.get("Gid", "").split(), "groups": st.get("Groups", "").split()},
        "namespaces": namespaces, "cgroup": _cgroup(pid), "mounts": _mounts(pid, eng.store, c.image_id),
        "network": _network(eng, c), "processes": _processes(pid),
    }
