"""A container's life after create: start (through its monitor), what the monitor reports back (running,
start failed, exited), kill, stop (with a restart policy cancelled), remove and the destruction of
everything it owns."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from pallet import jsonfast
from pallet.engine import exitwatch
from pallet.engine.events import container_event, volume_events
from pallet.engine.freezer import thaw_if_paused
from pallet.engine.model import Container, alive, proc_start_time, send_signal
from pallet.engine.signals import parse_signal
from pallet.errors import Conflict, NotFound, PalletError, classify
from pallet.fsutil import rmtree


class Lifecycle:
    """Engine methods (a mixin of `core.Engine`)."""

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
            if attach:
                container_event(self, c, "attach")
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
        volume_events(self, c, "mount")
        container_event(self, c, "start")

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
        from pallet.linux import cgroups

        return cgroups.oom_kills(c.extra.get("memcg")) > 0

    def container_exited(self, c: Container, code: int, notify=None) -> bool:
        """In the monitor, after init exited: record, clean up, and call `notify(removed)` as soon as the
        container's fate is settled. Returns True if the container was removed (--rm).

        With --rm the row turns "removing" and the waiting CLI is released *before* the slow part
        (unmounting an overlay syncs the upper filesystem), which the monitor then finishes alone.
        """
        oom = self._oom_killed(c)
        if oom:
            container_event(self, c, "oom")
        container_event(self, c, "die", exitCode=code)
        volume_events(self, c, "unmount")
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
        container_event(self, c, "kill", signal=int(sig))
        if not send_signal(c.pid, c.pid_start, sig):
            self.refresh(c)
        thaw_if_paused(self, c)

    def stop(self, c: Container, timeout: int | None = None) -> Container:
        with self.locked(c):
            return self._stop(c, timeout)

    def restart(self, c: Container, timeout: int | None = None) -> None:
        """docker's restart: stop (if running), start; the `restart` event after the start."""
        c = self.stop(c, timeout)
        self.start(self.get(c.id))
        container_event(self, self.get(c.id), "restart")

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
        container_event(self, c, "kill", signal=int(sig))
        send_signal(c.pid, c.pid_start, sig)
        thaw_if_paused(self, c)
        c = self.wait_exit(c, timeout)
        if c.status == "running":
            container_event(self, c, "kill", signal=int(signal.SIGKILL))
            send_signal(c.pid, c.pid_start, signal.SIGKILL)
            c = self.wait_exit(c, 30)
        container_event(self, c, "stop")
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
                container_event(self, c, "kill", signal=int(signal.SIGKILL))
                self.__dict__.setdefault("_killed_for_removal", set()).add(c.id)
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
            if c.id not in self.__dict__.get("_killed_for_removal", ()):   # (its kill event is recorded)
                container_event(self, c, "kill", signal=int(signal.SIGKILL))
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
        container_event(self, c, "destroy")
        if c.config.get("Mounts"):
            from pallet.engine import volumes

            volumes.release(self, c, remove_anonymous=bool(c.HostConfig.get("AutoRemove") or
                                                           getattr(self, "remove_volumes", False)))


def raise_start_error(body: bytes) -> None:
    info = jsonfast.loads(body)
    code = info.get("code", 125)
    err = classify(info["message"]) if code in (125, 126, 127) else PalletError(info["message"])
    if code in (126, 127) and err.exit_code == 125:
        err.exit_code = code
    raise err


def memory_cgroup_file(pid: int) -> str | None:
    """The file that counts OOM kills for the memory cgroup of `pid` (v1 memory.oom_control, v2 memory.events)."""
    from pallet.linux import cgroups  # (at the package boundary: not on run's path)

    cg = cgroups.of_pid(pid)
    return cg.oom_file() if cg else None


def remove_cgroups(cid: str) -> None:
    """rmdir the container's cgroups (pallet/<id> below any hierarchy) if a runtime left them."""
    from pallet.linux import cgroups  # (at the package boundary: not on run's path)

    cgroups.remove_leftover(f"pallet/{cid}")
