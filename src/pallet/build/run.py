"""RUN: the command in pallet's runtime, in-process, on a step's workspace (no monitor, no container row).

The spec is the engine's (`pallet.engine.spec.build_spec`: docker's capabilities, seccomp, masked
paths) with the stage's environment, working dir and user. Output (stdout and stderr together)
goes line by line to `on_line`; the last lines are kept for the error report. Mount points the
runtime had to create (/etc/hosts and the like, when the image has none) are taken out of the
upper dir again, so they are not part of the layer.
"""

from __future__ import annotations

import collections
import os
import secrets
import shutil
import tempfile
import threading

from pallet.errors import PalletError

__all__ = ["RunFailed", "cancel_all", "run_in"]

_FORK_LOCK = threading.Lock()   # one fork at a time: the other thread holds no lock of ours then
HOSTNAME = "buildkitsandbox"


class RunFailed(PalletError):
    exit_code = 1

    def __init__(self, message: str, code: int, tail: list[str]) -> None:
        super().__init__(message)
        self.code = code
        self.tail = tail


def _missing(root: str, paths: list[str]) -> list[str]:
    return [p for p in paths if not os.path.lexists(os.path.join(root, p.lstrip("/")))]


def _parents(paths: list[str]) -> list[str]:
    out = set()
    for p in paths:
        p = "/" + p.strip("/")
        while p not in ("", "/"):
            out.add(p)
            p = os.path.dirname(p)
    return sorted(out)


def _drop_created(upper: str, missing: list[str], candidates: list[str], lower_has) -> None:
    """Take the mount points the runtime made out of the upper dir: the empty ones that were not
    there before the step, then parent dirs left empty that only a copy-up or the runtime made."""
    gone = set(missing)
    for p in sorted(candidates, key=lambda x: -x.count("/")):
        full = os.path.join(upper, p.lstrip("/"))
        try:
            st = os.lstat(full)
        except OSError:
            continue
        import stat as _st

        if _st.S_ISDIR(st.st_mode):
            if os.listdir(full):
                continue
            try:
                if os.getxattr(full, "trusted.overlay.opaque", follow_symlinks=False) == b"y" and p not in gone:
                    continue
            except OSError:
                pass
            if p in gone or lower_has(p.lstrip("/")):
                try:
                    os.rmdir(full)
                except OSError:
                    pass
        elif _st.S_ISREG(st.st_mode) and st.st_size == 0 and p in gone:
            os.unlink(full)


def _attach(store, pid: int, network: str, cid: str, hosts_path: str, extra_hosts: list[str], marks: str):
    """RUN on a network (`default`: the default bridge): the network layer's attach plugs the RUN's
    namespace (created, not started) in, as the engine does for a container; /etc/hosts gets the
    address. The caller detaches after the RUN. A failure detaches and raises. A mark under `marks`
    (this build's pid and start time) lets `release_stale_leases` give back the lease of a build
    that was SIGKILLed."""
    from pallet import network as netlayer
    from pallet.build.workspace import _starttime
    from pallet.engine.spec import etc_hosts

    os.makedirs(marks, exist_ok=True)
    with open(os.path.join(marks, cid), "w") as f:
        f.write(f"{os.getpid()} {_starttime(os.getpid())}")
    lease = netlayer.attach(store, f"/proc/{pid}/ns/net", network, cid, cid, ifname="eth0")
    try:
        with open(hosts_path, "w") as f:   # (the same inode: it is bind-mounted)
            f.write(etc_hosts(HOSTNAME, network, extra_hosts, addresses=[(lease.address, [HOSTNAME])]))
    except BaseException:
        netlayer.detach(store, lease.network_id, cid)
        raise
    return lease


def _mark_owner(run_dir: str, cid: str) -> str:
    """A mark under run_dir/owners (this build's pid and start time) for the RUN container `cid`, so
    that `remove_stale_runs` can tell a SIGKILLed build's container from a live build's."""
    from pallet.build.workspace import _starttime

    owners = os.path.join(run_dir, "owners")
    os.makedirs(owners, exist_ok=True)
    path = os.path.join(owners, cid)
    with open(path, "w") as f:
        f.write(f"{os.getpid()} {_starttime(os.getpid())}")
    return path


