"""`Runtime`: the OCI runtime operations as library calls (the CLI is a thin shell over this)."""

from __future__ import annotations

import os
import time

from pallet.errors import RuntimeFailure
from pallet.linux import proc as L
from pallet.linux import trace as T
from pallet.runtime.channel import pair
from pallet.runtime.log import Log
from pallet.runtime.spec import InvalidConfig, load_config
from pallet.runtime.state import InvalidState, Store, alive, encode, now_rfc3339, oci_state, proc_stat

DEFAULT_ROOT = "/run/pallet-runtime"
SIGKILL = 9


class Runtime:
    """An OCI runtime whose containers keep their state under `root` (runc's --root)."""

    def __init__(self, root: str = DEFAULT_ROOT, *, log: Log | None = None, single_fork: bool = False,
                 seccomp_cache: str | None = None) -> None:
        self.root = root
        # seccomp_cache: a directory where the BPF compiled from a seccomp profile is kept for the next
        # create with the same profile (the engine gives one in its run dir); None compiles every time
        self.seccomp_cache = seccomp_cache
        self.store = Store(root)
        self.log = log or Log()
        # single_fork: create the pid namespace in this process (unshare, fork) so the container's
        # init is our direct child: one fork less. Only for the CLI: this process's later children
        # would land in that namespace too (it setns back only when hooks must still be spawned),
        # and another thread forking meanwhile would as well.
        self.single_fork = single_fork
        # the full state saved by this object's last create: `run` hands it to start and delete
        # (create, start, wait, delete in one call: state.json is not read back twice)
        self._last: dict | None = None
        self._trace_chan = None   # traced: the channel to the created init, read to EOF by start

    # -- create / start ---------------------------------------------------------------------
    def create(self, container_id: str, bundle: str, *, console_socket: str | None = None,
               pid_file: str | None = None, stdio: tuple[int, int, int] | None = None, preserve_fds: int = 0,
               no_pivot: bool = False, _console=None, _pre_exec=None, _config: dict | None = None) -> dict:
        """Set the container up; its process waits for `start`. Returns the state document.

        `_config`: the bundle's config as `load_config` returned it, when the caller has loaded it
        already (`run` in the CLI), so it is not read and parsed twice."""
        bundle = os.path.abspath(bundle)
        cfg = _config if _config is not None else load_config(bundle)
        d = self.store.claim(container_id)
        undo: dict = {"dir": d}
        r = T.recorder
        was = r.proc if r is not None else ""
        if r is not None:
            r.proc = "runtime-parent"
        try:
            st = self._create(container_id, bundle, cfg, undo, console_socket=console_socket, stdio=stdio,
                              preserve_fds=preserve_fds, no_pivot=no_pivot, console=_console, pre_exec=_pre_exec)
            if pid_file:
                _write_pid_file(pid_file, st["pid"])
            self._last = st
            return oci_state(st, "created")
        except BaseException:
            self._undo_create(undo)
            raise
        finally:
            if r is not None:
                r.proc = was

    def _create(self, cid: str, bundle: str, cfg: dict, undo: dict, *, console_socket, stdio, preserve_fds,
                no_pivot, console, pre_exec) -> dict:
        from pallet.linux.cgroups import CgroupError, open_cgroup
        from pallet.linux.devices import DEFAULT_ALLOW

        rootfs = cfg["root"]["path"]
        rootfs = os.path.realpath(rootfs if rootfs.startswith("/") else os.path.join(bundle, rootfs))
        if not os.path.isdir(rootfs):
            raise InvalidConfig(f"root filesystem {rootfs} does not exist")
        linux = cfg.get("linux") or {}
        proc = cfg.get("process") or {}
        nss = {n["type"]: n for n in linux.get("namespaces") or ()}
        if "user" in nss and not nss["user"].get("path") and not (
                linux.get("uidMappings") and linux.get("gidMappings")):
            raise InvalidConfig("a new user namespace needs uidMappings and gidMappings")
        if proc.get("terminal") and not console_socket and console is None:
            raise InvalidConfig("cannot allocate tty if pallet-runtime will detach without setting console socket")
        if linux.get("mountLabel") and not os.path.exists("/sys/fs/selinux/enforce"):
            self.log.warn(f"selinux is not enabled on this host; mount label {linux['mountLabel']} not applied")
        fifo = self.store.fifo(cid)
        old = os.umask(0)
        try:
            os.mkfifo(fifo, 0o622)
        finally:
            os.umask(old)
        fifo_fd = os.open(fifo, os.O_PATH | os.O_CLOEXEC)
        undo["fds"] = [fifo_fd]

        # the cgroup's paths only: it is created and limited after the fork (below), while the
        # init builds its namespaces
        cg = open_cgroup(linux.get("cgroupsPath"), cid)

        seccomp = None
        if linux.get("seccomp"):
            from pallet.linux.seccomp import compile_filter_cached

            try:
                seccomp = compile_filter_cached(linux["seccomp"], self.seccomp_cache)
            except (ValueError, OSError) as e:
                raise InvalidConfig(str(e)) from None
        if proc.get("terminal") and console is None:
            console = _connect(console_socket)
        if console is not None:
            undo["sock"] = console

        hook_state = {"ociVersion": cfg.get("ociVersion"), "id": cid, "status": "creating", "pid": 0,
                      "bundle": bundle, "annotations": cfg.get("annotations") or {}}
        pchan, cchan = pair()
        undo["chan"] = pchan
        # the init moves itself into a v1 cgroup (cheap: see Cgroup.join_self), unless it is in a
        # user namespace (it may lack the right to) or an existing mount namespace (the host's
        # cgroupfs may not be there); otherwise we move it (cg.add below)
        self_join = (cg.join_self_is_cheap and "user" not in nss
                     and not (nss.get("mount") or {}).get("path"))
        if self_join:
            # no grace period in this process for the child's imports to hide behind: importing
            # here, before the fork, is cheaper than in the child (copy-on-write faults)
            _import_init()
        single = (self.single_fork and "pid" in nss and not nss["pid"].get("path") and "user" not in nss
                  and "time" not in nss)
        own_pid_ns = -1
        if single:
            from pallet.linux.ns import CLONE_NEWPID, setns, unshare

            own_pid_ns = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
            unshare(CLONE_NEWPID)  # only our future children enter it; setns below undoes that
        try:
            T.stage("clone")
            c1 = L.fork("runtime-child")
            if c1 == 0:
                try:
                    os.close(pchan.r)
                    os.close(pchan.w)
                    # the container init's modules are imported here, not before the fork: the
                    # parent's cgroup write (an RCU grace period) runs meanwhile
                    init_mod = _import_init()
                    ctx = init_mod.Ctx(cfg=cfg, bundle=bundle, rootfs=rootfs, chan=cchan, fifo_fd=fifo_fd,
                                       fifo_path=fifo, cgroup=cg, seccomp=seccomp, console=console,
                                       preserve_fds=preserve_fds, no_pivot=no_pivot, stdio=stdio,
                                       state=hook_state, pre_exec=pre_exec, join_cgroup=self_join)
                    init_mod.preload(proc)
                    init_mod.create_child(ctx, in_pid_ns=single)
                finally:
                    os._exit(1)
        finally:
            if own_pid_ns >= 0:
                # setns back costs an RCU grace period (~ms); a CLI process that forks nothing else
                # (no hooks to spawn) can skip it — it exits soon after the container does
                if cfg.get("hooks"):
                    setns(own_pid_ns, CLONE_NEWPID)
                os.close(own_pid_ns)
        undo["c1"] = c1
        cchan.close()
        if seccomp is not None:
            seccomp.release()
        # The cgroup, while the init unshares its namespaces: it waits for "cgroup" before joining
        # it (self_join), or we move it there once it has reported its pid. A failure here kills
        # the init (undo: c1, pid) before it has mounted anything outside its own mount namespace.
        T.stage("cgroup")
        try:
            existed = cg.create()
            if not existed:
                undo["cgroup"] = cg
            res = dict(linux.get("resources") or {})
            res["devices"] = list(res.get("devices") or []) + DEFAULT_ALLOW + [
                {"allow": True, "type": dv.get("type"), "major": dv.get("major"), "minor": dv.get("minor"),
                 "access": "rwm"} for dv in linux.get("devices") or () if dv.get("type") in ("c", "b", "u")]
            for w in cg.apply(res):
                self.log.warn(w)
        except (CgroupError, OSError) as e:
            raise RuntimeFailure(f"cgroup setup failed: {e}") from None
        if self_join:
            pchan.try_send(t="cgroup")
        st = {"ociVersion": cfg.get("ociVersion"), "id": cid, "bundle": bundle, "rootfs": rootfs,
              "created": now_rfc3339(), "config": cfg, "cgroup": cg.to_json(), "cgroup_created": not existed,
              "pid": 0}
        init_pid = 0
        encoded = None
        ready = False
        hooks_pending = False
        hooks = cfg.get("hooks") or {}
        pending = [{"t": "pid", "pid": c1}] if single else []
        while True:
            msg = pending.pop() if pending else pchan.recv()
            if msg is None:
                raise RuntimeFailure("container init exited before the container was created")
            t = msg.get("t")
            if t == "error":
                raise RuntimeFailure(msg.get("msg") or "container init failed")
            if t == "warn":
                self.log.warn(msg.get("msg", ""))
            elif t == "trace":
                T.add(msg.get("records") or [])
            elif t == "userns":
                T.stage("id maps")
                try:
                    _write_map(f"/proc/{c1}/uid_map", linux.get("uidMappings") or [])
                    _write_map(f"/proc/{c1}/gid_map", linux.get("gidMappings") or [])
                except OSError as e:
                    raise RuntimeFailure(f"cannot write the user namespace id maps: {e}") from None
                pchan.try_send(t="ok")
            elif t == "pid":
                init_pid = msg["pid"]
                undo["pid"] = init_pid
                try:
                    if not self_join:
                        cg.add(init_pid)
                except OSError as e:
                    if e.errno == 3:  # ESRCH: the init already failed; its own message says why
                        last = pchan.recv()
                        if last and last.get("t") == "error":
                            raise RuntimeFailure(last.get("msg") or "container init failed") from None
                    raise RuntimeFailure(f"cannot move the container into its cgroup: {e}") from None
                if not self_join:
                    pchan.try_send(t="cgroup")
                ps = proc_stat(init_pid)
                st["pid"] = init_pid
                st["starttime"] = ps[1] if ps else None
                hook_state["pid"] = init_pid
                # st is complete: serialize it while the init works (written once it is ready)
                encoded = encode(st)
                if hooks_pending:
                    self._runtime_hooks(hooks, hook_state, pchan)
                    hooks_pending = False
            elif t == "hooks":
                if init_pid:
                    self._runtime_hooks(hooks, hook_state, pchan)
                else:
                    hooks_pending = True
            elif t == "ready":
                ready = True
            # C1 ("pid") and the init ("ready") write to the channel independently: when the init joins
            # its cgroup itself it can be ready before C1's message arrives
            if ready and init_pid:
                break
        if not single:
            _reap(c1)  # C1 exited right after reporting the pid; reap it now, off the critical path
        undo.pop("c1", None)
        if T.recorder is not None:
            self._trace_chan = pchan   # the init's last records come with its execve (see start)
        else:
            pchan.close()
        undo.pop("chan", None)
        self.store.save(st, encoded)
        return st

    def _runtime_hooks(self, hooks: dict, state: dict, chan) -> None:
        from pallet.runtime.hooks import HookError, run_hooks

        try:
            # runtime-tools expects "created" for the (deprecated) prestart hooks
            run_hooks("prestart", hooks.get("prestart"), dict(state, status="created"))
            run_hooks("createRuntime", hooks.get("createRuntime"), state)
        except HookError as e:
            raise RuntimeFailure(str(e)) from None
        chan.try_send(t="ok")

    def _undo_create(self, undo: dict) -> None:
        chan = undo.get("chan")
        if chan is not None:
            chan.close()
        for fd in undo.get("fds", ()):
            try:
                os.close(fd)
            except OSError:
                pass
        if undo.get("sock") is not None:
            undo["sock"].close()
        pid = undo.get("pid")
        if pid:
            try:
                os.kill(pid, SIGKILL)
            except OSError:
                pass
        c1 = undo.get("c1")
        if c1:
            try:
                os.kill(c1, SIGKILL)
            except OSError:
                pass
            _reap(c1)
        if pid:
            _wait_gone(pid, None, 5.0)
        cg = undo.get("cgroup")
        if cg is not None:
            try:
                cg.kill_all(SIGKILL)
                cg.destroy()
            except OSError as e:
                self.log.warn(f"cleanup: {e}")
        _remove_dir(undo["dir"])

    def start(self, container_id: str, *, _st: dict | None = None, _until_exec: bool = True) -> None:
        """Let the created container's process exec the user program; runs poststart hooks.

        `_st`: the state the create of this same call saved (`self._last`; `run` only), not read back.
        `_until_exec=False` (`run`, which waits for the container next): return once the process is
        released instead of when it has exec'd, unless poststart hooks must run after the exec."""
        st = self._state(container_id, _st)
        status = self.store.status(st)
        if status != "created":
            if status == "stopped":
                raise InvalidState("cannot start a container that has stopped")
            raise InvalidState(f"cannot start an already {status} container")
        if not st["config"].get("process"):
            # nothing to run: per the spec start fails, and the container ends up stopped
            try:
                os.kill(st["pid"], SIGKILL)
            except ProcessLookupError:
                pass
            _wait_gone(st["pid"], st.get("starttime"), 5.0)
            raise InvalidState(f"container {container_id} has no process to start")
        fifo = self.store.fifo(container_id)
        try:
            fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError:
            raise InvalidState("cannot start an already running container") from None
        # Opening wakes the init (blocked opening the fifo for writing); it writes one byte, then
        # keeps the fifo open until its execve (close-on-exec). Blocking reads, no poll: a FIFO whose
        # writer has not opened it yet reads as EOF at once, so EOF before the byte means "not yet"
        # while the init lives (it said "ready" just before its open).
        until_exec = _until_exec or bool((st["config"].get("hooks") or {}).get("poststart"))
        try:
            os.set_blocking(fd, True)
            started = False
            delay = 0.0001
            while True:
                if os.read(fd, 1):
                    started = True
                    if not until_exec:
                        break
                    continue  # the EOF that follows is the init's execve (or its exit)
                if started:
                    break
                if not alive(st["pid"], st.get("starttime")):
                    raise RuntimeFailure("the container process exited before it was started")
                time.sleep(delay)
                delay = min(delay * 2, 0.01)
        finally:
            os.close(fd)
        try:
            os.unlink(fifo)
        except FileNotFoundError:
            pass
        tchan, self._trace_chan = self._trace_chan, None
        if tchan is not None:
            # traced: the init's records up to its execve, then EOF (the channel is close-on-exec)
            while (msg := tchan.recv()) is not None:
                if msg.get("t") == "trace":
                    T.add(msg.get("records") or [])
            tchan.close()
        _hooks_warn("poststart", st, "running", self.log.warn)

    def run(self, container_id: str, bundle: str, *, detach: bool = False, **create_args) -> int:
        """create + start; unless detached, wait for the container, delete it and return its exit code.

        Waiting makes the caller a child subreaper (the container's init is a grandchild).
        """
        from pallet.linux.prctl import set_child_subreaper

        if not detach:
            set_child_subreaper()
        st = self.create(container_id, bundle, **create_args)
        full = self._last
        try:
            self.start(container_id, _st=full, _until_exec=detach)
        except BaseException:
            self.delete(container_id, force=True, _st=full)
            raise
        if detach:
            return 0
        code = wait_pid(st["pid"])
        self.delete(container_id, force=True, _st=full)
        return code

    def _state(self, container_id: str, known: dict | None) -> dict:
        """`known` (a state this object saved) while its state.json is still there, else the saved one."""
        if known is not None and known["id"] == container_id and os.path.exists(
                os.path.join(self.store.dir(container_id), "state.json")):
            return known
        return self.store.load(container_id)

    # -- inspect ----------------------------------------------------------------------------
    def state(self, container_id: str) -> dict:
        st = self.store.load(container_id)
        return oci_state(st, self.store.status(st))

    def list(self) -> list[dict]:
        out = []
        for cid in self.store.ids():
            try:
                out.append(self.state(cid))
            except RuntimeFailure:
                continue
        return out

    def ps(self, container_id: str) -> list[int]:
        st = self.store.load(container_id)
        from pallet.linux.cgroups import Cgroup

        pids = Cgroup.from_json(st["cgroup"]).procs() if st.get("cgroup") else []
        if not pids and self.store.status(st) != "stopped":
            pids = [st["pid"]]
        return sorted(set(pids))

    # -- signals / delete -------------------------------------------------------------------
    def kill(self, container_id: str, signal: int = 15, all: bool = False) -> None:
        """Signal the init (runc's `kill ID SIG`) or, `all`, every process in the container's cgroup.

        As runc: `all` works on a stopped container too while its cgroup exists: when the init was
        not the pid namespace's first process (a shared or the host's pid namespace), its children
        outlive it, and containerd's shim kills them so once it has seen the init exit. SIGKILL to a
        paused container thaws it: a process the v1 freezer holds dies only once thawed."""
        from pallet.linux.cgroups import Cgroup

        st = self.store.load(container_id)
        status = self.store.status(st)
        cg = Cgroup.from_json(st["cgroup"]) if st.get("cgroup") else None
        if all and cg is not None:
            if status == "stopped" and not cg.exists():
                return
            cg.kill_all(signal)
            return
        if status == "stopped":
            raise InvalidState("container not running")
        try:
            os.kill(st["pid"], signal)
        except ProcessLookupError:
            raise InvalidState("container not running") from None
        if status == "paused" and signal == SIGKILL and cg is not None:
            cg.thaw()

    def delete(self, container_id: str, force: bool = False, *, _st: dict | None = None) -> None:
        """Remove a stopped container; `force` kills a created, running or paused one first.
        `_st`: as for start. (runc deletes a created container without `force` too; the spec says
        delete MUST fail on a container that is not stopped, and containerd's shim kills first.)"""
        st = self._state(container_id, _st)
        status = self.store.status(st)
        if status != "stopped" and not force:
            raise InvalidState(f"cannot delete container {container_id} that is not stopped: {status}")
        from pallet.linux.cgroups import Cgroup

        cg = Cgroup.from_json(st["cgroup"]) if st.get("cgroup") else None
        if status != "stopped":
            try:
                os.kill(st["pid"], SIGKILL)
            except ProcessLookupError:
                pass
            if status == "paused" and cg is not None:
                cg.thaw()
            _wait_gone(st["pid"], st.get("starttime"), 10.0)
        nss = {n.get("type"): n for n in (st["config"].get("linux") or {}).get("namespaces") or ()}
        if cg is not None and ("pid" not in nss or nss["pid"].get("path")):
            # the init was not its pid namespace's first process: its children did not die with it
            # (runc's destroy kills them too, whoever made the cgroup)
            try:
                cg.kill_all(SIGKILL)
            except OSError as e:
                self.log.warn(f"cannot kill the processes of {container_id}: {e}")
        if cg is not None and st.get("cgroup_created"):
            try:
                try:
                    cg.destroy(timeout=0)
                except OSError:
                    # processes left (no private pid namespace, or still exiting): kill them first
                    cg.kill_all(SIGKILL)
                    cg.destroy()
            except OSError as e:
                self.log.warn(f"cannot remove the cgroup of {container_id}: {e}")
        _remove_dir(self.store.dir(container_id))
        _hooks_warn("poststop", st, "stopped", self.log.warn)

    def remove_stale(self, container_id: str) -> None:
        """Remove what a create that never finished (killed before it saved state.json) left of a
        container, as runc's delete does: else its id could not be used again."""
        from pallet.runtime.state import valid_id

        d = self.store.dir(container_id)
        if valid_id(container_id) and not os.path.exists(os.path.join(d, "state.json")):
            _remove_dir(d)

    # -- exec -------------------------------------------------------------------------------
    def exec(self, container_id: str, process: dict, *, console_socket: str | None = None,
             pid_file: str | None = None, detach: bool = False, stdio: tuple[int, int, int] | None = None,
             preserve_fds: int = 0, on_pid=None, _console=None, _pre_exec=None) -> int:
        """Run `process` (an OCI process object) in the container.

        Detached: returns the new process's pid once it has exec'd. Otherwise waits and
        returns its exit code (128+N when killed by signal N).
        """
        from pallet.linux.cgroups import Cgroup
        from pallet.linux.ns import NAMESPACES
        from pallet.runtime.spec import validate

        st = self.store.load(container_id)
        status = self.store.status(st)
        if status not in ("running", "created"):
            raise InvalidState(f"cannot exec in a {status} container")
        cfg = st["config"]
        validate(dict(cfg, process=process))
        if process.get("terminal") and not console_socket and _console is None:
            raise InvalidConfig("cannot allocate tty if pallet-runtime will detach without setting console socket")
        linux = cfg.get("linux") or {}
        seccomp = None
        if linux.get("seccomp"):
            from pallet.linux.seccomp import compile_filter_cached

            seccomp = compile_filter_cached(linux["seccomp"], self.seccomp_cache)
        console = _console
        if process.get("terminal") and console is None:
            console = _connect(console_socket)
        pid = st["pid"]
        ns_paths = {n["type"]: f"/proc/{pid}/ns/{NAMESPACES[n['type']][1]}"
                    for n in linux.get("namespaces") or ()}
        cg = Cgroup.from_json(st["cgroup"]) if st.get("cgroup") else None
        init_mod = _import_init()
        init_mod.preload(process)
        pchan, cchan = pair()
        ctx = init_mod.Ctx(cfg=dict(cfg, process=process), chan=cchan, cgroup=cg, seccomp=seccomp, console=console,
                           preserve_fds=preserve_fds, stdio=stdio, state=st, ns_paths=ns_paths, detach=detach,
                           pre_exec=_pre_exec)
        c1 = L.fork()
        if c1 == 0:
            try:
                os.close(pchan.r)
                os.close(pchan.w)
                init_mod.exec_child(ctx)
            finally:
                os._exit(1)
        cchan.close()
        if seccomp is not None:
            seccomp.release()
        if console is not None:
            console.close()
        child = 0
        try:
            while True:
                msg = pchan.recv()
                if msg is None:
                    break
                if msg.get("t") == "error":
                    raise RuntimeFailure(msg.get("msg") or "exec failed")
                if msg.get("t") == "warn":
                    self.log.warn(msg.get("msg", ""))
                elif msg.get("t") == "pid":
                    child = msg["pid"]
                    if pid_file:
                        _write_pid_file(pid_file, child)
                    if on_pid:
                        on_pid(child)
        except BaseException:
            pchan.close()
            if child:
                try:
                    os.kill(child, SIGKILL)
                except OSError:
                    pass
            _reap(c1)
            raise
        pchan.close()
        wstatus = _reap(c1)
        if not child:
            raise RuntimeFailure("exec failed: the process did not start")
        if detach:
            return child
        return os.waitstatus_to_exitcode(wstatus) if os.WIFEXITED(wstatus) else 128 + os.WTERMSIG(wstatus)

    # -- cgroup operations --------------------------------------------------------------------
    def _running_cgroup(self, container_id: str, want: tuple[str, ...], verb: str):
        from pallet.linux.cgroups import Cgroup

        st = self.store.load(container_id)
        status = self.store.status(st)
        if status not in want:
            raise InvalidState(f"cannot {verb} a container that is {status}")
        if not st.get("cgroup"):
            raise RuntimeFailure(f"container {container_id} has no cgroup")
        return st, Cgroup.from_json(st["cgroup"])

    def pause(self, container_id: str) -> None:
        _, cg = self._running_cgroup(container_id, ("running", "created"), "pause")
        try:
            cg.freeze()
        except OSError as e:
            raise RuntimeFailure(f"cannot pause {container_id}: {e}") from None

    def resume(self, container_id: str) -> None:
        _, cg = self._running_cgroup(container_id, ("paused",), "resume")
        try:
            cg.thaw()
        except OSError as e:
            raise RuntimeFailure(f"cannot resume {container_id}: {e}") from None

    def update(self, container_id: str, resources: dict) -> None:
        """Change the cgroup limits of a container (OCI linux.resources subset)."""
        st, cg = self._running_cgroup(container_id, ("running", "created", "paused"), "update")
        try:
            for w in cg.apply(resources):
                self.log.warn(w)
        except OSError as e:
            raise RuntimeFailure(f"cannot update {container_id}: {e}") from None
        linux = st["config"].setdefault("linux", {})
        merged = linux.setdefault("resources", {})
        for k, v in resources.items():
            merged[k] = dict(merged.get(k) or {}, **v) if isinstance(v, dict) else v
        self.store.save(st)


