"""The forked side of `create` and `exec`: namespaces, rootfs, credentials, execve.

create:  parent P forks C1 (which imports this module: P does not).  C1
         (non-dumpable) joins/creates the namespaces (asking P to write the id
         maps of a new user namespace), and forks C2 — pid 1 of a new pid
         namespace — reports C2's pid and exits.  P creates the cgroup
         meanwhile.  C2 joins a v1 cgroup itself once P says it exists (cheap
         from a single thread); else P moves it (an RCU grace period),
         while C2 builds the rootfs and, unless hooks are due, pivots; once
         in the cgroup it asks P to run createRuntime/prestart hooks, runs
         createContainer hooks, pivots, sets up the process, says "ready" and
         blocks opening the exec fifo for writing until `start` opens it.
exec:    C1 joins the cgroup and every namespace of the running init, forks C2
         (to enter the pid namespace), reports its pid and waits for it unless
         detached; C2 sets up the process and execs.

Every failure is sent to P as {"t": "error", "msg": ...}; nothing here imports
a module after pivot_root (the host's Python library is no longer visible).
"""

from __future__ import annotations

import os
import sys

from pallet.linux import creds, kernfs
from pallet.linux import mount as M
from pallet.linux import ns as N
from pallet.linux import prctl as P
from pallet.linux import proc as L
from pallet.linux import trace as T
from pallet.runtime import process as proc_mod
from pallet.runtime.channel import Channel
from pallet.runtime.rootfs import Rootfs, SetupError

EXPECTED = (OSError, ValueError, SetupError, proc_mod.ProcessError)  # and HookError (see _expected)


class Ctx:
    """Everything the child needs, prepared by the parent before the fork."""

    def __init__(self, **kw: object) -> None:
        self.cfg: dict = {}
        self.bundle = ""
        self.rootfs = ""
        self.chan: Channel | None = None
        self.fifo_fd = -1
        self.fifo_path = ""
        self.cgroup = None
        self.seccomp = None
        self.console = None  # connected socket.socket or None
        self.preserve_fds = 0
        self.no_pivot = False
        self.stdio: tuple[int, int, int] | None = None
        self.state: dict = {}
        self.ns_paths: dict[str, str] = {}  # exec: namespaces of the running init
        self.detach = True
        self.pre_exec = None  # test hook, called in the child just before execve
        self.join_cgroup = False  # create: the init moves itself into `cgroup` (else the parent does)
        self.ready = False  # create, traced: "ready" was sent and the channel kept open for the last records
        self.__dict__.update(kw)


def preload(proc: dict) -> None:
    """Import, in the parent, the modules the child will need: after it enters a user namespace or
    pivots, the host's Python library may be unreadable or gone."""
    if proc.get("terminal"):
        import fcntl  # noqa: F401
        import socket  # noqa: F401
        import struct  # noqa: F401
        import termios  # noqa: F401


def _send_trace(chan: Channel) -> None:
    """With tracing on: this process's records so far, to the parent (before each message that may be
    our last: "pid", "ready", "error", the execve)."""
    r = T.recorder
    if r is not None and r.records:
        chan.try_send(t="trace", records=r.take())


def _fail(chan: Channel, e: BaseException) -> None:
    try:
        _send_trace(chan)
    except OSError:
        pass
    if isinstance(e, OSError) and len(e.args) > 1:
        msg = str(e.args[1]) + (f": {e.filename}" if e.filename else "")
    else:
        msg = str(e) if _expected(e) else f"{type(e).__name__}: {e}"
    try:
        chan.send(t="error", msg=msg)
    except OSError:
        pass
    os._exit(1)


def _expected(e: BaseException) -> bool:
    hooks = sys.modules.get("pallet.runtime.hooks")  # imported only when the config has hooks
    return isinstance(e, EXPECTED) or (hooks is not None and isinstance(e, hooks.HookError))


