"""`pallet system diagram`: a picture of the live host, every fact read from the machine and the store.

The data model comes first; every format is drawn from it:

    {"schema": "pallet.diagram/1",
     "nodes": [{"id": str, "kind": str, "label": str, "attrs": {...}}],
     "edges": [{"from": node id, "to": node id, "kind": str}]}

Node kinds, by the cluster they are drawn in (ids in brackets):

    kernel      kernel [kernel]           release, machine, the namespace types containers use
                namespace [ns:TYPE:INODE] a namespace a running container does not share with the host
                host-namespaces [ns:host] the host's (pid 1's) namespace inodes
                cgroups [cgroup]          version v1 | v2 | hybrid (from /proc/self/mountinfo), hierarchies
                overlayfs [overlayfs]     the overlay mounts of this store's snapshots
                seccomp [seccomp]         libseccomp's version, the kernel's actions
                netfilter [nft]           nft installed or not, the tables `nft list tables` shows
                netfilter [nft:FAMILY:NAME]  one table (pallet's own is `inet pallet`)
                network [net:NAME]        pallet's networks (id, driver, bridge, subnet; the default bridge's
                                          record is made by the first container on it)
                bridge [bridge:NAME]      a network's Linux bridge: up or not
    processes   process [proc:PID]        role monitor | registry | daemon | dns | netavark, argv
                runtime [runtime:NAME]    pallet (in-process), runc, crun: installed, path, default
    store       image [image:ID]          tags, size, layer count
                layer [layer:CHAIN-ID]    diff id, chain id, parent chain id, unpacked or not — once,
                                          however many images have it
                snapshot [snap:CID]       a container's writable root: driver, mounted, mount point
                volume [vol:NAME]         named volumes: driver, mount point
    containers  container [ctr:ID]        name, status, pid, monitor pid, cgroup, network mode, networks
                                          and addresses (leases), published ports, mounts, namespaces
                                          {type: inode} and which of them are shared with the host
                port [port:HOST:PORT/PROTO]  a port a running container publishes (container port, address)
    registries  registry [reg:HOST]       pallet.toml / registries.conf mirrors and insecure flag, logged
                                          in (from the auth files: the host names only, never a secret)

Edge kinds: image -layer-> layer, container -image-> image, container -rootfs-> snapshot,
snapshot -lower-> layer (its top layer), snapshot (or a mounted image) -mounted-> overlayfs, container -namespace->
namespace, container -shares-> host-namespaces, container -cgroup-> cgroups, container -seccomp->
seccomp, process -monitors-> container, container -runtime-> runtime, container -mount-> volume,
container -network-> network, network -bridge-> bridge, container -publishes-> port, port -dnat-> inet pallet,
process (dns) -dns-> network, nft -table-> netfilter table, network -firewall-> inet pallet,
registry -mirror-> registry, image -from-> registry.

Formats: json (the document), dot (Graphviz, one cluster per group above), svg (`dot -Tsvg`), html
(one page: the SVG inline, the JSON in a <script type="application/json"> block) and text (a tree).
"""

from __future__ import annotations

import html as _html
import json
import os
import shutil
import subprocess

from pallet.errors import PalletError
from pallet.explain import hostfacts

SCHEMA = "pallet.diagram/1"
FORMATS = ("svg", "html", "dot", "text", "json")
EXTENSIONS = {".svg": "svg", ".html": "html", ".htm": "html", ".dot": "dot", ".gv": "dot",
              ".txt": "text", ".text": "text", ".json": "json"}
CLUSTERS = {
    "kernel": ("kernel", "namespace", "host-namespaces", "cgroups", "overlayfs", "seccomp", "netfilter",
               "network", "bridge"),
    "processes": ("process", "runtime"),
    "store": ("image", "layer", "snapshot", "volume"),
    "containers": ("container", "port"),
    "registries": ("registry",),
}
CLUSTER_OF = {k: c for c, kinds in CLUSTERS.items() for k in kinds}
CLUSTER_TITLES = {"kernel": "Linux kernel", "processes": "pallet's processes and runtimes",
                  "store": "store: images, layers, snapshots, volumes", "containers": "containers",
                  "registries": "registries"}


def _short(digest: str, n: int = 12) -> str:
    return digest.split(":", 1)[-1][:n]


def _shorten_ids(text: str) -> str:
    """Container ids and digests in a path, cut to 12 hex digits (labels stay narrow)."""
    import re

    return re.sub(r"\b([0-9a-f]{12})[0-9a-f]{52}\b", r"\1", text)


