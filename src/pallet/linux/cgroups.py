"""cgroups v1 and v2 behind one interface: create, limit, join, freeze, list, kill, remove.

`open_cgroup(cgroups_path, container_id)` picks the version from the host: a
unified mount at /sys/fs/cgroup is v2, anything else (legacy or hybrid) is v1.
A relative `cgroupsPath` (and the default, the container id) is placed below the
cgroup the calling process runs in, like runc's cgroupfs driver; an absolute one
below the hierarchy root. Only plain file writes under cgroupfs happen here.
"""

from __future__ import annotations

import errno
import os
import time

from pallet.linux import kernfs
from pallet.linux import trace as T

ROOT = "/sys/fs/cgroup"
_SIGKILL = 9


class CgroupError(kernfs.KernelWriteError):
    """A cgroup operation failed; str() is the one-line reason (runc's words for a refused write)."""


def _set_file(p: str, value: object, warnings: list[str], required: bool, missing_why: str) -> None:
    """Write one limit file; a missing file is an error (`required`) or a warning."""
    if not os.path.exists(p):
        if required:
            raise CgroupError(errno.ENOENT, f"cgroup file {p} does not exist ({missing_why})")
        warnings.append(f"{p} does not exist; not set")
        return
    _write(p, str(value))


def _write(path: str, value: str) -> None:
    """runc's cgroups.WriteFile: `failed to write "VALUE": write PATH: ERRNO` (kernfs)."""
    kernfs.write_file(path, value, flags=os.O_TRUNC, error=CgroupError)


def _open_w(path: str, flags: int = 0) -> int:
    return kernfs.open_w(path, flags, error=CgroupError)


def _write_fd(fd: int, path: str, value: str) -> None:
    kernfs.write_fd(fd, path, value, error=CgroupError)


def _read(path: str) -> str:
    with open(path) as f:
        return f.read().strip()


def normalize_path(cgroups_path: str | None, container_id: str) -> str:
    """The cgroupfs path: 'slice:prefix:name' (systemd syntax) becomes /slice/prefix-name.scope."""
    p = cgroups_path or ""
    if p and not p.startswith("/") and p.count(":") == 2:
        sl, prefix, name = p.split(":")
        p = f"/{sl or 'system.slice'}/{prefix}-{name}.scope" if prefix else f"/{sl or 'system.slice'}/{name}"
    if not p:
        p = container_id
    return os.path.normpath(p)


def _own_paths() -> dict[str, str]:
    """hierarchy key ('memory', 'cpu,cpuacct', 'name=systemd', '' for v2) -> path from /proc/self/cgroup."""
    out = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            out[",".join(sorted(ctrls.split(","))) if ctrls else ""] = path
    return out


_V1_MOUNTS: list[dict[str, tuple[str, str]]] = []


def _mounts() -> dict[str, tuple[str, str]]:
    """hierarchy key -> (mountpoint, mount root) for each cgroup hierarchy ('' a cgroup2 one), read once
    per process: on a host running many containers, mountinfo is long (their overlays and binds)."""
    if not _V1_MOUNTS:
        _V1_MOUNTS.append(_read_mounts())
    return _V1_MOUNTS[0]


def _v1_mounts() -> dict[str, tuple[str, str]]:
    """The v1 hierarchies of `_mounts` (a hybrid host's unified cgroup2 left out)."""
    return {k: v for k, v in _mounts().items() if k}


def warm_up() -> None:
    """Read what `open_cgroup` needs before a container is due (the monitor, while the CLI creates it)."""
    if not is_v2():
        _v1_mounts()


def _read_mounts() -> dict[str, tuple[str, str]]:
    out: dict[str, tuple[str, str]] = {}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            pre, _, post = line.partition(" - ")
            fields = post.split()
            if len(fields) < 3 or fields[0] not in ("cgroup", "cgroup2"):
                continue
            pf = pre.split()
            if fields[0] == "cgroup2":
                out.setdefault("", (pf[4], pf[3]))
                continue
            opts = [o for o in fields[2].split(",") if o not in ("rw", "ro")]
            key = ",".join(sorted(o for o in opts if o in _V1_SUBSYS or o.startswith("name=")))
            if key and key not in out:
                out[key] = (pf[4], pf[3])
    return out


