"""`pallet run --trace` and `pallet trace`: the kernel calls recorded by the code path itself, checked against
strace watching the same run; the tree, --summary, --format json; runc/crun; bad input."""

from __future__ import annotations

import json
import re
import shutil
from collections import Counter
from pathlib import Path

import pytest

from engine import conftest as _engine
from engine.engine_support import IMAGE
from helpers.netns import host_ns_fixture  # noqa: F401 (fixture host_ns)
from runtime import conftest as _runtime

# the engine tests' fixtures: a store with localhost/busybox (cleaned up after), crun's mount namespace;
# the runtime tests': a private runtime state root, bundles of a busybox rootfs, no cgroup left behind
pallet_env, image_rootfs, crun_prefix = _engine.pallet_env, _engine.image_rootfs, _engine.crun_prefix
rt_root, new_bundle, cid, no_leftovers = _runtime.rt_root, _runtime.new_bundle, _runtime.cid, _runtime.no_leftovers

pytestmark = pytest.mark.root

SYSCALLS = ("mount", "umount2", "pivot_root", "unshare", "clone", "clone3", "setns", "sethostname", "capset",
            "prctl", "seccomp", "setgroups", "setresgid", "setresuid", "execve", "write")


def _load(path: Path) -> dict:
    doc = json.loads(path.read_text())
    assert doc["version"] == 1
    return doc


def _ops(doc: dict, op: str) -> list[dict]:
    return [e for e in doc["events"] if e["op"] == op]


def _eventually(fn, timeout: float = 20.0):
    """fn() until it is truthy: an attached `run` returns once the exit is recorded, and the monitor
    writes the complete trace (and the run's stage costs) after the teardown that follows."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(0.05)


# -- strace's side --------------------------------------------------------------------------------
_LINE = re.compile(r"^(\d+)\s+(\w+)\((.*)\)\s+=\s+(-?\w+)")


def strace_calls(text: str) -> list[tuple[int, str, str, str]]:
    """(pid, syscall, argument text, result) of each call strace -f printed, its unfinished/resumed halves joined."""
    pending: dict[str, str] = {}
    out = []
    for line in text.splitlines():
        m = re.match(r"^(\d+)\s+(.*)$", line)
        if not m:
            continue
        pid, rest = m.groups()
        if rest.endswith("<unfinished ...>"):
            pending[pid] = rest[: -len("<unfinished ...>")].rstrip()
            continue
        r = re.match(r"^<\.\.\. \w+ resumed>(.*)$", rest)
        if r:
            rest = pending.pop(pid, "") + r.group(1)
        mm = _LINE.match(f"{pid} {rest}")
        if mm:
            out.append((int(mm.group(1)), mm.group(2), mm.group(3), mm.group(4)))
    return out


def _split_args(s: str) -> list[str]:
    """Top-level comma-separated arguments of strace's text (strings, {...} and [...] kept whole)."""
    args, depth, cur, q = [], 0, "", False
    i = 0
    while i < len(s):
        ch = s[i]
        if q:
            cur += ch
            if ch == "\\":
                cur += s[i + 1]
                i += 1
            elif ch == '"':
                q = False
        elif ch == '"':
            q = True
            cur += ch
        elif ch == "<" and cur.strip().isdigit():   # an fd's path (strace -y): commas in it are the path's
            end = s.index(">", i)
            cur += s[i:end + 1]
            i = end
        elif ch in "{[":
            depth += 1
            cur += ch
        elif ch in "}]":
            depth -= 1
            cur += ch
        elif ch == "," and depth == 0:
            args.append(cur.strip())
            cur = ""
        else:
            cur += ch
        i += 1
    if cur.strip():
        args.append(cur.strip())
    return args


def _str(a: str) -> str | None:
    if a == "NULL":
        return None
    if a.startswith('"'):
        return json.loads(a.rstrip("."))   # (strace's escapes are JSON's for these paths and values)
    return a   # a pointer strace did not decode (mount's ignored fstype of a bind)


def _mount_flags(text: str) -> int:
    from pallet.linux import mount as M

    flags = 0
    for part in text.split("|"):
        part = part.strip()
        if part in ("0", ""):
            continue
        if part.startswith("MS_MGC_VAL"):
            continue
        flags |= getattr(M, part) if hasattr(M, part) else int(part, 0)
    return flags


