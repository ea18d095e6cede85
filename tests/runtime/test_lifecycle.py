"""Lifecycle through the CLI: create/start/state/kill/delete/run/exec/ps/list/pause/update/spec/features."""

from __future__ import annotations

import json
import os
import time

import jsonschema
import pytest

pytestmark = pytest.mark.root

def schema(vendor_data, name: str):
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT4

    base = vendor_data / "oci-runtime-spec-schema"
    docs = {p.name: json.loads(p.read_text()) for p in base.glob("*.json")}
    registry = Registry().with_resources(
        (n, Resource.from_contents(d, default_specification=DRAFT4)) for n, d in docs.items())
    return jsonschema.Draft4Validator(docs[name], registry=registry)


def check_state(st: dict) -> None:
    """The runtime spec's state: its required fields always; the whole JSON schema where it is vendored."""
    assert {"ociVersion", "id", "status", "bundle"} <= set(st) and st["status"] in (
        "creating", "created", "running", "stopped"), st
    if st["status"] in ("created", "running"):
        assert st.get("pid", 0) > 0, st
    from conftest import VENDOR

    if (VENDOR / "oci-runtime-spec-schema").is_dir():
        schema(VENDOR, "state-schema.json").validate(st)


def wait_status(prt, cid: str, want: str, timeout: float = 5) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        st = json.loads(prt("state", cid, check=True).stdout)
        if st["status"] == want or time.monotonic() > deadline:
            return st
        time.sleep(0.02)


def test_create_start_kill_delete(prt, new_bundle, cid, no_leftovers, tmp_path):
    b = new_bundle(["sleep", "60"])
    pidfile = tmp_path / "pid"
    prt("create", "--bundle", str(b), "--pid-file", str(pidfile), cid, check=True)
    st = json.loads(prt("state", cid, check=True).stdout)
    check_state(st)
    assert st["status"] == "created" and st["pid"] == int(pidfile.read_text())
    assert st["bundle"] == str(b)
    # the process waits: it has not exec'd sleep yet
    assert "sleep" not in open(f"/proc/{st['pid']}/cmdline").read()
    prt("start", cid, check=True)
    st = json.loads(prt("state", cid, check=True).stdout)
    assert st["status"] == "running"
    check_state(st)
    assert open(f"/proc/{st['pid']}/cmdline").read().startswith("sleep")
    again = prt("start", cid)
    assert again.returncode == 1 and "running" in again.stderr
    refused = prt("delete", cid)
    assert refused.returncode == 1 and "not stopped" in refused.stderr
    prt("kill", cid, "SIGKILL", check=True)
    st = wait_status(prt, cid, "stopped")
    assert st["status"] == "stopped"
    check_state(st)
    prt("delete", cid, check=True)
    gone = prt("state", cid)
    assert gone.returncode == 1 and "does not exist" in gone.stderr


def test_run_exit_code_and_output(prt, new_bundle, cid, no_leftovers):
    b = new_bundle(["sh", "-c", "echo out; echo err >&2; exit 3"])
    cp = prt("run", "--bundle", str(b), cid)
    assert cp.returncode == 3
    assert cp.stdout == "out\n" and cp.stderr == "err\n"
    assert prt("state", cid).returncode == 1  # run deletes the container


def test_run_detach_and_list(prt, new_bundle, cid, no_leftovers):
    b = new_bundle(["sleep", "60"])
    prt("run", "-d", "--bundle", str(b), cid, check=True)
    lst = json.loads(prt("list", "--format", "json", check=True).stdout)
    assert [c["id"] for c in lst] == [cid] and lst[0]["status"] == "running"
    assert prt("list", "-q", check=True).stdout.split() == [cid]
    assert cid in prt("list", check=True).stdout
    prt("delete", "--force", cid, check=True)
    assert prt("list", "-q", check=True).stdout == ""