_V1_SUBSYS = {"cpuset", "cpu", "cpuacct", "blkio", "memory", "devices", "freezer", "net_cls", "perf_event",
              "net_prio", "hugetlb", "pids", "rdma", "misc"}


def is_v2(root: str = ROOT) -> bool:
    return os.path.exists(os.path.join(root, "cgroup.controllers"))


class Cgroup:
    """A container's cgroup. `dirs` maps a hierarchy key (v1) or '' (v2) to its directory."""

    version = 0

    def __init__(self, dirs: dict[str, str]) -> None:
        self.dirs = dirs

    # -- construction -----------------------------------------------------------------
    def to_json(self) -> dict:
        return {"version": self.version, "dirs": self.dirs}

    @staticmethod
    def from_json(d: dict) -> Cgroup:
        cls = CgroupV2 if d.get("version") == 2 else CgroupV1
        return cls(dict(d.get("dirs") or {}))

    # -- common operations -----------------------------------------------------------
    def exists(self) -> bool:
        return any(os.path.isdir(d) for d in self.dirs.values())

    def create(self) -> bool:
        """Make the directories (parents too); True if at least one of them existed already."""
        made = []
        existed = False
        try:
            for key, d in self.dirs.items():
                r = T.recorder
                t = T.now() if r else 0
                try:
                    os.mkdir(d)  # the usual case: the parent exists, the leaf does not
                    made.append(d)
                except FileExistsError:
                    existed = True
                except FileNotFoundError:
                    os.makedirs(d, exist_ok=True)
                    made.append(d)
                if r:
                    r.done("mkdir", t, {"path": d, "existed": d not in made})
                self._init_dir(key, d)
        except OSError as e:
            for d in reversed(made):
                _rmdir(d)
            raise CgroupError(e.errno, f"cannot create cgroup: {e.strerror if not isinstance(e, CgroupError) else e}") from None
        return existed

    def _init_dir(self, key: str, d: str) -> None:
        pass

    def add(self, pid: int) -> None:
        """Move a process (0 = the caller) into every hierarchy of this cgroup."""
        for d in self.dirs.values():
            _write(os.path.join(d, "cgroup.procs"), str(pid))

    # join_self() skips the grace period: true of v1 only (v2's cgroup.threads moves threads within
    # one threaded domain, not a process into another cgroup)
    join_self_is_cheap = False

    def join_self(self) -> None:
        """Move the calling process, which must be single-threaded (a forked child), into this cgroup.

        v1: writes 0 to each hierarchy's `tasks`. Moving only the calling thread, the kernel does not
        take cgroup_threadgroup_rwsem for writing, whose first writer waits for an RCU grace period
        (5-25 ms) as any write to cgroup.procs does. A single-threaded process is all of its thread
        group, so the result is the same as cgroup.procs.
        """
        self.add(0)

    def procs(self, recursive: bool = True) -> list[int]:
        d = self._procs_dir()
        pids: list[int] = []
        if not d:
            return pids
        todo = [d]
        while todo:
            cur = todo.pop()
            try:
                pids += [int(x) for x in _read(os.path.join(cur, "cgroup.procs")).split()]
            except OSError:
                continue
            if recursive:
                with os.scandir(cur) as it:
                    todo += [e.path for e in it if e.is_dir(follow_symlinks=False)]
        return pids

    def _procs_dir(self) -> str | None:
        return next(iter(self.dirs.values()), None)

    def kill_all(self, sig: int) -> None:
        """Signal every process in the cgroup and below it, like runc's signalAllProcesses: frozen
        meanwhile, so that none forks a child past the listing. SIGKILL leaves the cgroup thawed (a
        process frozen by the v1 freezer does not die before it is thawed: a paused container would
        never stop); another signal leaves it as it was (a paused container stays paused)."""
        was_frozen = self.frozen()
        tried = False
        if not was_frozen:
            tried = True
            try:
                self.freeze(attempts=100)
            except OSError:
                pass  # no freezer, or it did not finish in 0.1 s: signal what is there anyway
        try:
            for pid in self.procs():
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
        finally:
            if tried or sig == _SIGKILL:
                try:
                    self.thaw()
                except OSError:
                    if self.frozen():
                        raise

    def destroy(self, timeout: float = 5.0) -> None:
        """Remove the cgroup directories (children first); retries while processes exit."""
        deadline = time.monotonic() + timeout
        for d in self.dirs.values():
            r = T.recorder
            t = T.now() if r else 0
            try:
                os.rmdir(d)  # the common case: a leaf with no processes left
                if r:
                    r.done("rmdir", t, {"path": d})
                continue
            except FileNotFoundError:
                continue
            except OSError:
                pass
            for dirpath in sorted((p for p, _, _ in os.walk(d)), key=len, reverse=True):
                while True:
                    try:
                        os.rmdir(dirpath)
                        break
                    except FileNotFoundError:
                        break
                    except OSError as e:
                        if e.errno != errno.EBUSY or time.monotonic() > deadline:
                            raise CgroupError(e.errno, f"cannot remove cgroup {dirpath}: {e.strerror}") from None
                        time.sleep(0.01)

    # -- subclasses ---------------------------------------------------------------------
    def apply(self, resources: dict) -> list[str]:
        """Write the OCI `linux.resources`; returns warnings for what the host cannot do."""
        raise NotImplementedError

    def freeze(self, attempts: int = 1000) -> None:
        """Freeze every process; waits for the kernel to finish, checking `attempts` times 1 ms apart."""
        raise NotImplementedError

    def thaw(self) -> None:
        raise NotImplementedError

    def frozen(self) -> bool:
        raise NotImplementedError

    # -- reading (stats, top, OOM counts) -------------------------------------------------
    def dir_of(self, subsys: str) -> str | None:
        """The directory holding `subsys`'s files (v2: the one directory)."""
        raise NotImplementedError

    def read(self, subsys: str, fname: str) -> str | None:
        """One cgroup file of a controller, stripped; None if the controller or file is not there."""
        d = self.dir_of(subsys)
        if d is None:
            return None
        try:
            return _read(os.path.join(d, fname))
        except OSError:
            return None

    def pids(self) -> list[int]:
        """Every process in the cgroup and below it, sorted (`top`, `exec`'s checks)."""
        return sorted(set(self.procs()))

    def oom_file(self) -> str | None:
        """The file that counts OOM kills (v1 memory.oom_control, v2 memory.events), for `oom_kills`."""
        d = self.dir_of("memory")
        return os.path.join(d, self._OOM_FILE) if d else None

    _OOM_FILE = ""

    def oom_kills(self) -> int:
        return oom_kills(self.oom_file())

    def usage(self) -> dict:
        """One reading of the counters `stats` shows: cpu_ns, mem, mem_limit (None: no limit),
        mem_cache (inactive file pages, which docker leaves out), pids, blk (read, written bytes)."""
        raise NotImplementedError


