"""`pallet-runtime`: runc's command line over `pallet.runtime.Runtime`.

`main()` is a hand-written parser (no click, no argparse) because `pallet-runtime
run` is on the hot path; `cli` is a click command forwarding its arguments to the
same parser so `pallet runtime ...` works from the `pallet` group.
Errors: one line on stderr (and a JSON/text record on --log), exit status 1, like runc.
"""

from __future__ import annotations

import os
import sys

from pallet import flagtable
from pallet.flagtable import FLAG, MULTI, VALUE

VERSION = "0.1.0"

SIGNALS = {
    "HUP": 1, "INT": 2, "QUIT": 3, "ILL": 4, "TRAP": 5, "ABRT": 6, "IOT": 6, "BUS": 7, "FPE": 8, "KILL": 9,
    "USR1": 10, "SEGV": 11, "USR2": 12, "PIPE": 13, "ALRM": 14, "TERM": 15, "STKFLT": 16, "CHLD": 17,
    "CONT": 18, "STOP": 19, "TSTP": 20, "TTIN": 21, "TTOU": 22, "URG": 23, "XCPU": 24, "XFSZ": 25,
    "VTALRM": 26, "PROF": 27, "WINCH": 28, "IO": 29, "POLL": 29, "PWR": 30, "SYS": 31,
}

# option name -> (key, takes a value, repeatable); short aliases map to the long name
GLOBAL = {"--root": ("root", True, False), "--log": ("log", True, False), "--log-format": ("log_format", True, False),
          "--debug": ("debug", False, False), "--systemd-cgroup": ("systemd_cgroup", False, False),
          "--rootless": ("rootless", True, False), "--criu": ("criu", True, False)}
_CREATE = {"--bundle": ("bundle", True, False), "-b": ("bundle", True, False),
           "--pid-file": ("pid_file", True, False), "--console-socket": ("console_socket", True, False),
           "--no-pivot": ("no_pivot", False, False), "--no-new-keyring": ("no_new_keyring", False, False),
           "--preserve-fds": ("preserve_fds", True, False), "--keep": ("keep", False, False),
           "--detach": ("detach", False, False), "-d": ("detach", False, False)}
COMMANDS: dict[str, dict] = {
    "spec": {"--bundle": ("bundle", True, False), "-b": ("bundle", True, False), "--rootless": ("rootless", False, False)},
    "create": _CREATE, "run": _CREATE, "start": {}, "state": {}, "pause": {}, "resume": {}, "features": {},
    "kill": {"--all": ("all", False, False), "-a": ("all", False, False)},
    "delete": {"--force": ("force", False, False), "-f": ("force", False, False)},
    "list": {"--format": ("format", True, False), "-f": ("format", True, False), "--quiet": ("quiet", False, False),
             "-q": ("quiet", False, False)},
    "ps": {"--format": ("format", True, False), "-f": ("format", True, False)},
    "exec": {"--process": ("process", True, False), "-p": ("process", True, False), "--tty": ("tty", False, False),
             "-t": ("tty", False, False), "--detach": ("detach", False, False), "-d": ("detach", False, False),
             "--pid-file": ("pid_file", True, False), "--console-socket": ("console_socket", True, False),
             "--cwd": ("cwd", True, False), "--env": ("env", True, True), "-e": ("env", True, True),
             "--user": ("user", True, False), "-u": ("user", True, False),
             "--additional-gids": ("gids", True, True), "-g": ("gids", True, True),
             "--cap": ("cap", True, True), "-c": ("cap", True, True), "--no-new-privs": ("nnp", False, False),
             "--preserve-fds": ("preserve_fds", True, False), "--apparmor": ("apparmor", True, False),
             "--process-label": ("label", True, False), "--ignore-paused": ("ignore_paused", False, False)},
    "update": {"--resources": ("resources", True, False), "-r": ("resources", True, False),
               **{f"--{k}": (k, True, False) for k in (
                   "memory", "memory-reservation", "memory-swap", "kernel-memory", "kernel-memory-tcp",
                   "cpu-shares", "cpu-quota", "cpu-period", "cpu-rt-period", "cpu-rt-runtime", "cpuset-cpus",
                   "cpuset-mems", "pids-limit", "blkio-weight", "cpu-idle")}},
}