def test_kill_signal_names_and_numbers(prt, new_bundle, cid, no_leftovers):
    b = new_bundle(["sh", "-c", "trap 'exit 0' USR1; while :; do sleep 0.05; done"])
    prt("run", "-d", "--bundle", str(b), cid, check=True)
    bad = prt("kill", cid, "NOPE")
    assert bad.returncode == 1 and "unknown signal" in bad.stderr
    prt("kill", cid, "USR1", check=True)
    assert wait_status(prt, cid, "stopped")["status"] == "stopped"
    assert prt("kill", cid, "9").returncode == 1  # not running any more
    prt("delete", cid, check=True)


def test_exec_ps_pause_resume_update(prt, new_bundle, cid, no_leftovers):
    b = new_bundle(["sleep", "60"])
    prt("run", "-d", "--bundle", str(b), cid, check=True)
    cp = prt("exec", "--env", "FOO=bar", "--cwd", "/tmp", cid, "sh", "-c", 'echo "$FOO $(pwd) $$"; exit 5')
    assert cp.returncode == 5 and cp.stdout.split()[:2] == ["bar", "/tmp"]
    assert int(cp.stdout.split()[2]) > 1  # a pid of the container's pid namespace
    cp = prt("exec", "--user", "1000:1000", cid, "id", "-u")
    assert cp.stdout.strip() == "1000"
    pids = json.loads(prt("ps", "--format", "json", cid, check=True).stdout)
    st = json.loads(prt("state", cid, check=True).stdout)
    assert pids == [st["pid"]]
    assert "sleep 60" in prt("ps", cid, check=True).stdout
    prt("pause", cid, check=True)
    assert json.loads(prt("state", cid).stdout)["status"] == "paused"
    assert prt("exec", cid, "true").returncode == 1
    prt("resume", cid, check=True)
    assert json.loads(prt("state", cid).stdout)["status"] == "running"
    prt("update", "--memory", "64m", "--pids-limit", "50", cid, check=True)
    cp = prt("exec", cid, "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes",
             "/sys/fs/cgroup/pids/pids.max", check=True)
    assert cp.stdout.split() == [str(64 << 20), "50"]
    detached = prt("exec", "-d", "--pid-file", str(b / "exec.pid"), cid, "sleep", "30", check=True)
    assert detached.stdout == ""
    epid = int((b / "exec.pid").read_text())
    assert open(f"/proc/{epid}/cmdline").read().startswith("sleep")
    prt("kill", "--all", cid, "KILL", check=True)
    wait_status(prt, cid, "stopped")
    prt("delete", cid, check=True)


def test_exec_process_json(prt, new_bundle, cid, no_leftovers, tmp_path):
    b = new_bundle(["sleep", "60"])
    prt("run", "-d", "--bundle", str(b), cid, check=True)
    proc = {"args": ["sh", "-c", "echo $A; umask"], "env": ["A=from-json", "PATH=/bin"], "cwd": "/",
            "user": {"uid": 0, "gid": 0, "umask": 0o27}}
    (tmp_path / "p.json").write_text(json.dumps(proc))
    cp = prt("exec", "--process", str(tmp_path / "p.json"), cid, check=True)
    assert cp.stdout.split() == ["from-json", "0027"]
    prt("delete", "-f", cid, check=True)


def test_hooks_order_and_state(prt, new_bundle, cid, tmp_path, no_leftovers):
    log = tmp_path / "hooks.log"
    hook = tmp_path / "hook.sh"
    hook.write_text(f"#!/bin/sh\nread -r s\necho \"$1 $s\" >> {log}\n")
    hook.chmod(0o755)

    def edit(cfg):
        cfg["hooks"] = {k: [{"path": str(hook), "args": ["hook.sh", k]}]
                        for k in ("prestart", "createRuntime", "poststart", "poststop")}
        # createContainer runs in the container's namespaces before pivot_root: host paths still work
        cfg["hooks"]["createContainer"] = [{"path": str(hook), "args": ["hook.sh", "createContainer"]}]
    b = new_bundle(["true"], edit=edit)
    prt("run", "--bundle", str(b), cid, check=True)
    lines = log.read_text().splitlines()
    assert [ln.split()[0] for ln in lines] == ["prestart", "createRuntime", "createContainer", "poststart",
                                               "poststop"]
    states = [json.loads(ln.split(" ", 1)[1]) for ln in lines]
    assert all(s["id"] == cid and s["bundle"] == str(b) for s in states)
    assert states[0]["status"] == "created" and states[0]["pid"] > 0  # prestart: what runtime-tools expects
    assert states[1]["status"] == "creating"
    assert states[0]["pid"] == states[1]["pid"] == states[2]["pid"] == states[3]["pid"]  # the host pid
    assert states[-1]["status"] == "stopped"