def oom_kills(path: str | None) -> int:
    """The `oom_kill` count in a memory.oom_control / memory.events file (0 if unreadable)."""
    if not path:
        return 0
    try:
        with open(path) as f:
            for line in f:
                k, _, v = line.partition(" ")
                if k == "oom_kill":
                    return int(v)
    except (OSError, ValueError):
        pass
    return 0


def _kv(text: str | None) -> dict[str, int]:
    out = {}
    for line in (text or "").splitlines():
        parts = line.split()
        if len(parts) == 2:
            try:
                out[parts[0]] = int(parts[1])
            except ValueError:
                pass
    return out


def _int(text: str | None) -> int:
    try:
        return int(text or 0)
    except ValueError:
        return 0


def _rmdir(d: str) -> None:
    try:
        os.rmdir(d)
    except OSError:
        pass


def _dev(d: dict) -> str:
    return f"{d['major']}:{d['minor']}"


class CgroupV1(Cgroup):
    version = 1
    join_self_is_cheap = True

    def join_self(self) -> None:
        for d in self.dirs.values():
            _write(os.path.join(d, "tasks"), "0")

    def _d(self, subsys: str) -> str | None:
        for key, d in self.dirs.items():
            if subsys in key.split(","):
                return d
        return None

    def _procs_dir(self) -> str | None:
        for s in ("pids", "freezer", "memory", "devices", "cpu"):
            d = self._d(s)
            if d:
                return d
        return super()._procs_dir()

    def _init_dir(self, key: str, d: str) -> None:
        if "cpuset" in key.split(","):
            _cpuset_inherit(d)

    def _set(self, subsys: str, fname: str, value: object, warnings: list[str], *, required: bool = True) -> None:
        d = self._d(subsys)
        if d is None:
            warnings.append(f"cgroup controller {subsys} is not mounted; {fname} not set")
            return
        _set_file(os.path.join(d, fname), value, warnings, required, "kernel without this feature")

    def apply(self, r: dict) -> list[str]:
        w: list[str] = []
        mem = r.get("memory") or {}
        if mem:
            self._memory(mem, w)
        cpu = r.get("cpu") or {}
        if cpu.get("shares") is not None:
            self._set("cpu", "cpu.shares", cpu["shares"], w)
        if cpu.get("period") is not None:
            self._set("cpu", "cpu.cfs_period_us", cpu["period"], w)
        if cpu.get("quota") is not None:
            self._set("cpu", "cpu.cfs_quota_us", cpu["quota"], w)
        if cpu.get("realtimePeriod") is not None:
            self._set("cpu", "cpu.rt_period_us", cpu["realtimePeriod"], w)
        if cpu.get("realtimeRuntime") is not None:
            self._set("cpu", "cpu.rt_runtime_us", cpu["realtimeRuntime"], w)
        if cpu.get("cpus"):
            self._set("cpuset", "cpuset.cpus", cpu["cpus"], w)
        if cpu.get("mems"):
            self._set("cpuset", "cpuset.mems", cpu["mems"], w)
        pids = r.get("pids") or {}
        if "limit" in pids:
            self._set("pids", "pids.max", pids["limit"] if pids["limit"] > 0 else "max", w)
        self._blkio(r.get("blockIO") or {}, w)
        for h in r.get("hugepageLimits") or ():
            self._set("hugetlb", f"hugetlb.{h['pageSize']}.limit_in_bytes", h["limit"], w)
        net = r.get("network") or {}
        if net.get("classID") is not None:
            self._set("net_cls", "net_cls.classid", net["classID"], w)
        for p in net.get("priorities") or ():
            self._set("net_prio", "net_prio.ifpriomap", f"{p['name']} {p['priority']}", w)
        if "devices" in r:
            self._devices(r.get("devices") or [], w)
        if r.get("unified"):
            raise CgroupError(errno.EINVAL, "linux.resources.unified needs cgroup v2 (this host uses cgroup v1)")
        return w

    def _memory(self, mem: dict, w: list[str]) -> None:
        limit, swap = mem.get("limit"), mem.get("swap")
        d = self._d("memory")
        has_memsw = bool(d) and os.path.exists(os.path.join(d, "memory.memsw.limit_in_bytes"))
        if swap is not None and not has_memsw:
            w.append("swap accounting is not enabled on this host; memory.swap not set")
            swap = None
        if limit is not None and swap is not None:
            # the kernel keeps limit <= memsw: order the writes so each one is valid
            try:
                self._set("memory", "memory.limit_in_bytes", limit, w)
                self._set("memory", "memory.memsw.limit_in_bytes", swap, w)
            except CgroupError:
                self._set("memory", "memory.memsw.limit_in_bytes", swap, w)
                self._set("memory", "memory.limit_in_bytes", limit, w)
        elif limit is not None:
            self._set("memory", "memory.limit_in_bytes", limit, w)
        elif swap is not None:
            self._set("memory", "memory.memsw.limit_in_bytes", swap, w)
        if mem.get("reservation") is not None:
            self._set("memory", "memory.soft_limit_in_bytes", mem["reservation"], w)
        if mem.get("kernel") is not None:
            self._set("memory", "memory.kmem.limit_in_bytes", mem["kernel"], w, required=False)
        if mem.get("kernelTCP") is not None:
            self._set("memory", "memory.kmem.tcp.limit_in_bytes", mem["kernelTCP"], w, required=False)
        if mem.get("swappiness") is not None:
            self._set("memory", "memory.swappiness", mem["swappiness"], w)
        if mem.get("disableOOMKiller"):
            self._set("memory", "memory.oom_control", 1, w)

    def _blkio(self, b: dict, w: list[str]) -> None:
        if not b:
            return
        d = self._d("blkio")
        prefix = "blkio."
        if d and not os.path.exists(os.path.join(d, "blkio.weight")) and os.path.exists(
                os.path.join(d, "blkio.bfq.weight")):
            prefix = "blkio.bfq."
        if b.get("weight") is not None:
            self._set("blkio", prefix + "weight", b["weight"], w)
        if b.get("leafWeight") is not None:
            self._set("blkio", "blkio.leaf_weight", b["leafWeight"], w)
        for wd in b.get("weightDevice") or ():
            if wd.get("weight") is not None:
                self._set("blkio", prefix + "weight_device", f"{_dev(wd)} {wd['weight']}", w)
            if wd.get("leafWeight") is not None:
                self._set("blkio", "blkio.leaf_weight_device", f"{_dev(wd)} {wd['leafWeight']}", w)
        for key, fname in (("throttleReadBpsDevice", "read_bps_device"), ("throttleWriteBpsDevice", "write_bps_device"),
                           ("throttleReadIOPSDevice", "read_iops_device"),
                           ("throttleWriteIOPSDevice", "write_iops_device")):
            for t in b.get(key) or ():
                self._set("blkio", "blkio.throttle." + fname, f"{_dev(t)} {t['rate']}", w)

    def _devices(self, rules: list[dict], w: list[str]) -> None:
        d = self._d("devices")
        if d is None:
            w.append("devices cgroup is not mounted; device rules not applied")
            return
        # one rule per write(2), in the given order, through one descriptor per file
        fds: dict[str, int] = {}
        try:
            for rule in rules:
                typ = rule.get("type") or "a"
                if typ == "a":
                    entry = "a"
                else:
                    major = "*" if rule.get("major") in (None, -1) else rule["major"]
                    minor = "*" if rule.get("minor") in (None, -1) else rule["minor"]
                    entry = f"{typ} {major}:{minor} {rule.get('access') or 'rwm'}"
                p = os.path.join(d, "devices.allow" if rule.get("allow") else "devices.deny")
                fd = fds.get(p)
                if fd is None:
                    fd = fds[p] = _open_w(p)
                _write_fd(fd, p, entry)
        finally:
            for fd in fds.values():
                os.close(fd)

    def freeze(self, attempts: int = 1000) -> None:
        d = self._d("freezer")
        if d is None:
            raise CgroupError(errno.ENOTSUP, "the freezer cgroup is not mounted")
        for _ in range(attempts):
            _write(os.path.join(d, "freezer.state"), "FROZEN")
            if _read(os.path.join(d, "freezer.state")) == "FROZEN":
                return
            time.sleep(0.001)
        raise CgroupError(errno.EBUSY, "the container did not freeze")

    def thaw(self) -> None:
        d = self._d("freezer")
        if d is None:
            raise CgroupError(errno.ENOTSUP, "the freezer cgroup is not mounted")
        _write(os.path.join(d, "freezer.state"), "THAWED")

    def frozen(self) -> bool:
        d = self._d("freezer")
        try:
            return bool(d) and _read(os.path.join(d, "freezer.state")) != "THAWED"
        except OSError:
            return False

    _OOM_FILE = "memory.oom_control"

    def dir_of(self, subsys: str) -> str | None:
        return self._d(subsys)

    def usage(self) -> dict:
        lim = _int(self.read("memory", "memory.limit_in_bytes"))
        rd = wr = 0
        for line in (self.read("blkio", "blkio.throttle.io_service_bytes") or "").splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[1] == "Read":
                rd += int(parts[2])
            elif len(parts) == 3 and parts[1] == "Write":
                wr += int(parts[2])
        return {"cpu_ns": _int(self.read("cpuacct", "cpuacct.usage")),
                "mem": _int(self.read("memory", "memory.usage_in_bytes")),
                "mem_limit": None if lim >= (1 << 62) or not lim else lim,
                "mem_cache": _kv(self.read("memory", "memory.stat")).get("total_inactive_file", 0),
                "pids": _int(self.read("pids", "pids.current")), "blk": (rd, wr)}