def strace_keys(calls, exclude_pids: set[int]) -> Counter:
    """The calls the trace must hold, each as a comparable key."""
    keys: Counter = Counter()
    for pid, name, argtext, _res in calls:
        if pid in exclude_pids and name == "execve":
            continue
        a = _split_args(argtext)
        if name == "mount":
            keys[("mount", _str(a[0]), _str(a[1]), _mount_flags(a[3]))] += 1
        elif name == "umount2":
            keys[("umount2", _str(a[0]), 2 if "MNT_DETACH" in a[1] else int(a[1], 0))] += 1
        elif name == "pivot_root":
            keys[("pivot_root", _str(a[0]), _str(a[1]))] += 1
        elif name == "unshare":
            keys[("unshare", frozenset(a[0].split("|")))] += 1
        elif name in ("clone", "clone3"):
            flags = re.findall(r"CLONE_NEW\w+", argtext)
            if flags:   # (a plain fork is no namespace operation)
                keys[("clone", frozenset(flags))] += 1
        elif name == "setns":
            keys[("setns", re.sub(r"^\d+<|>$", "", a[0]))] += 1
        elif name == "sethostname":
            keys[("sethostname", _str(a[0]))] += 1
        elif name == "capset":
            eff = re.search(r"effective=([^,}]*)", argtext).group(1)
            keys[("capset", frozenset(re.findall(r"CAP_\w+", eff)))] += 1
        elif name == "prctl":
            opt = a[0]
            keys[("prctl", opt, a[1] if opt == "PR_CAPBSET_DROP" else None)] += 1
        elif name == "seccomp":
            keys[("seccomp", a[0], int(re.search(r"len=(\d+)", argtext).group(1)))] += 1
        elif name == "setgroups":
            keys[("setgroups", tuple(int(x) for x in re.findall(r"\d+", a[1])))] += 1
        elif name in ("setresgid", "setresuid"):
            keys[(name, tuple(int(x) for x in a))] += 1
        elif name == "execve":
            keys[("execve", _str(a[0]), tuple(json.loads("[" + a[1][1:-1] + "]")))] += 1
        elif name == "write":
            path = re.match(r"\d+<(.*)>$", a[0])
            if path and path.group(1).startswith("/sys/fs/cgroup/"):
                keys[("write", path.group(1), json.loads(a[1]))] += 1
    return keys


def trace_keys(doc: dict) -> Counter:
    keys: Counter = Counter()
    for e in doc["events"]:
        op, a = e["op"], e["args"]
        if op == "mount":
            keys[("mount", a["source"], a["target"], a["flags"])] += 1
        elif op == "umount2":
            keys[("umount2", a["target"], a["flags"])] += 1
        elif op == "pivot_root":
            keys[("pivot_root", a["new_root"], a["put_old"])] += 1
        elif op == "unshare":
            keys[("unshare", frozenset(a["flags"]))] += 1
        elif op == "setns":
            keys[("setns", a["ns"])] += 1
        elif op == "sethostname":
            keys[("sethostname", a["name"])] += 1
        elif op == "capset":
            keys[("capset", frozenset(a["effective"]))] += 1
        elif op == "prctl":
            keys[("prctl", a["option"], a.get("cap"))] += 1
        elif op == "seccomp":
            keys[("seccomp", a.get("operation"), a.get("bpf_instructions"))] += 1
        elif op == "setgroups":
            keys[("setgroups", tuple(a["groups"]))] += 1
        elif op == "setresgid":
            keys[("setresgid", (a["rgid"], a["egid"], a["sgid"]))] += 1
        elif op == "setresuid":
            keys[("setresuid", (a["ruid"], a["euid"], a["suid"]))] += 1
        elif op == "execve":
            keys[("execve", a["path"], tuple(a["argv"]))] += 1
        elif op == "nft transaction" and a.get("argv"):   # (the nft program, without libnftables: its execve)
            keys[("execve", a["argv"][0], tuple(a["argv"]))] += 1
        elif op == "write" and a["path"].startswith("/sys/fs/cgroup/"):
            keys[("write", a["path"], a["value"])] += 1
    return keys


