"""`pallet explain run|image` and `pallet images --tree` against images built in a private store."""

from __future__ import annotations

import json
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from conftest import make_busybox_rootfs

DEFAULT_CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
                "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
                "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"]


@pytest.fixture
def images(pallet, tmp_path: Path) -> dict:
    """localhost/busybox (imported) and localhost/child:1 built on it (two layers: a file, a dpkg status)."""
    rootfs = make_busybox_rootfs(tmp_path / "rootfs")
    tar = tmp_path / "rootfs.tar"
    with tarfile.open(tar, "w") as tf:
        tf.add(rootfs, arcname=".")
    base = pallet("import", "-c", 'CMD ["sh"]', str(tar), "localhost/busybox:latest", check=True).stdout.strip()
    ctx = tmp_path / "ctx"
    (ctx / "var/lib/dpkg").mkdir(parents=True)
    (ctx / "var/lib/dpkg/status").write_text("Package: foo\nStatus: install ok installed\n\n"
                                             "Package: bar\nStatus: install ok installed\n")
    (ctx / "hello.txt").write_text("hello\n")
    (ctx / "Dockerfile").write_text("FROM localhost/busybox\nCOPY hello.txt /app/hello.txt\nCOPY var /var\n"
                                    "ENV A=1\nEXPOSE 80\nUSER app\n")
    pallet("build", "-q", "-t", "localhost/child:1", str(ctx), check=True)
    return {"base": base}


def _json(cp: subprocess.CompletedProcess):
    assert cp.returncode == 0, cp.stderr
    return json.loads(cp.stdout)


def test_default_run_keeps_dockers_14_caps(pallet, images):
    e = _json(pallet("explain", "run", "--format", "json", "localhost/busybox"))
    assert [c["name"] for c in e["capabilities"]["kept"]] == DEFAULT_CAPS
    assert all(c["allows"] for c in e["capabilities"]["kept"])
    ns = {n["type"]: n["state"] for n in e["namespaces"]}
    assert ns["pid"] == ns["network"] == ns["mount"] == ns["ipc"] == ns["uts"] == "new"
    assert ns["user"] == "host"
    assert e["seccomp"]["enabled"]
    assert {"mount", "unshare", "keyctl", "bpf", "kexec_load"} <= set(e["seccomp"]["blocked_notable"])
    assert e["user"]["uid"] == 0 and e["process"]["args"] == ["sh"]
    assert e["warnings"] == []


def test_text_output_is_readable(pallet, images):
    cp = pallet("explain", "run", "localhost/busybox")
    assert cp.returncode == 0, cp.stderr
    for heading in ("NAMESPACES", "USER", "CAPABILITIES  14 kept of", "SECCOMP", "PATHS", "MOUNTS", "DEVICES",
                    "CGROUP", "NETWORK"):
        assert heading in cp.stdout
    assert "CAP_NET_BIND_SERVICE" in cp.stdout and "bind ports below 1024" in cp.stdout


def test_privileged_keeps_every_cap(pallet, images):
    e = _json(pallet("explain", "run", "--privileged", "--format=json", "localhost/busybox"))
    assert e["capabilities"]["kept_count"] == e["capabilities"]["full_count"]
    assert not e["seccomp"]["enabled"]
    assert e["masked_paths"] == [] and e["readonly_paths"] == []
    assert any("--privileged" in w for w in e["warnings"])


def test_compare_privileged(pallet, images):
    out = _json(pallet("explain", "run", "--compare", "--privileged", "--format", "json", "localhost/busybox"))
    d = out["difference"]
    added = {c["name"] for c in d["capabilities"]["added"]}
    assert {"CAP_SYS_ADMIN", "CAP_SYS_MODULE", "CAP_SYS_PTRACE"} <= added and not d["capabilities"]["removed"]
    assert d["seccomp"]["changed"] and d["seccomp"]["to"].startswith("disabled")
    assert "/proc/kcore" in d["masked_paths"]["removed"]
    cp = pallet("explain", "run", "--compare", "--privileged", "localhost/busybox")
    assert cp.returncode == 0
    assert "+ CAP_SYS_ADMIN" in cp.stdout and "disabled" in cp.stdout and "unmasked" in cp.stdout