def _cpuset_inherit(d: str) -> None:
    """A new v1 cpuset starts empty (tasks cannot join): copy cpus/mems from the nearest ancestor."""
    for f in ("cpuset.cpus", "cpuset.mems"):
        p = os.path.join(d, f)
        if not os.path.exists(p) or _read(p):
            continue
        chain = [d]
        parent = os.path.dirname(d)
        while os.path.exists(os.path.join(parent, f)) and not _read(os.path.join(parent, f)):
            chain.append(parent)
            parent = os.path.dirname(parent)
        value = _read(os.path.join(parent, f))
        for c in reversed(chain):
            _write(os.path.join(c, f), value)


class CgroupV2(Cgroup):
    version = 2

    @property
    def dir(self) -> str:
        return self.dirs[""]

    def _init_dir(self, key: str, d: str) -> None:
        # enable every available controller on the way down so the leaf gets its files
        root = getattr(self, "root", ROOT)
        rel = os.path.relpath(d, root)
        cur = root
        for part in [] if rel == "." else rel.split("/")[:-1]:
            _enable_controllers(cur)
            cur = os.path.join(cur, part)
        _enable_controllers(cur)

    def _set(self, fname: str, value: object, w: list[str], *, required: bool = True) -> None:
        _set_file(os.path.join(self.dir, fname), value, w, required, "controller not enabled?")

    def apply(self, r: dict) -> list[str]:
        w: list[str] = []
        mem = r.get("memory") or {}
        limit, swap = mem.get("limit"), mem.get("swap")
        if limit is not None:
            self._set("memory.max", "max" if limit == -1 else limit, w)
        if swap is not None:
            if swap == -1:
                v: object = "max"
            elif limit is not None and limit != -1:
                if swap < limit:
                    raise CgroupError(errno.EINVAL, "memory.swap must not be lower than memory.limit")
                v = swap - limit
            else:
                v = swap
            self._set("memory.swap.max", v, w, required=False)
        if mem.get("reservation") is not None:
            self._set("memory.low", mem["reservation"], w)
        if mem.get("disableOOMKiller"):
            w.append("disableOOMKiller is not supported on cgroup v2")
        cpu = r.get("cpu") or {}
        if cpu.get("shares"):
            self._set("cpu.weight", 1 + ((cpu["shares"] - 2) * 9999) // 262142, w)
        if cpu.get("quota") is not None or cpu.get("period") is not None:
            q = cpu.get("quota")
            self._set("cpu.max", f"{'max' if q in (None, -1) or q <= 0 else q} {cpu.get('period') or 100000}", w)
        if cpu.get("idle") is not None:
            self._set("cpu.idle", cpu["idle"], w)
        if cpu.get("cpus"):
            self._set("cpuset.cpus", cpu["cpus"], w)
        if cpu.get("mems"):
            self._set("cpuset.mems", cpu["mems"], w)
        pids = r.get("pids") or {}
        if "limit" in pids:
            self._set("pids.max", pids["limit"] if pids["limit"] > 0 else "max", w)
        b = r.get("blockIO") or {}
        if b.get("weight") is not None:
            self._set("io.weight", f"default {1 + (b['weight'] - 10) * 9999 // 990}", w)
        for key, k in (("throttleReadBpsDevice", "rbps"), ("throttleWriteBpsDevice", "wbps"),
                       ("throttleReadIOPSDevice", "riops"), ("throttleWriteIOPSDevice", "wiops")):
            for t in b.get(key) or ():
                self._set("io.max", f"{_dev(t)} {k}={t['rate']}", w)
        for h in r.get("hugepageLimits") or ():
            self._set(f"hugetlb.{h['pageSize']}.max", h["limit"], w)
        if r.get("devices"):
            w.append("device cgroup rules need eBPF on cgroup v2; not applied (the /dev set still limits access)")
        for k, v in (r.get("unified") or {}).items():
            if "/" in k or k.startswith("."):
                raise CgroupError(errno.EINVAL, f"invalid unified key {k!r}")
            self._set(k, v, w)
        return w

    def kill_all(self, sig: int) -> None:
        if sig == _SIGKILL:
            try:
                # one write kills the whole subtree, frozen or forking (Linux 5.14+)
                _write(os.path.join(self.dir, "cgroup.kill"), "1")
                return
            except OSError:
                pass
        super().kill_all(sig)

    def freeze(self, attempts: int = 1000) -> None:
        self._set("cgroup.freeze", 1, [])
        for _ in range(attempts):
            if self.frozen():
                return
            time.sleep(0.001)
        raise CgroupError(errno.EBUSY, "the container did not freeze")

    def thaw(self) -> None:
        self._set("cgroup.freeze", 0, [])

    def frozen(self) -> bool:
        try:
            with open(os.path.join(self.dir, "cgroup.events")) as f:
                return "frozen 1" in f.read()
        except OSError:
            return False

    _OOM_FILE = "memory.events"

    def dir_of(self, subsys: str) -> str | None:
        return self.dir

    def usage(self) -> dict:
        mx = self.read("memory", "memory.max") or "max"
        rd = wr = 0
        for line in (self.read("io", "io.stat") or "").splitlines():
            for kv in line.split()[1:]:
                k, _, v = kv.partition("=")
                if k == "rbytes":
                    rd += int(v)
                elif k == "wbytes":
                    wr += int(v)
        return {"cpu_ns": _kv(self.read("cpu", "cpu.stat")).get("usage_usec", 0) * 1000,
                "mem": _int(self.read("memory", "memory.current")),
                "mem_limit": None if mx == "max" else _int(mx),
                "mem_cache": _kv(self.read("memory", "memory.stat")).get("inactive_file", 0),
                "pids": _int(self.read("pids", "pids.current")), "blk": (rd, wr)}


def _enable_controllers(d: str) -> None:
    try:
        avail = _read(os.path.join(d, "cgroup.controllers")).split()
        enabled = set(_read(os.path.join(d, "cgroup.subtree_control")).split())
    except OSError:
        return
    want = [c for c in avail if c not in enabled]
    if want:
        try:
            _write(os.path.join(d, "cgroup.subtree_control"), " ".join("+" + c for c in want))
        except OSError:
            pass  # a controller busy in a threaded subtree etc.: leave it, apply() reports missing files


def open_cgroup(cgroups_path: str | None, container_id: str, root: str = ROOT) -> Cgroup:
    """The cgroup for a container (not created yet)."""
    p = normalize_path(cgroups_path, container_id)
    if is_v2(root):
        if os.path.isabs(p):
            d = os.path.join(root, p.lstrip("/"))
        else:
            own = _own_paths().get("", "/") if root == ROOT else "/"
            d = os.path.join(root, own.lstrip("/"), p)
        cg = CgroupV2({"": os.path.normpath(d)})
        cg.root = root  # type: ignore[attr-defined]
        return cg
    own = _own_paths()
    dirs = {}
    for key, (mnt, mroot) in _v1_mounts().items():
        if os.path.isabs(p):
            d = os.path.join(mnt, p.lstrip("/"))
        else:
            mine = own.get(key, "/")
            if mroot != "/" and (mine == mroot or mine.startswith(mroot + "/")):
                mine = mine[len(mroot):]
            d = mnt + "/" + mine.strip("/") + "/" + p
        dirs[key] = os.path.normpath(d)
    return CgroupV1(dirs)


# -- the cgroup of a running process (stats, top, pause state, OOM counts) ---------------------------
def proc_paths(pid: int | str = "self") -> dict[str, str]:
    """/proc/PID/cgroup: hierarchy key (sorted controllers as in mountinfo, 'name=systemd'; '' for the
    v2 line) -> path below that hierarchy's root. {} if the process is gone."""
    out = {}
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            for line in f:
                _, ctrls, path = line.rstrip("\n").split(":", 2)
                out[",".join(sorted(ctrls.split(","))) if ctrls else ""] = path
    except (OSError, ValueError):
        return {}
    return out


def of_pid(pid: int, root: str = ROOT, paths: dict[str, str] | None = None) -> Cgroup | None:
    """The cgroup `pid` runs in (`paths`: its `proc_paths`, read if not given), as a v2 one on a unified
    host and as its v1 hierarchies on a legacy or hybrid one; None if the process is gone."""
    paths = proc_paths(pid) if paths is None else paths
    if not paths:
        return None
    if is_v2(root):
        if "" not in paths:
            return None
        cg = CgroupV2({"": os.path.normpath(os.path.join(root, paths[""].lstrip("/")))})
        cg.root = root  # type: ignore[attr-defined]
        return cg
    return CgroupV1(_below_mounts(paths, _v1_mounts()))


def _below_mounts(paths: dict[str, str], mounts: dict[str, tuple[str, str]]) -> dict[str, str]:
    """hierarchy key -> directory: each path placed below its hierarchy's mountpoint (less the mount's root)."""
    dirs = {}
    for key, (mnt, mroot) in mounts.items():
        p = paths.get(key)
        if p is None:
            continue
        if mroot != "/" and (p == mroot or p.startswith(mroot + "/")):
            p = p[len(mroot):]
        dirs[key] = os.path.normpath(mnt + "/" + p.lstrip("/"))
    return dirs


_OWN_DIRS: list[list[str]] = []


def own_dirs() -> list[str]:
    """The calling process's cgroup directory in every mounted hierarchy: the v2 one, or each v1
    controller's, name=systemd's and a hybrid host's unified one (where a relative cgroupsPath lives)."""
    if not _OWN_DIRS:
        if is_v2():
            _OWN_DIRS.append([os.path.join(ROOT, _own_paths().get("", "/").lstrip("/"))])
        else:
            try:
                _OWN_DIRS.append(sorted(_below_mounts(_own_paths(), _mounts()).values()))
            except OSError:
                return []
    return _OWN_DIRS[0]


def remove_leftover(rel: str) -> None:
    """rmdir, children first and quietly, the cgroup `rel` (relative, e.g. pallet/ID) below the caller's
    own cgroup in every hierarchy, where a runtime left it (its delete usually removed it already)."""
    for base in own_dirs():
        d = os.path.join(base, rel)
        if not os.path.isdir(d):
            continue
        for dirpath, _, _ in sorted(os.walk(d), key=lambda w: -len(w[0])):
            _rmdir(dirpath)