def _run_hooks(kind: str, hooks: list[dict] | None, state: dict) -> None:
    if hooks:
        from pallet.runtime.hooks import run_hooks  # imported before the pivot: see container_init

        run_hooks(kind, hooks, state)


def _stdio(ctx: Ctx) -> None:
    if ctx.stdio:
        for i, fd in enumerate(ctx.stdio):
            if fd is not None and fd != i:
                os.dup2(fd, i, inheritable=True)


def _namespaces(cfg: dict) -> list[dict]:
    return list((cfg.get("linux") or {}).get("namespaces") or [])


def _write_file(path: str, data: str) -> None:
    kernfs.write_file(path, data)   # a refusal names the file and the value, as runc's do


# -- create ----------------------------------------------------------------------------------
def create_child(ctx: Ctx, *, in_pid_ns: bool = False) -> None:
    """C1. Never returns. With `in_pid_ns` the parent already forked us into the new pid
    namespace (see Runtime.single_fork): we are the container's init and do not fork again."""
    chan = ctx.chan
    try:
        T.stage("namespaces")
        P.set_dumpable(False)
        P.cloexec_from(3 + ctx.preserve_fds)
        _stdio(ctx)
        # the cgroup is joined by C2 itself (ctx.join_cgroup) or by the parent, which moves C2 there
        # while C2 builds the rootfs (moving a process with cgroup.procs costs an RCU grace period)
        proc = ctx.cfg.get("process") or {}
        if proc.get("oomScoreAdj") is not None:
            _write_file("/proc/self/oom_score_adj", str(proc["oomScoreAdj"]))
        nss = _namespaces(ctx.cfg)
        # join by path: open every file first, then setns in an order that keeps our rights
        joins = {n["type"]: os.open(n["path"], os.O_RDONLY | os.O_CLOEXEC) for n in nss if n.get("path")}
        for t in N.JOIN_ORDER:
            if t in joins:
                N.setns(joins.pop(t), N.NAMESPACES[t][0])
                if t == "user":
                    _become_root()
        new = {n["type"] for n in nss if not n.get("path")}
        if "user" in new:
            N.unshare(N.CLONE_NEWUSER)
            _send_trace(chan)
            chan.send(t="userns")
            reply = chan.recv()
            if not reply or reply.get("t") != "ok":
                os._exit(1)
            _become_root()
        flags = 0
        for t in new - {"user", "cgroup"} - ({"pid"} if in_pid_ns else set()):
            # (the cgroup namespace: in C2, once the parent has moved it into its cgroup)
            flags |= N.NAMESPACES[t][0]
        if flags:
            N.unshare(flags)
        if "time" in new:
            for clock, off in ((ctx.cfg.get("linux") or {}).get("timeOffsets") or {}).items():
                _write_file("/proc/self/timens_offsets", f"{clock} {off.get('secs', 0)} {off.get('nanosecs', 0)}")
        if in_pid_ns:
            if T.recorder is not None:
                T.recorder.proc = "init"
            container_init(ctx, userns=False)
        pid = L.fork("init")
        if pid == 0:
            container_init(ctx, userns="user" in new or "user" in {n["type"] for n in nss})
        _send_trace(chan)
        chan.send(t="pid", pid=pid)
        os._exit(0)
    except BaseException as e:  # noqa: B036 - the child must report everything and exit
        _fail(chan, e)


def _become_root() -> None:
    try:
        creds.setresgid(0, 0, 0)
        creds.setresuid(0, 0, 0)
    except OSError:
        pass  # 0 is not mapped: keep the overflow id, capabilities in the namespace still apply