class _Doc:
    def __init__(self) -> None:
        self.nodes: dict[str, dict] = {}
        self.edges: list[dict] = []
        self._seen: set[tuple[str, str, str]] = set()

    def node(self, nid: str, kind: str, label: str, /, **attrs) -> str:
        if nid not in self.nodes:
            self.nodes[nid] = {"id": nid, "kind": kind, "label": label, "attrs": attrs}
        return nid

    def edge(self, a: str, b: str, kind: str) -> None:
        if (a, b, kind) not in self._seen and a in self.nodes and b in self.nodes:
            self._seen.add((a, b, kind))
            self.edges.append({"from": a, "to": b, "kind": kind})

    def doc(self) -> dict:
        return {"schema": SCHEMA, "nodes": list(self.nodes.values()), "edges": self.edges}


# ---- collecting ---------------------------------------------------------------------------------

def collect(store, engine, *, config_file: str | None = None, storage_driver: str | None = None) -> dict:
    """The diagram document of this host and this store (see the module docstring)."""
    d = _Doc()
    mounts = hostfacts.mountinfo()
    host_from, host_ns = hostfacts.host_namespaces()
    containers = engine.list(all=True)
    running = [c for c in containers if c.status == "running" and c.pid]

    # kernel
    u = os.uname()
    cg = hostfacts.cgroups(mounts)
    d.node("kernel", "kernel", f"Linux {u.release}", release=u.release, machine=u.machine,
           namespace_types_in_use=[], cgroup_version=cg["version"])
    d.node("ns:host", "host-namespaces", "host namespaces", inodes=host_ns,
           read_from="pid 1" if host_from == "1" else "pallet's own process (pid 1's are not readable)")
    d.node("cgroup", "cgroups", f"cgroup {cg['version']}", version=cg["version"],
           hierarchies=cg["hierarchies"])
    sc = hostfacts.seccomp()
    d.node("seccomp", "seccomp", f"seccomp (libseccomp {sc.get('libseccomp') or 'not available'})", **sc)
    nft = hostfacts.nft_tables()
    has_own = any((t["family"], t["name"]) == ("inet", "pallet") for t in nft["tables"])
    summary = ("netfilter: nft not installed" if not nft["installed"] else
               f"netfilter: {len(nft['tables'])} table(s)" + ("" if has_own else ", no inet pallet"))
    d.node("nft", "netfilter", summary, **nft, pallet_table=has_own)
    for t in nft["tables"]:
        own = (t["family"], t["name"]) == ("inet", "pallet")
        d.edge("nft", d.node(f"nft:{t['family']}:{t['name']}", "netfilter", f"table {t['family']} {t['name']}",
                             family=t["family"], name=t["name"], pallet=own), "table")

    # store: layers and images
    from pallet.layers.chain import chain_ids
    from pallet.layers.images import snapshots as snapshots_of

    snaps = snapshots_of(store, storage_driver)
    for rec in store.images():
        try:
            cfg = store.config(rec)
            diff_ids = list(cfg.diff_ids)
        except Exception as e:  # noqa: BLE001 - a damaged image is drawn, with what is wrong with it
            d.node(f"image:{rec.id}", "image", _image_label(rec), id=rec.id, tags=rec.tags, error=str(e))
            continue
        iid = d.node(f"image:{rec.id}", "image", _image_label(rec), id=rec.id, tags=rec.tags,
                     size=rec.size, layers=len(diff_ids), manifest=rec.manifest_digest)
        parent = None
        for i, (diff, chain) in enumerate(zip(diff_ids, chain_ids(diff_ids), strict=True)):
            lid = f"layer:{chain}"
            meta = snaps.layer_meta(chain)
            d.node(lid, "layer", f"layer {_short(diff)}", diff_id=diff, chain_id=chain, parent=parent,
                   index=i, unpacked=snaps.has(chain), size=meta.get("size"), blob=meta.get("digest"))
            d.edge(iid, lid, "layer")
            parent = chain

    # overlayfs
    overlays = hostfacts.overlay_mounts(mounts)
    mine = [o for o in overlays if o["mountpoint"].startswith(str(snaps.dir) + "/")]
    d.node("overlayfs", "overlayfs", f"overlayfs ({len(mine)} of {len(overlays)} mounts are this store's)",
           mounts_total=len(overlays), store_mounts=[o["mountpoint"] for o in mine],
           driver=snaps.driver)
    by_mountpoint = {o["mountpoint"]: o for o in overlays}
    for n in list(d.nodes.values()):    # `pallet image mount`: a read-only view of an image
        if n["kind"] == "image":
            view = str(snaps.dir / "mnt" / _short(n["attrs"]["id"], 64))
            if view in by_mountpoint:
                n["attrs"]["mounted_at"] = view
                d.edge(n["id"], "overlayfs", "mounted")

    # runtimes
    for rt in hostfacts.runtimes():
        d.node(f"runtime:{rt['name']}", "runtime",
               f"runtime {rt['name']}" + ("" if rt["installed"] else " (not installed)"), **rt)

    # networks
    try:
        nets = store.db.query("SELECT id, name, driver, bridge, subnet, gateway FROM networks ORDER BY name")
    except Exception:  # noqa: BLE001 - a store older than the networks tables has none
        nets = []
    net_names = {}
    for n in nets:
        if n["driver"] in ("host", "null"):
            continue
        net_names[n["id"]] = n["name"]
        up = bool(n["bridge"]) and hostfacts.link_exists(n["bridge"])
        nid = d.node(f"net:{n['name']}", "network", f"network {n['name']}", id=n["id"], name=n["name"],
                     driver=n["driver"], bridge=n["bridge"], subnet=n["subnet"], gateway=n["gateway"], bridge_up=up)
        if n["bridge"]:
            d.edge(nid, d.node(f"bridge:{n['bridge']}", "bridge", f"bridge {n['bridge']}" + ("" if up else " (down)"),
                               name=n["bridge"], up=up, network=n["name"]), "bridge")
        if up:
            d.edge(nid, "nft:inet:pallet", "firewall")

    # volumes
    from pallet.engine.volumes import Volumes

    try:
        vols = Volumes(engine).list()
    except Exception:  # noqa: BLE001
        vols = []
    for v in vols:
        d.node(f"vol:{v['Name']}", "volume", f"volume {v['Name']}", name=v["Name"], driver=v["Driver"],
               mountpoint=v["Mountpoint"], anonymous=v["Anonymous"])

    # containers
    procs = hostfacts.processes()
    used_types: set[str] = set()
    for c in containers:
        cid = _container(d, c, engine, snaps, by_mountpoint, host_ns, procs, used_types)
        d.edge(cid, f"image:{c.image_id}", "image")
    d.nodes["kernel"]["attrs"]["namespace_types_in_use"] = sorted(used_types)
    d.nodes["kernel"]["attrs"]["containers_running"] = len(running)

    # other pallet processes
    monitors = {c.monitor_pid for c in containers if c.monitor_pid}
    for pid, argv in sorted(procs.items()):
        role = _role(argv)
        if role and pid != os.getpid() and pid not in monitors:
            attrs = {"pid": pid, "role": role, "argv": argv}
            if role == "dns":    # argv: … pallet.network.dns DB NETWORK-ID …: this store's network, or another's
                i = argv.index("pallet.network.dns") if "pallet.network.dns" in argv else len(argv)
                attrs["network_id"] = argv[i + 2] if len(argv) > i + 2 else None
                attrs["network"] = net_names.get(attrs["network_id"])
                if attrs["network"] is None:
                    continue     # (a DNS server of another store's network: not this picture's)
            proc = d.node(f"proc:{pid}", "process", f"{role} pid {pid}", **attrs)
            if role == "dns":
                d.edge(proc, f"net:{attrs['network']}", "dns")

    _registries(d, store, config_file)
    return d.doc()