def _dead_marks(marks: str) -> list[tuple[str, str]]:
    """(cid, mark path) of the marks under `marks` whose build is no longer running."""
    from pallet.build.workspace import _starttime

    try:
        names = os.listdir(marks)
    except OSError:
        return []
    dead = []
    for cid in names:
        path = os.path.join(marks, cid)
        try:
            pid, start = open(path).read().split()
        except (OSError, ValueError):
            continue
        if _starttime(int(pid)) != start:
            dead.append((cid, path))
    return dead


def remove_stale_runs(run_dir: str) -> int:
    """Delete the RUN containers of builds that died (SIGKILL) before deleting them: what still runs
    in them is killed and their cgroups removed; returns how many. One listdir when there are none."""
    dead = _dead_marks(os.path.join(run_dir, "owners"))
    if not dead:
        return 0
    from pallet.runtime import Runtime
    from pallet.runtime.state import ContainerNotFound

    rt = Runtime(os.path.join(run_dir, "runtime"))
    n = 0
    for cid, path in dead:
        try:
            rt.delete(cid, force=True)
            n += 1
        except ContainerNotFound:
            pass   # never created, or deleted before the build died: only the mark is left
        except (PalletError, OSError):
            continue   # tried again next time
        os.unlink(path)
    return n


def release_stale_leases(store, run_dir: str) -> int:
    """Give back the network leases of RUN steps whose build died (SIGKILL) before it detached them;
    returns how many. Cheap when there are none: one listdir, no network module imported."""
    n = 0
    for cid, path in _dead_marks(os.path.join(run_dir, "leases")):
        from pallet import network as netlayer

        try:
            n += len(netlayer.detach_all(store, cid))
            os.unlink(path)
        except Exception:  # noqa: BLE001 (tried again next time)
            pass
    return n


def default_network() -> str:
    """What `--network default` / `RUN --network=default` is: the engine's default network for
    containers (the default bridge)."""
    from pallet.network.networks import DEFAULT_NETWORK

    return DEFAULT_NETWORK


def cancel_all(running: dict) -> None:
    """Kill every RUN process in `running` (cid -> runtime); their steps then clean up."""
    for cid, rt in list(running.items()):
        try:
            rt.kill(cid, 9, all=True)
        except Exception:  # noqa: BLE001 (gone already)
            try:
                rt.kill(cid, 9)
            except Exception:  # noqa: BLE001
                pass


def run_in(ws, argv: list[str], *, env: list[str], cwd: str, user: str, network: str, run_dir: str,
           on_line=None, running: dict | None = None, cancelled=None, mounts=None, extra_hosts=()) -> None:
    """Run argv in the workspace's root; RunFailed with the exit code and the output's last lines."""
    from pallet.engine.users import resolve_user

    root = ws.root
    u = resolve_user(root, user)
    if u.gid not in u.additional_gids:   # as BuildKit (containerd's WithAdditionalGIDs): the primary group too
        u.additional_gids = [u.gid, *u.additional_gids]
    cwd = cwd or "/"
    from pallet.engine.snapshots import mkdir_in_root

    mkdir_in_root(root, cwd)
    targets = ["/etc/hostname", "/etc/hosts", "/etc/resolv.conf", "/proc", "/dev", "/sys", "/dev/pts",
               "/dev/shm", "/dev/mqueue", "/sys/fs/cgroup", "/etc"]
    extra = mounts.setup() if mounts is not None else []
    try:
        _run(ws, argv, env, cwd, u, network, run_dir, on_line, running, cancelled, extra, targets, list(extra_hosts))
    finally:
        if mounts is not None:
            mounts.cleanup()


