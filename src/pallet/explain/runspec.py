"""`pallet explain run`: what a set of `run` flags gives the container's process, without creating it.

The answer is read from the OCI runtime spec the engine would write, made by the engine's own code:
the command line is parsed by `pallet run`'s click command (`pallet.cli.container.run_cmd`) and turned
into CreateOptions by `pallet.cli.containerrun.build_opts` (both in `pallet.cli.explain`), into Config/HostConfig by
`Engine.build_config`, and into the spec by `pallet.engine.spec.build_spec` and
`pallet.engine.limits.apply_host_config` — the steps of `Engine.create` and `Engine.prepare_bundle`
that write nothing. What those steps would create (the container row, its snapshot, its /etc files,
volumes) is left out; the image's /etc/passwd and /etc/group are read from its layers to resolve the
user with the engine's `resolve_user`.
"""

from __future__ import annotations

import os
import tempfile

from pallet.errors import NotFound, PalletError

PLACEHOLDER_ID = "0" * 64    # the container id the spec is built for (no container is made)
ROOTFS = "<the container's snapshot of IMAGE>"

NAMESPACES = ("mount", "pid", "network", "ipc", "uts", "cgroup", "user", "time")
NS_WHAT = {"mount": "mount table", "pid": "process IDs", "network": "interfaces, addresses, ports",
           "ipc": "System V IPC, POSIX queues", "uts": "host and domain name", "cgroup": "cgroup root view",
           "user": "user and group IDs", "time": "boot and monotonic clocks"}

# syscalls worth naming when they are blocked or allowed
NOTABLE_SYSCALLS = (
    "mount", "umount2", "pivot_root", "unshare", "setns", "clone3", "keyctl", "add_key", "request_key", "bpf",
    "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module", "ptrace", "reboot",
    "swapon", "swapoff", "open_by_handle_at", "perf_event_open", "userfaultfd", "acct", "settimeofday",
    "clock_settime", "iopl", "ioperm", "quotactl", "syslog", "process_vm_readv", "process_vm_writev",
    "fsopen", "move_mount", "open_tree", "mount_setattr", "lookup_dcookie", "name_to_handle_at",
)

# sockets of container runtimes and engines: whoever can talk to one controls the host
RUNTIME_SOCKETS = ("docker.sock", "containerd.sock", "podman.sock", "crio.sock", "dockershim.sock", "buildkitd.sock")


# ---- the spec --------------------------------------------------------------------------------
def _etc_files(store, rec, dest: str) -> None:
    """The image's /etc/passwd and /etc/group (the topmost version, whiteouts honoured) into `dest`."""
    from pallet.explain.layerfiles import entries
    from pallet.layers.analysis import image_layers
    from pallet.layers.apply import WHITEOUT_PREFIX
    from pallet.layers.paths import clean_name

    want = {"etc/passwd", "etc/group"}
    found: dict[str, bytes | None] = {}
    for _digest, _, media_type, _, opener in image_layers(store, rec):
        with opener() as f:
            for e, reader in entries(f, media_type):
                rel = clean_name(e.name)
                parent, _, base = rel.rpartition("/")
                if base.startswith(WHITEOUT_PREFIX):
                    target = (f"{parent}/" if parent else "") + base[len(WHITEOUT_PREFIX):]
                    for w in want:
                        if w == target or w.startswith(target + "/"):
                            found[w] = None
                    continue
                if rel in want:
                    found[rel] = b"".join(bytes(c) for c in reader.data()) if e.type == "0" else None
    os.makedirs(os.path.join(dest, "etc"), exist_ok=True)
    for rel, data in found.items():
        if data is not None:
            with open(os.path.join(dest, rel), "wb") as f:
                f.write(data)


def _resolve_user(store, rec, user: str | None):
    from pallet.engine.users import resolve_user

    with tempfile.TemporaryDirectory(prefix="pallet-explain-") as d:
        _etc_files(store, rec, d)
        return resolve_user(d, user)