def _image_label(rec) -> str:
    name = rec.tags[0] if rec.tags else "<none>"
    return f"{name}\n{_short(rec.id)}"


def _container(d: _Doc, c, engine, snaps, by_mountpoint, host_ns, procs, used_types) -> str:
    from pallet.engine import networking

    live = c.status == "running" and bool(c.pid)
    hc = c.HostConfig
    mode = hc.get("NetworkMode") or "none"
    attrs: dict = {"id": c.id, "name": c.name, "status": c.status, "image": c.image_name,
                   "runtime": c.runtime, "pid": c.pid if live else None,
                   "monitor_pid": c.monitor_pid if live else None, "exit_code": None if live else c.exit_code,
                   "network_mode": mode, "networks": list(networking.endpoints(c)),
                   "ports": _ports(c, live), "mounts": [_mount(m) for m in c.config.get("Mounts") or ()]}
    if live:
        ns = hostfacts.namespaces(c.pid)
        attrs["namespaces"] = ns
        attrs["shared_with_host"] = sorted(t for t, i in ns.items() if host_ns.get(t) == i)
        attrs["cgroup"] = hostfacts.cgroup_paths(c.pid)
        attrs["cgroup_path"] = hostfacts.main_cgroup(attrs["cgroup"])
        attrs["seccomp_mode"] = hostfacts.seccomp_mode(c.pid)
        if attrs["networks"]:
            try:
                attrs["addresses"] = [{"network": le.network, "address": f"{le.address}/{le.prefixlen}",
                                       "mac": le.mac, "veth": le.host_ifname, "ifname": le.ifname}
                                      for le in networking.leases(engine, c.id)]
            except Exception as e:  # noqa: BLE001 - a store without the networks tables
                attrs["addresses"] = [{"error": str(e)}]
    else:
        attrs["cgroup"] = []
        attrs["cgroup_path"] = f"pallet/{c.id} (when running)"
    ident = d.node(f"ctr:{c.id}", "container", f"{c.name}\n{c.short_id} {c.status}", **attrs)
    d.edge(ident, f"runtime:{c.runtime}", "runtime")
    # rootfs
    try:
        snap = snaps.container(c.id)
    except Exception:  # noqa: BLE001 - no snapshot (removed, or never made)
        snap = None
    if snap is not None:
        mp = str(snap.merged)
        ov = by_mountpoint.get(mp)
        sid = d.node(f"snap:{c.id}", "snapshot", f"snapshot {c.short_id}", driver=snap.driver,
                     mountpoint=mp, mounted=ov is not None, mount_id=ov and ov["mount_id"],
                     lowers=len(snap.layers), top_layer=snap.layers[-1] if snap.layers else None)
        d.edge(ident, sid, "rootfs")
        if snap.layers:
            d.edge(sid, f"layer:{snap.layers[-1]}", "lower")
        if ov is not None:
            d.edge(sid, "overlayfs", "mounted")
    if live:
        d.edge(f"proc:{c.monitor_pid}" if _add_monitor(d, c, procs) else "", ident, "monitors")
        for t, inode in sorted(attrs["namespaces"].items()):
            if t in attrs["shared_with_host"]:
                continue
            used_types.add(t)
            d.node(f"ns:{t}:{inode}", "namespace", f"{t} {inode}", type=t, inode=inode, host=False)
            d.edge(ident, f"ns:{t}:{inode}", "namespace")
        if attrs["shared_with_host"]:
            d.edge(ident, "ns:host", "shares")
        d.edge(ident, "cgroup", "cgroup")
        if attrs["seccomp_mode"] == 2:
            d.edge(ident, "seccomp", "seccomp")
    for m in c.config.get("Mounts") or ():
        if m.get("Type") == "volume" and m.get("Name"):
            d.edge(ident, f"vol:{m['Name']}", "mount")
    for net in attrs["networks"] or ([mode] if networking.is_network(mode) else []):
        d.edge(ident, f"net:{net}", "network")
    if live:
        for p in attrs["ports"]:
            hostside, _, target = p.partition("->")
            port, proto = target.split("/", 1) if "/" in target else (target, "tcp")
            pid_ = d.node(f"port:{hostside}/{proto}", "port", f"{hostside}/{proto} → {port}", host=hostside,
                          protocol=proto, container_port=int(port), container=c.name)
            d.edge(ident, pid_, "publishes")
            d.edge(pid_, "nft:inet:pallet", "dnat")
    return ident