def test_compare_cap_add(pallet, images):
    d = _json(pallet("explain", "run", "--compare", "--cap-add SYS_ADMIN", "--format", "json",
                     "localhost/busybox"))["difference"]
    assert [c["name"] for c in d["capabilities"]["added"]] == ["CAP_SYS_ADMIN"]
    assert "mount" in d["seccomp"]["now_allowed"]   # the real profile allows mount to CAP_SYS_ADMIN
    same = pallet("explain", "run", "--compare", "", "localhost/busybox")
    assert "No difference" in same.stdout


def test_network_host_and_socket_bind_warn(pallet, images, tmp_path):
    sock = tmp_path / "docker.sock"
    sock.write_text("")
    e = _json(pallet("explain", "run", "--network", "host", "-v", f"{sock}:/var/run/docker.sock",
                     "--format", "json", "localhost/busybox"))
    assert {n["type"]: n["state"] for n in e["namespaces"]}["network"] == "host"
    assert any("--network host" in w for w in e["warnings"])
    assert any("docker.sock" in w for w in e["warnings"])
    m = next(m for m in e["mounts"] if m["destination"] == "/var/run/docker.sock")
    assert m["origin"] == "host"


def test_flags_limits_user_and_image_config(pallet, images):
    e = _json(pallet("explain", "run", "--memory", "64m", "--pids-limit", "10", "--read-only", "--format", "json",
                     "localhost/child:1", "id"))
    assert e["cgroup"]["limits"]["memory"]["limit"] == 64 * 1024 * 1024
    assert e["cgroup"]["limits"]["pids"] == {"limit": 10}
    assert e["rootfs_readonly"] is True
    assert e["user"]["uid"] == 1000 and e["user"]["additional_gids"] == [50]   # USER app, from the image
    assert e["process"]["args"] == ["id"]


def test_explain_run_creates_nothing(pallet, images, pallet_root):
    pallet("explain", "run", "-v", "vol1:/data", "localhost/busybox", check=True)
    assert pallet("ps", "-a", "-q").stdout.strip() == ""
    assert "vol1" not in pallet("volume", "ls").stdout
    assert not (pallet_root / "containers").exists() or not any((pallet_root / "containers").iterdir())


@pytest.mark.parametrize("args", [["--bogus"], ["--memory", "1k"], ["--cap-add", "NOPE"], ["--pull", "sometimes"]])
def test_bad_flags_are_runs_errors(pallet, images, args):
    ex = pallet("explain", "run", *args, "localhost/busybox")
    run = pallet("run", "--rm", *args, "localhost/busybox")
    assert ex.returncode == run.returncode == 125
    assert ex.stderr == run.stderr
    assert ex.stdout == ""


def test_unknown_image_one_line(pallet, pallet_root):
    for cmd in (["explain", "run", "localhost/nothere"], ["explain", "image", "localhost/nothere"]):
        cp = pallet(*cmd)
        assert cp.returncode == 125
        assert len(cp.stderr.strip().splitlines()) == 1 and "nothere" in cp.stderr


def test_explain_image(pallet, images):
    e = _json(pallet("explain", "image", "--format", "json", "localhost/child:1"))
    assert e["base"]["id"] == images["base"] and e["base"]["tags"] == ["localhost/busybox:latest"]
    assert e["layers_added"] == 2 and [x["from_base"] for x in e["layers"]] == [True, False, False]
    assert e["names"][0]["api_url"] == "https://localhost/v2/child/manifests/1"
    dbs = e["layers"][2]["package_dbs"]
    assert dbs == [{"manager": "dpkg", "path": "/var/lib/dpkg/status", "packages": 2}]
    assert any(d["path"] == "/bin" for d in e["layers"][0]["top_dirs"])
    assert e["runs"]["user"] == "app" and e["runs"]["ports"] == ["80/tcp"] and "A=1" in e["runs"]["env"]
    assert e["waste"]["efficiency"] == 1.0
    cp = pallet("explain", "image", "localhost/child:1")
    assert cp.returncode == 0
    assert "built on localhost/busybox:latest" in cp.stdout and "dpkg database" in cp.stdout
    base = _json(pallet("explain", "image", "--format", "json", "localhost/busybox"))
    assert base["base"] is None