def _mounts_config(eng, c) -> list[dict]:
    """config["Mounts"] as `volumes.setup` records it, computed without creating a volume or a directory."""
    from pallet.engine import volumes

    host = c.HostConfig
    out = []
    for b in host.get("Binds") or ():
        w = volumes.parse_bind(b)
        out.append(_mount_record(eng, w, w.get("Mode") or ""))
    for m in host.get("Mounts") or ():
        w = {"Type": m["Type"], "Source": m.get("Source") or "", "Target": m["Target"],
             "ReadOnly": bool(m.get("ReadOnly")), "Propagation": (m.get("BindOptions") or {}).get("Propagation", "")}
        rec = _mount_record(eng, w, "")
        if m["Type"] == "tmpfs":
            t = m.get("TmpfsOptions") or {}
            rec["TmpfsOptions"] = ([f"size={t['SizeBytes']}"] if t.get("SizeBytes") else []) + \
                ([f"mode={t['Mode']:o}"] if t.get("Mode") is not None else [])
        out.append(rec)
    for path, opts in (host.get("Tmpfs") or {}).items():
        out.append({"Type": "tmpfs", "Source": "", "Destination": path, "RW": True, "Mode": opts, "Propagation": "",
                    "TmpfsOptions": ["noexec", "nosuid", "nodev", *volumes.tmpfs_options(opts, path)]})
    for v in host.get("VolumesFrom") or ():
        ref, _, mode = v.partition(":")
        other = eng.get(ref, refresh=False)
        have = {m["Destination"] for m in out}
        for m in other.config.get("Mounts") or ():
            if m["Type"] != "tmpfs" and m["Destination"] not in have:
                out.append(dict(m, RW=(mode != "ro") if mode else m.get("RW", True), From=other.name))
    taken = {m["Destination"] for m in out}
    for path in sorted((c.Config.get("Volumes") or {}).keys()):
        p = os.path.normpath(path)
        if p not in taken and p != "/":
            out.append(_mount_record(eng, {"Type": "volume", "Source": "", "Target": p, "ReadOnly": False,
                                           "Propagation": ""}, ""))
            out[-1]["Anonymous"] = True
    return out


def _mount_record(eng, w: dict, mode: str) -> dict:
    from pallet.engine.volumes import vol_dir

    m = {"Type": w["Type"], "Source": w["Source"], "Destination": w["Target"], "Mode": mode,
         "RW": not w["ReadOnly"], "Propagation": w.get("Propagation") or ("rprivate" if w["Type"] != "tmpfs" else "")}
    if w["Type"] == "volume":
        name = w["Source"]
        m["Name"] = name or "<new anonymous volume>"
        m["Source"] = str(vol_dir(eng, name) / "_data") if name else "<new anonymous volume>"
    return m


def build(eng, opts, args: list[str], *, pull: bool = False) -> dict:
    """CreateOptions (what `pallet run`'s parser and `build_opts` made of the command line `args`) ->
    {"argv", "image", "command", "spec", "host_config", "config", "user", "mounts", "files_dir"}.
    The image comes from the store; only with `pull` (the command line said --pull) does run's rule for
    opts.pull apply (missing: pull when not there; always; never)."""
    from pallet.engine.limits import apply_host_config
    from pallet.engine.model import Container
    from pallet.engine.spec import build_spec

    cmd = list(opts.config.Cmd or [])
    # Engine.create's checks, in its order, minus what writes; the image never pulled unless `pull`
    rec, config, host, endpoints = eng.plan(opts, None if pull else lambda o: _local_image(eng, o.config.Image))
    net_mode = host["NetworkMode"]
    c = Container(PLACEHOLDER_ID, opts.name or "", rec.id, opts.config.Image, 0.0, host["Runtime"],
                  {"Config": config, "HostConfig": host}, "created")
    if endpoints:
        c.config["NetworkingConfig"] = {"EndpointsConfig": endpoints}
    user = _resolve_user(eng.store, rec, config.get("User"))
    hostname = config.get("Hostname") or (os.uname().nodename if net_mode == "host" else c.short_id)
    config["Hostname"] = hostname
    c.config["Mounts"] = _mounts_config(eng, c)
    netns = None
    if net_mode.startswith("container:"):
        from pallet.engine.networking import check_container_mode

        netns = check_container_mode(eng, net_mode)
    spec = build_spec(cid=c.id, config=config, host_config=host, rootfs=ROOTFS, files_dir=str(eng.dir(c.id)),
                      user=user, hostname=hostname, cgroups_path=f"pallet/{c.id}", netns_path=netns)
    apply_host_config(spec, c)
    return {"argv": list(args), "image": opts.config.Image, "command": list(cmd), "image_id": rec.id, "spec": spec, "host_config": host,
            "config": config, "networks": list(endpoints), "user": user, "mounts": c.config["Mounts"], "files_dir": str(eng.dir(c.id))}