def _add_monitor(d: _Doc, c, procs) -> bool:
    pid = c.monitor_pid
    if not pid or pid not in procs:
        return False
    d.node(f"proc:{pid}", "process", f"monitor pid {pid}", pid=pid, role="monitor", container=c.name,
           argv=procs[pid])
    return True


def _ports(c, live: bool) -> list[str]:
    out = []
    bound = (c.config.get("Ports") or {}) if live else {}
    for key, binds in (c.HostConfig.get("PortBindings") or {}).items():
        for b in (bound.get(key) or binds or [{}]):
            host = f"{b.get('HostIp') or '0.0.0.0'}:{b.get('HostPort') or '?'}"
            out.append(f"{host}->{key}")
    return out


def _mount(m: dict) -> dict:
    keep = ("Type", "Name", "Source", "Destination", "RW")
    return {k.lower(): m[k] for k in keep if k in m}


def _role(argv: list[str]) -> str | None:
    """Which of pallet's long-lived processes this argv is (None: not one of them)."""
    if not argv:
        return None
    names = [os.path.basename(a) for a in argv[:3]]
    joined = " ".join(argv)
    if "pallet-netavark" in names:
        return "netavark"
    if "pallet.network.dns" in argv[:8]:    # (spawned as `python -I -S -c BOOT pallet.network.dns …`)
        return "dns"
    if not any(n in ("pallet", "pallet-runtime") or n.startswith("pallet.") for n in names) \
            and "-m pallet" not in joined and not any("/bin/pallet" in a for a in argv[:3]):
        return None
    if "registry serve" in joined or "pallet.registry.server" in joined:
        return "registry"
    if "pallet.engine.monitorproc" in joined:
        return "monitor"
    if "pallet.network.dns" in joined:
        return "dns"
    if "system service" in joined or "pallet.api" in joined:
        return "daemon"
    return None