def _run(ws, argv, env, cwd, u, network, run_dir, on_line, running, cancelled, extra, targets,
         extra_hosts) -> None:
    from pallet import jsonfast
    from pallet.engine.spec import build_spec, etc_hosts, resolv_conf
    from pallet.fsutil import atomic_write
    from pallet.linux.prctl import set_child_subreaper
    from pallet.runtime import Runtime
    from pallet.runtime.runtime import wait_pid

    root = ws.root
    targets = _parents(targets + [m["destination"] for m in extra])
    missing = _missing(root, targets)
    os.makedirs(run_dir, exist_ok=True)
    work = tempfile.mkdtemp(prefix="build-run-", dir=run_dir)
    cid = "build-" + secrets.token_hex(6)
    tail: collections.deque[str] = collections.deque(maxlen=20)
    try:
        with open(os.path.join(work, "hostname"), "w") as f:
            f.write(HOSTNAME + "\n")
        with open(os.path.join(work, "hosts"), "w") as f:
            f.write(etc_hosts(HOSTNAME, network, extra_hosts))
        with open(os.path.join(work, "resolv.conf"), "w") as f:
            f.write(resolv_conf(network))
        spec = build_spec(cid=cid, config={"Env": env, "Cmd": argv, "WorkingDir": cwd},
                          host_config={"NetworkMode": network}, rootfs=root, files_dir=work, user=u,
                          hostname=HOSTNAME)
        spec["mounts"] += extra
        bundle = os.path.join(work, "bundle")
        os.mkdir(bundle)
        atomic_write(os.path.join(bundle, "config.json"), jsonfast.dumps(spec).encode(), fsync=False)
        rt = Runtime(os.path.join(run_dir, "runtime"))
        r, w = os.pipe()
        null = os.open(os.devnull, os.O_RDONLY)
        set_child_subreaper()
        created = False
        lease = None
        owner = _mark_owner(run_dir, cid)
        try:
            with _FORK_LOCK:
                try:
                    if cancelled is not None and cancelled.is_set():
                        raise PalletError("cancelled", exit_code=1)
                    st = rt.create(cid, bundle, stdio=(null, w, w))
                    created = True
                    if running is not None:
                        running[cid] = rt
                finally:
                    os.close(w)
                    os.close(null)
            if network == "none":   # loopback only, and up (as BuildKit's none and runc's new namespaces)
                from pallet.linux.netlink import Netlink

                with Netlink(f"/proc/{st['pid']}/ns/net") as nl:
                    nl.up(1)
            elif network != "host":
                lease = _attach(ws.store, st["pid"], network, cid, os.path.join(work, "hosts"), extra_hosts,
                                os.path.join(run_dir, "leases"))
            rt.start(cid, _until_exec=False)
            buf = b""
            while True:
                chunk = os.read(r, 65536)
                if not chunk:
                    break
                buf += chunk
                *lines, buf = buf.split(b"\n")
                for line in lines:
                    text = line.decode(errors="replace")
                    tail.append(text)
                    if on_line:
                        on_line(text)
            if buf:
                text = buf.decode(errors="replace")
                tail.append(text)
                if on_line:
                    on_line(text)
            code = wait_pid(st["pid"])
        finally:
            os.close(r)
            if running is not None:
                running.pop(cid, None)
            if created:
                try:
                    rt.delete(cid, force=True)
                except PalletError:
                    pass
            os.unlink(owner)
            if lease is not None:
                from pallet import network as netlayer

                try:
                    netlayer.detach(ws.store, lease.network_id, cid)
                    os.unlink(os.path.join(run_dir, "leases", cid))
                except Exception:  # noqa: BLE001 (the first error is the one to report)
                    pass
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if cancelled is not None and cancelled.is_set():
        raise PalletError("cancelled", exit_code=1)
    if code != 0:
        raise RunFailed(f"process {jsonfast.dumps(' '.join(argv))} did not complete successfully: "
                        f"exit code: {code}", code, list(tail))
    ws.snap.unmount()
    upper = str(ws.snap.upper)
    lowers_root = ws.snaps._lowers(ws.snap.layers) if ws.snap.layers else []

    def lower_has(name: str) -> bool:
        return any(os.path.lexists(os.path.join(ws.snaps.dir, lw, name)) for lw in lowers_root)

    _drop_created(upper, missing, targets, lower_has)