def _local_image(eng, image: str):
    """The image from the store, never pulled (explain creates nothing)."""
    try:
        return eng.store.resolve_image(image)
    except NotFound:
        local = eng._short_name_in_store(image)
        if local is not None:
            return local
        raise NotFound(f"No such image: {image} (explain does not pull unless told --pull missing|always; "
                       f"or `pallet pull {image}` first)") from None


# ---- the explanation -------------------------------------------------------------------------
def _seccomp(spec: dict) -> dict:
    from pallet.engine.seccomp import _profile

    sc = (spec.get("linux") or {}).get("seccomp")
    if not sc:
        return {"enabled": False, "default_action": None, "blocked_count": 0, "blocked_notable": [],
                "allowed_notable": [n for n in NOTABLE_SYSCALLS], "filtered": [], "rules": 0}
    allowed, filtered, errno = set(), set(), set()
    for r in sc.get("syscalls") or ():
        names = r.get("names") or []
        if r.get("action") == "SCMP_ACT_ALLOW":
            (filtered if r.get("args") else allowed).update(names)
        else:
            errno.update(names)
    try:
        universe = {n for r in _profile().get("syscalls") or () for n in (r.get("names") or [])}
    except PalletError:
        universe = set()
    universe |= set(NOTABLE_SYSCALLS) | allowed | filtered | errno
    default_allows = sc.get("defaultAction") == "SCMP_ACT_ALLOW"
    if default_allows:
        blocked = errno
    else:
        blocked = (universe - allowed - filtered) | (errno - allowed)
    return {"enabled": True, "default_action": sc.get("defaultAction"), "rules": len(sc.get("syscalls") or ()),
            "architectures": sc.get("architectures") or [], "known_syscalls": len(universe),
            "blocked_count": len(blocked), "blocked": sorted(blocked), "allowed_count": len(allowed),
            "blocked_notable": [n for n in NOTABLE_SYSCALLS if n in blocked],
            "allowed_notable": [n for n in NOTABLE_SYSCALLS if n not in blocked],
            "filtered": sorted(filtered)}


def _host_path(m: dict, files_dir: str) -> str | None:
    """What a bind's source is: 'host' (a host path the user named), 'volume', 'pallet' (made by pallet)."""
    if m.get("type") != "bind":
        return None
    src = m.get("source") or ""
    if src.startswith(files_dir + "/") or src == files_dir:
        return "pallet"
    if "/volumes/" in src and src.endswith("/_data") or src.startswith("<"):
        return "volume"
    return "host"


def explain(b: dict) -> dict:
    """The build() result -> what the process gets, as plain data (the --format json schema)."""
    from pallet.explain.capabilities import all_caps, meaning

    spec, host = b["spec"], b["host_config"]
    linux = spec.get("linux") or {}
    proc = spec["process"]
    ns = {n["type"]: n for n in linux.get("namespaces") or ()}
    namespaces = []
    for t in NAMESPACES:
        n = ns.get(t)
        state = "shared with the host" if n is None else ("joined " + n["path"] if n.get("path") else "new")
        namespaces.append({"type": t, "state": "host" if n is None else ("joined" if n.get("path") else "new"),
                           "text": state, "isolates": NS_WHAT[t], **({"path": n["path"]} if n and n.get("path") else {})})
    full = all_caps()
    caps = proc.get("capabilities") or {}
    kept = list(caps.get("bounding") or [])
    capabilities = {"kept": [{"name": c, "allows": meaning(c)} for c in kept], "kept_count": len(kept),
                    "full_count": len(full), "dropped": [c for c in full if c not in kept],
                    "effective": list(caps.get("effective") or []), "permitted": list(caps.get("permitted") or [])}
    u = proc.get("user") or {}
    user = {"uid": u.get("uid", 0), "gid": u.get("gid", 0), "additional_gids": list(u.get("additionalGids") or []),
            "name": b["user"].name, "spec": b["config"].get("User") or "", "home": b["user"].home,
            "no_new_privileges": bool(proc.get("noNewPrivileges"))}
    files_dir = b["files_dir"]
    mounts = []
    for m in spec.get("mounts") or ():
        opts = m.get("options") or []
        kind = _host_path(m, files_dir)
        mounts.append({"destination": m["destination"], "type": m.get("type"), "source": m.get("source"),
                       "options": opts, "readonly": "ro" in opts, "origin": kind or m.get("type")})
    res = dict(linux.get("resources") or {})
    device_rules = res.pop("devices", [])
    devices = {"nodes": [{"path": d["path"], "type": d["type"], "major": d.get("major"), "minor": d.get("minor")}
                         for d in linux.get("devices") or ()],
               "rules": device_rules,
               "all_allowed": any(r.get("allow") and not r.get("type") and r.get("major") is None
                                  and "r" in r.get("access", "") for r in device_rules)}
    from types import SimpleNamespace

    from pallet.engine import ports

    # -p's bindings and, with -P, every exposed port to a random host port (what start will publish)
    bound = ports.bindings(SimpleNamespace(HostConfig=host, Config=b.get("config") or {}))
    network = {"mode": host.get("NetworkMode") or "none", "networks": list(b.get("networks") or ()),
               "ports": _ports(bound), "host": ns.get("network") is None}
    root = spec.get("root") or {}
    out = {
        "image": b["image"], "image_id": b["image_id"], "argv": b["argv"], "command": b["command"],
        "process": {"args": proc.get("args"), "cwd": proc.get("cwd"), "terminal": proc.get("terminal"),
                    "env": proc.get("env")},
        "namespaces": namespaces, "user": user, "capabilities": capabilities, "seccomp": _seccomp(spec),
        "masked_paths": list(linux.get("maskedPaths") or []), "readonly_paths": list(linux.get("readonlyPaths") or []),
        "rootfs_readonly": bool(root.get("readonly")), "mounts": mounts, "devices": devices,
        "cgroup": {"path": linux.get("cgroupsPath"), "limits": res}, "network": network,
        "sysctl": dict(linux.get("sysctl") or {}), "rlimits": proc.get("rlimits") or [], "files_dir": files_dir,
    }
    out["warnings"] = warnings(out, host)
    return out