def _registries(d: _Doc, store, config_file: str | None) -> None:
    from pallet.registry.client import auth
    from pallet.registry.client.settings import load_settings, settings_path

    try:
        settings = load_settings(config_file)
        err = None
    except PalletError as e:
        settings, err = None, e.message
    hosts: dict[str, dict] = {}
    if settings is not None:
        for host, rs in settings.registries.items():
            hosts.setdefault(host, {})["mirrors"] = list(rs.mirrors)
            hosts[host]["insecure"] = rs.insecure
    logged: dict[str, str] = {}
    for path, legacy in auth.auth_file_paths():
        try:
            data = json.loads(path.read_bytes())
        except (OSError, ValueError):
            continue
        if not isinstance(data, dict):
            continue
        entries = data if legacy else {**(data.get("auths") or {}), **(data.get("credHelpers") or {})}
        for key in entries:
            host = auth._normalize_key(key).split("/", 1)[0]
            logged.setdefault(host, str(path))
    for host in logged:
        hosts.setdefault(host, {})
    for host, info in sorted(hosts.items()):
        d.node(f"reg:{host}", "registry", f"registry {host}", host=host, mirrors=info.get("mirrors", []),
               insecure=info.get("insecure"), logged_in=host in logged, auth_file=logged.get(host),
               settings_file=str(settings_path(config_file)))
    for host, info in hosts.items():
        for m in info.get("mirrors", []):
            d.node(f"reg:{m}", "registry", f"registry {m}", host=m, mirror_of=host, logged_in=m in logged)
            d.edge(f"reg:{host}", f"reg:{m}", "mirror")
    if err:
        d.node("reg:settings-error", "registry", "settings file unreadable", error=err)
    for n in list(d.nodes.values()):
        if n["kind"] == "image":
            for tag in n["attrs"].get("tags") or ():
                d.edge(n["id"], f"reg:{tag.split('/', 1)[0]}", "from")


# ---- rendering ----------------------------------------------------------------------------------

STYLE = {
    "kernel": 'shape=box style="rounded,filled,bold" fillcolor="#dbe9f6"',
    "namespace": 'shape=box style="rounded,filled" fillcolor="#eef5fb" fontsize=9',
    "host-namespaces": 'shape=box style="rounded,filled" fillcolor="#eef5fb" fontsize=9',
    "cgroups": 'shape=box style="rounded,filled" fillcolor="#dbe9f6"',
    "overlayfs": 'shape=box style="rounded,filled" fillcolor="#dbe9f6"',
    "seccomp": 'shape=box style="rounded,filled" fillcolor="#dbe9f6"',
    "netfilter": 'shape=box style="rounded,filled" fillcolor="#dbe9f6"',
    "network": 'shape=box style="rounded,filled" fillcolor="#d9f2e6"',
    "bridge": 'shape=box style="rounded,filled" fillcolor="#d9f2e6" fontsize=9',
    "port": 'shape=cds style="filled" fillcolor="#d4edda" fontsize=9',
    "process": 'shape=box style="filled" fillcolor="#fff3cd"',
    "runtime": 'shape=box style="filled" fillcolor="#fff3cd"',
    "image": 'shape=box style="filled,bold" fillcolor="#e2d9f3"',
    "layer": 'shape=box style="filled" fillcolor="#f1ecf9" fontsize=9',
    "snapshot": 'shape=box style="filled,dashed" fillcolor="#f1ecf9" fontsize=9',
    "volume": 'shape=cylinder style="filled" fillcolor="#f1ecf9"',
    "container": 'shape=box style="filled,bold" fillcolor="#d4edda"',
    "registry": 'shape=box style="filled" fillcolor="#f8d7da"',
}
EDGE_STYLE = {"layer": 'color="#6f42c1"', "lower": 'color="#6f42c1" style=dashed', "monitors": 'color="#b8860b"',
              "namespace": 'color="#1f77b4"', "shares": 'color="#1f77b4" style=dotted',
              "cgroup": 'color="#1f77b4" style=dotted', "seccomp": 'color="#1f77b4" style=dotted',
              "mounted": 'color="#1f77b4" style=dashed', "mirror": 'color="#c0392b"', "from": 'color="#c0392b"',
              "runtime": 'color="#b8860b" style=dotted', "image": 'color="#6f42c1" penwidth=1.5',
              "network": 'color="#2e8b57" penwidth=1.5', "bridge": 'color="#2e8b57"', "dns": 'color="#2e8b57" style=dashed',
              "publishes": 'color="#2e8b57"', "dnat": 'color="#2e8b57" style=dotted',
              "firewall": 'color="#2e8b57" style=dotted'}


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _dot_label(n: dict) -> str:
    a = n["attrs"]
    k = n["kind"]
    lines = [n["label"]]
    if k == "container":
        if a.get("pid"):
            lines.append(f"pid {a['pid']}  monitor {a.get('monitor_pid')}")
        elif a.get("exit_code") is not None:
            lines.append(f"exit code {a['exit_code']}")
        lines.append(f"net {a.get('network_mode')}" + (f"  {', '.join(a['ports'])}" if a.get("ports") else ""))
        for ad in a.get("addresses") or ():
            if "address" in ad:
                lines.append(f"{ad['ifname']} {ad['address']} ({ad['veth']})")
        for m in a.get("mounts") or ():
            lines.append(f"{m.get('name') or m.get('source') or m.get('type')} -> {m.get('destination')}")
        if a.get("cgroup_path"):
            lines.append(f"cgroup {_shorten_ids(a['cgroup_path'])}")
    elif k == "layer":
        lines.append(f"chain {_short(a['chain_id'])}" + ("" if a.get("unpacked") else " (not unpacked)"))
    elif k == "cgroups":
        lines += [f"{h['mountpoint']}" for h in a.get("hierarchies", [])[:12]]
        if len(a.get("hierarchies", [])) > 12:
            lines.append("…")
    elif k == "host-namespaces":
        lines += [f"{t} {i}" for t, i in sorted(a.get("inodes", {}).items())]
    elif k == "kernel":
        lines.append(f"namespaces in use: {', '.join(a.get('namespace_types_in_use') or ['none'])}")
    elif k == "snapshot":
        lines.append(f"{a.get('driver')}, {a.get('lowers')} lower(s), " + ("mounted" if a.get("mounted") else
                                                                            "not mounted"))
    elif k == "process":
        lines.append(_process_what(a)[:60])
    elif k == "runtime" and a.get("version"):
        lines.append(a["version"][:40])
    elif k == "registry":
        if a.get("logged_in"):
            lines.append("logged in")
        if a.get("insecure"):
            lines.append("insecure")
    elif k == "network":
        lines.append(f"{a.get('driver')} {a.get('bridge') or ''} {a.get('subnet') or ''}".strip())
    elif k == "image":
        lines.append(f"{a.get('layers')} layer(s)")
    return _q("\n".join(lines))


