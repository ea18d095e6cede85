"""--pid host, --ipc host and --security-opt systempaths=unconfined (docker's): the container shares the
host's PID or IPC namespace (the kernel's inode says so), or has nothing masked and /proc/sys writable."""

from __future__ import annotations

import json
import os

import pytest

from engine.engine_support import IMAGE

pytestmark = [pytest.mark.root]


def _ns(pallet_env, *flags: str, kind: str) -> str:
    return pallet_env("run", "--rm", *flags, IMAGE, "readlink", f"/proc/self/ns/{kind}", check=True).stdout.strip()


@pytest.mark.parametrize("kind", ["pid", "ipc"])
def test_host_namespace_is_the_hosts(pallet_env, kind):
    mine = os.readlink(f"/proc/self/ns/{kind}")
    assert _ns(pallet_env, f"--{kind}", "host", kind=kind) == mine
    assert _ns(pallet_env, kind=kind) != mine
    assert _ns(pallet_env, f"--{kind}", "private", kind=kind) != mine


def test_pid_host_sees_the_hosts_processes(pallet_env):
    out = pallet_env("run", "--rm", "--pid", "host", IMAGE, "sh", "-c", f"test -d /proc/{os.getpid()} && echo $$",
                     check=True).stdout.split()
    assert out and int(out[0]) != 1        # not pid 1: the host's numbering
    cid = pallet_env("create", "--pid", "host", "--ipc", "host", IMAGE, "true", check=True).stdout.strip()
    hc = json.loads(pallet_env("inspect", cid, check=True).stdout)[0]["HostConfig"]
    assert hc["PidMode"] == "host" and hc["IpcMode"] == "host"
    pallet_env("rm", cid, check=True)


def test_systempaths_unconfined(pallet_env):
    script = "grep -c ' /proc/keys ' /proc/self/mountinfo; grep ' /proc/sys ' /proc/self/mountinfo | wc -l"
    default = pallet_env("run", "--rm", IMAGE, "sh", "-c", script).stdout.split()
    assert default == ["1", "1"]
    open_ = pallet_env("run", "--rm", "--security-opt", "systempaths=unconfined", IMAGE, "sh", "-c", script).stdout.split()
    assert open_ == ["0", "0"]


@pytest.mark.parametrize("args, words", [(["--pid", "bogus"], "invalid --pid 'bogus'"),
                                         (["--pid", "container:x"], "container:NAME is not supported"),
                                         (["--ipc", "none"], "invalid --ipc 'none'"),
                                         (["--security-opt", "systempaths=x"], "systempaths=unconfined")])
def test_bad_modes(pallet_env, args, words):
    before = pallet_env.ids()
    cp = pallet_env("run", "--rm", *args, IMAGE, "true")
    assert cp.returncode == 125 and cp.stderr.count("\n") == 1 and words in cp.stderr, cp.stderr
    assert pallet_env.ids() == before