# -- helpers ----------------------------------------------------------------------------------
def _import_init():
    """The container init's side (`pallet.runtime.init` and what it imports). When the parent moves
    the init into its cgroup (a grace period), create imports it in the forked child only, so the
    parent reaches its fork, and that wait, sooner."""
    from pallet.runtime import init

    return init


def _hooks_warn(kind: str, st: dict, status: str, warn) -> None:
    hooks = (st["config"].get("hooks") or {}).get(kind)
    if hooks:
        from pallet.runtime.hooks import run_hooks_warn

        run_hooks_warn(kind, hooks, oci_state(st, status), warn)


def _connect(path: str | None):
    import socket

    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
    except OSError as e:
        s.close()
        raise RuntimeFailure(f"cannot connect to console socket {path}: {e.strerror}") from None
    return s


def _write_map(path: str, maps: list[dict]) -> None:
    from pallet.linux import kernfs

    data = "".join(f"{m['containerID']} {m['hostID']} {m['size']}\n" for m in maps)
    kernfs.write_file(path, data)


def _write_pid_file(path: str, pid: int) -> None:
    path = os.path.abspath(path)
    tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, str(pid).encode())
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _wait_gone(pid: int, starttime: int | None, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    delay = 0.0005
    while alive(pid, starttime) and time.monotonic() < deadline:
        try:
            if os.waitpid(pid, os.WNOHANG)[0]:
                return
        except ChildProcessError:
            pass
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def _reap(pid: int) -> int:
    """waitpid for our own child; a caller's SIGCHLD handler may have reaped it already (status 0)."""
    try:
        return os.waitpid(pid, 0)[1]
    except ChildProcessError:
        return 0


def _remove_dir(d: str) -> None:
    try:
        for n in os.listdir(d):
            os.unlink(os.path.join(d, n))
        os.rmdir(d)
    except FileNotFoundError:
        pass


def wait_pid(pid: int) -> int:
    """Wait for a child (or, as subreaper, an adopted grandchild); returns its exit code (128+sig)."""
    while True:
        try:
            wpid, status = os.waitpid(pid, 0)
        except ChildProcessError:
            # not ours after all: poll until it is gone
            _wait_gone(pid, None, 1e9)
            return 0
        if wpid == pid:
            return os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)