def test_images_tree(pallet, images):
    forest = _json(pallet("images", "--tree", "--format", "json"))
    assert len(forest) == 1
    root = forest[0]
    assert root["tags"] == ["localhost/busybox:latest"] and root["id"] == images["base"]
    assert [c["tags"] for c in root["children"]] == [["localhost/child:1"]]
    child = root["children"][0]
    assert child["added_layers"] == 2 and child["layers"] == 3 and child["size"] > 0
    cp = pallet("images", "--tree")
    assert cp.returncode == 0
    lines = cp.stdout.splitlines()
    assert lines[0].split()[1] == "localhost/busybox:latest"
    assert lines[1].startswith("└─ ") and "localhost/child:1" in lines[1]


@pytest.mark.root
def test_explain_container_reads_the_live_process(pallet, images):
    cid = pallet("run", "-d", "--memory", "64m", "--cap-drop", "NET_RAW", "localhost/busybox", "sleep", "60",
                 check=True).stdout.strip()
    try:
        e = _json(pallet("explain", "container", "--format", "json", cid))
        eff = [c["name"] for c in e["capabilities"]["effective"]]
        assert sorted(eff) == sorted(c for c in DEFAULT_CAPS if c != "CAP_NET_RAW")
        assert e["seccomp"]["mode"] == "filter"
        ns = {n["type"]: n["state"] for n in e["namespaces"]}
        assert ns["pid"] == ns["mount"] == ns["network"] == "own" and ns["user"] == "host"
        assert e["cgroup"]["memory"]["current"] is not None
        assert e["processes"][0]["pid"] == 1 and e["processes"][0]["host_pid"] == e["pid"]
        assert "sleep 60" in e["processes"][0]["command"]
        root = next(m for m in e["mounts"] if m["destination"] == "/")
        if root["type"] == "overlay":
            assert any(low["layer"] == "localhost/busybox:latest layer 0" for low in root["lowers"])
        text = pallet("explain", "container", cid)
        assert text.returncode == 0 and "NAMESPACES" in text.stdout and "PROCESSES" in text.stdout
    finally:
        pallet("rm", "-f", cid)
    gone = pallet("explain", "container", cid)
    assert gone.returncode == 125 and len(gone.stderr.strip().splitlines()) == 1


def test_explain_container_of_a_stopped_one(pallet, images):
    pallet("create", "--name", "idle", "localhost/busybox", check=True)
    try:
        cp = pallet("explain", "container", "idle")
    finally:
        pallet("rm", "-f", "idle")
    assert cp.returncode == 125 and "must be running" in cp.stderr and len(cp.stderr.strip().splitlines()) == 1


def test_network_exposure_publish_and_publish_all(pallet, images):
    """-p and -P: what start will publish (-P: every exposed port, EXPOSE 80 of the image, to a random host port)."""
    e = _json(pallet("explain", "run", "-p", "127.0.0.1:8080:443", "-P", "--format", "json", "localhost/child:1"))
    n = e["network"]
    assert n["mode"] == "bridge" and n["networks"] == ["bridge"] and n["host"] is False
    assert sorted(n["ports"]) == ["0.0.0.0:(random) -> 80/tcp", "127.0.0.1:8080 -> 443/tcp"]
    text = pallet("explain", "run", "-P", "localhost/child:1", check=True).stdout
    assert "the default bridge" in text and "0.0.0.0:(random) -> 80/tcp" in text
    none = _json(pallet("explain", "run", "--network", "none", "-P", "--format", "json", "localhost/child:1"))
    assert none["network"]["ports"] == [] and none["network"]["mode"] == "none"
    cmp = pallet("explain", "run", "--compare", "-p 8080:80", "localhost/busybox", check=True).stdout
    assert "+ published 0.0.0.0:8080 -> 80/tcp" in cmp