def _process_what(a: dict) -> str:
    """What a pallet process is there for (its argv says little: a monitor is a fork of `pallet run`, a DNS
    server a `python -c`)."""
    if a.get("role") == "monitor" and a.get("container"):
        return f"parent of container {a['container']}"
    if a.get("role") == "dns" and a.get("network"):
        return f"names of network {a['network']}"
    return " ".join(a.get("argv", []))


def _ns_groups(doc: dict) -> dict[str, list[str]]:
    """container id -> the namespace nodes only it uses (drawn as one small cluster per container)."""
    users: dict[str, list[str]] = {}
    for e in doc["edges"]:
        if e["kind"] == "namespace":
            users.setdefault(e["to"], []).append(e["from"])
    groups: dict[str, list[str]] = {}
    for ns, cs in users.items():
        if len(cs) == 1:
            groups.setdefault(cs[0], []).append(ns)
    return groups


def _ns_table(nodes: dict, cid: str, nss: list[str]) -> str:
    """One container's own namespaces as a Graphviz HTML table; each cell carries its node id (the
    SVG has it as the cell's id and title)."""
    owner = _html.escape(nodes[cid]["attrs"].get("name") or cid)
    cells = [f'<TD ID="{_html.escape(ns)}" HREF="#{_html.escape(ns)}" TITLE="{_html.escape(ns)}" '
             f'BGCOLOR="#eef5fb" BORDER="1" STYLE="rounded">{_html.escape(nodes[ns]["label"])}</TD>' for ns in nss]
    rows = ["<TR>" + "".join(cells[i:i + 2]) + "</TR>" for i in range(0, len(cells), 2)]
    return ('<TABLE BORDER="1" COLOR="#1f77b4" STYLE="rounded" CELLBORDER="0" CELLSPACING="3" CELLPADDING="3">'
            f'<TR><TD COLSPAN="2"><FONT POINT-SIZE="9">namespaces of {owner}</FONT></TD></TR>'
            + "".join(rows) + "</TABLE>")


