"""What a user can do is one engine call, tested in-process as an API daemon would call it: top, pause and
unpause, stats, update's checks, image inspect. Nothing here writes to the terminal."""

from __future__ import annotations

import json

import pytest

from engine.engine_support import IMAGE, wait_for
from pallet.engine import execs, freezer, limits
from pallet.engine.options import Resources
from pallet.errors import Conflict, PalletError

pytestmark = pytest.mark.root


def test_top_pause_stats_update(pallet_env, engine, capfd):
    cid = pallet_env("run", "-d", "--name", "busy", "--memory", "64m", IMAGE, "sh", "-c",
                     "sleep 300 & sleep 301 & wait", check=True).stdout.strip()
    capfd.readouterr()
    c = engine.get(cid)
    assert wait_for(lambda: len(execs.container_pids(c)) == 3, 10)   # (the shell has started both sleeps)
    t = execs.top(engine, c)
    assert t["Titles"][:3] == ["USER", "PID", "PPID"] and t["Titles"][-1] == "CMD"
    cmds = [p[-1] for p in t["Processes"]]
    assert "sleep 300" in cmds and "sleep 301" in cmds and len(t["Processes"]) == 3
    assert all(len(p) == len(t["Titles"]) for p in t["Processes"])
    assert execs.top(engine, c, ["-o", "pid,comm"])["Titles"] == ["PID", "COMMAND"]
    bsd = execs.top(engine, c, ["aux"])     # ps lists every process: only the container's are kept
    assert len(bsd["Processes"]) == 3 and bsd["Titles"][1] == "PID"
    cp = pallet_env("top", cid, "-o", "pid,comm", check=True)   # ps's options after the name, as docker
    assert cp.stdout.split()[:2] == ["PID", "COMMAND"] and len(cp.stdout.splitlines()) == 4

    freezer.pause(engine, c)
    assert freezer.paused(engine.get(cid))
    with pytest.raises(Conflict, match="^container busy is already paused$"):
        freezer.pause(engine, engine.get(cid))
    assert engine.inspect(engine.get(cid))["State"]["Paused"] is True
    freezer.unpause(engine, engine.get(cid))
    assert not freezer.paused(engine.get(cid))
    with pytest.raises(Conflict, match="^container busy is not paused$"):
        freezer.unpause(engine, engine.get(cid))

    readings = list(limits.stats(engine, [engine.get(cid)], stream=False))
    assert len(readings) == 1 and len(readings[0]) == 1
    row = readings[0][0]
    assert row["Name"] == "busy" and row["PIDs"] == "3" and row["MemUsage"].endswith("/ 64MiB")
    assert row["CPUPerc"].endswith("%")

    # update: a record by docker's names, checked by the engine
    assert limits.update(engine, engine.get(cid), Resources(PidsLimit=50, Memory=128 << 20)) == []
    host = engine.get(cid).HostConfig
    assert host["PidsLimit"] == 50 and host["Memory"] == 128 << 20
    with pytest.raises(PalletError, match="^Minimum memory limit allowed is 6MB$"):
        limits.update(engine, engine.get(cid), Resources(Memory=1))
    pallet_env("rm", "-f", cid, check=True)
    assert capfd.readouterr() == ("", "")     # the engine wrote nothing


def test_update_checks_against_the_current_limits(pallet_env, engine):
    cid = pallet_env("create", "--memory", "64m", "--memory-swap", "128m", IMAGE, "true", check=True).stdout.strip()
    with pytest.raises(PalletError, match="^Memory limit should be smaller than already set memoryswap limit"):
        limits.update(engine, engine.get(cid), Resources(Memory=256 << 20))
    cp = pallet_env("update", "--memory", "256m", cid)
    assert cp.returncode == 125 and cp.stderr.startswith("Error: Memory limit should be smaller"), cp.stderr
    assert engine.get(cid).HostConfig["Memory"] == 64 << 20   # unchanged
    pallet_env("rm", cid, check=True)


def test_image_inspect_is_one_call_and_inspect_of_an_image_is_the_same(pallet_env, engine):
    doc = engine.inspect_image(IMAGE)
    assert doc["Id"].startswith("sha256:") and doc["RepoTags"] == [IMAGE]
    assert doc["RootFS"]["Type"] == "layers" and doc["Descriptor"]["digest"].startswith("sha256:")
    assert json.loads(pallet_env("image", "inspect", IMAGE, check=True).stdout) == [doc]
    assert json.loads(pallet_env("inspect", IMAGE, check=True).stdout) == [doc]
    cp = pallet_env("inspect", "no-such-thing")
    assert cp.returncode != 0 and "No such object: no-such-thing" in cp.stderr


def test_run_is_one_call_and_its_output_a_stream(pallet_env, engine):
    """Engine.run: create and start, attached before the start; the caller reads the output as records."""
    from pallet.engine.attach import AttachStream
    from pallet.engine.options import Config, CreateOptions, HostOptions

    opts = CreateOptions(Config(Image=IMAGE, Cmd=["sh", "-c", "echo out; echo err >&2; exit 3"]), name="once",
                         host_options=HostOptions(AutoRemove=True, Runtime="pallet"))
    c, sock = engine.run(opts)
    stream = AttachStream(sock)
    got = list(stream)
    stream.close()
    assert sorted(got) == [("stderr", b"err\n"), ("stdout", b"out\n")]
    assert stream.exit_code == 3 and stream.removed
    engine.wait(c, "removed", timeout=30)
    assert pallet_env.ids() == []
    c, sock = engine.run(CreateOptions(Config(Image=IMAGE, Cmd=["sleep", "60"]), detach=True))
    assert sock is None and c.status == "running"
    engine.remove(c, force=True)
    with pytest.raises(PalletError):
        engine.run(CreateOptions(Config(Image=IMAGE, Cmd=["/no/such/binary"]), host_options=HostOptions(AutoRemove=True)))
    assert wait_for(lambda: pallet_env.ids() == [], 10)   # (--rm: removed, by the caller or its monitor)


def test_attach_stream_takes_stdin_and_is_selectable(pallet_env, engine):
    """The stream the CLI's terminal pump renders: stdin written and closed through it, output as records,
    readable through select on its descriptor; nothing written to this process's terminal."""
    import selectors

    from pallet.engine.attach import AttachStream
    from pallet.engine.options import Config, CreateOptions, HostOptions

    c, sock = engine.run(CreateOptions(Config(Image=IMAGE, Cmd=["sh", "-c", "cat; echo done >&2"], OpenStdin=True,
                                              AttachStdin=True), name="cat", host_options=HostOptions(AutoRemove=True)))
    stream = AttachStream(sock)
    stream.write(b"hello\n" * 10000)   # more than one message
    stream.close_stdin()
    sel = selectors.DefaultSelector()
    sel.register(stream, selectors.EVENT_READ)
    out, err, last = b"", b"", None
    while last not in ("exit", "lost"):
        assert sel.select(30)
        rec = stream.next_record()
        if rec is None:
            continue
        last, data = rec
        if last == "stdout":
            out += data
        elif last == "stderr":
            err += data
    stream.close()
    assert last == "exit" and stream.exit_code == 0 and stream.removed
    assert out == b"hello\n" * 10000 and err == b"done\n"
    engine.wait(c, "removed", timeout=30)