USAGE = """pallet-runtime: an OCI runtime (runc-compatible command line)

usage: pallet-runtime [--root DIR] [--log FILE] [--log-format text|json] [--debug] COMMAND [options] ARGS

commands:
  spec      write a default config.json (--rootless)
  create    create a container: --bundle DIR --pid-file F --console-socket SOCK --no-pivot --preserve-fds N ID
  start     start a created container: ID
  run       create and start (--detach): same options as create
  state     print the state of a container: ID
  kill      send a signal: [--all] ID [SIGNAL]
  delete    delete a container: [--force] ID
  exec      run a process in a container: [--process F | ARGS] [--tty] [--detach] [--cwd] [--env] [--user] ID
  ps        processes of a container: [--format table|json] ID [ps options]
  list      list containers: [--format table|json] [--quiet]
  pause     freeze a container: ID
  resume    thaw a container: ID
  update    change resource limits: [--resources F] [--memory N] [--cpu-shares N] ... ID
  features  print the features document
"""


class UsageError(Exception):
    pass


def _is_int(v: str) -> bool:
    return v.removeprefix("-").isdigit()


def _is_size(v: str) -> bool:
    try:
        _size(v)
    except ValueError:
        return False
    return True


# flags whose value must parse (urfave/cli: `invalid value "x" for flag -preserve-fds: parse error`)
_VALUE_CHECKS = {
    "preserve_fds": _is_int, "gids": _is_int, "pids-limit": _is_int, "blkio-weight": _is_int,
    **dict.fromkeys(("cpu-shares", "cpu-quota", "cpu-period", "cpu-rt-period", "cpu-rt-runtime", "cpu-idle"), _is_int),
    **dict.fromkeys(("memory", "memory-reservation", "memory-swap", "kernel-memory", "kernel-memory-tcp"), _is_size),
    "user": lambda v: all(p.isdigit() for p in v.split(":", 1)),
}


def parse(argv: list[str], table: dict) -> tuple[dict, list[str]]:
    """Options until the first positional argument (urfave/cli style), then positionals: the table
    parser (`pallet.flagtable`, the one `pallet run`'s fast path uses) in runc's forms (-xVALUE, a
    boolean's =false), its refusals in runc's words."""
    by_name = {name: (key, FLAG if not takes else MULTI if multi else VALUE)
               for name, (key, takes, multi) in table.items()}
    try:
        opts, i = flagtable.parse(argv, by_name, bundle=False, flag_values=True,
                                  check=lambda key, val: _VALUE_CHECKS.get(key, _any)(val))
    except flagtable.FlagError as e:
        if e.why == "needs-value":
            raise UsageError(f"flag needs an argument: {e.name}") from None
        if e.why == "bad-value":
            raise UsageError(f'invalid value "{e.value}" for flag {e.name}: parse error') from None
        raise UsageError(f"flag provided but not defined: {e.name}") from None
    return {k: list(v) if isinstance(v, tuple) else v for k, v in opts.items()}, argv[i:]


def _any(v: str) -> bool:
    return True


def _one_id(args: list[str], cmd: str) -> str:
    if len(args) != 1:
        raise UsageError(f'"{cmd}" requires exactly 1 argument (the container id)')
    return args[0]


def parse_signal(s: str) -> int:
    if s.isdigit():
        return int(s)
    name = s.upper()
    name = name[3:] if name.startswith("SIG") else name
    if name.startswith("RTMIN") or name.startswith("RTMAX"):
        base = 34 if name.startswith("RTMIN") else 64
        off = name[5:]
        return base + int(off) if off else base
    if name not in SIGNALS:
        raise UsageError(f"unknown signal {s!r}")
    return SIGNALS[name]


def _size(v: str) -> int:
    v = v.strip().lower()
    if v == "-1":
        return -1
    mult = 1
    for suffix, m in (("k", 1 << 10), ("m", 1 << 20), ("g", 1 << 30), ("t", 1 << 40)):
        if v.endswith(suffix + "b") or v.endswith(suffix):
            v = v[: -len(suffix + "b")] if v.endswith(suffix + "b") else v[:-1]
            mult = m
            break
    if v.endswith("b"):
        v = v[:-1]
    return int(float(v) * mult)


def main(argv: list[str] | None = None) -> int:
    """The `pallet-runtime` entry point. Run as the console script (argv None) it leaves with
    os._exit once its output is flushed: interpreter teardown is wasted time on the hot path."""
    if argv is None:
        # a short-lived process: no cyclic GC passes, which would also touch (and so copy) every
        # page shared with the forked container init
        import gc

        gc.disable()
        code = _main(sys.argv[1:])
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except OSError:
            pass
        os._exit(code)
    return _main(argv)


