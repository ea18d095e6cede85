"""The engine: create, start, stop, kill, remove, inspect containers.

Layout:
  <root>/containers/<id>/        config.json (the bundle), hostname, hosts, resolv.conf, <id>-json.log
  <runroot>/containers/<id>/     attach socket, pid file, runtime log  (volatile: gone after a reboot)
  <runroot>/runtime-<name>/      the OCI runtime's own state
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from pallet import jsonfast
from pallet.engine import defaults, exitwatch
from pallet.engine.containers import Containers
from pallet.engine.freezer import thaw_if_paused
from pallet.engine.images import Images
from pallet.engine.model import Container, alive, proc_start_time, send_signal
from pallet.engine.names import validate_name
from pallet.engine.options import CreateOptions
from pallet.engine.signals import parse_signal
from pallet.errors import Conflict, NotFound, PalletError, classify
from pallet.fsutil import rmtree
from pallet.linux import cgroups

TYPE_CHECKING = False  # typing is not imported at run time (start-up)
if TYPE_CHECKING:
    from typing import Any


WAIT_CONDITIONS = ("not-running", "next-exit", "removed")


class Engine(Containers, Images):
    def __init__(self, store, runroot: str | os.PathLike, *, storage_driver: str | None = None) -> None:
        self.store = store
        self.root = Path(store.root)
        self.runroot = Path(runroot)
        self.storage_driver = storage_driver
        self._runtimes: dict[str, Any] = {}

    def runtime(self, name: str):
        if name not in self._runtimes:
            from pallet.engine.runtimes import get_runtime

            self._runtimes[name] = get_runtime(name, self.runroot)
        return self._runtimes[name]

    # ---- create -------------------------------------------------------------------------------
    build_config = staticmethod(defaults.build_config)

    def create(self, opts: CreateOptions) -> Container:
        """Check the options, resolve (or pull) the image, insert the container's row and set it up
        (`set_up`: snapshot, files, volumes). `c.extra["rootfs"]` says where its rootfs is mounted (for
        the monitor `pallet run` forked beforehand: it need not look the snapshot up again)."""
        from pallet.engine.runtimes import default_runtime

        runtime_name = opts.runtime or default_runtime()
        opts.runtime = runtime_name
        self.runtime(runtime_name)   # fails early for an unknown runtime
        if opts.network == "none" and not (opts.ip or opts.aliases or opts.mac_address or opts.publish or
                                           opts.add_hosts or opts.extra_networks):
            net_mode, net_endpoints = "none", {}   # (the hot path: nothing to check)
        else:
            from pallet.engine import networking

            net_mode, net_endpoints = networking.plan(self, opts)
        if opts.stop_signal:
            parse_signal(opts.stop_signal)
        if opts.init:
            from pallet.engine.spec import require_init_binary

            require_init_binary()
        rec = self.resolve_image(opts)
        image_config = self.store.config(rec)
        if opts.platform:
            from pallet.oci.documents import Platform

            want = Platform.parse(opts.platform)
            if (want.os, want.architecture) != (image_config.os, image_config.architecture):
                raise PalletError(f"image {opts.image} is {image_config.platform}, not {opts.platform}")
        config, host = self.build_config(opts, image_config)
        host["NetworkMode"] = net_mode
        if opts.publish or opts.expose:
            from pallet.engine import ports

            exposed = dict(config.get("ExposedPorts") or {})
            exposed.update(ports.parse_expose(opts.expose))
            if opts.publish and net_mode != "host":   # (host: docker's warning, the ports are discarded)
                host["PortBindings"] = ports.parse(opts.publish)
                exposed.update({k: {} for k in host["PortBindings"]})
            config["ExposedPorts"] = exposed
        from pallet.engine.spec import command

        if not command(config):
            raise PalletError("no command specified: the image has no Entrypoint or Cmd; give one after the image")
        cid = os.urandom(32).hex()
        name = validate_name(opts.name) if opts.name else None
        c = Container(cid, name or "", rec.id, opts.image, time.time(), runtime_name,
                      {"Config": config, "HostConfig": host}, "created")
        if net_endpoints:
            c.config["NetworkingConfig"] = {"EndpointsConfig": net_endpoints}
        # the directory first: a row always has one, so that `rm` can lock and remove a container whose
        # create was killed half-way (only an invisible empty directory can be left without a row)
        self.dir(cid).mkdir(parents=True)
        try:
            self._insert(c, explicit_name=name is not None)
        except BaseException:
            rmtree(self.dir(cid))
            raise
        c.extra["rootfs"] = self.set_up(c, rec)
        return c

    def set_up(self, c: Container, rec) -> str:
        """The second half of `create`: the container's snapshot, its /etc files and its volumes. On
        failure nothing of the container is left, its row included. Returns the (mounted) rootfs."""
        try:
            rootfs = self._setup_files(c, rec)
            if c.HostConfig.get("Binds") or c.HostConfig.get("Mounts") or c.HostConfig.get("Tmpfs") or \
                    c.Config.get("Volumes") or c.HostConfig.get("VolumesFrom"):
                from pallet.engine import volumes

                volumes.setup(self, c, rootfs)
        except BaseException:
            self._destroy(c, quiet=True)
            raise
        return rootfs

    def _setup_files(self, c: Container, rec) -> str:
        """The container's snapshot (mounted) and /etc files; the rootfs path."""
        from pallet.engine import snapshots
        from pallet.engine.spec import etc_hosts, resolv_conf
        from pallet.engine.users import resolve_user

        d = self.dir(c.id)   # (made by `create` before the row)
        rootfs = snapshots.create(self, c, rec)
        user = resolve_user(rootfs, c.Config.get("User"))
        wd = c.Config.get("WorkingDir") or ""
        if wd and not wd.startswith("/"):
            raise PalletError(f"the working directory {wd!r} is invalid: it must be an absolute path")
        if wd:
            snapshots.mkdir_in_root(rootfs, wd)
        network = c.HostConfig["NetworkMode"]
        hostname = c.Config.get("Hostname") or (os.uname().nodename if network == "host" else c.short_id)
        c.Config["Hostname"] = hostname
        c.config["User"] = {"uid": user.uid, "gid": user.gid, "additionalGids": user.additional_gids,
                            "home": user.home}
        (d / "hostname").write_text(hostname + "\n")
        extra = c.HostConfig.get("ExtraHosts") or []
        if network not in ("none", "host") or any(h.endswith(":host-gateway") for h in extra):
            from pallet.engine.networking import hosts_text

            (d / "hosts").write_text(hosts_text(self, c))
        else:
            (d / "hosts").write_text(etc_hosts(hostname, network, extra))
        hc = c.HostConfig
        (d / "resolv.conf").write_text(resolv_conf(network, hc.get("Dns"), hc.get("DnsSearch"), hc.get("DnsOptions")))
        self._update(c.id, config=jsonfast.dumps(c.config))
        return rootfs

    def prepare_bundle(self, c: Container, rootfs: str | None = None) -> Path:
        """Mount the snapshot unless `rootfs` says where it is mounted, and write config.json; returns
        the bundle directory."""
        from pallet.engine.spec import build_spec
        from pallet.engine.users import ExecUser

        if rootfs is None:
            from pallet.engine import snapshots

            rootfs = snapshots.mount(self, c)
        u = c.config.get("User") or {}
        user = ExecUser(u.get("uid", 0), u.get("gid", 0), u.get("additionalGids") or [], u.get("home") or "/")
        netns = None
        if (c.HostConfig.get("NetworkMode") or "").startswith("container:"):
            from pallet.engine.networking import check_container_mode

            netns = check_container_mode(self, c.HostConfig["NetworkMode"])
        spec = build_spec(cid=c.id, config=c.Config, host_config=c.HostConfig, rootfs=rootfs,
                          files_dir=str(self.dir(c.id)), user=user, hostname=c.Config["Hostname"],
                          cgroups_path=f"pallet/{c.id}", netns_path=netns)
        from pallet.engine.limits import apply_host_config

        apply_host_config(spec, c)
        from pallet.fsutil import atomic_write

        atomic_write(self.dir(c.id) / "config.json", jsonfast.dumps(spec).encode(), fsync=False)
        return self.dir(c.id)

    # ---- start --------------------------------------------------------------------------------
    def _clear_runtime_state(self, c: Container) -> None:
        rt = self.runtime(c.runtime)
        state_dir = rt.state_root
        if (Path(state_dir) / c.id).exists():
            try:
                rt.delete(c.id, force=True)
            except PalletError:
                rmtree(Path(state_dir) / c.id)

    def start(self, c: Container, *, attach: bool = False, winsize: tuple[int, int] | None = None):
        """Fork the monitor and wait until the container runs (or raise why it did not start).

        With `attach`, returns the monitor's client socket, attached since before the container
        started (so no output is missed): the foreground of `start -a`.
        """
        import socket

        with self.locked(c):
            c = self.refresh(self.get(c.id, refresh=False))
            if c.status == "running":
                if attach:
                    raise Conflict(f"container {c.name} is already running; use attach")
                return None
            if c.status == "removing":
                raise Conflict(f"container {c.name} is being removed")
            if c.status == "restarting":   # its monitor starts it again by itself
                if attach:
                    raise Conflict(f"container {c.name} is restarting; wait until it runs, then attach")
                return None
            self._clear_runtime_state(c)
            self.run_dir(c.id).mkdir(parents=True, exist_ok=True)
            if winsize:
                c.extra["winsize"] = winsize
            own, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            from pallet.engine import monitor

            monitor.spawn(self, c, sync=theirs)
            theirs.close()
            try:
                first = own.recv(65536, socket.MSG_PEEK)
                if first[:1] == b"E":
                    raise_start_error(first[1:])
                if first[:1] != b"S":
                    raise PalletError(f"container {c.name} failed to start (its monitor exited)")
            except BaseException:
                own.close()
                raise
        if attach:
            return own
        own.close()
        return None

    def network_up(self, c: Container, init_pid: int) -> None:
        """In the monitor, between the runtime's create and start: plug the init's network namespace
        into the container's networks (pallet.network) and write /etc/hosts with its addresses. Nothing
        to do (and nothing imported) for none, host and container:."""
        if (c.config.get("NetworkingConfig") or {}).get("EndpointsConfig"):
            from pallet.engine import networking

            networking.up(self, c, init_pid)

    def network_release(self, c: Container) -> list:
        """Give back the container's addresses and published ports (also after its monitor was killed):
        the database and firewall part, at once; returns the leases whose veths `network_unplug` deletes
        (the slow part, ~20 ms each: after the waiting CLI was released). none, host and container:
        hold none (and `network connect` refuses them): nothing is imported for them."""
        mode = c.HostConfig.get("NetworkMode") or "none"
        if mode in ("none", "host") or mode.startswith("container:"):
            return []
        from pallet.engine import networking

        return networking.release(self, c)

    def network_unplug(self, leases: list) -> None:
        if leases:
            from pallet.engine import networking

            networking.unplug(leases)

    def network_down(self, c: Container) -> None:
        self.network_unplug(self.network_release(c))

    def mark_running(self, c: Container, pid: int, pid_start: int | None = None) -> None:
        """`pid_start`: the init's start time when the runtime knows it (else read from /proc)."""
        c.pid, c.status, c.started_at = pid, "running", time.time()
        c.pid_start = pid_start or proc_start_time(pid)
        c.monitor_pid, c.monitor_start = os.getpid(), proc_start_time(os.getpid())
        c.extra["memcg"] = memory_cgroup_file(pid)
        self._update(c.id, status="running", pid=pid, pid_start=c.pid_start, monitor_pid=c.monitor_pid,
                     monitor_start=c.monitor_start, started_at=c.started_at, finished_at=None, exit_code=None,
                     error=None, oom_killed=0, stopped_by_user=0)

    def start_failed(self, c: Container, message: str, pid: int | None) -> None:
        """In the monitor: the runtime could not create/start the container; leave it Created/Exited, clean."""
        rt = None
        try:
            rt = self.runtime(c.runtime)
            rt.delete(c.id, force=True)
        except Exception:  # noqa: BLE001
            pass
        if pid:
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except OSError:
                pass
        try:
            self.network_down(c)
        except Exception:  # noqa: BLE001
            pass
        try:
            self._update(c.id, status="exited" if c.started_at else "created", error=message,
                         exit_code=c.exit_code if c.started_at else None)
        except Exception:  # noqa: BLE001
            pass
        from pallet.engine import snapshots

        try:
            snapshots.unmount(self, c)
        except Exception:  # noqa: BLE001
            pass

    def _oom_killed(self, c: Container) -> bool:
        return cgroups.oom_kills(c.extra.get("memcg")) > 0

    def container_exited(self, c: Container, code: int, notify=None) -> bool:
        """In the monitor, after init exited: record, clean up, and call `notify(removed)` as soon as the
        container's fate is settled. Returns True if the container was removed (--rm).

        With --rm the row turns "removing" and the waiting CLI is released *before* the slow part
        (unmounting an overlay syncs the upper filesystem), which the monitor then finishes alone.
        """
        oom = self._oom_killed(c)
        from pallet.engine import snapshots

        try:   # (its address and ports are free again once the CLI hears of the exit)
            released = self.network_release(c)
        except Exception:  # noqa: BLE001 - the exit must be recorded whatever happens here
            released = []
        if c.HostConfig.get("AutoRemove"):
            self._update(c.id, status="removing", exit_code=code, finished_at=time.time(), oom_killed=int(oom),
                         pid=None)
            if notify:
                notify(True)
            self._quiet_unplug(released)
            self._destroy(c, quiet=True)   # runtime state, cgroups, snapshot, files, row
            self._settle_unplug(released)
            return True
        try:
            self.runtime(c.runtime).delete(c.id, force=True)
        except PalletError:
            pass
        try:
            snapshots.unmount(self, c)
        except Exception:  # noqa: BLE001
            pass
        rows = self._rows("WHERE id = ?", (c.id,))
        if rows and rows[0].status == "running" and rows[0].pid == c.pid:
            self._update(c.id, status="exited", exit_code=code, finished_at=time.time(), oom_killed=int(oom),
                         pid=None, monitor_pid=None)
        if notify:
            notify(False)
        self._quiet_unplug(released)
        self._settle_unplug(released)
        return False

    def _quiet_unplug(self, leases: list) -> None:
        """After the init's exit: its namespace's destruction takes the veths (no 20 ms delete each on
        this path); `_settle_unplug` waits for them to be gone once nobody waits on the monitor."""
        if not leases:
            return
        from pallet.engine import networking

        try:
            networking.unplug(leases, exited=True)
        except Exception:  # noqa: BLE001 - a veth that cannot be deleted goes with its namespace
            pass

    def _settle_unplug(self, leases: list) -> None:
        if leases:
            from pallet.engine import networking

            networking.settle()

    # ---- stop / kill / remove -------------------------------------------------------------------
    def kill(self, c: Container, sig: int = signal.SIGKILL) -> None:
        c = self.refresh(c)
        if c.status != "running":
            raise Conflict(f"cannot kill container {c.name}: container is not running")
        if not send_signal(c.pid, c.pid_start, sig):
            self.refresh(c)
        thaw_if_paused(self, c)

    def wait_exit(self, c: Container, timeout: float | None = None) -> Container:
        return self.wait(c, "not-running", timeout)

    def wait(self, c: Container, condition: str = "not-running", timeout: float | None = None) -> Container:
        """docker's wait conditions: `not-running` (now, if it is not running), `next-exit` (the end of
        the run under way or of the next one), `removed` (until its row is gone). Woken by the monitor's
        exit FIFO and by pidfds (engine.exitwatch), not by polling. Returns the container as last seen
        (after `timeout` seconds: whatever it is then)."""
        if condition not in WAIT_CONDITIONS:
            raise PalletError(f"invalid condition {condition!r}: give one of {', '.join(WAIT_CONDITIONS)}")
        deadline = None if timeout is None else time.monotonic() + timeout
        if condition == "next-exit":
            fd = exitwatch.open_watch(self.run_dir(c.id), create=True)
            try:
                c = self.get(c.id)
                if fd is not None:
                    exitwatch.wait_hangup(fd, deadline)
            finally:
                if fd is not None:
                    os.close(fd)
        c = self._wait_not_running(c, deadline)
        if condition == "removed":
            while self._rows("WHERE id = ?", (c.id,)):
                if deadline is not None and time.monotonic() >= deadline:
                    break
                if alive(c.monitor_pid, c.monitor_start):    # --rm: its monitor removes it, then exits
                    exitwatch.wait_process(c.monitor_pid, deadline)
                else:
                    time.sleep(0.05)   # only another `rm` can remove it now
        return c

    def _wait_not_running(self, c: Container, deadline: float | None) -> Container:
        while True:
            fd = exitwatch.open_watch(self.run_dir(c.id))
            try:
                try:
                    c = self.get(c.id)
                except NotFound:
                    return c
                if c.status != "running" or (deadline is not None and time.monotonic() >= deadline):
                    return c
                if fd is not None and alive(c.monitor_pid, c.monitor_start):
                    exitwatch.wait_hangup(fd, deadline)
                else:   # no monitor to close the FIFO (killed): the init's own exit, by its pidfd
                    exitwatch.wait_process(c.pid, deadline)
            finally:
                if fd is not None:
                    os.close(fd)

    def stop(self, c: Container, timeout: int | None = None) -> Container:
        with self.locked(c):
            return self._stop(c, timeout)

    def _cancel_restart(self, c: Container) -> Container:
        """Tell the monitor not to restart; it marks the row Exited, unless it was starting it right then
        (the row turns running: the caller stops it as usual)."""
        self._update(c.id, stopped_by_user=1)
        for _ in range(200):
            time.sleep(0.05)
            c = self.refresh(self.get(c.id, refresh=False))
            if c.status != "restarting":
                return c
        self._update(c.id, status="exited")   # a monitor that does not answer
        return self.get(c.id)

    def _stop(self, c: Container, timeout: int | None = None) -> Container:
        c = self.refresh(c)
        if c.status == "restarting":   # waiting to be restarted by its policy: the stop cancels that
            c = self._cancel_restart(c)
        if c.status != "running":
            return c
        self._update(c.id, stopped_by_user=1)
        if timeout is None:
            timeout = c.Config.get("StopTimeout", 10)
        sig = parse_signal(c.Config.get("StopSignal"))
        send_signal(c.pid, c.pid_start, sig)
        thaw_if_paused(self, c)
        c = self.wait_exit(c, timeout)
        if c.status == "running":
            send_signal(c.pid, c.pid_start, signal.SIGKILL)
            c = self.wait_exit(c, 30)
        return c

    def remove(self, c: Container, *, force: bool = False) -> None:
        try:
            with self.locked(c):
                self._remove(c, force=force)
        except NotFound:
            if not self._rows("WHERE id = ?", (c.id,)):
                return   # removed meanwhile (by its --rm monitor or another rm): nothing left to do
            if self.dir(c.id).exists():
                raise
            # a row without its directory (a create killed half-way before `create` made the directory
            # first, or a removal that died after removing it): nothing to lock; the same checks (a
            # running container needs -f), then remove what is left
            self._remove(c, force=force)

    def kill_for_removal(self, refs) -> None:
        """`rm -f` of several containers: SIGKILL every running one (without a restart policy) first, so
        their monitors record the exits in parallel while `remove` then takes them one by one."""
        for ref in refs:
            try:
                c = self.get(ref)
            except PalletError:
                continue   # `remove` reports it
            if c.status == "running" and (c.HostConfig.get("RestartPolicy") or {}).get("Name", "no") == "no":
                send_signal(c.pid, c.pid_start, signal.SIGKILL)

    def _remove(self, c: Container, *, force: bool = False) -> None:
        c = self.refresh(c)
        if c.status == "restarting":
            if not force:
                raise Conflict(f"cannot remove container {c.name}: container is restarting: stop the container "
                               "before removing or force remove")
            c = self._cancel_restart(c)
        if c.status == "running":
            if not force:
                raise Conflict(f"cannot remove container {c.name}: container is running: stop the container "
                               "before removing or force remove")
            monitor_alive = alive(c.monitor_pid, c.monitor_start)
            send_signal(c.pid, c.pid_start, signal.SIGKILL)
            thaw_if_paused(self, c)
            if monitor_alive:
                c = self.wait_exit(c, 30)
                rows = self._rows("WHERE id = ?", (c.id,))
                if not rows:
                    return   # --rm: the monitor removed it
            else:
                for _ in range(500):
                    if not alive(c.pid, c.pid_start):
                        break
                    time.sleep(0.01)
        # the monitor may be removing it itself (--rm) right now
        if c.HostConfig.get("AutoRemove") and alive(c.monitor_pid, c.monitor_start):
            exitwatch.wait_process(c.monitor_pid, time.monotonic() + 30)
            if not self._rows("WHERE id = ?", (c.id,)):
                return
        self._destroy(c)

    def _destroy(self, c: Container, *, quiet: bool = False) -> None:
        """Remove everything a container owns: runtime state, cgroups, mounts, files, the row."""
        from pallet.engine import snapshots

        try:
            self._update(c.id, status="removing")
        except Exception:  # noqa: BLE001
            if not quiet:
                raise
        try:
            self._clear_runtime_state(c)
        except Exception:  # noqa: BLE001
            pass
        remove_cgroups(c.id)
        try:
            self.network_down(c)   # (a namespace gone with its init is fine)
        except Exception:
            if not quiet:
                raise
        try:
            snapshots.remove(self, c)
        except Exception:
            if not quiet:
                raise
        rmtree(self.run_dir(c.id))
        rmtree(self.dir(c.id))
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM containers WHERE id = ?", (c.id,))
        if c.config.get("Mounts"):
            from pallet.engine import volumes

            volumes.release(self, c, remove_anonymous=bool(c.HostConfig.get("AutoRemove") or
                                                           getattr(self, "remove_volumes", False)))

    # ---- inspect ------------------------------------------------------------------------------
    def inspect(self, c: Container) -> dict:
        from pallet.engine import networking, snapshots
        from pallet.engine.model import rfc3339

        status = "removing" if c.status == "removing" else c.status
        state = {
            "Status": status,
            "Running": c.status == "running",
            "Paused": False,
            "Restarting": False,
            "OOMKilled": c.oom_killed,
            "Dead": False,
            "Pid": c.pid or 0 if c.status == "running" else 0,
            "ExitCode": c.exit_code or 0,
            "Error": c.error or "",
            "StartedAt": rfc3339(c.started_at),
            "FinishedAt": rfc3339(c.finished_at),
        }
        from pallet.engine.health import extend_state
        from pallet.engine.volumes import inspect_mounts

        extend_state(self, c, state)
        cfg = dict(c.Config)
        try:
            gd = snapshots.graph_driver(self, c)
        except Exception:  # noqa: BLE001
            gd = {"Name": "", "Data": {}}
        return {
            "Id": c.id,
            "Created": rfc3339(c.created),
            "Path": (c.Config.get("Entrypoint") or c.Config.get("Cmd") or [""])[0],
            "Args": ((c.Config.get("Entrypoint") or []) + (c.Config.get("Cmd") or []))[1:],
            "State": state,
            "Image": c.image_id,
            "ResolvConfPath": str(self.dir(c.id) / "resolv.conf"),
            "HostnamePath": str(self.dir(c.id) / "hostname"),
            "HostsPath": str(self.dir(c.id) / "hosts"),
            "LogPath": str(self.log_path(c.id)),
            "Name": "/" + c.name,
            "RestartCount": c.restart_count,
            "Driver": gd.get("Name", ""),
            "Platform": "linux",
            "HostConfig": dict(c.HostConfig),
            "GraphDriver": gd,
            "Mounts": inspect_mounts(c),
            "Config": cfg,
            "NetworkSettings": networking.settings(self, c),
        }


def raise_start_error(body: bytes) -> None:
    info = jsonfast.loads(body)
    code = info.get("code", 125)
    err = classify(info["message"]) if code in (125, 126, 127) else PalletError(info["message"])
    if code in (126, 127) and err.exit_code == 125:
        err.exit_code = code
    raise err


def memory_cgroup_file(pid: int) -> str | None:
    """The file that counts OOM kills for the memory cgroup of `pid` (v1 memory.oom_control, v2 memory.events)."""
    cg = cgroups.of_pid(pid)
    return cg.oom_file() if cg else None


def remove_cgroups(cid: str) -> None:
    """rmdir the container's cgroups (pallet/<id> below any hierarchy) if a runtime left them."""
    cgroups.remove_leftover(f"pallet/{cid}")