@pytest.mark.root
def test_network_by_name(pallet, images):
    """--network NAME of a network in the store (the session's own network namespace holds its bridge)."""
    pallet("network", "create", "--subnet", "10.97.0.0/24", "front", check=True)
    try:
        e = _json(pallet("explain", "run", "--network", "front", "-p", "8081:80", "--format", "json",
                         "localhost/busybox"))
        assert e["network"]["mode"] == "front" and e["network"]["networks"] == ["front"]
        assert e["network"]["ports"] == ["0.0.0.0:8081 -> 80/tcp"]
        assert pallet("ps", "-aq").stdout == ""
    finally:
        pallet("network", "rm", "front", check=True)


@pytest.mark.parametrize("args", [["-p", "99999:80"], ["-p", "80:80/icmp"], ["--network", "nosuch"],
                                  ["--network", "none", "-p", "80:80"], ["--memory", "lots"]])
def test_more_bad_flags_are_runs_errors(pallet, images, args):
    ex = pallet("explain", "run", *args, "localhost/busybox")
    run = pallet("run", "--rm", *args, "localhost/busybox")
    assert ex.returncode == run.returncode == 125
    assert ex.stderr == run.stderr and ex.stderr.count("\n") == 1
    assert ex.stdout == ""


@pytest.mark.root
def test_explain_container_shows_its_network(pallet, images):
    """A container on a user network with a published port: its links inside (from its /proc/PID/net),
    its address and the host end of its veth pair — a port of the network's bridge, as the kernel says."""
    pallet("network", "create", "--subnet", "10.98.0.0/24", "back", check=True)
    cid = None
    try:
        cid = pallet("run", "-d", "--network", "back", "-p", "127.0.0.1:18089:80", "localhost/busybox",
                     "sleep", "60", check=True).stdout.strip()
        n = _json(pallet("explain", "container", "--format", "json", cid))["network"]
        info = json.loads(pallet("inspect", cid, check=True).stdout)[0]
        assert n["mode"] == "back"
        inside = {i["name"] for i in n["interfaces"]}
        (ep,) = n["endpoints"]
        assert inside == {"lo", ep["ifname"]} and ep["network"] == "back"
        assert ep["address"] == info["NetworkSettings"]["Networks"]["back"]["IPAddress"] + "/24"
        link = subprocess.run(["ip", "-o", "link", "show", "dev", ep["veth"]], capture_output=True, text=True,
                              check=True).stdout
        assert ep["veth_present"] and f" master {ep['bridge']} " in link
        assert n["ports"] == ["127.0.0.1:18089 -> 80/tcp"]
        text = pallet("explain", "container", cid, check=True).stdout
        assert "NETWORK  back" in text and f"veth {ep['veth']} on bridge {ep['bridge']}" in text
        assert "published  127.0.0.1:18089 -> 80/tcp" in text
    finally:
        if cid:
            pallet("rm", "-f", cid)
        pallet("network", "rm", "back")


@pytest.mark.network
def test_an_image_not_in_the_store_is_pulled_only_with_pull(pallet, images, tmp_path):
    """Not in the store: one sentence, exit 125, nothing pulled; with --pull missing (run's rule) it is pulled
    from pallet's own registry on loopback and explained."""
    from helpers.registry_server import RegistryProcess

    reg = RegistryProcess(tmp_path / "reg", [], tmp_path / "reg.log").start()
    try:
        ref = f"127.0.0.1:{reg.port}/bb:1"
        pallet("push", "localhost/busybox", ref, check=True)
        pallet("rmi", ref)
        before = pallet("images", "-q", "--no-trunc", check=True).stdout
        cp = pallet("explain", "run", ref)
        assert cp.returncode == 125 and cp.stderr.count("\n") == 1 and "does not pull" in cp.stderr
        assert pallet("images", "-q", "--no-trunc", check=True).stdout == before
        e = _json(pallet("explain", "run", "--pull", "missing", "--format", "json", ref))
        assert e["image"] == ref and e["process"]["args"] == ["sh"]
        assert ref in pallet("images", "--format", "{{.Repository}}:{{.Tag}}", check=True).stdout
        assert pallet("ps", "-aq").stdout == ""
    finally:
        reg.stop(timeout=10)


