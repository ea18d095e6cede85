"""Real containers through the CLI: exit codes, overrides, /etc files, defaults, logs, exec, signals,
monitor loss, reboot, concurrency and bad input. Every test cleans up through `pallet_env`."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from engine.engine_support import BIN, IMAGE, wait_for
from helpers.cli import assert_no_traceback, run_cli
from helpers.mounts import mounts_under, unmount_all_under

pytestmark = [pytest.mark.root]

RUNTIMES = ["pallet", "runc", "crun"]


def _split(argv: list[str]) -> tuple[str, list[str]]:
    return argv[0], argv[1:]


@pytest.fixture(autouse=True)
def _crun_mount_namespace(request):
    """crun's tests run pallet where crun accepts the host's cgroups (see helpers.crun_ns)."""
    params = getattr(request.node, "callspec", None)
    if params is not None and params.params.get("runtime") == "crun":
        request.getfixturevalue("pallet_env").prefix = request.getfixturevalue("crun_prefix")


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_exit_codes(pallet_env, runtime):
    r = ["run", "--rm", "--runtime", runtime, IMAGE]
    assert pallet_env(*r, "true").returncode == 0
    assert pallet_env(*r, "sh", "-c", "exit 7").returncode == 7
    cp = pallet_env(*r, "no-such-command")
    assert cp.returncode == 127, cp.stderr
    assert cp.stderr.count("\n") == 1
    assert pallet_env(*r, "/etc/passwd").returncode == 126
    cid = pallet_env("run", "-d", "--runtime", runtime, IMAGE, "sleep", "100", check=True).stdout.strip()
    pallet_env("kill", cid, check=True)
    assert pallet_env("wait", cid, check=True).stdout.strip() == "137"
    pallet_env("rm", cid, check=True)
    assert pallet_env.ids() == []
    from pallet.linux.cgroups import own_dirs

    assert not list((pallet_env.root / "containers").glob("*"))
    left = [b for b in own_dirs() if any(n.startswith(cid) for n in _listdir(os.path.join(b, "pallet")))]
    assert left == [], f"cgroups of {cid} left in {left}"


def _listdir(d: str) -> list[str]:
    try:
        return os.listdir(d)
    except OSError:
        return []


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_overrides_identity_and_defaults(pallet_env, runtime):
    cp = pallet_env("run", "--rm", "--runtime", runtime, "-e", "FOO=bar", "-u", "app", "-w", "/tmp/work",
                    "--hostname", "h1", "--add-host", "db:10.1.2.3", IMAGE,
                    "sh", "-c", "echo $FOO; id; pwd; hostname; cat /etc/hostname; grep db /etc/hosts; echo $HOME",
                    check=True)
    lines = cp.stdout.splitlines()
    assert lines[0] == "bar"
    assert lines[1] == "uid=1000(app) gid=1000(app) groups=50(staff)"
    assert lines[2:5] == ["/tmp/work", "h1", "h1"]
    assert "10.1.2.3\tdb" in lines[5] and lines[6] == "/home/app"
    cp = pallet_env("run", "--rm", "--runtime", runtime, "--entrypoint", "echo", IMAGE, "a", "b", check=True)
    assert cp.stdout == "a b\n"
    cp = pallet_env("run", "--rm", "--runtime", runtime, IMAGE, "sh", "-c",
                    "grep -E '^(CapEff|CapBnd|Seccomp):' /proc/self/status; hostname; "
                    "cat /proc/self/cgroup | head -1; touch /sys/x 2>&1; ls /proc/kcore; wc -c < /proc/kcore",
                    check=False)
    out = cp.stdout
    assert "CapEff:\t00000000a80425fb" in out and "CapBnd:\t00000000a80425fb" in out
    assert "Seccomp:\t2" in out
    assert "Read-only file system" in out
    cp = pallet_env("run", "--rm", "-u", "app", IMAGE, "grep", "CapEff", "/proc/self/status", check=True)
    assert "0000000000000000" in cp.stdout
    # host networking: the host's name and interfaces; none: only loopback
    cp = pallet_env("run", "--rm", "--runtime", runtime, "--network", "host", IMAGE, "sh", "-c",
                    "hostname; ls /sys/class/net | wc -l", check=True)
    assert cp.stdout.split()[0] == os.uname().nodename
    cp = pallet_env("run", "--rm", "--runtime", runtime, "--network", "none", IMAGE, "ls", "/sys/class/net",
                    check=True)
    assert cp.stdout.split() == ["lo"]
    cp = pallet_env("run", "--rm", "--runtime", runtime, IMAGE, "ls", "/sys/class/net", check=True)
    assert cp.stdout.split() == ["eth0", "lo"]     # (the default: docker's default bridge)


def test_detached_logs_exec_inspect_stop(pallet_env):
    cid = pallet_env("run", "-d", "--name", "web", "-l", "tier=front", IMAGE, "sh", "-c",
                     "i=0; while true; do echo line$i; i=$((i+1)); sleep 0.1; done", check=True).stdout.strip()
    assert len(cid) == 64
    info = json.loads(pallet_env("inspect", "web", check=True).stdout)[0]
    assert info["Id"] == cid and info["Name"] == "/web" and info["State"]["Running"] is True
    assert info["State"]["Pid"] > 0 and info["GraphDriver"]["Name"] in ("overlay", "copy")
    assert info["Config"]["Labels"] == {"tier": "front"}
    assert pallet_env("ps", "-q", "--filter", "label=tier=front", check=True).stdout.strip() == cid[:12]
    assert pallet_env("ps", "-q", "--filter", "name=nomatch", check=True).stdout.strip() == ""
    row = json.loads(pallet_env("ps", "--format", "json", check=True).stdout.splitlines()[0])
    assert row["Names"] == "web" and row["State"] == "running"
    # logs -f follows a running container
    p = subprocess.Popen([str(BIN / "pallet"), "logs", "-f", "web"], stdout=subprocess.PIPE, text=True,
                         env=pallet_env.env)
    try:
        seen = [p.stdout.readline() for _ in range(15)]
        assert seen[0] == "line0\n" and seen[14] == "line14\n"
    finally:
        p.kill()
        p.wait()
    assert pallet_env("logs", "--tail", "2", "web", check=True).stdout.count("\n") == 2
    # exec: same filesystem and pid namespace
    pallet_env("exec", "web", "sh", "-c", "echo hi > /tmp/f", check=True)
    cp = pallet_env("exec", "-u", "app", "-e", "X=1", "-w", "/tmp", "web", "sh", "-c",
                    "cat f; id -u; echo $X; pwd; ps", check=True)
    lines = cp.stdout.splitlines()
    assert lines[:4] == ["hi", "1000", "1", "/tmp"]
    assert any(ln.split()[0] == "1" and "sh -c" in ln for ln in lines[5:])
    assert pallet_env("exec", "web", "nope").returncode == 127
    assert pallet_env("exec", "-d", "web", "sh", "-c", "echo bg > /tmp/bg").returncode == 0
    assert wait_for(lambda: pallet_env("exec", "web", "cat", "/tmp/bg").stdout == "bg\n", 5)
    assert pallet_env("exec", "web", "sh", "-c", "exit 5").returncode == 5
    top = pallet_env("top", "web", check=True).stdout
    assert "sleep" in top or "sh" in top
    t0 = time.monotonic()
    assert pallet_env("stop", "-t", "1", "web", check=True).stdout.strip() == "web"
    assert time.monotonic() - t0 < 8
    info = json.loads(pallet_env("inspect", "web", check=True).stdout)[0]
    assert info["State"]["Status"] == "exited" and info["State"]["ExitCode"] == 137
    assert pallet_env("wait", "web", check=True).stdout.strip() == "137"
    # restart, rename, rm
    pallet_env("start", "web", check=True)
    assert json.loads(pallet_env("inspect", "web").stdout)[0]["State"]["Running"]
    pallet_env("rename", "web", "web2", check=True)
    assert pallet_env("rm", "web2").returncode == 125
    pallet_env("kill", "web2", check=True)
    assert pallet_env("wait", "web2", check=True).stdout.strip() == "137"
    pallet_env("rm", "web2", check=True)
    # with --init, PID 1 is a reaper that passes TERM on to the command (a PID 1 sh would ignore it)
    cid = pallet_env("run", "-d", "--init", IMAGE, "sleep", "100", check=True).stdout.strip()
    assert "/run/pallet-init" in pallet_env("exec", cid, "cat", "/proc/1/cmdline", check=True).stdout.replace("\0", " ")
    pallet_env("kill", "-s", "TERM", cid, check=True)
    assert pallet_env("wait", cid, check=True).stdout.strip() == "143"
    pallet_env("rm", cid, check=True)
    assert pallet_env.ids() == []


def test_foreground_signals_reach_the_container(pallet_env):
    p = subprocess.Popen([str(BIN / "pallet"), "run", "--rm", IMAGE, "sh", "-c",
                          "trap 'echo got-term; exit 42' TERM; echo ready; while true; do sleep 0.1; done"],
                         stdout=subprocess.PIPE, text=True, env=pallet_env.env)
    try:
        assert p.stdout.readline() == "ready\n"
        p.send_signal(signal.SIGTERM)
        assert p.wait(15) == 42
        assert "got-term" in p.stdout.read()
    finally:
        if p.poll() is None:
            p.kill()


def test_stdin_is_forwarded(pallet_env):
    cp = pallet_env("run", "--rm", "-i", IMAGE, "sh", "-c", "tr a-z A-Z", input="hello\n", check=True)
    assert cp.stdout == "HELLO\n"


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_tty_detach_attach(pallet_env, runtime):
    import pexpect

    child = pexpect.spawn(*_split(pallet_env.argv("run", "-it", "--runtime", runtime, "--name", "tty1", IMAGE, "sh")),
                          env=pallet_env.env, dimensions=(33, 101), timeout=20)
    try:
        child.expect("# ")
        time.sleep(1)
        child.sendline("stty size; echo $TERM")
        child.expect("33 101")
        child.expect("xterm")
        child.setwinsize(40, 120)
        time.sleep(0.3)
        child.sendline("stty size")
        child.expect("40 120")
        child.send("\x10\x11")   # ctrl-p ctrl-q
        child.expect(pexpect.EOF)
        child.close()
        assert child.exitstatus == 0
        assert json.loads(pallet_env("inspect", "tty1").stdout)[0]["State"]["Running"]
        # exec -it: a second pty in the same container
        ex = pexpect.spawn(*_split(pallet_env.argv("exec", "-it", "tty1", "sh")), env=pallet_env.env, timeout=20,
                           dimensions=(20, 70))
        ex.expect("# ")
        time.sleep(1)
        ex.sendline("stty size; tty")
        ex.expect("20 70")
        ex.expect("/dev/pts/")
        ex.sendline("exit 4")
        ex.expect(pexpect.EOF)
        ex.close()
        assert ex.exitstatus == 4
        child = pexpect.spawn(*_split(pallet_env.argv("attach", "tty1")), env=pallet_env.env, timeout=20)
        time.sleep(1)   # busybox ash asks the terminal for the cursor position (ESC[6n) and waits a moment
        child.sendline("echo back-$((40+2))")
        child.expect("back-42")
        child.sendline("exit 3")
        child.expect(pexpect.EOF)
        child.close()
        assert child.exitstatus == 3
    finally:
        child.close(force=True)


def test_killed_monitor_and_reboot(pallet_env):
    cid = pallet_env("run", "-d", "--name", "m", IMAGE, "sleep", "1000", check=True).stdout.strip()
    import sqlite3

    con = sqlite3.connect(pallet_env.root / "pallet.db")
    pid, mpid = con.execute("SELECT pid, monitor_pid FROM containers WHERE id = ?", (cid,)).fetchone()
    con.close()
    os.kill(mpid, signal.SIGKILL)
    time.sleep(0.2)
    assert json.loads(pallet_env("inspect", "m").stdout)[0]["State"]["Status"] == "running"
    os.kill(pid, signal.SIGKILL)
    assert wait_for(lambda: json.loads(pallet_env("inspect", "m").stdout)[0]["State"]["Status"] == "exited")
    pallet_env("start", "m", check=True)
    # now kill the monitor and remove with -f: the container must go too
    con = sqlite3.connect(pallet_env.root / "pallet.db")
    pid, mpid = con.execute("SELECT pid, monitor_pid FROM containers WHERE id = ?", (cid,)).fetchone()
    con.close()
    os.kill(mpid, signal.SIGKILL)
    pallet_env("rm", "-f", "m", check=True)
    assert wait_for(lambda: not os.path.exists(f"/proc/{pid}"), 5)
    # simulated reboot: processes killed, run dir wiped, mounts gone
    ids = [pallet_env("run", "-d", IMAGE, "sleep", "1000", check=True).stdout.strip() for _ in range(2)]
    con = sqlite3.connect(pallet_env.root / "pallet.db")
    rows = con.execute("SELECT pid, monitor_pid FROM containers").fetchall()
    con.close()
    for pid, mpid in rows:
        os.kill(mpid, signal.SIGKILL)
        os.kill(pid, signal.SIGKILL)
    time.sleep(0.3)
    import shutil

    shutil.rmtree(pallet_env.runroot)
    unmount_all_under(pallet_env.root)
    out = pallet_env("ps", "-a", "--format", "json", check=True).stdout.splitlines()
    assert sorted(json.loads(x)["State"] for x in out) == ["exited", "exited"]
    for cid in ids:
        pallet_env("start", cid, check=True)
        assert pallet_env("exec", cid, "true").returncode == 0
    pallet_env("rm", "-f", *ids, check=True)


def test_bad_input_leaves_nothing(pallet_env):
    before = sorted(p.name for p in (pallet_env.root / "layers" / "containers").glob("*")) \
        if (pallet_env.root / "layers" / "containers").exists() else []
    cases = [
        ["run", "--rm", "--pull", "never", "localhost/nosuch:1", "true"],
        ["run", "--rm", "--pull", "sometimes", IMAGE, "true"],
        ["run", "--rm", "-w", "relative", IMAGE, "true"],
        ["run", "--rm", "-u", "nobody-here", IMAGE, "true"],
        ["run", "--rm", "--network", "no-such-network", IMAGE, "true"],
        ["run", "--rm", "--stop-signal", "SIGNOPE", IMAGE, "true"],
        ["run", "--rm", "--add-host", "nocolon", IMAGE, "true"],
        ["run", "--rm", "--runtime", "/nonexistent/runc", IMAGE, "true"],
        ["run", "--rm", "--stop-timeout", "abc", IMAGE, "true"],
    ]
    for args in cases:
        cp = pallet_env(*args)
        assert cp.returncode == 125, (args, cp.stderr)
        assert cp.stderr.strip().count("\n") == 0, cp.stderr
    # --pull missing tries the registry first (docker prints "Unable to find image" too)
    cp = pallet_env("run", "--rm", "localhost:1/nosuch:1", "true")
    assert cp.returncode == 125 and "Unable to find image" in cp.stderr
    pallet_env("create", "--name", "taken", IMAGE, "true", check=True)
    cp = pallet_env("run", "--name", "taken", IMAGE, "true")
    assert cp.returncode == 125 and "already in use" in cp.stderr
    assert len(pallet_env.ids()) == 1
    pallet_env("rm", "taken", check=True)
    after = sorted(p.name for p in (pallet_env.root / "layers" / "containers").glob("*"))
    assert after == before
    assert not list((pallet_env.root / "containers").glob("*"))
    # `run` forks its monitor before creating the container: after a failed create it must be gone too
    assert wait_for(lambda: not _live_processes_with_env(f"PALLET_ROOT={pallet_env.root}"), 5), \
        _live_processes_with_env(f"PALLET_ROOT={pallet_env.root}")


def test_create_killed_half_way_can_be_removed(pallet_env):
    """A create killed right after inserting the container's row (SIGKILL, a crash: here the set-up
    exits the process at once) leaves a container that `rm` removes, with nothing left behind."""
    code = ("import os; from pallet.engine.core import Engine; "
            "Engine.set_up = lambda self, c, rec=None: os._exit(9); "
            "from pallet.cli import main; main()")
    cp = subprocess.run([sys.executable, "-c", code, "create", "--name", "half", IMAGE, "true"],
                        env=pallet_env.env, capture_output=True, text=True, timeout=60)
    assert cp.returncode == 9, cp.stderr
    assert len(pallet_env.ids()) == 1
    pallet_env("rm", "half", check=True)
    assert pallet_env.ids() == []
    assert not list((pallet_env.root / "containers").glob("*"))
    # a row whose directory is gone (left so by an older pallet, or a removal that died) goes too
    cid = pallet_env("create", "--name", "dirless", IMAGE, "true", check=True).stdout.strip()
    shutil.rmtree(pallet_env.root / "containers" / cid)
    pallet_env("rm", "dirless", check=True)
    assert pallet_env.ids() == []
    assert not list((pallet_env.root / "layers" / "containers").glob("*"))
    # ... and a running one still needs -f
    cid = pallet_env("run", "-d", "--name", "dirless", IMAGE, "sleep", "1000", check=True).stdout.strip()
    shutil.rmtree(pallet_env.root / "containers" / cid)
    cp = pallet_env("rm", "dirless")
    assert cp.returncode == 125 and "container is running" in cp.stderr, cp.stderr
    pallet_env("rm", "-f", "dirless", check=True)
    assert pallet_env.ids() == []


def _live_processes_with_env(item: str) -> list[str]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = f.read().split(b"\0")
            with open(f"/proc/{pid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if item.encode() in env and state != "Z":
            found.append(pid)
    return found


@pytest.mark.slow
def test_parallel_run_and_rm(pallet_env):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(20) as ex:
        cps = list(ex.map(lambda i: pallet_env("run", "-d", "--name", f"p{i}", IMAGE, "sleep", "1000"), range(20)))
    assert all(cp.returncode == 0 for cp in cps), [cp.stderr for cp in cps if cp.returncode]
    assert len(pallet_env("ps", "-q").stdout.split()) == 20
    import sqlite3

    con = sqlite3.connect(pallet_env.root / "pallet.db")
    ids = [r[0] for r in con.execute("SELECT id FROM containers")]
    pids = [r[0] for r in con.execute("SELECT pid FROM containers")] + \
        [r[0] for r in con.execute("SELECT monitor_pid FROM containers")]
    con.close()
    with ThreadPoolExecutor(20) as ex:
        cps = list(ex.map(lambda i: pallet_env("rm", "-f", f"p{i}"), range(20)))
    assert all(cp.returncode == 0 for cp in cps), [cp.stderr for cp in cps if cp.returncode]
    assert pallet_env.ids() == []
    con = sqlite3.connect(pallet_env.root / "pallet.db")
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert con.execute("SELECT COUNT(*) FROM containers").fetchone()[0] == 0
    con.close()
    assert wait_for(lambda: not any(os.path.exists(f"/proc/{p}") and
                                    open(f"/proc/{p}/stat").read().split()[2] != "Z" for p in pids), 5)
    assert mounts_under(pallet_env.root) == []
    assert not list(pallet_env.root.glob("layers/containers/*"))
    mine = {}
    for line in open("/proc/self/cgroup"):
        _, ctrls, path = line.rstrip("\n").split(":", 2)
        mine[(ctrls.split(",")[0] or "unified").removeprefix("name=")] = path
    import pathlib

    stray = []
    for h in pathlib.Path("/sys/fs/cgroup").iterdir():
        base = h / mine.get(h.name.split(",")[0], "/").lstrip("/") / "pallet"
        stray += [base / cid for cid in ids if (base / cid).exists()]
    assert stray == []


@pytest.mark.network
def test_run_pulls_from_a_registry(pallet_env, tmp_path):
    """--pull missing|always through pallet.registry.client, against pallet's own registry on loopback."""
    from helpers.registry_server import RegistryProcess

    reg = RegistryProcess(tmp_path / "reg", [], tmp_path / "reg.log").start()   # (port 0: it says which)
    port = reg.port
    try:
        pallet_env("push", IMAGE, f"127.0.0.1:{port}/bb:1", check=True)
        fresh = dict(PALLET_ROOT=str(tmp_path / "root2"), PALLET_RUNROOT=str(tmp_path / "run2"))
        cp = pallet_env("run", "--rm", f"127.0.0.1:{port}/bb:1", "echo", "pulled", env=fresh, check=True)
        assert cp.stdout == "pulled\n" and "Unable to find image" in cp.stderr
        cp = pallet_env("run", "--rm", "--pull", "always", f"127.0.0.1:{port}/bb:1", "echo", "again", env=fresh,
                        check=True)
        assert cp.stdout == "again\n" and "Unable to find image" not in cp.stderr
        assert pallet_env("run", "--rm", "--pull", "never", f"127.0.0.1:{port}/bb:2", "true",
                          env=fresh).returncode == 125
    finally:
        reg.stop(timeout=10)
        from engine.engine_support import Env

        Env(tmp_path / "root2", tmp_path / "run2", tmp_path).cleanup()