def to_dot(doc: dict) -> str:
    out = ["digraph pallet {",
           '  graph [rankdir=LR fontname="Helvetica" fontsize=12 nodesep=0.2 ranksep=0.9 compound=true '
           'labeljust=l newrank=true];',
           '  node [fontname="Helvetica" fontsize=10 margin="0.12,0.05"];',
           '  edge [fontname="Helvetica" fontsize=8 color="#555555" arrowsize=0.6];']
    nodes = {n["id"]: n for n in doc["nodes"]}
    groups = _ns_groups(doc)
    grouped = {ns: cid for cid, nss in groups.items() for ns in nss}
    by_cluster: dict[str, list[dict]] = {c: [] for c in CLUSTERS}
    for n in doc["nodes"]:
        if n["id"] not in grouped:
            by_cluster[CLUSTER_OF.get(n["kind"], "kernel")].append(n)
    # left to right: processes and runtimes -> containers -> kernel and store -> registries
    for cname in ("processes", "containers", "kernel", "store", "registries"):
        members = by_cluster[cname]
        if not members and not (cname == "kernel" and groups):
            continue
        out.append(f"  subgraph cluster_{cname} {{")
        out.append(f'    label={_q(CLUSTER_TITLES[cname])}; style="rounded"; color="#999999";')
        for n in members:
            out.append(f"    {_q(n['id'])} [label={_dot_label(n)} {STYLE.get(n['kind'], '')}];")
        if cname == "kernel":
            for i, (cid, nss) in enumerate(sorted(groups.items())):
                out.append(f"    nsgroup_{i} [shape=plain label=<{_ns_table(nodes, cid, sorted(nss))}>];")
        out.append("  }")
    drawn_groups: set[str] = set()
    for e in doc["edges"]:
        style = EDGE_STYLE.get(e["kind"], "")
        a, b, label = e["from"], e["to"], e["kind"]
        if e["kind"] == "namespace" and b in grouped:
            if a in drawn_groups:
                continue          # one arrow into the container's namespace cluster
            drawn_groups.add(a)
            out.append(f"  {_q(a)} -> nsgroup_{sorted(groups).index(a)} [label=\"namespaces\" {style}];")
            continue
        if e["kind"] == "runtime":   # drawn from the runtime, so runtimes sit left of the containers
            out.append(f"  {_q(b)} -> {_q(a)} [label={_q(label)} dir=back {style}];")
            continue
        out.append(f"  {_q(a)} -> {_q(b)} [label={_q(label)} {style}];")
    out.append("}")
    return "\n".join(out) + "\n"


def to_svg(dot_text: str) -> str:
    dot = shutil.which("dot")
    if dot is None:
        raise PalletError("drawing the diagram needs Graphviz's dot, which is not installed "
                          "(apt-get install graphviz, or use --format text, json or dot)")
    cp = subprocess.run([dot, "-Tsvg"], input=dot_text, capture_output=True, text=True, timeout=120)
    if cp.returncode != 0:
        first = (cp.stderr.strip().splitlines() or [f"exit {cp.returncode}"])[0]
        raise PalletError(f"dot could not lay out the diagram: {first}")
    return cp.stdout


def to_html(doc: dict, svg: str) -> str:
    start = svg.find("<svg")
    inline = svg[start:] if start >= 0 else svg
    data = json.dumps(doc, indent=1).replace("</", "<\\/")
    counts: dict[str, int] = {}
    for n in doc["nodes"]:
        counts[n["kind"]] = counts.get(n["kind"], 0) + 1
    summary = ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<title>pallet system diagram</title>\n"
            "<style>body{font-family:Helvetica,Arial,sans-serif;margin:1em}svg{max-width:100%;height:auto}"
            "</style>\n</head>\n<body>\n<h1>pallet system diagram</h1>\n"
            f"<p>{_html.escape(summary)}</p>\n{inline}\n"
            f'<script type="application/json" id="pallet-diagram">\n{data}\n</script>\n</body>\n</html>\n')


def _text_line(n: dict) -> str:
    a = n["attrs"]
    k = n["kind"]
    label = n["label"].replace("\n", " ")
    extra = ""
    if k == "container":
        bits = [f"image {a.get('image')}"]
        if a.get("pid"):
            bits.append(f"pid {a['pid']}, monitor {a.get('monitor_pid')}")
        elif a.get("exit_code") is not None:
            bits.append(f"exit {a['exit_code']}, no process")
        bits.append(f"net {a.get('network_mode')}")
        if a.get("networks") and a["networks"] != [a.get("network_mode")]:
            bits.append("networks " + ",".join(a["networks"]))
        if a.get("ports"):
            bits.append("ports " + ",".join(a["ports"]))
        for ad in a.get("addresses") or ():
            if "address" in ad:
                bits.append(f"{ad['network']} {ad['address']} via {ad['veth']}")
        if a.get("cgroup_path"):
            bits.append("cgroup " + _shorten_ids(a["cgroup_path"]))
        extra = "; ".join(bits)
    elif k == "layer":
        extra = f"diff {_short(a['diff_id'])} chain {_short(a['chain_id'])}" + \
            ("" if a.get("unpacked") else " (not unpacked)")
    elif k == "cgroups":
        extra = ", ".join(f"{h['mountpoint']}" for h in a.get("hierarchies", []))
    elif k == "host-namespaces":
        extra = " ".join(f"{t}:{i}" for t, i in sorted(a.get("inodes", {}).items()))
    elif k == "kernel":
        extra = f"namespaces in use: {', '.join(a.get('namespace_types_in_use') or ['none'])}"
    elif k == "snapshot":
        extra = f"{a.get('driver')}, " + (f"mounted at {_shorten_ids(a.get('mountpoint') or '')}" if a.get("mounted")
                                          else "not mounted")
    elif k == "process":
        extra = _process_what(a)[:100]
    elif k == "runtime":
        extra = a.get("path") or ""
        if a.get("default"):
            extra += " (default)"
    elif k == "registry":
        bits = []
        if a.get("mirrors"):
            bits.append("mirrors " + ", ".join(a["mirrors"]))
        if a.get("logged_in"):
            bits.append("logged in")
        if a.get("insecure"):
            bits.append("insecure")
        extra = "; ".join(bits)
    elif k == "volume":
        extra = a.get("mountpoint", "")
    elif k == "network":
        extra = f"{a.get('driver')} {a.get('bridge') or ''} {a.get('subnet') or ''}".strip()
    elif k == "image":
        extra = f"{a.get('layers')} layer(s)"
    return f"{label}" + (f"  [{extra}]" if extra else "")