def _ports(bindings: dict) -> list[str]:
    out = []
    for port, bs in sorted(bindings.items()):
        for bnd in bs or ():
            out.append(f"{bnd.get('HostIp') or '0.0.0.0'}:{bnd.get('HostPort') or '(random)'} -> {port}")
    return out


def warnings(e: dict, host: dict) -> list[str]:
    from pallet.explain.capabilities import DANGEROUS

    w = []
    if host.get("Privileged"):
        w.append("--privileged: every capability, every host device, no seccomp filter, /sys and cgroups "
                 "writable, nothing masked: root in this container is root on the host")
    shared = [n["type"] for n in e["namespaces"] if n["state"] == "host" and n["type"] not in ("user", "time")]
    if "network" in shared:
        w.append("the network namespace is the host's (--network host): the process sees and binds the "
                 "host's interfaces and ports, and reaches services listening on the host's 127.0.0.1")
    for t in shared:
        if t == "pid":
            w.append("the PID namespace is the host's: the process sees every host process and can signal "
                     "or trace them with the capabilities it has")
        elif t in ("ipc", "uts", "mount", "cgroup"):
            w.append(f"the {t} namespace is the host's ({NS_WHAT[t]})")
    if e["user"]["uid"] == 0 and not any(n["type"] == "user" and n["state"] != "host" for n in e["namespaces"]):
        pass   # root without a user namespace is docker's default: the capabilities and seccomp are the fence
    if not e["seccomp"]["enabled"] and not host.get("Privileged"):
        w.append("no seccomp filter: every system call reaches the kernel")
    for m in e["mounts"]:
        src = m.get("source") or ""
        if m["origin"] == "host":
            if os.path.basename(src) in RUNTIME_SOCKETS or src.rstrip("/") in ("/run", "/var/run", "/run/pallet"):
                w.append(f"{src} is bind-mounted at {m['destination']}: a runtime's socket gives control of "
                         "the host's containers and so of the host")
            elif src == "/" or src.rstrip("/") in ("/proc", "/sys", "/dev", "/etc", "/boot", "/var/lib/pallet"):
                w.append(f"the host's {src} is bind-mounted {'read-only' if m['readonly'] else 'writable'} "
                         f"at {m['destination']}")
        if m["type"] in ("sysfs", "proc") and not m["readonly"] and m["type"] == "sysfs":
            w.append(f"{m['destination']} (sysfs) is writable")
        if m["type"] == "cgroup" and not m["readonly"]:
            w.append(f"{m['destination']} (cgroupfs) is writable")
    if "/proc/sys" not in e["readonly_paths"] and not any(p == "/proc/sys" for p in e["masked_paths"]):
        w.append("/proc/sys is writable (not in readonlyPaths): kernel settings the namespaces do not cover "
                 "are the host's")
    if not e["masked_paths"]:
        w.append("no masked paths: /proc/kcore, /proc/keys, /sys/firmware … are readable")
    if e["devices"]["all_allowed"]:
        w.append("the device cgroup allows every device (read, write, mknod)")
    risky = [c["name"] for c in e["capabilities"]["kept"] if c["name"] in DANGEROUS]
    if risky and not host.get("Privileged"):
        w.append("capabilities that reach past the container: " + ", ".join(risky))
    return w


