"""The click-free fast path of `pallet run` (pallet.cli.fastrun) must call the engine exactly as the click
command does, and hand everything it does not understand to click."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pallet.cli import containerrun, fastrun
from pallet.cli.common import State

ENV = {"PALLET_ROOT": "", "PALLET_RUNROOT": "", "PALLET_STORAGE_DRIVER": "", "PALLET_CONFIG": ""}

# command lines both paths take: (args, environment)
SAME = [
    ["run", "--rm", "--network", "none", "localhost/busybox", "true"],
    ["run", "--rm", "--network=none", "localhost/busybox", "true"],
    ["container", "run", "--rm", "localhost/busybox"],
    ["run", "--trace", "busybox", "true"],              # (--trace alone takes no value: busybox is the image)
    ["run", "--trace", "--rm", "-e", "--trace", "busybox", "--trace"],
    ["run", "--trace=/tmp/t.json", "-d", "busybox"],
    ["run", "--trace=", "busybox"],
    ["run", "busybox"],
    ["run", "-d", "busybox", "sleep", "1000"],
    ["run", "-it", "busybox", "sh"],
    ["run", "-dit", "--name", "web", "busybox"],
    ["run", "-ti", "-e", "A=1", "-eB=2", "--env", "C", "--env=D=4", "busybox", "env"],
    ["run", "-ie", "X=1", "busybox"],
    ["run", "--name=", "busybox"],
    ["run", "-w", "/tmp", "-u", "1000:1000", "-h", "box", "--hostname", "box2", "busybox", "id"],
    ["run", "--entrypoint", "", "busybox", "ls", "-l", "--", "-x"],
    ["run", "--entrypoint=/bin/sh", "busybox", "-c", "echo hi"],
    ["run", "--net", "host", "--add-host", "a:1.2.3.4", "--add-host=b:5.6.7.8", "busybox"],
    ["run", "--init", "--stop-signal", "SIGINT", "--stop-timeout", "3", "busybox"],
    ["run", "-l", "a=b", "--label", "c", "-lx=y", "busybox"],
    ["run", "--runtime", "runc", "--platform", "linux/amd64", "--pull", "never", "busybox"],
    ["run", "--pull=always", "busybox"],
    ["run", "-v", "/tmp:/data:ro", "--volume", "vol:/v", "--mount", "type=tmpfs,dst=/t", "--tmpfs", "/run",
     "--read-only", "--volumes-from", "other:ro", "busybox"],
    ["run", "-m", "64m", "--memory-swap", "128m", "--memory-reservation", "32m", "--cpus", "1.5", "-c", "512",
     "--cpu-period", "100000", "--cpu-quota", "50000", "--cpuset-cpus", "0", "--cpuset-mems", "0",
     "--pids-limit", "100", "--blkio-weight", "500", "busybox"],
    ["run", "--ulimit", "nofile=1024:2048", "--oom-score-adj", "100", "--oom-kill-disable", "busybox"],
    ["run", "--device", "/dev/null:/dev/x", "--cap-add", "NET_ADMIN", "--cap-drop", "ALL", "--privileged",
     "--security-opt", "seccomp=unconfined", "--sysctl", "net.ipv4.ip_forward=1", "--shm-size", "1g", "busybox"],
    ["run", "--restart", "on-failure:3", "--health-cmd", "true", "--health-interval", "1s", "--health-timeout",
     "2s", "--health-retries", "4", "--health-start-period", "5s", "--health-start-interval", "1s", "busybox"],
    ["run", "--no-healthcheck", "busybox"],
    ["run", "--sig-proxy=false", "busybox"],
    ["run", "--sig-proxy=TRUE", "busybox"],
    ["run", "--rm", "--", "busybox", "--rm"],
    ["run", "busybox", "-d", "--rm", "--name", "x"],
    ["run", "-e", "-x", "busybox"],
    ["run", "--env-file", "/dev/null", "busybox"],
    ["run", "-", "x"],
    ["--root", "/tmp/r", "--runroot=/tmp/rr", "run", "--rm", "busybox", "true"],
    ["--storage-driver", "copy", "--config=/tmp/none.toml", "container", "run", "busybox"],
]
SAME_ENV = [
    ({"PALLET_ROOT": "/tmp/x", "PALLET_RUNROOT": "/tmp/y", "PALLET_STORAGE_DRIVER": "overlay"},
     ["run", "--rm", "busybox", "true"]),
    ({"PALLET_ROOT": "/tmp/x"}, ["--root", "/tmp/z", "run", "busybox"]),
    ({"PALLET_STORAGE_DRIVER": "", "PALLET_CONFIG": ""}, ["run", "busybox"]),
]

# command lines the fast parser leaves to click (unknown flags, help, malformed or click-converted values)
FALLBACK = [
    ["run"], ["run", "--rm"], ["run", "--help"], ["run", "--bogus", "busybox"], ["run", "-Z", "busybox"],
    ["run", "-itZ", "busybox"], ["run", "--rm=true", "busybox"], ["run", "--name"], ["run", "-e"],
    ["run", "--sig-proxy", "busybox"], ["run", "--sig-proxy", "false", "busybox"], ["run", "--sig-proxy=maybe", "x"],
    ["--help", "run", "x"], ["--version"], ["--storage-driver", "zfs", "run", "x"], ["--bogus", "run", "x"],
    ["ps"], ["create", "busybox"], ["container", "create", "busybox"], ["image", "run"], ["--root"],
    ["run", "--env-file", "/tmp", "busybox"], ["--root", "/etc/passwd", "run", "x"], [],
    ["container"], ["run", "--"],
]


@pytest.fixture
def record(monkeypatch):
    calls: list[tuple] = []

    def fake_run(st, image, command, kw, *, detach, sig_proxy):
        calls.append((st, image, tuple(command), dict(kw), detach, sig_proxy))
        return 7

    monkeypatch.setattr(containerrun, "run", fake_run)
    return calls


def _env(monkeypatch, env: dict) -> dict:
    full = {**ENV, **env}
    for k, v in full.items():
        monkeypatch.setenv(k, v)
    return full


def via_click(args: list[str]):
    from pallet.cli.main import cli

    return cli.main(args=list(args), prog_name="pallet", standalone_mode=False)


def via_fast(args: list[str], env: dict):
    p = fastrun.parse(list(args), env)
    assert p is not None, f"the fast path refused {args}"
    return (State(**p.state), p.image, p.command, p.kw, p.detach, p.sig_proxy)


@pytest.mark.parametrize("args", SAME, ids=" ".join)
def test_fast_parser_calls_run_like_click(args, record, monkeypatch):
    env = _env(monkeypatch, {})
    assert via_click(args) == 7
    assert len(record) == 1
    assert via_fast(args, env) == record[0]


@pytest.mark.parametrize("env,args", SAME_ENV)
def test_global_options_and_environment_like_click(env, args, record, monkeypatch):
    full = _env(monkeypatch, env)
    via_click(args)
    assert via_fast(args, full) == record[0]


@pytest.mark.parametrize("args", FALLBACK, ids=lambda a: " ".join(a) or "(none)")
def test_everything_else_goes_to_click(args):
    assert fastrun.parse(list(args), dict(ENV)) is None


def _raise_exit(code: int) -> None:
    raise SystemExit(code)


def test_fast_main_runs_and_exits_with_the_code(record, monkeypatch):
    _env(monkeypatch, {})
    monkeypatch.setattr(fastrun, "_exit", _raise_exit)   # the real one leaves with os._exit
    with pytest.raises(SystemExit) as e:
        fastrun.main(["run", "--rm", "--network", "none", "busybox", "true"])
    assert e.value.code == 7
    st, image, command, kw, detach, sig_proxy = record[0]
    assert (image, command, detach, sig_proxy, kw["auto_remove"], kw["network"]) == \
        ("busybox", ("true",), False, True, True, ("none",))
    assert fastrun.main(["run", "--help"]) is None and len(record) == 1


def test_option_table_matches_the_click_command():
    """Every option of the click `run` command is in fastrun.OPTIONS with the same strings and kind."""
    from pallet.cli.container import run_cmd

    click_opts = {}
    for p in run_cmd.params:
        if p.param_type_name != "option":
            continue
        kind = (fastrun.FLAG if p.is_flag else fastrun.MULTI if p.multiple
                else fastrun.OPTIONAL if p._flag_needs_value else fastrun.VALUE)
        click_opts[p.name] = (tuple(sorted(p.opts + p.secondary_opts)), kind)
    ours = {dest: (tuple(sorted(opts)), kind) for opts, dest, kind in fastrun.OPTIONS}
    ours[fastrun.SIG_PROXY] = click_opts.get(fastrun.SIG_PROXY)
    assert ours == click_opts


def test_pallet_run_does_not_import_click(tmp_path):
    """The console script's `run` path: click (and the layer unpacker, uuid, ...) stay unimported."""
    code = (
        "import sys\n"
        "from pallet.cli import containerrun\n"
        "containerrun.run = lambda *a, **k: 0\n"
        "from pallet.cli import fastrun\n"
        "def _exit(code):\n"
        "    raise SystemExit(code)\n"
        "fastrun._exit = _exit\n"
        "from pallet.cli import main\n"
        "try:\n"
        "    main(['run', '--rm', '--network', 'none', 'busybox', 'true'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('click', 'rich', 'httpx', 'uuid'))\n"
        "print(' '.join(bad))\n")
    cp = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                        env={"PALLET_ROOT": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert cp.stdout.strip() == ""


def test_exit_code_and_output_through_os_exit(tmp_path):
    """The fast path leaves with os._exit: stdout is flushed first and the code is the container's."""
    code = (
        "from pallet.cli import containerrun\n"
        "def fake(*a, **k):\n"
        "    print('container output')\n"
        "    return 3\n"
        "containerrun.run = fake\n"
        "from pallet.cli import main\n"
        "main(['run', '--rm', 'busybox', 'true'])\n"
        "print('not reached')\n")
    cp = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                        env={"PALLET_ROOT": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert (cp.returncode, cp.stdout) == (3, "container output\n")


def test_run_path_modules_stay_light():
    """What `pallet run` imports (CLI, engine, monitor and its warm-up, store, snapshots, attach) leaves out
    the stdlib modules that cost the most start-up here: dataclasses (with inspect, ast, dis), typing,
    shutil, tempfile, and json (its regexes: pallet.jsonfast instead)."""
    code = (
        "import sys\n"
        "import pallet.cli.containerrun, pallet.cli.fastrun, pallet.engine.core, pallet.engine.monitor\n"
        "import pallet.engine.palletrt, pallet.engine.spec, pallet.engine.snapshots, pallet.store\n"
        "import pallet.layers.snapshots, pallet.layers.images, pallet.reference, pallet.oci\n"
        "import pallet.engine.attach, pallet.engine.runtimes\n"
        "pallet.engine.monitor._warm_up()\n"
        "heavy = ('dataclasses', 'inspect', 'typing', 'shutil', 'tempfile', 'json')\n"
        "print(' '.join(m for m in heavy if m in sys.modules))\n")
    cp = subprocess.run([sys.executable, "-S", "-c", f"import sys; sys.path[:0] = {sys.path!r}\n" + code],
                        capture_output=True, text=True, check=True)
    assert cp.stdout.strip() == ""