def _main(argv: list[str]) -> int:
    log = None
    try:
        gopts, rest = parse(argv, dict(GLOBAL, **{"--version": ("version", False, False),
                                                   "-v": ("version", False, False),
                                                   "--help": ("help", False, False),
                                                   "-h": ("help", False, False)}))
        if gopts.get("version"):
            print(f"pallet-runtime version {VERSION}\nspec: 1.1.0")
            return 0
        if gopts.get("help") or not rest:
            sys.stdout.write(USAGE)
            return 0 if gopts.get("help") else 1
        from pallet.runtime.log import Log

        log = Log(gopts.get("log"), gopts.get("log_format") or "text", bool(gopts.get("debug")))
        cmd, rest = rest[0], rest[1:]
        table = COMMANDS.get(cmd)
        if table is None:
            raise UsageError(f"No help topic for '{cmd}'")
        opts, args = parse(rest, table)
        return _dispatch(cmd, opts, args, gopts, log) or 0
    except UsageError as e:
        _error(log, f"{e}")
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # noqa: BLE001 - every failure is one line and exit 1, like runc
        from pallet.errors import PalletError

        if isinstance(e, PalletError):
            msg = e.message
        elif isinstance(e, OSError) and len(e.args) > 1:
            msg = str(e.args[1]) + (f": {e.filename}" if e.filename else "")
        else:
            msg = str(e)
        _error(log, msg)
        return 1


def _error(log, msg: str) -> None:
    if log is not None:
        log.error(msg)
    sys.stderr.write(msg + "\n")


def _dispatch(cmd: str, opts: dict, args: list[str], g: dict, log) -> int | None:
    from pallet.runtime.runtime import DEFAULT_ROOT, Runtime

    rt = Runtime(g.get("root") or DEFAULT_ROOT, log=log, single_fork=True)
    if cmd in ("create", "run"):
        cid = _one_id(args, cmd)
        kw = dict(console_socket=opts.get("console_socket"), pid_file=opts.get("pid_file"),
                  preserve_fds=int(opts.get("preserve_fds") or 0), no_pivot=bool(opts.get("no_pivot")))
        bundle = opts.get("bundle") or os.getcwd()
        if cmd == "create":
            rt.create(cid, bundle, **kw)
            return 0
        return _run(rt, cid, bundle, bool(opts.get("detach")), kw, keep=bool(opts.get("keep")))
    if cmd == "start":
        rt.start(_one_id(args, cmd))
    elif cmd == "state":
        import json

        print(json.dumps(rt.state(_one_id(args, cmd)), indent=2))
    elif cmd == "kill":
        if not 1 <= len(args) <= 2:
            raise UsageError('"kill" requires 1 or 2 arguments: ID [SIGNAL]')
        rt.kill(args[0], parse_signal(args[1]) if len(args) > 1 else 15, all=bool(opts.get("all")))
    elif cmd == "delete":
        from pallet.runtime.state import ContainerNotFound

        cid = _one_id(args, cmd)
        try:
            rt.delete(cid, force=bool(opts.get("force")))
        except ContainerNotFound:
            rt.remove_stale(cid)
            if not opts.get("force"):
                raise
    elif cmd == "pause":
        rt.pause(_one_id(args, cmd))
    elif cmd == "resume":
        rt.resume(_one_id(args, cmd))
    elif cmd == "list":
        _list(rt, opts)
    elif cmd == "ps":
        return _ps(rt, opts, args)
    elif cmd == "exec":
        return _exec(rt, opts, args)
    elif cmd == "update":
        _update(rt, opts, args)
    elif cmd == "spec":
        _spec(opts)
    elif cmd == "features":
        import json

        from pallet.runtime.features import features

        print(json.dumps(features(), indent=2))
    return 0


def _forward_signals(pid_ref: list[int]) -> None:
    import _signal

    def fwd(sig, _frame):
        if pid_ref[0]:
            try:
                os.kill(pid_ref[0], sig)
            except OSError:
                pass

    for s in (1, 2, 3, 10, 12, 15, 28):
        _signal.signal(s, fwd)