def compare(a: dict, b: dict) -> dict:
    """What changes from explanation `a` to `b`."""
    def diff(x: list, y: list) -> dict:
        return {"added": [v for v in y if v not in x], "removed": [v for v in x if v not in y]}

    ca = [c["name"] for c in a["capabilities"]["kept"]]
    cb = [c["name"] for c in b["capabilities"]["kept"]]
    nsa = {n["type"]: n["text"] for n in a["namespaces"]}
    nsb = {n["type"]: n["text"] for n in b["namespaces"]}
    sa, sb = a["seccomp"], b["seccomp"]
    def mount(m: dict) -> str:
        src = m["source"] if m["type"] == "bind" else m["type"]
        return f"{m['destination']} ({'ro' if m['readonly'] else 'rw'} {src}{', HOST PATH' if m['origin'] == 'host' else ''})"

    ma = [mount(m) for m in a["mounts"]]
    mb = [mount(m) for m in b["mounts"]]
    da = [d["path"] for d in a["devices"]["nodes"]]
    db = [d["path"] for d in b["devices"]["nodes"]]
    la, lb = a["cgroup"]["limits"], b["cgroup"]["limits"]
    limits = {k: {"from": la.get(k), "to": lb.get(k)} for k in sorted(set(la) | set(lb)) if la.get(k) != lb.get(k)}
    ua = {k: a["user"][k] for k in ("uid", "gid", "additional_gids", "no_new_privileges")}
    ub = {k: b["user"][k] for k in ("uid", "gid", "additional_gids", "no_new_privileges")}
    return {
        "a": a["argv"], "b": b["argv"],
        "namespaces": {t: {"from": nsa[t], "to": nsb[t]} for t in NAMESPACES if nsa[t] != nsb[t]},
        "user": {k: {"from": ua[k], "to": ub[k]} for k in ua if ua[k] != ub[k]},
        "capabilities": {"added": [{"name": c, "allows": _meaning(c)} for c in cb if c not in ca],
                         "removed": [{"name": c, "allows": _meaning(c)} for c in ca if c not in cb],
                         "from_count": len(ca), "to_count": len(cb)},
        "seccomp": {"from": _seccomp_line(sa), "to": _seccomp_line(sb),
                    "now_allowed": [n for n in sa.get("blocked_notable", []) if n not in sb.get("blocked_notable", [])],
                    "now_blocked": [n for n in sb.get("blocked_notable", []) if n not in sa.get("blocked_notable", [])],
                    "changed": _seccomp_line(sa) != _seccomp_line(sb)},
        "masked_paths": diff(a["masked_paths"], b["masked_paths"]),
        "readonly_paths": diff(a["readonly_paths"], b["readonly_paths"]),
        "rootfs_readonly": None if a["rootfs_readonly"] == b["rootfs_readonly"] else
        {"from": a["rootfs_readonly"], "to": b["rootfs_readonly"]},
        "mounts": diff(ma, mb),
        "devices": {"added": [p for p in db if p not in da], "removed": [p for p in da if p not in db],
                    "all_allowed": None if a["devices"]["all_allowed"] == b["devices"]["all_allowed"]
                    else {"from": a["devices"]["all_allowed"], "to": b["devices"]["all_allowed"]}},
        "cgroup_limits": limits,
        "network": None if a["network"] == b["network"] else {"from": a["network"], "to": b["network"]},
        "warnings": diff(a["warnings"], b["warnings"]),
    }


def _meaning(c: str) -> str:
    from pallet.explain.capabilities import meaning

    return meaning(c)


def _seccomp_line(s: dict) -> str:
    if not s["enabled"]:
        return "disabled (no filter)"
    return f"{s['blocked_count']} of {s['known_syscalls']} known syscalls blocked ({s['rules']} rules)"
