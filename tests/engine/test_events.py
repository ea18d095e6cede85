"""docker's events: what run/stop/rm/kill/pause/rename/exec record, in order; filters; since/until;
following (a thread on the engine, a `pallet events` process) sees what happens after it began."""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import time
from pathlib import Path

import pytest

from engine.engine_support import IMAGE, wait_for

pytestmark = [pytest.mark.root]

LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}(Z|[+-]\d\d:\d\d) (\w+) (\S.*?) ([0-9a-f]{64}|\S+)"
                  r"( \(.*\))?$")


def _watching(pid: int) -> bool:
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            if os.readlink(fd) == "anon_inode:inotify":
                return True
        except OSError:
            pass
    return False


def _events(pallet_env, *args):
    cp = pallet_env("events", "--until", f"{time.time():.9f}", *args, check=True)
    return cp.stdout.splitlines()


def _json_events(pallet_env, since, *args):
    return [json.loads(x) for x in _events(pallet_env, "--since", since, "--format", "json", *args)]


def test_run_stop_rm_in_order_with_docker_shapes(pallet_env):
    t0 = f"{time.time():.9f}"
    cid = pallet_env("run", "-d", "--network", "none", "--name", "ev1", "-l", "tier=front", IMAGE, "sleep", "60",
                     check=True).stdout.strip()
    pallet_env("stop", "-t", "1", "ev1", check=True)
    pallet_env("rm", "ev1", check=True)
    evs = _json_events(pallet_env, t0)
    mine = [e for e in evs if e["Actor"]["ID"] == cid]
    assert [e["Action"] for e in mine] == ["create", "start", "kill", "kill", "die", "stop", "destroy"]
    kills = [e["Actor"]["Attributes"]["signal"] for e in mine if e["Action"] == "kill"]
    assert kills == ["15", "9"]   # sleep as PID 1 ignores SIGTERM: docker's stop then kills
    die = next(e for e in mine if e["Action"] == "die")
    assert die["Actor"]["Attributes"]["exitCode"] == "137"
    for e in mine:   # docker's message: deprecated status/id/from beside Type/Action/Actor
        assert e["Type"] == "container" and e["scope"] == "local"
        assert e["status"] == e["Action"] and e["id"] == cid and e["from"] == IMAGE
        assert e["Actor"]["Attributes"]["name"] == "ev1" and e["Actor"]["Attributes"]["tier"] == "front"
        assert e["time"] == e["timeNano"] // 10**9
    assert [e["timeNano"] for e in mine] == sorted(e["timeNano"] for e in mine)
    # the text form: TIME TYPE ACTION ID (attributes sorted by key)
    text = [x for x in _events(pallet_env, "--since", t0, "--filter", "type=container") if cid in x]
    assert len(text) == len(mine)
    m = LINE.match(text[0])
    assert m and m.group(2) == "container" and m.group(3) == "create"
    assert text[0].endswith(f"{cid} (image={IMAGE}, name=ev1, tier=front)")
    assert "exitCode=137" in text[4]


def test_run_rm_foreground_and_other_actions(pallet_env):
    t0 = f"{time.time():.9f}"
    cp = pallet_env("run", "--rm", "--network", "none", IMAGE, "sh", "-c", "exit 3")
    assert cp.returncode == 3
    pallet_env("run", "-d", "--network", "none", "--name", "ev2", IMAGE, "sleep", "60", check=True)
    pallet_env("pause", "ev2", check=True)
    pallet_env("unpause", "ev2", check=True)
    pallet_env("rename", "ev2", "ev3", check=True)
    assert pallet_env("exec", "ev3", "true").returncode == 0
    pallet_env("kill", "ev3", check=True)
    pallet_env("rm", "ev3", check=True)
    evs = _json_events(pallet_env, t0)
    first = [e for e in evs if e["Actor"]["ID"] == evs[0]["Actor"]["ID"]]
    assert [e["Action"] for e in first] == ["create", "attach", "start", "die", "destroy"]
    assert first[3]["Actor"]["Attributes"]["exitCode"] == "3"
    second = [e for e in evs if e["Actor"]["ID"] != first[0]["Actor"]["ID"]]
    actions = [e["Action"] for e in second]
    assert actions[:2] == ["create", "start"] and actions[2:5] == ["pause", "unpause", "rename"]
    assert actions[5].startswith("exec_create: true") and actions[6].startswith("exec_start: true")
    assert actions[7:] == ["exec_die", "kill", "die", "destroy"]
    ren = second[4]["Actor"]["Attributes"]
    assert ren["name"] == "ev3" and ren["oldName"] == "/ev2"
    assert second[7]["Actor"]["Attributes"]["exitCode"] == "0"
    assert second[8]["Actor"]["Attributes"]["signal"] == "9"