def test_concurrent_start_stop_of_one_container(pallet_env):
    from concurrent.futures import ThreadPoolExecutor

    cid = pallet_env("create", IMAGE, "sleep", "1000", check=True).stdout.strip()
    with ThreadPoolExecutor(4) as ex:
        cps = list(ex.map(lambda _: pallet_env("start", cid), range(4)))
    assert [cp.returncode for cp in cps] == [0] * 4, [cp.stderr for cp in cps]
    info = json.loads(pallet_env("inspect", cid).stdout)[0]
    assert info["State"]["Running"]
    runtime_dir = pallet_env.runroot / "runtime-pallet"
    assert [p.name for p in runtime_dir.iterdir()] == [cid]
    with ThreadPoolExecutor(3) as ex:
        cps = list(ex.map(lambda args: pallet_env(*args), [("stop", "-t", "0", cid), ("rm", "-f", cid),
                                                            ("kill", cid)]))
    assert cps[1].returncode == 0, cps[1].stderr
    assert pallet_env.ids() == []
    assert not os.path.exists(f"/proc/{info['State']['Pid']}") or \
        open(f"/proc/{info['State']['Pid']}/stat").read().split()[2] == "Z"


def test_rm_force_of_several_running_containers(pallet_env):
    """`rm -f A B C` kills them all first (their monitors record the exits in parallel), removes each and
    prints each name; a container with a restart policy is not restarted by that kill, and an unknown
    name is reported while the others still go."""
    names = [f"many{i}" for i in range(3)]
    for n in names:
        pallet_env("run", "-d", "--name", n, IMAGE, "sleep", "1000", check=True)
    pallet_env("run", "-d", "--name", "always", "--restart", "always", IMAGE, "sleep", "1000", check=True)
    cp = pallet_env("rm", "-f", *names, "nosuch", "always")
    assert cp.returncode == 1, cp.stderr
    assert cp.stdout.split() == [*names, "always"]
    assert "nosuch" in cp.stderr
    assert pallet_env.ids() == []
    assert mounts_under(pallet_env.root) == []