@pytest.mark.parametrize("args, words", [
    (["--pid", "host"], "the PID namespace is the host's"),
    (["--ipc", "host"], "the ipc namespace is the host's"),
    (["--security-opt", "systempaths=unconfined"], "/proc/sys is writable"),
    (["--security-opt", "systempaths=unconfined"], "no masked paths"),
    (["-v", "/run/pallet:/run/pallet"], "/run/pallet is bind-mounted at /run/pallet: a runtime's socket"),
    (["-v", "/sys:/host-sys"], "the host's /sys is bind-mounted writable at /host-sys"),
    (["--privileged"], "--privileged: every capability"),
    (["--network", "host"], "(--network host)"),
])
def test_warnings_for_what_breaks_isolation(pallet, images, args, words):
    e = _json(pallet("explain", "run", *args, "--format", "json", "localhost/busybox"))
    assert any(words in w for w in e["warnings"]), e["warnings"]
    text = pallet("explain", "run", *args, "localhost/busybox", check=True).stdout
    assert "WARNINGS" in text and words in text
    if args[0] in ("--pid", "--ipc"):
        kind = {"--pid": "pid", "--ipc": "ipc"}[args[0]]
        assert {n["type"]: n["state"] for n in e["namespaces"]}[kind] == "host"


def test_explain_image_counts_the_wasted_space(pallet, images, tmp_path):
    """A file COPY'd and then overwritten in a later layer still takes its space: the waste names it."""
    ctx = tmp_path / "waste"
    ctx.mkdir()
    (ctx / "big.bin").write_bytes(b"\1" * 200_000)
    (ctx / "small.bin").write_bytes(b"\2" * 10)
    (ctx / "Dockerfile").write_text("FROM localhost/busybox\nCOPY big.bin /data.bin\nCOPY small.bin /data.bin\n")
    pallet("build", "-q", "-t", "localhost/waste:1", str(ctx), check=True)
    w = _json(pallet("explain", "image", "--format", "json", "localhost/waste:1"))["waste"]
    assert w["wasted_bytes"] >= 200_000 and w["efficiency"] < 1.0, w
    assert [x["path"] for x in w["top"]] == ["/data.bin"] and w["top"][0]["wasted_bytes"] >= 200_000, w
    text = pallet("explain", "image", "localhost/waste:1", check=True).stdout
    assert "data.bin" in text


def test_devices_added_and_all_with_privileged(pallet, images):
    d = _json(pallet("explain", "run", "--device", "/dev/fuse", "--format", "json", "localhost/busybox"))["devices"]
    st = Path("/dev/fuse").stat()
    assert {"path": "/dev/fuse", "type": "c", "major": os.major(st.st_rdev), "minor": os.minor(st.st_rdev)} in d["nodes"]
    assert {"allow": True, "type": "c", "major": os.major(st.st_rdev), "minor": os.minor(st.st_rdev),
            "access": "rwm"} in d["rules"] and d["all_allowed"] is False
    text = pallet("explain", "run", "--device", "/dev/fuse", "localhost/busybox", check=True).stdout
    assert "extra nodes: /dev/fuse" in text and "deny all but" in text
    priv = _json(pallet("explain", "run", "--privileged", "--format", "json", "localhost/busybox"))["devices"]
    assert priv["all_allowed"] is True and any(n["path"] == "/dev/fuse" for n in priv["nodes"])