def test_trace_has_every_call_strace_sees(pallet_env, tmp_path):
    """`run --rm busybox true` with pallet's runtime under strace -f, traced in the same run: every mount,
    umount2, pivot_root, unshare, clone with CLONE_NEW*, setns, sethostname, capset, prctl, seccomp,
    setgroups/setresgid/setresuid, execve and cgroupfs write strace saw is in the trace, with the same
    arguments — and the trace invents none of them.

    Left out, and why: the first execve strace sees is strace starting the `pallet` console script itself
    (before any pallet code runs, nothing could record it); what a program pallet execs (the container's,
    nft) does after its execve is that program's, not pallet's (busybox calls prctl(PR_GET_NAME)). A first run warms the seccomp BPF cache: a cold
    cache has libseccomp probe the kernel with seccomp(2) calls of its own while compiling the profile
    (inside the library, not through pallet's wrapper)."""
    strace = shutil.which("strace")
    assert strace, "strace is not installed (make install installs it)"
    pallet_env("run", "--rm", IMAGE, "true", check=True)   # warm the seccomp BPF cache
    out, tr = tmp_path / "strace.txt", tmp_path / "trace.json"
    cp = pallet_env.__class__.__call__  # (Env runs argv; strace goes in front)
    pallet_env.prefix = [strace, "-f", "-qq", "-s", "65536", "-y", "-o", str(out),
                         "-e", "trace=" + ",".join(SYSCALLS)]
    try:
        r = cp(pallet_env, "run", "--rm", f"--trace={tr}", IMAGE, "true")
    finally:
        pallet_env.prefix = []
    assert r.returncode == 0, r.stderr
    calls = strace_calls(out.read_text())
    first_pid = calls[0][0]
    assert calls[0][1] == "execve" and "pallet" in calls[0][2]   # strace starting the console script
    # a program pallet execs is not pallet: what a pid does after its execve (of /bin/true, of nft) is that
    # program's own (busybox asks prctl(PR_GET_NAME) for its applet name)
    assert sum(1 for _, name, args, _ in calls if name == "execve" and '"/bin/true"' in args) == 1
    ours, after = [], set()
    for c in calls[1:]:
        if c[0] in after:
            continue
        ours.append(c)
        if c[1] == "execve":
            after.add(c[0])
    want = strace_keys(ours, set())
    doc = _load(tr)
    assert doc["complete"] and doc["runtime"] == "pallet"
    have = trace_keys(doc)
    missing = want - have
    assert not missing, f"strace saw calls the trace lacks: {sorted(missing, key=str)[:10]}"
    invented = have - want
    assert not invented, f"the trace has calls strace did not see: {sorted(invented, key=str)[:10]}"
    # each kind the issue names did happen in this run (the comparison above is not vacuous)
    kinds = {k[0] for k in want}
    assert {"mount", "umount2", "pivot_root", "unshare", "sethostname", "capset", "prctl", "seccomp",
            "setgroups", "setresgid", "setresuid", "execve", "write"} <= kinds
    assert first_pid not in {e["pid"] for e in doc["events"] if e["op"] == "execve"}
    # the processes and what each did
    procs = {e["process"] for e in doc["events"]}
    assert procs == {"cli", "monitor", "runtime-parent", "runtime-child", "init"}
    (overlay,) = [e for e in _ops(doc, "mount") if e["args"]["fstype"] == "overlay"]
    assert overlay["process"] == "cli" and overlay["stage"] == "snapshot"
    (layers,) = _ops(doc, "layers")
    assert [x["lowerdir"] for x in layers["args"]["lowerdirs"]] == \
        re.findall(r"(l/\w+)", overlay["args"]["data"].split(",")[0])
    (sc,) = _ops(doc, "seccomp")
    assert sc["process"] == "init" and sc["args"]["default_action"] == "SCMP_ACT_ERRNO"
    assert sc["args"]["rules"] > 0 and "SCMP_ARCH_X86_64" in sc["args"]["architectures"]
    (ex,) = _ops(doc, "execve")
    assert ex["process"] == "init" and ex["args"]["argv"] == ["true"] and ex == doc["events"][ex["seq"]]
    assert [e["t_ms"] for e in doc["events"]] == sorted(e["t_ms"] for e in doc["events"])