def test_stop_of_several_containers(pallet_env):
    """`stop A nosuch B` stops A and B (at once, as docker does) and prints them in the order given; the
    unknown name is reported and makes the exit status 1."""
    names = ["stop0", "stop1"]
    for n in names:
        pallet_env("run", "-d", "--name", n, IMAGE, "sleep", "1000", check=True)
    cp = pallet_env("stop", "-t", "1", names[0], "nosuch", names[1])
    assert cp.returncode == 1, cp.stderr
    assert cp.stdout.split() == names
    assert cp.stderr.strip() == "Error: No such container: nosuch"
    for n in names:
        state = json.loads(pallet_env("inspect", n, check=True).stdout)[0]["State"]
        assert state["Status"] == "exited" and state["ExitCode"] == 137, state


def test_ctrl_c_ends_a_stop_of_several_at_once(pallet_env):
    """ctrl-c during `stop` of several: exit 130 straight away, as with one container; what had not been
    started is left alone (docker's client leaves the same way)."""
    names = [f"cc{i}" for i in range(6)]
    for n in names:   # pid 1 ignores SIGTERM: each stop waits for its timeout
        pallet_env("run", "-d", "--name", n, IMAGE, "sleep", "1000", check=True)
    p = subprocess.Popen([str(BIN / "pallet"), "stop", "-t", "30", *names], env=pallet_env.env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.5)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=20)
    finally:
        if p.poll() is None:
            p.kill()
    assert_no_traceback(err, p.args)
    assert p.returncode == 130, (out, err)
    running = pallet_env("ps", "--format", "{{.Names}}").stdout.split()
    assert set(names[4:]) <= set(running), running