def test_failing_prestart_hook_cleans_up(prt, new_bundle, cid, no_leftovers, rt_root):
    b = new_bundle(["true"], edit=lambda c: c.update(hooks={"prestart": [{"path": "/bin/false"}]}))
    cp = prt("create", "--bundle", str(b), cid)
    assert cp.returncode == 1 and "prestart hook" in cp.stderr
    assert not (rt_root / cid).exists()


def test_hook_timeout(prt, new_bundle, cid, no_leftovers):
    b = new_bundle(["true"], edit=lambda c: c.update(
        hooks={"createRuntime": [{"path": "/bin/sleep", "args": ["sleep", "5"], "timeout": 1}]}))
    t = time.monotonic()
    cp = prt("create", "--bundle", str(b), cid)
    assert cp.returncode == 1 and "timeout" in cp.stderr and time.monotonic() - t < 4


def test_console_socket_terminal(prt, new_bundle, cid, tmp_path, no_leftovers):
    import socket

    sock_path = str(tmp_path / "console.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(sock_path)
    srv.listen(1)

    def edit(cfg):
        cfg["process"]["terminal"] = True
        cfg["process"]["consoleSize"] = {"height": 33, "width": 101}
    b = new_bundle(["sh", "-c", "tty; stty size; echo done"], edit=edit)
    prt("create", "--bundle", str(b), "--console-socket", sock_path, cid, check=True)
    conn, _ = srv.accept()
    _, fds, _, _ = socket.recv_fds(conn, 1024, 1)
    master = fds[0]
    prt("start", cid, check=True)
    out = b""
    deadline = time.monotonic() + 5
    while b"done" not in out and time.monotonic() < deadline:
        try:
            out += os.read(master, 4096)
        except OSError:
            break
    os.close(master)
    conn.close()
    srv.close()
    text = out.decode()
    assert "/dev/pts/0" in text and "33 101" in text
    wait_status(prt, cid, "stopped")
    prt("delete", cid, check=True)


def test_spec_and_features_match_schemas(prt, tmp_path, vendor_data):
    cp = prt("spec", "--bundle", str(tmp_path), check=True)
    assert cp.returncode == 0
    cfg = json.loads((tmp_path / "config.json").read_text())
    schema(vendor_data, "config-schema.json").validate(cfg)
    assert prt("spec", "--bundle", str(tmp_path)).returncode == 1  # refuses to overwrite
    (tmp_path / "rl").mkdir()
    prt("spec", "--rootless", "--bundle", str(tmp_path / "rl"), check=True)
    schema(vendor_data, "config-schema.json").validate(json.loads((tmp_path / "rl" / "config.json").read_text()))
    feats = json.loads(prt("features", check=True).stdout)
    schema(vendor_data, "features-schema.json").validate(feats)
    assert feats["linux"]["seccomp"]["enabled"] is True
    assert "CAP_SYS_ADMIN" in feats["linux"]["capabilities"]


def test_log_json_error_lines(prt, cid, tmp_path):
    log = tmp_path / "log.json"
    cp = prt("--log", str(log), "--log-format", "json", "state", cid)
    assert cp.returncode == 1 and "does not exist" in cp.stderr
    rec = json.loads(log.read_text().splitlines()[-1])
    assert rec["level"] == "error" and "does not exist" in rec["msg"] and rec["time"]


def test_usage_errors(prt):
    assert prt("--version", check=True).stdout.startswith("pallet-runtime version")
    cp = prt("frobnicate")
    assert cp.returncode == 1
    cp = prt("create", "--bogus", "x")
    assert cp.returncode == 1 and "flag provided but not defined" in cp.stderr
    cp = prt("start")
    assert cp.returncode == 1 and "requires exactly 1 argument" in cp.stderr


def test_pallet_runtime_subcommand(pallet):
    cp = pallet("runtime", "--version")
    assert cp.returncode == 0 and "pallet-runtime version" in cp.stdout


def test_config_without_process_creates_but_does_not_start(prt, new_bundle, cid, no_leftovers):
    b = new_bundle(edit=lambda c: c.pop("process"))
    prt("create", "--bundle", str(b), cid, check=True)
    cp = prt("start", cid)
    assert cp.returncode == 1 and "no process to start" in cp.stderr
    assert wait_status(prt, cid, "stopped")["status"] == "stopped"
    prt("delete", cid, check=True)


def test_run_keep(prt, new_bundle, cid, no_leftovers):
    b = new_bundle(["true"])
    prt("run", "--keep", "--bundle", str(b), cid, check=True)
    assert json.loads(prt("state", cid, check=True).stdout)["status"] == "stopped"
    prt("delete", cid, check=True)


def test_failing_poststart_and_poststop_hooks_warn_and_continue(prt, new_bundle, cid, tmp_path, no_leftovers):
    out = tmp_path / "out"
    ok = {"path": "/bin/sh", "args": ["sh", "-c", f"echo called >> {out}"]}
    b = new_bundle(["true"], edit=lambda c: c.update(
        hooks={"poststart": [{"path": "/bin/false"}, ok], "poststop": [{"path": "/bin/false"}, ok]}))
    cp = prt("run", "--bundle", str(b), cid)
    assert cp.returncode == 0
    assert out.read_text() == "called\ncalled\n"
    assert cp.stderr.count("level=warning") == 2 and "poststart hook #0" in cp.stderr


def test_exec_tty_in_foreground(prt, new_bundle, cid, rt_root, no_leftovers):
    """`exec -t` without a console socket: the runtime proxies the pty itself (as runc does)."""
    import shutil
    import subprocess

    from tests.runtime.conftest import RUNTIME

    if not shutil.which("script"):
        pytest.skip("util-linux script is not installed")
    b = new_bundle(["sleep", "60"])
    prt("run", "-d", "--bundle", str(b), cid, check=True)
    cp = subprocess.run(["script", "-qec", f"{RUNTIME} --root {rt_root} exec -t {cid} sh -c 'tty; exit 3'",
                         "/dev/null"], capture_output=True, text=True, timeout=30)
    assert cp.returncode == 3 and "/dev/pts/0" in cp.stdout
    prt("delete", "-f", cid, check=True)


def _comm_hook(out):
    """A poststart hook that writes the container process's /proc/PID/comm to `out`."""
    code = ("import json, sys; s = json.load(sys.stdin); "
            f"open({str(out)!r}, 'w').write(open('/proc/%d/comm' % s['pid']).read())")
    return lambda c: c.update(hooks={"poststart": [{"path": "/usr/bin/python3", "args": ["python3", "-c", code]}]})


def test_poststart_runs_after_the_program_is_executed(prt, new_bundle, cid, tmp_path, no_leftovers):
    out = tmp_path / "comm"
    b = new_bundle(["sleep", "60"], edit=_comm_hook(out))
    prt("create", "--bundle", str(b), cid, check=True)
    prt("start", cid, check=True)
    assert out.read_text().strip() == "sleep"  # not the runtime's python: execve had happened
    prt("delete", "-f", cid, check=True)


def test_run_waits_for_the_exec_before_poststart(prt, new_bundle, cid, tmp_path, no_leftovers):
    """`run` does not wait for the exec's EOF on the fifo unless poststart hooks must see it."""
    out = tmp_path / "comm"
    b = new_bundle(["sleep", "0.3"], edit=_comm_hook(out))
    cp = prt("run", "--bundle", str(b), cid)
    assert cp.returncode == 0, cp.stderr
    assert out.read_text().strip() == "sleep"