def test_trace_kept_with_the_container(pallet_env):
    """--trace without a file: kept in the container's directory; `pallet trace` shows it after the exit,
    as a tree, a summary, JSON; `rm` takes it away."""
    pallet_env("run", "--name", "tr1", "--trace", IMAGE, "true", check=True)
    tree = pallet_env("trace", "tr1", check=True).stdout
    assert "trace of tr1" in tree and "\x1b[" not in tree   # no colours off a tty
    for line in ("CLI (pallet run)", "container init", "snapshot", "pivot_root", "masked paths", "seccomp",
                 "execve", "/bin/true ['true']", "unshare CLONE_NEWNS|"):
        assert line in tree, line
    doc = _eventually(lambda: (d := json.loads(pallet_env("trace", "tr1", "--format", "json", check=True).stdout))
                      ["complete"] and d)
    assert doc and doc["container"]["name"] == "tr1" and doc["complete"] is True
    (etc,) = _ops(doc, "etc files")
    assert etc["process"] == "cli" and etc["args"]["files"]["hostname"] == doc["container"]["id"][:12] + "\n"
    assert set(etc["args"]["files"]) == {"hostname", "hosts", "resolv.conf"}
    made = [e for e in _ops(doc, "mkdir") if e["process"] == "runtime-parent" and e["stage"] == "cgroup"]
    removed = [e for e in _ops(doc, "rmdir") if e["stage"] == "teardown"]
    assert made and {e["args"]["path"] for e in made} == {e["args"]["path"] for e in removed}
    summ = pallet_env("trace", "tr1", "--summary", check=True).stdout
    head, *rows = summ.splitlines()
    assert head.split() == ["PROCESS", "STAGE", "TIME", "CALLS"]
    assert any("seccomp" in r for r in rows) and rows[-1].startswith("total ")
    js = json.loads(pallet_env("trace", "tr1", "--summary", "--format", "json", check=True).stdout)
    assert {s["stage"] for s in js["stages"]} >= {"start-up, image", "snapshot", "cgroup", "namespaces", "mounts", "execve"}
    assert js["total_ms"] > 0
    pallet_env("rm", "tr1", check=True)
    cp = pallet_env("trace", "tr1")
    assert cp.returncode == 125 and cp.stderr.count("\n") == 1 and "no such container" in cp.stderr


def test_rm_trace_prints_the_tree(pallet_env):
    cp = pallet_env("run", "--rm", "--trace", IMAGE, "echo", "hi", check=True)
    assert cp.stdout == "hi\n"
    assert "trace of " in cp.stderr and "execve" in cp.stderr
    assert not list((pallet_env.runroot / "traces").glob("*")), "the printed trace is removed"


def test_bad_input(pallet_env, tmp_path):
    for args in (["trace", "nosuch"], ["trace", str(tmp_path / "none.json")]):
        cp = pallet_env(*args)
        assert cp.returncode == 125 and cp.stderr.count("\n") == 1, cp.stderr
    pallet_env("run", "--name", "plain", IMAGE, "true", check=True)
    cp = pallet_env("trace", "plain")
    assert cp.returncode == 125 and "not run with --trace" in cp.stderr
    before = pallet_env.ids()
    for args in (["--trace=/nonexistent/dir/t.json"], ["--rm", "-d", "--trace"]):
        cp = pallet_env("run", *args, IMAGE, "true")
        assert cp.returncode == 125 and cp.stderr.count("\n") == 1, cp.stderr
    assert pallet_env.ids() == before   # nothing created


@pytest.mark.parametrize("runtime", ["runc", "crun"])
def test_other_runtime_says_what_it_cannot_see(pallet_env, runtime, request, tmp_path):
    if runtime == "crun":
        pallet_env.prefix = request.getfixturevalue("crun_prefix")
    tr = tmp_path / "t.json"
    pallet_env("run", "--rm", "--runtime", runtime, f"--trace={tr}", IMAGE, "true", check=True)
    doc = _load(tr)
    assert doc["runtime"] == runtime and runtime in doc["unseen"] and "pivot_root" in doc["unseen"]
    runs = _ops(doc, "exec runtime")
    verbs = [next(a for a in e["args"]["argv"][1:] if a in ("create", "start", "delete")) for e in runs]
    assert verbs[:2] == ["create", "start"] and all(e["args"]["argv"][0].endswith(runtime) for e in runs)
    assert all(e["dur_ms"] > 0 and e["args"]["exit"] == 0 for e in runs[:2])
    # what pallet itself does is there; the runtime's inside is not
    assert any(e["op"] == "mount" and e["args"]["fstype"] == "overlay" for e in doc["events"])
    assert not {"pivot_root", "capset", "execve", "seccomp"} & {e["op"] for e in doc["events"]}
    tree = pallet_env("trace", str(tr), check=True).stdout
    assert "not seen:" in tree and "exec runtime" in tree