def test_rm_of_the_same_container_twice(pallet_env):
    """`rm a b a`: the second `a` fails as it would on its own (docker: No such container)."""
    for n in ("a", "b"):
        pallet_env("create", "--name", n, IMAGE, "true", check=True)
    cp = pallet_env("rm", "a", "b", "a")
    assert cp.returncode == 1, cp.stderr
    assert cp.stdout.split() == ["a", "b"]
    assert cp.stderr.strip() == "Error: No such container: a"
    assert pallet_env.ids() == []


def _run_patched(pallet_env, patch: str, *args: str) -> subprocess.CompletedProcess:
    """`pallet *args` with `patch` (Python) run first in the CLI's process: for faults no real peer makes."""
    code = f"import os\n{patch}\nfrom pallet.cli import main\nmain()"
    return run_cli([sys.executable, "-c", code, *args], env=pallet_env.env, capture_output=True,
                   text=True, timeout=60)


def test_run_reports_faults_in_one_line_and_cleans_up(pallet_env):
    """An unexpected error while `run` sets the container up (a full disk), or a monitor that died before
    it was told the container: one line, exit 125; a `--rm` container is removed, another is left
    Created with nothing mounted."""
    cp = _run_patched(pallet_env, "from pallet.engine.core import Engine\n"
                      "def full(*a, **k): raise OSError(28, 'No space left on device')\n"
                      "Engine._setup_files = full", "run", "--rm", IMAGE, "true")
    assert cp.returncode == 125, cp.stderr
    assert cp.stderr == "Error: OSError: [Errno 28] No space left on device\n"
    assert pallet_env.ids() == []
    died = "import pallet.engine.monitor as m\nm.preforked = lambda *a: os._exit(1)"
    cp = _run_patched(pallet_env, died, "run", "--name", "orphan", IMAGE, "true")
    assert cp.returncode == 125, cp.stderr
    assert cp.stderr == "Error: container orphan failed to start (its monitor exited)\n"
    info = json.loads(pallet_env("inspect", "orphan", check=True).stdout)[0]
    assert info["State"]["Status"] == "created"
    assert mounts_under(pallet_env.root) == []
    cp = _run_patched(pallet_env, died, "run", "--rm", IMAGE, "true")
    assert cp.returncode == 125, cp.stderr
    assert pallet_env.ids() == [info["Id"]]


def test_init_without_an_init_binary_fails_before_anything_is_created(pallet_env, tmp_path):
    """With catatonit and tini hidden (a private mount namespace binds /dev/null over each one found),
    `run --init` is one line naming the package, exit 125, and no container is left."""
    from pallet.engine.spec import INIT_CANDIDATES

    hide = [p for p in (*INIT_CANDIDATES, shutil.which("catatonit"), shutil.which("tini")) if p and os.path.exists(p)]
    script = "".join(f"mount --bind /dev/null {p} && " for p in dict.fromkeys(hide)) + 'exec "$@"'
    pallet_env.prefix = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh"]
    cp = pallet_env("run", "--rm", "--init", IMAGE, "true")
    assert cp.returncode == 125, cp.stderr
    assert cp.stderr.count("\n") == 1 and "apt-get install catatonit" in cp.stderr, cp.stderr
    cp = pallet_env("run", "-d", "--init", "--name", "noinit", IMAGE, "sleep", "5")
    assert cp.returncode == 125 and "catatonit" in cp.stderr
    pallet_env.prefix = []
    assert pallet_env.ids() == []