def _run(rt, cid: str, bundle: str, detach: bool, kw: dict, *, keep: bool = False) -> int:
    if detach:
        rt.run(cid, bundle, detach=True, **kw)
        return 0
    from pallet.linux.prctl import set_child_subreaper
    from pallet.runtime.runtime import wait_pid

    set_child_subreaper()
    from pallet.runtime.spec import load_config

    cfg = load_config(os.path.abspath(bundle))
    terminal = bool((cfg.get("process") or {}).get("terminal")) and not kw.get("console_socket")
    console = mine = None
    if terminal:
        import socket

        mine, console = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    st = rt.create(cid, bundle, _console=console, _config=cfg, **kw)
    full = rt._last  # the saved state: start and delete need not read it back
    master = None
    if terminal:
        import socket

        _, fds, _, _ = socket.recv_fds(mine, 1024, 1)
        master = fds[0]
        mine.close()
    pid_ref = [st["pid"]]
    _forward_signals(pid_ref)
    try:
        rt.start(cid, _st=full, _until_exec=False)
    except BaseException:
        rt.delete(cid, force=True, _st=full)
        raise
    code = _proxy_tty(master, st["pid"]) if master is not None else wait_pid(st["pid"])
    if not keep:
        rt.delete(cid, force=True, _st=full)
    return code


def _proxy_tty(master: int, pid: int) -> int:
    """Copy stdin -> pty master and master -> stdout until the container exits."""
    import select

    saved = None
    if os.isatty(0):
        import termios
        import tty

        saved = termios.tcgetattr(0)
        tty.setraw(0)
    code = None
    try:
        fds = [master, 0]
        while code is None:
            r, _, _ = select.select(fds, [], [], 0.1)
            if master in r:
                try:
                    data = os.read(master, 65536)
                except OSError:
                    data = b""
                if data:
                    os.write(1, data)
                else:
                    fds = [f for f in fds if f != master]
            if 0 in r:
                data = os.read(0, 65536)
                if data:
                    os.write(master, data)
                else:
                    fds = [f for f in fds if f != 0]
            wpid, status = os.waitpid(pid, os.WNOHANG)
            if wpid:
                code = os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)
    finally:
        if saved is not None:
            import termios

            termios.tcsetattr(0, termios.TCSADRAIN, saved)
        os.close(master)
    return code


def _list(rt, opts: dict) -> None:
    items = rt.list()
    if opts.get("quiet"):
        for s in items:
            print(s["id"])
        return
    if (opts.get("format") or "table") == "json":
        import json

        print(json.dumps(items))
        return
    rows = [("ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER")]
    rows += [(s["id"], str(s.get("pid", 0)), s["status"], s["bundle"], s.get("created", ""), "root") for s in items]
    widths = [max(len(r[i]) for r in rows) for i in range(6)]
    for r in rows:
        print("   ".join(c.ljust(widths[i]) for i, c in enumerate(r)).rstrip())


def _ps(rt, opts: dict, args: list[str]) -> int:
    if not args:
        raise UsageError('"ps" requires at least 1 argument (the container id)')
    pids = rt.ps(args[0])
    if (opts.get("format") or "table") == "json":
        import json

        print(json.dumps(pids))
        return 0
    import subprocess

    out = subprocess.run(["ps", *(args[1:] or ["-ef"])], capture_output=True, text=True, check=True).stdout
    lines = out.splitlines()
    if not lines:
        return 0
    try:
        col = lines[0].split().index("PID")
    except ValueError:
        raise RuntimeError("couldn't find PID field in ps output") from None
    print(lines[0])
    for line in lines[1:]:
        f = line.split()
        if len(f) > col and f[col].isdigit() and int(f[col]) in pids:
            print(line)
    return 0