def to_text(doc: dict) -> str:
    nodes = {n["id"]: n for n in doc["nodes"]}
    out_edges: dict[str, list[dict]] = {}
    incoming: dict[str, int] = {}
    for e in doc["edges"]:
        out_edges.setdefault(e["from"], []).append(e)
        incoming[e["to"]] = incoming.get(e["to"], 0) + 1
    lines = ["host"]
    groups = [(c, [n for n in doc["nodes"] if CLUSTER_OF.get(n["kind"], "kernel") == c and n["kind"] != "namespace"])
              for c in CLUSTERS]
    groups = [g for g in groups if g[1]]
    for gi, (cname, members) in enumerate(groups):
        last_g = gi == len(groups) - 1
        lines.append(("└─ " if last_g else "├─ ") + CLUSTER_TITLES[cname])
        pad = "   " if last_g else "│  "
        for ni, n in enumerate(members):
            last_n = ni == len(members) - 1
            line = _text_line(n)
            if n["kind"] == "layer" and incoming.get(n["id"], 0) > 1:
                images = sum(1 for e in doc["edges"] if e["to"] == n["id"] and e["kind"] == "layer")
                if images > 1:
                    line += f"  (shared by {images} images)"
            lines.append(pad + ("└─ " if last_n else "├─ ") + line)
            pad2 = pad + ("   " if last_n else "│  ")
            es = out_edges.get(n["id"], [])
            own = [nodes[e["to"]]["label"] for e in es if e["kind"] == "namespace"]
            items = []
            for e in es:
                if e["kind"] == "namespace":
                    continue
                tgt = nodes[e["to"]]["label"].replace("\n", " ")
                if e["kind"] == "shares":
                    tgt += ": " + ", ".join(n["attrs"].get("shared_with_host") or ())
                items.append(f"{e['kind']} → {tgt}")
            if own:
                items.insert(0, "own namespaces → " + ", ".join(own))
            for ii, item in enumerate(items):
                lines.append(pad2 + ("└─ " if ii == len(items) - 1 else "├─ ") + item)
    return "\n".join(lines) + "\n"


def render(doc: dict, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(doc, indent=2) + "\n"
    if fmt == "dot":
        return to_dot(doc)
    if fmt == "text":
        return to_text(doc)
    svg = to_svg(to_dot(doc))
    return svg if fmt == "svg" else to_html(doc, svg)


def choose_format(fmt: str | None, output: str | None, tty: bool) -> str:
    """--format, else text on a terminal without -o, else by -o's extension, else svg."""
    if fmt:
        f = fmt.lower()
        if f not in FORMATS:
            raise PalletError(f"unknown diagram format {fmt!r} (svg, html, dot, text or json)")
        return f
    if output is None:
        return "text" if tty else "svg"
    return EXTENSIONS.get(os.path.splitext(output)[1].lower(), "svg")


def check_output(output: str) -> None:
    """An -o that cannot be written: one sentence, before anything is read."""
    target = os.path.abspath(output)
    parent = os.path.dirname(target)
    if os.path.isdir(target):
        raise PalletError(f"cannot write the diagram to {output}: it is a directory")
    if not os.path.isdir(parent):
        raise PalletError(f"cannot write the diagram to {output}: directory {parent} does not exist")
    if os.path.exists(target) and not os.access(target, os.W_OK) or \
            not os.path.exists(target) and not os.access(parent, os.W_OK):
        raise PalletError(f"cannot write the diagram to {output}: permission denied")


def write(output: str, text: str) -> None:
    try:
        with open(output, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as e:
        raise PalletError(f"cannot write the diagram to {output}: {e.strerror or e}") from None
