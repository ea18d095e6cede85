"""`pallet system diagram` on a known host: two images sharing a base layer, three containers (two
running, one stopped), a named volume, a user network (its bridge, its DNS server) with a published
port, the default bridge, registries from pallet.toml and an auth file.

Every object and edge is checked in the JSON against what the kernel says (/proc/PID/ns, the
container's pid from inspect), then in the SVG (every node id is drawn), the SVG is rendered to PNG by
rsvg-convert, the html carries the SVG and parseable JSON, and the text tree names everything.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
from html import unescape
from pathlib import Path

import pytest

from engine.engine_support import IMAGE, Env, build_image
from helpers.netns import host_ns_fixture  # noqa: F401 (the host_ns fixture)

pytestmark = pytest.mark.root

APP = "localhost/app:1"
SECRET = "s3cr3t-Pa55word"
WEB_PORT = 18088


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory, busybox_rootfs: Path):
    """The known host; every container removed afterwards (also when a test fails)."""
    tmp = tmp_path_factory.mktemp("diagram")
    env = Env(tmp / "root", tmp / "run", tmp)
    cfg = tmp / "config"
    cfg.mkdir()
    (cfg / "pallet.toml").write_text('[registries."docker.io"]\nmirrors = ["127.0.0.1:5999"]\n\n'
                                     '[registries."127.0.0.1:5999"]\ninsecure = true\n')
    authfile = tmp / "auth.json"
    authfile.write_text(json.dumps({"auths": {"registry.example.test": {
        "auth": base64.b64encode(f"someone:{SECRET}".encode()).decode()}}}))
    env.env["REGISTRY_AUTH_FILE"] = str(authfile)
    try:
        base_id = build_image(env.root, busybox_rootfs)
        env("run", "--network", "none", "--name", "changer", IMAGE, "sh", "-c", "echo hello > /etc/motd", check=True)
        env("commit", "changer", APP, check=True)
        env("rm", "changer", check=True)
        # (the session's own network namespace holds the bridges; the per-test cleanup of tests/conftest.py
        # keeps a bridge that has ports)
        env("network", "create", "--subnet", "10.96.0.0/24", "front", check=True)
        web = env("run", "-d", "--network", "front", "-p", f"127.0.0.1:{WEB_PORT}:80", "--name", "web",
                  "-v", "data:/data", APP, "sleep", "300", check=True).stdout.strip()
        worker = env("run", "-d", "--name", "worker", IMAGE, "sleep", "300", check=True).stdout.strip()
        env("run", "--network", "none", "--name", "oneshot", APP, "true", check=True)
        oneshot = env("inspect", "--format", "{{.Id}}", "oneshot", check=True).stdout.strip()
        env.ids_by_name = {"web": web, "worker": worker, "oneshot": oneshot}
        env.base_id = base_id
        yield env
    finally:
        env.cleanup()
        env("network", "rm", "front")


def inspect(env: Env, name: str) -> dict:
    return json.loads(env("inspect", name, check=True).stdout)[0]


def diagram(env: Env, *args: str) -> str:
    return env("system", "diagram", *args, check=True).stdout


@pytest.fixture(scope="module")
def doc(host) -> dict:
    return json.loads(diagram(host, "--format", "json"))


def nodes_of(doc: dict, kind: str) -> list[dict]:
    return [n for n in doc["nodes"] if n["kind"] == kind]


def edges(doc: dict, kind: str, *, frm: str | None = None, to: str | None = None) -> list[dict]:
    return [e for e in doc["edges"] if e["kind"] == kind and (frm is None or e["from"] == frm)
            and (to is None or e["to"] == to)]


def stable_ids(doc: dict) -> set[str]:
    """The node ids of this test's host: without the registry servers and daemons other processes on
    the machine may start or stop between two runs (a live picture shows them)."""
    return {n["id"] for n in doc["nodes"] if n["kind"] != "process" or n["attrs"]["role"] == "monitor"}


def test_the_document_is_well_formed(doc):
    assert doc["schema"] == "pallet.diagram/1"
    ids = [n["id"] for n in doc["nodes"]]
    assert len(ids) == len(set(ids)), "a node is drawn twice"
    for n in doc["nodes"]:
        assert set(n) == {"id", "kind", "label", "attrs"} and n["label"]
    for e in doc["edges"]:
        assert set(e) == {"from", "to", "kind"}
        assert e["from"] in ids and e["to"] in ids, e
    assert len({(e["from"], e["to"], e["kind"]) for e in doc["edges"]}) == len(doc["edges"])


def test_images_and_the_shared_base_layer_drawn_once(host, doc):
    images = {n["attrs"]["tags"][0]: n for n in nodes_of(doc, "image")}
    assert set(images) == {IMAGE, APP}
    base_cfg = json.loads(host("image", "inspect", IMAGE, check=True).stdout)[0]
    app_cfg = json.loads(host("image", "inspect", APP, check=True).stdout)[0]
    base_diffs = base_cfg["RootFS"]["Layers"]
    app_diffs = app_cfg["RootFS"]["Layers"]
    assert len(base_diffs) == 1 and len(app_diffs) == 2 and app_diffs[0] == base_diffs[0]
    layers = nodes_of(doc, "layer")
    assert len(layers) == 2, [n["id"] for n in layers]
    base = [n for n in layers if n["attrs"]["diff_id"] == base_diffs[0]]
    assert len(base) == 1, "the shared base layer must appear once"
    base_node = base[0]
    assert base_node["attrs"]["chain_id"] == base_diffs[0] and base_node["attrs"]["parent"] is None
    top = next(n for n in layers if n is not base_node)
    assert top["attrs"]["diff_id"] == app_diffs[1] and top["attrs"]["parent"] == base_diffs[0]
    froms = {e["from"] for e in edges(doc, "layer", to=base_node["id"])}
    assert froms == {images[IMAGE]["id"], images[APP]["id"]}
    assert {e["to"] for e in edges(doc, "layer", frm=images[APP]["id"])} == {base_node["id"], top["id"]}
    assert {e["to"] for e in edges(doc, "layer", frm=images[IMAGE]["id"])} == {base_node["id"]}
    assert images[IMAGE]["attrs"]["id"] == host.base_id


def test_containers_their_processes_namespaces_and_snapshots(host, doc):
    by_name = {n["attrs"]["name"]: n for n in nodes_of(doc, "container")}
    assert set(by_name) == {"web", "worker", "oneshot"}
    host_ns = {t: os.readlink(f"/proc/self/ns/{t}") for t in ("mnt", "pid", "net", "uts", "ipc")}
    images = {n["attrs"]["tags"][0]: n["id"] for n in nodes_of(doc, "image")}
    for name in ("web", "worker"):
        n = by_name[name]
        a = n["attrs"]
        info = inspect(host, name)
        assert n["id"] == f"ctr:{host.ids_by_name[name]}"
        assert a["status"] == "running" and a["pid"] == info["State"]["Pid"] > 0
        # the monitor: a process node with the container's monitor pid, and its edge
        mon = a["monitor_pid"]
        assert mon and os.path.exists(f"/proc/{mon}")
        proc = next(p for p in nodes_of(doc, "process") if p["attrs"]["pid"] == mon)
        assert proc["attrs"]["role"] == "monitor" and proc["id"] == f"proc:{mon}"
        assert edges(doc, "monitors", frm=proc["id"], to=n["id"])
        # namespaces: what the kernel says of the container's init, against the host's
        for t in ("mnt", "pid", "net", "uts", "ipc"):
            link = os.readlink(f"/proc/{a['pid']}/ns/{t}")
            inode = int(re.search(r"\[(\d+)\]", link).group(1))
            assert a["namespaces"][t] == inode
            assert link != host_ns[t] and t not in a["shared_with_host"]
            ns_id = f"ns:{t}:{inode}"
            assert any(x["id"] == ns_id and x["kind"] == "namespace" for x in doc["nodes"])
            assert edges(doc, "namespace", frm=n["id"], to=ns_id)
        assert edges(doc, "cgroup", frm=n["id"], to="cgroup")
        assert host.ids_by_name[name] in a["cgroup_path"]
        with open(f"/proc/{a['pid']}/status") as f:
            mode = int(next(ln for ln in f if ln.startswith("Seccomp:")).split()[1])
        assert a["seccomp_mode"] == mode
        assert bool(edges(doc, "seccomp", frm=n["id"], to="seccomp")) == (mode == 2)
        assert [e["to"] for e in edges(doc, "runtime", frm=n["id"])] == [f"runtime:{a['runtime']}"]
    # the stopped one: no process, no namespaces, still its image and snapshot
    stopped = by_name["oneshot"]
    assert stopped["attrs"]["status"] == "exited" and stopped["attrs"]["pid"] is None
    assert stopped["attrs"]["monitor_pid"] is None and stopped["attrs"]["exit_code"] == 0
    assert not [e for e in doc["edges"] if e["to"] == stopped["id"] and e["kind"] == "monitors"]
    assert not edges(doc, "namespace", frm=stopped["id"]) and not edges(doc, "cgroup", frm=stopped["id"])
    # images and snapshots
    expect_image = {"web": APP, "worker": IMAGE, "oneshot": APP}
    layers = {n["attrs"]["diff_id"]: n["id"] for n in nodes_of(doc, "layer")}
    for name, n in by_name.items():
        assert edges(doc, "image", frm=n["id"], to=images[expect_image[name]])
        snap = f"snap:{host.ids_by_name[name]}"
        assert edges(doc, "rootfs", frm=n["id"], to=snap)
        top = json.loads(host("image", "inspect", expect_image[name], check=True).stdout)[0]["RootFS"]["Layers"][-1]
        top_chain = next(x for x in nodes_of(doc, "layer") if x["id"] == layers[top])
        assert edges(doc, "lower", frm=snap, to=top_chain["id"])
        snode = next(x for x in doc["nodes"] if x["id"] == snap)
        if snode["attrs"]["driver"] == "overlay":
            assert snode["attrs"]["mounted"] == (name != "oneshot")
        if snode["attrs"]["mounted"]:
            assert edges(doc, "mounted", frm=snap, to="overlayfs")
            assert os.path.ismount(snode["attrs"]["mountpoint"])
    # only one monitor per running container, none for the stopped one
    monitors = [p for p in nodes_of(doc, "process") if p["attrs"]["role"] == "monitor"]
    assert {p["attrs"]["pid"] for p in monitors} == {by_name["web"]["attrs"]["monitor_pid"],
                                                    by_name["worker"]["attrs"]["monitor_pid"]}


def test_volume_kernel_runtimes_and_registries(host, doc):
    vols = nodes_of(doc, "volume")
    assert [v["id"] for v in vols] == ["vol:data"]
    assert Path(vols[0]["attrs"]["mountpoint"]).is_dir()
    web = f"ctr:{host.ids_by_name['web']}"
    assert edges(doc, "mount", frm=web, to="vol:data")
    assert not edges(doc, "mount", frm=f"ctr:{host.ids_by_name['worker']}")
    web_node = next(n for n in doc["nodes"] if n["id"] == web)
    assert any(m.get("name") == "data" and m["destination"] == "/data" for m in web_node["attrs"]["mounts"])
    assert web_node["attrs"]["network_mode"] == "front"

    kernel = next(n for n in doc["nodes"] if n["id"] == "kernel")
    assert kernel["attrs"]["release"] == os.uname().release
    assert {"mnt", "pid", "net", "uts", "ipc"} <= set(kernel["attrs"]["namespace_types_in_use"])
    hostns = next(n for n in doc["nodes"] if n["id"] == "ns:host")
    try:
        assert hostns["attrs"]["inodes"]["mnt"] == os.stat("/proc/1/ns/mnt").st_ino
    except PermissionError:   # no ptrace access to pid 1 here: the document says it read its own
        assert hostns["attrs"]["inodes"]["mnt"] == os.stat("/proc/self/ns/mnt").st_ino
        assert "own process" in hostns["attrs"]["read_from"]
    cg = next(n for n in doc["nodes"] if n["id"] == "cgroup")
    fstypes = {line.split(" - ")[1].split()[0] for line in open("/proc/self/mountinfo")}
    expected = ("hybrid" if {"cgroup", "cgroup2"} <= fstypes else "v1" if "cgroup" in fstypes else "v2")
    assert cg["attrs"]["version"] == expected
    assert all(os.path.isdir(h["mountpoint"]) for h in cg["attrs"]["hierarchies"])
    nft = next(n for n in doc["nodes"] if n["id"] == "nft")
    assert nft["attrs"]["installed"] == bool(shutil.which("nft") or os.path.exists("/usr/sbin/nft"))
    seccomp = next(n for n in doc["nodes"] if n["id"] == "seccomp")
    from pallet.linux import seccomp as sc

    assert seccomp["attrs"]["libseccomp"] == sc.version()

    rts = {n["attrs"]["name"]: n["attrs"] for n in nodes_of(doc, "runtime")}
    assert set(rts) == {"pallet", "runc", "crun"}
    assert rts["pallet"]["installed"] is True
    for name in ("runc", "crun"):
        assert rts[name]["installed"] == (shutil.which(name) is not None)

    regs = {n["id"]: n["attrs"] for n in nodes_of(doc, "registry")}
    assert regs["reg:docker.io"]["mirrors"] == ["127.0.0.1:5999"]
    assert regs["reg:127.0.0.1:5999"]["insecure"] is True
    assert edges(doc, "mirror", frm="reg:docker.io", to="reg:127.0.0.1:5999")
    assert regs["reg:registry.example.test"]["logged_in"] is True
    assert regs["reg:docker.io"]["logged_in"] is False


def test_networks_bridges_published_port_and_dns_server(host, doc):
    """web on the user network front with a published port, worker on the default bridge, oneshot on
    none: each container -> its network -> its bridge (a link of this namespace), the port -> pallet's
    table, front's DNS server (a process whose argv names front's id) -> front."""
    from pallet.explain.hostfacts import link_exists

    nodes = {n["id"]: n for n in doc["nodes"]}
    web, worker, oneshot = (f"ctr:{host.ids_by_name[n]}" for n in ("web", "worker", "oneshot"))
    nets = json.loads(host("network", "inspect", "front", "bridge", check=True).stdout)
    for net in nets:
        node = nodes[f"net:{net['Name']}"]["attrs"]
        assert node["id"] == net["Id"] and node["bridge_up"] is True
        br = node["bridge"]
        assert link_exists(br)
        assert nodes[f"bridge:{br}"]["attrs"] == {"name": br, "up": True, "network": net["Name"]}
        assert edges(doc, "bridge", frm=f"net:{net['Name']}", to=f"bridge:{br}")
        assert edges(doc, "firewall", frm=f"net:{net['Name']}", to="nft:inet:pallet")
    assert nodes["net:front"]["attrs"]["subnet"] == "10.96.0.0/24"
    assert [e["to"] for e in edges(doc, "network", frm=web)] == ["net:front"]
    assert [e["to"] for e in edges(doc, "network", frm=worker)] == ["net:bridge"]
    assert not edges(doc, "network", frm=oneshot)
    for name, net in (("web", "front"), ("worker", "bridge")):
        a = nodes[f"ctr:{host.ids_by_name[name]}"]["attrs"]
        ip = inspect(host, name)["NetworkSettings"]["Networks"][net]["IPAddress"]
        (addr,) = a["addresses"]
        assert addr["network"] == net and addr["address"].split("/")[0] == ip
        # the container's veth is a port of the bridge the network's node names (what the kernel says)
        link = subprocess.run(["ip", "-o", "link", "show", "dev", addr["veth"]], capture_output=True, text=True,
                              check=True).stdout
        assert f" master {nodes[f'net:{net}']['attrs']['bridge']} " in link, link
    # the published port: a node of its own, from web, to the DNAT table
    port = f"port:127.0.0.1:{WEB_PORT}/tcp"
    assert nodes[port]["kind"] == "port" and nodes[port]["attrs"]["container_port"] == 80
    assert nodes[port]["attrs"]["container"] == "web"
    assert [e["to"] for e in edges(doc, "publishes")] == [port] and edges(doc, "publishes", frm=web)
    assert edges(doc, "dnat", frm=port, to="nft:inet:pallet")
    # front's DNS server, one of pallet's processes; the default bridge has none (docker's: no DNS there)
    dns = [n for n in nodes_of(doc, "process") if n["attrs"]["role"] == "dns"]
    assert [d["attrs"]["network"] for d in dns] == ["front"], dns
    pid = dns[0]["attrs"]["pid"]
    assert nodes["net:front"]["attrs"]["id"] in open(f"/proc/{pid}/cmdline").read().split("\0")
    assert edges(doc, "dns", frm=dns[0]["id"], to="net:front")


def test_no_secret_in_any_format(host):
    for fmt in ("json", "dot", "text", "html"):
        out = diagram(host, "--format", fmt)
        assert SECRET not in out and base64.b64encode(f"someone:{SECRET}".encode()).decode() not in out


def test_svg_draws_every_node_and_renders_to_png(host, doc, tmp_path):
    out = tmp_path / "host.svg"
    host("system", "diagram", "-o", str(out), check=True)       # the format from the extension
    svg = out.read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    # a node's id is its <title>; a namespace is a cell of its container's namespace table, titled by its id
    titles = {unescape(t) for t in re.findall(r"<title>(.*?)</title>", svg)}
    cells = {unescape(t) for t in re.findall(r'xlink:title="(.*?)"', svg)}
    live = json.loads(diagram(host, "--format", "json"))
    for n in live["nodes"]:
        assert n["id"] in (cells if n["kind"] == "namespace" else titles), f"node {n['id']} is not drawn"
    for label in ("web", "worker", "oneshot", APP, IMAGE, "volume data", "registry docker.io", "monitor pid",
                  "network front", "network bridge", f"127.0.0.1:{WEB_PORT}/tcp → 80", "dns pid"):
        assert label in unescape(svg), label
    # every edge is drawn (a container's namespaces by one arrow into their cluster)
    drawn = {t for t in titles if "->" in t}
    groups = {}
    for e in live["edges"]:
        if e["kind"] == "namespace":
            groups.setdefault(e["from"], set()).add(e["to"])
            continue
        pair = f"{e['from']}->{e['to']}" if e["kind"] != "runtime" else f"{e['to']}->{e['from']}"
        assert pair in drawn, f"edge {e} is not drawn"
    for ctr in groups:   # one arrow from each running container to the table of its namespaces
        assert any(t.startswith(f"{ctr}->nsgroup_") for t in drawn), ctr
    png = tmp_path / "host.png"
    cp = subprocess.run(["rsvg-convert", "-o", str(png), str(out)], capture_output=True, text=True)
    assert cp.returncode == 0, cp.stderr
    data = png.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000


def test_html_has_the_svg_and_the_json(host, doc, tmp_path):
    out = tmp_path / "host.html"
    host("system", "diagram", "-o", str(out), check=True)
    page = out.read_text()
    assert page.startswith("<!DOCTYPE html>") and page.count("<svg") == 1 and "<?xml" not in page
    m = re.search(r'<script type="application/json" id="pallet-diagram">\n(.*?)\n</script>', page, re.S)
    assert m, "no JSON block"
    embedded = json.loads(m.group(1))
    assert embedded["schema"] == doc["schema"]
    assert stable_ids(embedded) == stable_ids(doc)
    assert len(embedded["edges"]) == len(doc["edges"])
    assert "http" not in page.split("<svg", 1)[0].replace("http://www.w3.org", "")   # no outside resources


def test_text_tree_names_everything(host, doc):
    text = diagram(host, "--format", "text")
    for word in ("web", "worker", "oneshot", APP, IMAGE, "volume data", "shared by 2 images", "monitor pid",
                 "runtime pallet", "registry docker.io", "mirror → registry 127.0.0.1:5999", "exit 0, no process",
                 "network → network front", f"publishes → 127.0.0.1:{WEB_PORT}/tcp → 80", "dns → network front",
                 "bridge → bridge "):
        assert word in text, word
    assert text.count("layer " + next(n for n in nodes_of(doc, "layer") if n["attrs"]["parent"] is None)
                      ["attrs"]["diff_id"].split(":")[1][:12] + "  [") == 1


def test_formats_follow_the_extension_and_default_to_svg(host, tmp_path):
    for name, probe in (("d.json", lambda s: json.loads(s)["schema"]), ("d.dot", lambda s: s.startswith("digraph")),
                        ("d.txt", lambda s: s.startswith("host\n")), ("d.unknown", lambda s: "<svg" in s)):
        host("system", "diagram", "-o", str(tmp_path / name), check=True)
        assert probe((tmp_path / name).read_text()), name
    # not a terminal, no -o: svg on stdout
    assert "<svg" in diagram(host)
    dot = diagram(host, "--format", "dot")
    assert "subgraph cluster_kernel" in dot and "subgraph cluster_store" in dot and "cluster_containers" in dot


@pytest.mark.parametrize("args, words", [
    (["-o", "/nonexistent-dir/x.svg"], "does not exist"),
    (["-o", "/"], "is a directory"),
    (["-o", "/proc/diagram.svg"], "cannot write the diagram to /proc/diagram.svg"),   # refused at write time
    (["-o", "/sys/diagram.txt"], "cannot write the diagram to /sys/diagram.txt"),
    (["--format", "png"], "unknown diagram format"),
])
def test_bad_input_is_one_line_and_125(host, args, words):
    cp = host("system", "diagram", *args)
    assert cp.returncode == 125, cp
    lines = cp.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], cp.stderr
    assert cp.stdout == ""


def test_svg_without_dot_says_how_to_install_it(host, tmp_path):
    cp = host("system", "diagram", "--format", "svg", env={"PATH": str(tmp_path)})
    assert cp.returncode == 125
    lines = cp.stderr.strip().splitlines()
    assert len(lines) == 1 and "apt-get install graphviz" in lines[0]
    # text and json need no graphviz
    assert host("system", "diagram", "--format", "text", env={"PATH": str(tmp_path)}).returncode == 0


@pytest.fixture
def netenv(host_ns, tmp_path: Path, busybox_rootfs: Path):
    """A private store whose every command runs inside host_ns (bridges and nft rules live there)."""
    env = Env(tmp_path / "root", tmp_path / "run", tmp_path)
    env.prefix = ["nsenter", f"--net={host_ns.path}", "--"]
    build_image(env.root, busybox_rootfs)
    try:
        yield env
    finally:
        env.cleanup()


@pytest.mark.network
def test_a_network_its_bridge_firewall_and_published_port(netenv):
    netenv("network", "create", "--subnet", "10.93.0.0/24", "diag", check=True)
    cid = netenv("run", "-d", "--network", "diag", "-p", "127.0.0.1:8088:80", "--name", "pub", IMAGE,
                 "sleep", "300", check=True).stdout.strip()
    doc = json.loads(netenv("system", "diagram", "--format", "json", check=True).stdout)
    nodes = {n["id"]: n for n in doc["nodes"]}
    net = nodes["net:diag"]["attrs"]
    assert net["driver"] == "bridge" and net["subnet"] == "10.93.0.0/24" and net["bridge"]
    assert net["bridge_up"] is True
    ctr = nodes[f"ctr:{cid}"]["attrs"]
    assert ctr["networks"] == ["diag"] and ctr["ports"] == ["127.0.0.1:8088->80/tcp"]
    info = inspect(netenv, cid)
    (addr,) = ctr["addresses"]
    assert addr["address"] == f"{info['NetworkSettings']['Networks']['diag']['IPAddress']}/24"
    assert "net" not in ctr["shared_with_host"]
    assert edges(doc, "network", frm=f"ctr:{cid}", to="net:diag")
    assert nodes["nft"]["attrs"]["pallet_table"] is True
    assert nodes["nft:inet:pallet"]["attrs"]["pallet"] is True
    assert edges(doc, "table", frm="nft", to="nft:inet:pallet")
    assert edges(doc, "firewall", frm="net:diag", to="nft:inet:pallet")
    text = netenv("system", "diagram", "--format", "text", check=True).stdout
    assert "network diag" in text and "127.0.0.1:8088->80/tcp" in text and "table inet pallet" in text
    svg = netenv("system", "diagram", "--format", "svg", check=True).stdout
    assert "<title>net:diag</title>" in svg and "nft:inet:pallet" in svg


def test_text_is_the_default_on_a_terminal(host):
    import pty

    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(host.argv("system", "diagram"), env=host.env, stdin=subprocess.DEVNULL,
                                stdout=slave, stderr=subprocess.PIPE)
        os.close(slave)
        chunks = []
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:      # EIO: the writer closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        assert proc.wait(timeout=60) == 0, proc.stderr.read()
        proc.stderr.close()
    finally:
        os.close(master)
    out = b"".join(chunks).decode()
    assert out.startswith("host\r\n") and "containers" in out and "<svg" not in out


@pytest.mark.network
def test_a_registry_server_is_one_of_pallets_processes(host, tmp_path):
    from helpers.net import free_port

    port = free_port()
    server = subprocess.Popen(host.argv("registry", "serve", "--addr", f"127.0.0.1:{port}", "--storage",
                                        str(tmp_path / "reg")), env=host.env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        doc = json.loads(diagram(host, "--format", "json"))
        procs = {n["id"]: n["attrs"] for n in nodes_of(doc, "process")}
        # the launcher may exec python: the server is the process whose argv says `registry serve`
        me = procs.get(f"proc:{server.pid}")
        assert me is not None, procs
        assert me["role"] == "registry" and f"127.0.0.1:{port}" in " ".join(me["argv"])
    finally:
        server.kill()
        server.wait()
    doc = json.loads(diagram(host, "--format", "json"))
    assert f"proc:{server.pid}" not in {n["id"] for n in doc["nodes"]}