def _exec(rt, opts: dict, args: list[str]) -> int:
    from pallet.jsonfast import loads

    if not args:
        raise UsageError('"exec" requires at least 1 argument (the container id)')
    cid, pargs = args[0], args[1:]
    st = rt.store.load(cid)
    base = dict(st["config"].get("process") or {})
    if opts.get("process"):
        with open(opts["process"], "rb") as f:
            process = loads(f.read())
    else:
        if not pargs:
            raise UsageError("exec needs a command (or --process)")
        process = dict(base, args=pargs, terminal=bool(opts.get("tty")))
        process.pop("consoleSize", None)
        if opts.get("cwd"):
            process["cwd"] = opts["cwd"]
        if opts.get("env"):
            process["env"] = list(base.get("env") or []) + opts["env"]
        if opts.get("user"):
            u, _, gg = opts["user"].partition(":")
            process["user"] = dict(base.get("user") or {}, uid=int(u), gid=int(gg) if gg else 0)
        if opts.get("gids"):
            process["user"] = dict(process.get("user") or {},
                                   additionalGids=[int(x) for x in opts["gids"]])
        if opts.get("cap"):
            caps = {k: list(v) for k, v in (base.get("capabilities") or {}).items()}
            for c in opts["cap"]:
                for k in ("bounding", "effective", "permitted", "ambient", "inheritable"):
                    caps.setdefault(k, [])
                    if c not in caps[k]:
                        caps[k].append(c)
            process["capabilities"] = caps
        if opts.get("nnp"):
            process["noNewPrivileges"] = True
        if opts.get("apparmor"):
            process["apparmorProfile"] = opts["apparmor"]
        if opts.get("label"):
            process["selinuxLabel"] = opts["label"]
    detach = bool(opts.get("detach"))
    pid_ref = [0]
    if process.get("terminal") and not opts.get("console_socket") and not detach:
        return _exec_tty(rt, cid, process, opts, pid_ref)
    if not detach:
        _forward_signals(pid_ref)
    code = rt.exec(cid, process, console_socket=opts.get("console_socket"), pid_file=opts.get("pid_file"),
                   detach=detach, preserve_fds=int(opts.get("preserve_fds") or 0),
                   on_pid=lambda p: pid_ref.__setitem__(0, p))
    return 0 if detach else code


def _exec_tty(rt, cid: str, process: dict, opts: dict, pid_ref: list[int]) -> int:
    """`exec -t` in the foreground without a console socket: the pty master comes back to us and
    we copy between it and our stdio (like runc). We adopt the process as child subreaper."""
    import socket

    from pallet.linux.prctl import set_child_subreaper

    set_child_subreaper()
    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    pid = rt.exec(cid, process, detach=True, pid_file=opts.get("pid_file"), _console=theirs,
                  preserve_fds=int(opts.get("preserve_fds") or 0))
    _, fds, _, _ = socket.recv_fds(mine, 1024, 1)
    mine.close()
    pid_ref[0] = pid
    _forward_signals(pid_ref)
    return _proxy_tty(fds[0], pid)


def _update(rt, opts: dict, args: list[str]) -> None:
    cid = _one_id(args, "update")
    if opts.get("resources"):
        from pallet.jsonfast import loads

        src = sys.stdin.buffer.read() if opts["resources"] == "-" else open(opts["resources"], "rb").read()
        res = loads(src)
    else:
        res = {}
        mem = {k2: _size(opts[k1]) for k1, k2 in (("memory", "limit"), ("memory-reservation", "reservation"),
                                                  ("memory-swap", "swap"), ("kernel-memory", "kernel"),
                                                  ("kernel-memory-tcp", "kernelTCP")) if opts.get(k1)}
        if mem:
            res["memory"] = mem
        cpu: dict = {k2: int(opts[k1]) for k1, k2 in (("cpu-shares", "shares"), ("cpu-quota", "quota"),
                                                      ("cpu-period", "period"), ("cpu-rt-period", "realtimePeriod"),
                                                      ("cpu-rt-runtime", "realtimeRuntime"), ("cpu-idle", "idle"))
                     if opts.get(k1)}
        for k1, k2 in (("cpuset-cpus", "cpus"), ("cpuset-mems", "mems")):
            if opts.get(k1):
                cpu[k2] = opts[k1]
        if cpu:
            res["cpu"] = cpu
        if opts.get("pids-limit"):
            res["pids"] = {"limit": int(opts["pids-limit"])}
        if opts.get("blkio-weight"):
            res["blockIO"] = {"weight": int(opts["blkio-weight"])}
    rt.update(cid, res)


def _spec(opts: dict) -> None:
    import json

    from pallet.runtime.spec import default_spec

    path = os.path.join(opts.get("bundle") or ".", "config.json")
    if os.path.exists(path):
        raise RuntimeError("File config.json exists. Remove it first")
    with open(path, "w") as f:
        json.dump(default_spec(rootless=bool(opts.get("rootless"))), f, indent="\t")
        f.write("\n")


def _click_command():
    import click

    @click.command("runtime", context_settings={"ignore_unknown_options": True, "allow_extra_args": True,
                                                "help_option_names": []})
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    def runtime_cmd(args: tuple[str, ...]) -> None:
        """The OCI runtime with runc's command line (same as `pallet-runtime`)."""
        code = main(list(args))
        if code:
            raise SystemExit(code)

    return runtime_cmd


def __getattr__(name: str):
    if name == "cli":
        return _click_command()
    raise AttributeError(name)


if __name__ == "__main__":
    sys.exit(main())