def test_explain_run_cost(pallet_env):
    """--cost: from the store's rolling record of the traced runs, each stage's median; none yet: how to get them."""
    cp = pallet_env("explain", "run", "--cost", IMAGE, "true", check=True)
    assert "No traced runs with the pallet runtime" in cp.stdout and "--trace" in cp.stdout
    for _ in range(3):
        pallet_env("run", "--rm", "--trace", IMAGE, "true", check=True)
    pallet_env("run", "--rm", IMAGE, "true", check=True)   # (untraced: not in the record)
    def cost_of_three() -> str | None:
        t = pallet_env("explain", "run", "--cost", IMAGE, "true", check=True).stdout
        return t if "the last 3 traced runs" in t else None

    text = _eventually(cost_of_three) or ""
    assert "the last 3 traced runs" in text
    head = next(line for line in text.splitlines() if line.startswith("PROCESS"))
    assert head.split() == ["PROCESS", "STAGE", "MEDIAN", "MIN", "MAX", "SHARE"]
    js = json.loads(pallet_env("explain", "run", "--cost", "--format", "json", IMAGE, check=True).stdout)
    assert js["runs"] == 3 and js["runtime"] == "pallet" and js["total_ms"] > 0
    stages = {(s["process"], s["stage"]) for s in js["stages"]}
    assert {("cli", "snapshot"), ("runtime-parent", "cgroup"), ("init", "seccomp"), ("init", "pivot_root")} <= stages
    assert all(s["runs"] == 3 and s["min_ms"] <= s["median_ms"] <= s["max_ms"] for s in js["stages"])
    cp = pallet_env("explain", "run", "--runtime", "runc", "--cost", IMAGE)
    assert cp.returncode == 0 and "No traced runs with the runc runtime" in cp.stdout
    cp = pallet_env("explain", "run", "--cost", "--memory", "lots", IMAGE)   # run's own refusal
    assert cp.returncode == 125 and cp.stderr.count("\n") == 1


@pytest.mark.network
def test_network_setup_is_traced(host_ns, pallet_env, tmp_path):
    """On the default bridge (inside a namespace of the test's own): the netlink requests (veth, addresses,
    routes) and the firewall transaction are in the monitor's network stage."""
    pallet_env.prefix = ["nsenter", f"--net={host_ns.path}", "--"]
    tr = tmp_path / "t.json"
    try:
        pallet_env("run", "--rm", "--network", "bridge", f"--trace={tr}", IMAGE, "true", check=True)
    finally:
        for cid in pallet_env.ids():
            pallet_env("rm", "-f", cid)
    doc = _load(tr)
    net = [e for e in doc["events"] if e["stage"] == "network" and e["op"] != "stage"]
    calls = " | ".join(e["args"].get("call", "") for e in net if e["op"] == "netlink")
    assert "veth" in calls and "address" in calls and "route" in calls, calls
    (fw,) = [e for e in net if e["op"] == "nft transaction"][:1]
    assert fw["result"] == "ok" and fw["args"]["commands"] > 0
    assert all(e["process"] == "monitor" for e in net)