def container_init(ctx: Ctx, *, userns: bool) -> None:
    """C2: pid 1 of the container. Never returns."""
    chan = ctx.chan
    cfg = ctx.cfg
    linux = cfg.get("linux") or {}
    proc = cfg.get("process") or {}
    warn = _warner(chan)
    try:
        # the host's /proc is still mounted: it names our pid in the runtime's pid namespace (for hooks)
        ctx.state["pid"] = int(os.readlink("/proc/self"))
        if T.recorder is not None:
            T.recorder.pid = ctx.state["pid"]   # (the host's number for it, as in the other processes' records)
        hooks = cfg.get("hooks") or {}
        if hooks.get("createContainer") or hooks.get("startContainer"):
            import pallet.runtime.hooks  # noqa: F401 - now: after the pivot the host's library is gone
        types = {n["type"] for n in _namespaces(cfg)}
        if cfg.get("hostname") and "uts" not in types:
            raise SetupError("unable to set hostname without a private UTS namespace")
        terminal = bool(proc.get("terminal"))
        fs = Rootfs(cfg, ctx.bundle, ctx.rootfs, userns=userns,
                    cgroup_dirs=ctx.cgroup.dirs if ctx.cgroup is not None else {},
                    cgroup_v2=bool(ctx.cgroup is not None and ctx.cgroup.version == 2))
        if ctx.join_cgroup:
            # The parent creates the cgroup while we unshare our namespaces and make the config's
            # mounts up to the first cgroup mount (which binds the cgroup's directories). Then we
            # wait until it exists and join it: the cgroup mount, the device nodes and everything
            # after happen in the container's cgroup.
            if "mount" in types:
                fs.prepare_start()
            if not _wait_cgroup(chan):
                os._exit(1)
            T.stage("cgroup")
            ctx.cgroup.join_self()
            if "mount" in types:
                fs.prepare_finish()
        elif "mount" in types:
            fs.prepare()
        # the exec fifo is reopened through /proc/self/fd after pivot_root; without a /proc in
        # the container, keep a handle on the state directory instead (closed on exec)
        state_dirfd = -1
        if "mount" not in types or not any(os.path.normpath(m.get("destination", "")) == "/proc"
                                           for m in cfg.get("mounts") or ()):
            state_dirfd = os.open(os.path.dirname(ctx.fifo_path), os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        # When the parent moves us into the cgroup, its write waits for an RCU grace period (~10 ms):
        # with no hooks due in between, enter the root meanwhile. With hooks, the spec's order stands:
        # createRuntime/prestart (in the parent) and createContainer run before the pivot. A
        # terminal is opened in the cgroup (its device rules apply to /dev/ptmx), so that and the
        # finish that binds it to /dev/console wait too.
        early = not (hooks.get("prestart") or hooks.get("createRuntime") or hooks.get("createContainer"))
        if early:
            _enter_root(ctx, fs, types)
            if not terminal and "mount" in types:
                fs.finish(terminal_slave=None)
        if not ctx.join_cgroup and not _wait_cgroup(chan):  # the parent has moved us into the cgroup
            os._exit(1)
        if "cgroup" in types and not any(n.get("path") for n in _namespaces(cfg) if n["type"] == "cgroup"):
            T.stage("namespaces")
            N.unshare(N.CLONE_NEWCGROUP)
        if not early:
            if hooks.get("prestart") or hooks.get("createRuntime"):
                # the runtime's namespace runs these: ask the parent and wait
                chan.send(t="hooks")
                reply = chan.recv()
                if not reply or reply.get("t") != "ok":
                    os._exit(1)
            _run_hooks("createContainer", hooks.get("createContainer"), dict(ctx.state, status="created"))
            _enter_root(ctx, fs, types)
        if terminal or not early:
            slave = proc_mod.setup_terminal(ctx.console, proc.get("consoleSize")) if terminal else None
            if "mount" in types:
                fs.finish(terminal_slave=slave)
        pers = linux.get("personality")
        if pers:
            dom = pers.get("domain")
            if dom not in ("LINUX", "LINUX32"):
                raise SetupError(f"unsupported personality domain {dom!r}")
            P.personality(P.PER_LINUX32 if dom == "LINUX32" else P.PER_LINUX)
        argv0 = _prepare_process(ctx, proc, warn, setgroups_ok=True) if proc else ""
        env = proc_mod.env_dict(proc)
        _exit_on_stop_signals()
        _send_trace(chan)
        chan.send(t="ready")
        if T.recorder is None:
            chan.close()
        else:   # traced: the write end stays open (close-on-exec) for the records up to the execve
            os.close(chan.r)
            chan.r = -1
            ctx.ready = True
        # block until `start` opens the fifo for reading (runc's exec fifo)
        if state_dirfd >= 0:
            wfd = os.open(os.path.basename(ctx.fifo_path), os.O_WRONLY | os.O_CLOEXEC, dir_fd=state_dirfd)
            os.close(state_dirfd)
        else:
            wfd = os.open(f"/proc/self/fd/{ctx.fifo_fd}", os.O_WRONLY | os.O_CLOEXEC)
        os.write(wfd, b"0")
        # wfd stays open (close-on-exec): `start` reads on until EOF, i.e. until our execve,
        # so poststart hooks run after the program is executed, as the spec requires
        os.close(ctx.fifo_fd)
        if not proc:
            os._exit(1)  # no process: `start` refuses and kills us; never run anything
        _run_hooks("startContainer", hooks.get("startContainer"), dict(ctx.state, status="running"))
        _exec(ctx, proc, argv0, env)
    except BaseException as e:  # noqa: B036
        if chan.w >= 0 and not ctx.ready:
            _fail(chan, e)
        if chan.w >= 0:   # (traced, after "ready": the parent reads records only, the error goes to stderr)
            try:
                _send_trace(chan)
            except OSError:
                pass
        os.write(2, f"pallet-runtime: {e}\n".encode())
        os._exit(127)


# runc's init is a Go program: until its execve these signals make it exit with status 2, even as
# its pid namespace's init (which the kernel shields from signals it has no handler for). A created
# container therefore ends on `kill ID` (SIGTERM) as it does with runc, not only on SIGKILL.
_STOP_SIGNALS = (1, 2, 3, 4, 5, 6, 15, 16, 31)  # HUP INT QUIT ILL TRAP ABRT TERM STKFLT SYS


def _exit_on_stop_signals() -> None:
    """Handlers (reset to the default by execve) that end the waiting init with runc's status 2."""
    import _signal

    def stop(_sig, _frame):
        os._exit(2)

    for s in _STOP_SIGNALS:
        _signal.signal(s, stop)


def _wait_cgroup(chan: Channel) -> bool:
    """The parent's "cgroup" message: the container's cgroup is ready (or we are in it)."""
    reply = chan.recv()
    return bool(reply) and reply.get("t") == "cgroup"


def _enter_root(ctx: Ctx, fs: Rootfs, types: set[str]) -> None:
    """pivot_root (or chroot without a mount namespace), host and domain name, the /dev links."""
    cfg = ctx.cfg
    if "mount" in types:
        fs.pivot(ctx.no_pivot)
    else:
        T.stage("chroot")
        M.chroot(ctx.rootfs)
        os.chdir("/")
    T.stage("hostname")
    if cfg.get("hostname"):
        N.sethostname(cfg["hostname"])
    if cfg.get("domainname"):
        N.setdomainname(cfg["domainname"])
    if "mount" in types:
        fs.dev_links()


def _warner(chan: Channel):
    def warn(msg: str) -> None:
        try:
            chan.send(t="warn", msg=msg)
        except OSError:
            pass
    return warn


def _prepare_process(ctx: Ctx, proc: dict, warn, *, setgroups_ok: bool) -> str:
    """rlimits, LSM, no_new_privs, seccomp (early when privileged), user+caps, cwd, program path."""
    proc_mod.set_rlimits(proc)
    proc_mod.apply_lsm(proc, warn)
    os.umask((proc.get("user") or {}).get("umask", 0o022))
    masks = proc_mod.cap_masks(proc)
    cwd = proc.get("cwd") or "/"
    verified = False
    try:
        os.chdir(cwd)  # as root first: a directory only root may enter
    except OSError:
        pass
    else:
        # check before seccomp is loaded: a profile may forbid getcwd itself
        proc_mod.verify_cwd(cwd)
        verified = True
    if proc.get("noNewPrivileges"):
        T.stage("no_new_privs")
        P.set_no_new_privs()
    elif ctx.seccomp is not None:
        # without no_new_privs loading a filter needs CAP_SYS_ADMIN: load it before dropping caps
        T.stage("seccomp")
        ctx.seccomp.load()
    env = proc_mod.env_dict(proc)
    user = proc.get("user") or {}
    proc_mod.set_user_and_caps(proc, masks, setgroups_ok=setgroups_ok)
    if verified:
        try:
            os.chdir(cwd)  # again as the user: permissions
        except OSError as e:
            raise proc_mod.ProcessError(f"cannot chdir to {cwd}: {e.strerror}") from None
    else:
        proc_mod.chdir_inside(cwd)
    if "HOME" not in env:
        home = proc_mod.home_of(user.get("uid", 0))
        proc.setdefault("env", []).append(f"HOME={home}")
        env["HOME"] = home
    args = proc.get("args") or []
    if not args:
        raise proc_mod.ProcessError("process.args must not be empty")
    return proc_mod.find_program(args[0], env)


def _exec(ctx: Ctx, proc: dict, path: str, env: dict[str, str]) -> None:
    if proc.get("noNewPrivileges") and ctx.seccomp is not None:
        T.stage("seccomp")
        ctx.seccomp.load()
    proc_mod.reset_signals()
    if ctx.pre_exec is not None:
        ctx.pre_exec()
    T.stage("execve")
    chan = ctx.chan
    traced = T.recorder is not None and chan is not None and chan.w >= 0
    L.execve(path, proc["args"], env, flush=(lambda: _send_trace(chan)) if traced else None)


# -- exec ------------------------------------------------------------------------------------
def exec_child(ctx: Ctx) -> None:
    """C1 of `exec`. Never returns."""
    chan = ctx.chan
    try:
        P.set_dumpable(False)
        P.cloexec_from(3 + ctx.preserve_fds)
        _stdio(ctx)
        if ctx.cgroup is not None:
            try:
                ctx.cgroup.join_self()  # C1 is single-threaded: a forked child
            except OSError:
                pass  # a cgroup removed under us (e.g. rootless, or a v1 hierarchy gone)
        rootfd = os.open(f"/proc/{ctx.state['pid']}/root", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        fds = {}
        for t, path in ctx.ns_paths.items():
            mine = f"/proc/self/ns/{N.NAMESPACES[t][1]}"
            if os.stat(mine).st_ino == os.stat(path).st_ino:
                continue
            fds[t] = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        for t in N.JOIN_ORDER:
            if t in fds:
                N.setns(fds.pop(t), N.NAMESPACES[t][0])
                if t == "user":
                    _become_root()
        os.fchdir(rootfd)
        M.chroot(".")
        os.close(rootfd)
        pid = L.fork()
        if pid == 0:
            exec_init(ctx)
        chan.send(t="pid", pid=pid)
        os.close(chan.w)
        chan.w = -1
        if ctx.detach:
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        os._exit(os.waitstatus_to_exitcode(status) & 0xFF if not os.WIFSIGNALED(status)
                 else 128 + os.WTERMSIG(status))
    except BaseException as e:  # noqa: B036
        _fail(chan, e)


def exec_init(ctx: Ctx) -> None:
    """C2 of `exec`: inside every namespace of the container. Never returns."""
    chan = ctx.chan
    proc = ctx.cfg.get("process") or {}
    try:
        if proc.get("terminal"):
            proc_mod.setup_terminal(ctx.console, proc.get("consoleSize"))
        argv0 = _prepare_process(ctx, proc, _warner(chan), setgroups_ok=True)
        env = proc_mod.env_dict(proc)
        _exec(ctx, proc, argv0, env)
    except BaseException as e:  # noqa: B036
        _fail(chan, e)