def test_filters_since_until(pallet_env):
    t0 = f"{time.time():.9f}"
    a = pallet_env("create", "--network", "none", "--name", "fa", "-l", "k=v", IMAGE, "true", check=True).stdout.strip()
    t1 = f"{time.time():.9f}"
    b = pallet_env("create", "--network", "none", "--name", "fb", IMAGE, "true", check=True).stdout.strip()
    pallet_env("rm", "fa", check=True)
    pallet_env("rm", "fb", check=True)

    def ids(*args):
        return [(e["Actor"]["ID"], e["Action"]) for e in _json_events(pallet_env, t0, *args)]

    assert ids("--filter", "container=fa") == [(a, "create"), (a, "destroy")]
    assert ids("--filter", f"container={b[:12]}") == [(b, "create"), (b, "destroy")]
    assert ids("--filter", "event=create") == [(a, "create"), (b, "create")]
    assert ids("--filter", "label=k=v") == [(a, "create"), (a, "destroy")]
    assert ids("--filter", "label=k") == [(a, "create"), (a, "destroy")]
    assert ids("--filter", "label=k=w") == []
    assert ids("--filter", "type=image") == []
    assert ids("--filter", f"image={IMAGE}", "--filter", "event=destroy") == [(a, "destroy"), (b, "destroy")]
    # two values of one filter: either; since/until cut the window
    assert ids("--filter", "container=fa", "--filter", "container=fb", "--filter", "event=create") == \
        [(a, "create"), (b, "create")]
    later = [(e["Actor"]["ID"], e["Action"]) for e in _json_events(pallet_env, t1)]
    assert later == [(b, "create"), (a, "destroy"), (b, "destroy")]
    cp = pallet_env("events", "--since", t0, "--until", t1, "--format", "{{.Actor.ID}} {{.Action}}", check=True)
    assert cp.stdout.splitlines() == [f"{a} create"]
    # bad input: one sentence, exit 125
    for bad in (["--filter", "nope=1"], ["--filter", "type=bogus"], ["--filter", "novalue"],
                ["--since", "yesterday-ish"]):
        cp = pallet_env("events", "--until", "1", *bad)
        assert cp.returncode == 125 and cp.stderr.count("\n") == 1, (bad, cp.stderr)


def test_engine_events_follow_in_a_thread(pallet_env, engine):
    stream = engine.events(filters={"container": ["fol"], "event": ["start"]})   # from now on
    seen = []

    def consume():
        for ev in stream:
            seen.append(ev)
            return

    t = threading.Thread(target=consume, daemon=True)
    t.start()
    pallet_env("run", "-d", "--network", "none", "--name", "fol", IMAGE, "sleep", "60", check=True)
    t.join(30)
    assert not t.is_alive() and seen[0]["Action"] == "start" and seen[0]["Actor"]["Attributes"]["name"] == "fol"
    pallet_env("rm", "-f", "fol", check=True)