def test_user_namespace_maps_are_traced(rt_root, new_bundle, cid, no_leftovers, tmp_path):
    """The runtime as a library with a new user namespace: the id maps the parent writes, the child's
    unshare(CLONE_NEWUSER) and its becoming root in the namespace, the init's setgroups/setresgid/setresuid
    — recorded in the process that made each, the children's through the channel."""
    import os

    from pallet.linux import trace as T
    from pallet.runtime import Runtime

    def edit(cfg):
        cfg["linux"]["namespaces"].append({"type": "user"})
        cfg["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 200000, "size": 65536}]
        cfg["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 200000, "size": 65536}]
    b = new_bundle(["true"], edit=edit)
    os.system(f"chown -R 200000:200000 {b}/rootfs")
    for p in [tmp_path, *tmp_path.parents]:   # the namespace's root must reach the bundle (pytest's are 0700)
        if str(p).startswith("/tmp/"):
            p.chmod(p.stat().st_mode | 0o055)
    null = os.open("/dev/null", os.O_RDWR)
    T.start("runtime-parent")
    try:
        code = Runtime(str(rt_root)).run(cid, str(b), stdio=(null, null, null))
    finally:
        records = T.stop()
        os.close(null)
    assert code == 0
    doc = T.document(records, {})
    maps = {e["args"]["path"].rsplit("/", 1)[1]: e for e in _ops(doc, "write") if e["args"]["path"].endswith("_map")}
    assert set(maps) == {"uid_map", "gid_map"}
    assert all(e["args"]["value"] == "0 200000 65536\n" and e["process"] == "runtime-parent"
               and e["stage"] == "id maps" and e["result"] == "ok" for e in maps.values())
    child = [e for e in doc["events"] if e["process"] == "runtime-child" and e["op"] != "stage"]
    userns = next(e for e in child if e["op"] == "unshare" and e["args"]["flags"] == ["CLONE_NEWUSER"])
    assert userns["t_ms"] < maps["uid_map"]["t_ms"]   # the maps are written once the namespace exists
    assert [e["op"] for e in child if e["op"].startswith("setres")] == ["setresgid", "setresuid"]
    init_ops = [e["op"] for e in doc["events"] if e["process"] == "init"]
    assert init_ops.index("setgroups") < init_ops.index("setresgid") < init_ops.index("setresuid") \
        < init_ops.index("capset") < init_ops.index("execve")


def test_detached_trace_while_running(pallet_env):
    """-d --trace: the trace is there once the container runs (its teardown not yet), complete after the exit."""
    pallet_env("run", "-d", "--name", "trd", "--trace", IMAGE, "sleep", "100", check=True)
    doc = json.loads(pallet_env("trace", "trd", "--format", "json", check=True).stdout)
    assert doc["complete"] is False and _ops(doc, "execve")[0]["args"]["argv"] == ["sleep", "100"]
    assert "teardown not included" in pallet_env("trace", "trd", check=True).stdout
    pallet_env("stop", "-t", "0", "trd", check=True)
    doc = _eventually(lambda: (d := json.loads(pallet_env("trace", "trd", "--format", "json", check=True).stdout))
                      ["complete"] and d)
    assert doc and any(e["stage"] == "teardown" for e in doc["events"])


def test_failed_execve(pallet_env, tmp_path):
    """An execve the kernel refuses (after the init said "ready"): the same exit and message as untraced,
    and the trace's execve record carries the error."""
    bad = tmp_path / "bad"
    bad.write_bytes(b"not a program\n\0\1")
    bad.chmod(0o755)
    args = ["-v", f"{bad}:/bad", IMAGE, "/bad"]
    plain = pallet_env("run", "--rm", *args)
    tr = tmp_path / "t.json"
    traced = pallet_env("run", "--rm", f"--trace={tr}", *args)
    assert traced.returncode == plain.returncode != 0
    assert "Exec format error" in plain.stderr and traced.stderr == plain.stderr
    doc = _eventually(lambda: (d := _load(tr))["complete"] and d)
    (ex,) = _ops(doc, "execve")
    assert ex["result"] == "error" and ex["error"].startswith("ENOEXEC") and ex["args"]["path"] == "/bad"


def test_sysctls_rlimits_no_new_privs(pallet_env, tmp_path):
    """--sysctl, --ulimit, no-new-privileges, --cap-drop: each shows as the call that applies it."""
    tr = tmp_path / "t.json"
    pallet_env("run", "--rm", f"--trace={tr}", "--sysctl", "kernel.msgmax=12345", "--ulimit", "nofile=1024:2048",
               "--security-opt", "no-new-privileges", "--cap-drop", "ALL", "--cap-add", "CHOWN", IMAGE, "true",
               check=True)
    doc = _load(tr)
    init = [e for e in doc["events"] if e["process"] == "init" and e["op"] != "stage"]
    (sysctl,) = [e for e in init if e["op"] == "write" and e["args"]["path"] == "/proc/sys/kernel/msgmax"]
    assert sysctl["args"]["value"] == "12345" and sysctl["stage"] == "sysctls"
    (nofile,) = [e for e in init if e["op"] == "prlimit64" and e["args"]["resource"] == "RLIMIT_NOFILE"]
    assert (nofile["args"]["soft"], nofile["args"]["hard"]) == (1024, 2048)
    ops = [(e["op"], e["args"].get("option")) for e in init]
    nnp = ops.index(("prctl", "PR_SET_NO_NEW_PRIVS"))
    assert nnp < ops.index(("seccomp", None))   # with no_new_privs the filter is loaded last, as runc does
    (capset,) = [e for e in init if e["op"] == "capset"]
    assert capset["args"]["effective"] == ["CAP_CHOWN"] == capset["args"]["permitted"]
    (sets,) = [e for e in init if e["op"] == "capability sets"]
    assert sets["args"]["bounding"] == ["CAP_CHOWN"] and sets["args"]["ambient"] == []


def _on_a_tty(env, *args: str) -> str:
    """What `pallet ARGS` writes to a terminal (a pty as its stdout)."""
    import os
    import pty
    import subprocess

    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(env.argv(*args), env=env.env, stdin=subprocess.DEVNULL, stdout=slave,
                                stderr=subprocess.PIPE)
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
    return b"".join(chunks).decode()


def test_tree_colours_only_on_a_tty_and_stays_readable(pallet_env):
    """The tree: colours on a terminal, none in a pipe; a 64-digit id is cut to 12; the firewall
    transaction is one line (its JSON is in --format json)."""
    pallet_env("run", "--name", "trc", "--trace", IMAGE, "true", check=True)
    tty = _on_a_tty(pallet_env, "trace", "trc")
    assert "\x1b[" in tty and "trace of trc" in tty
    piped = pallet_env("trace", "trc", check=True).stdout
    assert "\x1b[" not in piped
    cid = pallet_env("inspect", "--format", "{{.Id}}", "trc", check=True).stdout.strip()
    assert cid not in piped and f"containers/{cid[:12]}/merged" in piped
    doc = json.loads(pallet_env("trace", "trc", "--format", "json", check=True).stdout)
    assert any(cid in json.dumps(e["args"]) for e in _ops(doc, "mount"))   # whole in the JSON
    for e in _ops(doc, "nft transaction"):
        assert e["args"].get("json") is None or json.dumps(e["args"]["json"])[:40] not in piped
        assert f"nft transaction {e['args']['commands']} commands through" in piped


def test_every_op_and_field_is_documented(pallet_env, tmp_path):
    """docs/trace.md's schema names every op a run on the default bridge records, and the event's fields;
    the published port's firewall transactions are there (publish, then unpublish in the teardown)."""
    doc_md = (Path(__file__).resolve().parents[2] / "docs" / "trace.md").read_text()
    schema = doc_md.split("## `--format json` (one schema)", 1)[1].split("\n## ", 1)[0]
    documented = set()
    for row in re.findall(r"^\| (`[^|]+)\|", schema, re.M):
        documented |= set(re.findall(r"`([^`]+)`", row))
    tr = tmp_path / "t.json"
    pallet_env("run", "--rm", f"--trace={tr}", "-p", "127.0.0.1:18090:80", IMAGE, "true", check=True)
    doc = _eventually(lambda: (d := _load(tr))["complete"] and d)
    ops = {e["op"] for e in doc["events"]}
    assert {"netlink", "mount", "execve", "seccomp"} <= ops
    # -p: the port's DNAT is published in the network stage and taken away in the teardown
    fw = [(e["stage"], e["args"]["objects"]) for e in _ops(doc, "nft transaction")]
    assert any(st == "network" and "create element" in objs for st, objs in fw), fw
    assert any(st == "teardown" and "delete element" in objs for st, objs in fw), fw
    assert not ops - documented, f"ops not in docs/trace.md: {sorted(ops - documented)}"
    for key in ("version", "container", "runtime", "t0_ns", "complete", "unseen", "events"):
        assert f'"{key}"' in schema and key in doc
    for e in doc["events"]:
        assert set(e) <= {"seq", "t_ms", "dur_ms", "pid", "process", "stage", "op", "args", "result", "error"}, e