def test_pallet_events_process_follows_until_stopped(pallet_env):
    p = subprocess.Popen(pallet_env.argv("events", "--filter", "container=pr", "--format", "json"),
                         env=pallet_env.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # what `events` without --since follows is what happens after it began: wait until it watches
        # (its inotify descriptor is open), then start a container
        wait_for(lambda: _watching(p.pid) or p.poll() is not None)
        assert p.poll() is None, p.stderr.read()
        lines = []
        cid = pallet_env("run", "-d", "--network", "none", "--name", "pr", IMAGE, "sleep", "60", check=True).stdout.strip()
        while True:
            line = p.stdout.readline()
            assert line, p.stderr.read()
            lines.append(json.loads(line))
            if lines[-1]["Action"] == "start":
                break
        assert lines[-1]["id"] == cid
        pallet_env("stop", "-t", "0", "pr", check=True)
        while lines[-1]["Action"] != "stop":
            line = p.stdout.readline()
            assert line, p.stderr.read()
            lines.append(json.loads(line))
        assert [e["Action"] for e in lines][-3:] == ["kill", "die", "stop"]
        assert p.poll() is None   # still following
    finally:
        p.terminate()
        p.wait(10)
        p.stdout.close()
        p.stderr.close()


def test_image_events(pallet_env, tmp_path):
    t0 = f"{time.time():.9f}"
    image_id = json.loads(pallet_env("image", "inspect", IMAGE, check=True).stdout)[0]["Id"]
    pallet_env("tag", IMAGE, "localhost/other:1", check=True)
    pallet_env("save", "-o", str(tmp_path / "x.tar"), "localhost/other:1", check=True)
    pallet_env("rmi", "localhost/other:1", check=True)
    pallet_env("load", "-i", str(tmp_path / "x.tar"), check=True)
    evs = _json_events(pallet_env, t0, "--filter", "type=image")
    assert [(e["Action"], e["Actor"]["ID"]) for e in evs] == [
        ("tag", image_id), ("save", image_id), ("untag", image_id), ("load", image_id)]
    assert evs[0]["Actor"]["Attributes"]["name"] == "localhost/other:1"
    assert all(e["status"] == e["Action"] and e["id"] == image_id and "from" not in e for e in evs)
    assert [e["Action"] for e in _json_events(pallet_env, t0, "--filter", "image=localhost/other:1")] == ["tag"]
    assert _json_events(pallet_env, t0, "--filter", "type=container") == []


def test_volume_events(pallet_env):
    t0 = f"{time.time():.9f}"
    pallet_env("volume", "create", "evvol", check=True)
    cp = pallet_env("run", "--rm", "--network", "none", "-v", "evvol:/data:ro", IMAGE, "true")
    assert cp.returncode == 0, cp.stderr
    pallet_env("volume", "rm", "evvol", check=True)
    evs = _json_events(pallet_env, t0, "--filter", "type=volume")
    assert [(e["Action"], e["Actor"]["ID"]) for e in evs] == [
        ("create", "evvol"), ("mount", "evvol"), ("unmount", "evvol"), ("destroy", "evvol")]
    mount = evs[1]["Actor"]["Attributes"]
    assert mount["destination"] == "/data" and mount["read/write"] == "false" and mount["driver"] == "local"
    assert mount["container"] == evs[2]["Actor"]["Attributes"]["container"]
    assert all("status" not in e and "id" not in e for e in evs)   # (docker's deprecated fields: containers, images)
    assert len(_json_events(pallet_env, t0, "--filter", "volume=evvol")) == 4
    assert _json_events(pallet_env, t0, "--filter", "volume=other") == []


def test_health_status_events_on_change(pallet_env):
    t0 = f"{time.time():.9f}"
    cid = pallet_env("run", "-d", "--network", "none", "--health-cmd", "test ! -f /tmp/bad", "--health-interval",
                     "1s", "--health-retries", "1", IMAGE, "sleep", "300", check=True).stdout.strip()

    def health_events():
        return [e["Action"] for e in _json_events(pallet_env, t0, "--filter", "event=health_status",
                                                   "--filter", f"container={cid}")]

    assert wait_for(lambda: health_events() == ["health_status: healthy"], timeout=60)
    pallet_env("exec", cid, "touch", "/tmp/bad", check=True)
    assert wait_for(lambda: health_events() == ["health_status: healthy", "health_status: unhealthy"], timeout=60)
    pallet_env("rm", "-f", cid, check=True)


def test_attach_and_detach_events_of_a_terminal(pallet_env):
    import pexpect

    t0 = f"{time.time():.9f}"
    run = pallet_env.argv("run", "-it", "--network", "none", "--name", "tty2", IMAGE, "sh")
    child = pexpect.spawn(run[0], run[1:], env=pallet_env.env, timeout=20)
    try:
        child.expect("# ")
        child.send("\x10\x11")   # ctrl-p ctrl-q
        child.expect(pexpect.EOF)
        child.close()
        assert child.exitstatus == 0
        attach = pallet_env.argv("attach", "tty2")
        child = pexpect.spawn(attach[0], attach[1:], env=pallet_env.env, timeout=20)
        time.sleep(0.5)   # (the detach keys are read once attached)
        child.send("\x10\x11")
        child.expect(pexpect.EOF)
        child.close()
        assert child.exitstatus == 0
    finally:
        child.close(force=True)
    acts = [e["Action"] for e in _json_events(pallet_env, t0, "--filter", "container=tty2")]
    assert acts == ["create", "attach", "start", "detach", "attach", "detach"]
    pallet_env("rm", "-f", "tty2", check=True)


@pytest.mark.network
def test_push_and_pull_events(pallet_env, tmp_path):
    """Against pallet's own registry on loopback."""
    from helpers.registry_server import RegistryProcess

    reg = RegistryProcess(tmp_path / "reg", [], tmp_path / "reg.log").start()
    try:
        t0 = f"{time.time():.9f}"
        ref = f"127.0.0.1:{reg.port}/bb:1"
        pallet_env("push", IMAGE, ref, check=True)
        pallet_env("rmi", IMAGE, check=True)
        pallet_env("pull", ref, check=True)
        evs = _json_events(pallet_env, t0, "--filter", "type=image")
        assert [(e["Action"], e["Actor"]["ID"]) for e in evs][:1] == [("push", ref)]
        assert [e["Action"] for e in evs][1:] == ["untag", "pull"]
        assert evs[-1]["Actor"]["ID"] == ref and evs[-1]["Actor"]["Attributes"]["name"] == f"127.0.0.1:{reg.port}/bb"
        assert [e["Action"] for e in _json_events(pallet_env, t0, "--filter", f"image={ref}")] == ["push", "pull"]
    finally:
        reg.stop(timeout=10)


def test_rm_force_of_a_running_container(pallet_env):
    t0 = f"{time.time():.9f}"
    cids = [pallet_env("run", "-d", "--network", "none", IMAGE, "sleep", "60", check=True).stdout.strip()
            for _ in range(2)]
    pallet_env("rm", "-f", *cids, check=True)
    evs = _json_events(pallet_env, t0)
    for cid in cids:   # docker's rm -f: kill (9), die, destroy — one kill each
        mine = [e for e in evs if e["Actor"]["ID"] == cid]
        assert [e["Action"] for e in mine] == ["create", "start", "kill", "die", "destroy"]
        assert mine[2]["Actor"]["Attributes"]["signal"] == "9"
