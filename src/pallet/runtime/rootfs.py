"""The container's filesystem view, built by the container init in its mount namespace.

Order (like runc): propagation of /, bind the rootfs onto itself, the config's
mounts (each target resolved inside the rootfs, symlinks included), /dev, then
pivot_root (or MS_MOVE + chroot), then after the pivot: /dev links, sysctls,
masked and read-only paths, a read-only root.
"""

from __future__ import annotations

import os

from pallet.linux import kernfs
from pallet.linux import mount as M
from pallet.linux import trace as T
from pallet.linux.devices import DEFAULT_DEVICES, make_node


class SetupError(Exception):
    pass


def secure_join(root: str, unsafe: str) -> str:
    """root + unsafe with every symlink resolved as if root were / (never leaves root)."""
    parts = [p for p in unsafe.split("/") if p not in ("", ".")]
    resolved: list[str] = []
    links = 0
    while parts:
        p = parts.pop(0)
        if p == "..":
            if resolved:
                resolved.pop()
            continue
        cur = os.path.join(root, *resolved, p)
        try:
            is_link = os.path.islink(cur)
        except OSError:
            is_link = False
        if is_link:
            links += 1
            if links > 255:
                raise SetupError(f"too many symlinks resolving {unsafe} in the container root")
            target = os.readlink(cur)
            if target.startswith("/"):
                resolved = []
            parts = [x for x in target.split("/") if x not in ("", ".")] + parts
            continue
        resolved.append(p)
    return os.path.join(root, *resolved)


def _mkfile(path: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if not os.path.exists(path):
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o755))


_LOCKED = ((os.ST_RDONLY, M.MS_RDONLY), (os.ST_NOSUID, M.MS_NOSUID), (os.ST_NODEV, M.MS_NODEV),
           (os.ST_NOEXEC, M.MS_NOEXEC), (os.ST_NOATIME, M.MS_NOATIME), (os.ST_NODIRATIME, M.MS_NODIRATIME),
           (os.ST_RELATIME, M.MS_RELATIME))


def _statvfs_flags(path: str, mask: int) -> int:
    f = os.statvfs(path).f_flag
    out = 0
    for st, ms in _LOCKED:
        if f & st and ms & mask:
            out |= ms
    return out


def remount_bind(target: str, flags: int, *, userns: bool) -> None:
    """Re-mount a bind mount with new flags; in a user namespace keep the flags the kernel locked."""
    if userns:
        flags |= _statvfs_flags(target, M.MS_NOSUID | M.MS_NODEV | M.MS_NOEXEC | M.MS_RDONLY)
    M.mount(None, target, None, flags | M.MS_BIND | M.MS_REMOUNT)


def _mountinfo() -> list[tuple[str, str]]:
    """(mount point, optional fields) of every mount in this namespace."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            pre = line.split(" - ")[0].split()
            mp = pre[4].encode().decode("unicode_escape") if "\\" in pre[4] else pre[4]
            out.append((mp, " ".join(pre[6:])))
    return out


def make_parent_private(path: str) -> None:
    """pivot_root and MS_MOVE refuse a shared parent mount: make the mount holding `path` private."""
    best = "/"
    shared = False
    for mp, opt in _mountinfo():
        if (path == mp or path.startswith(mp.rstrip("/") + "/")) and len(mp) >= len(best):
            best, shared = mp, "shared:" in opt
    if shared:
        M.mount(None, best, None, M.MS_PRIVATE)


class Rootfs:
    def __init__(self, cfg: dict, bundle: str, rootfs: str, *, userns: bool, cgroup_dirs: dict[str, str],
                 cgroup_v2: bool) -> None:
        self.cfg = cfg
        self.linux = cfg.get("linux") or {}
        self.bundle = bundle
        self.rootfs = rootfs
        self.userns = userns
        self.cgroup_dirs = cgroup_dirs
        self.cgroup_v2 = cgroup_v2

    # -- before pivot -------------------------------------------------------------------
    def prepare(self) -> None:
        self.prepare_start()
        self.prepare_finish()

    def prepare_start(self) -> None:
        """Propagation, the rootfs bind and the config's mounts up to the first cgroup mount (which
        binds the container's cgroup directories: they may not exist yet); prepare_finish does the rest."""
        T.stage("mounts")
        prop = self.linux.get("rootfsPropagation")
        flag = M.PROPAGATION.get(prop, 0) if prop else M.MS_SLAVE | M.MS_REC
        if prop and not flag:
            raise SetupError(f"invalid rootfsPropagation {prop!r}")
        if flag & M.MS_UNBINDABLE:
            # an unbindable root could not be bind-mounted onto itself: prepare with a private root,
            # finish() applies the configured propagation after the pivot
            flag = M.MS_PRIVATE | M.MS_REC
        M.mount(None, "/", None, flag)
        if flag & M.MS_SHARED:
            # still shared after the propagation change: pivot_root/MS_MOVE need a private parent
            make_parent_private(self.rootfs)
        M.mount(self.rootfs, self.rootfs, "bind", M.MS_BIND | M.MS_REC)
        self._done = 0
        for m in self.cfg.get("mounts") or ():
            if m.get("type") in ("cgroup", "cgroup2"):
                break
            self.mount_entry(m)
            self._done += 1

    def prepare_finish(self) -> None:
        """The remaining mounts, in order, and the /dev nodes (once in the container's cgroup)."""
        mounts = self.cfg.get("mounts") or []
        for m in mounts[self._done:]:
            self.mount_entry(m)
        self._done = len(mounts)
        if not any(os.path.normpath(m.get("destination", "")) == "/dev" and _is_bind(m) for m in mounts):
            self.create_devices()

    def mount_entry(self, m: dict) -> None:
        dest = m.get("destination") or ""
        if not dest:
            raise SetupError("a mount has no destination")
        target = secure_join(self.rootfs, dest)
        typ = m.get("type") or ""
        flags, pflags, data = M.parse_options(m.get("options") or [])
        src = m.get("source") or ""
        if _is_bind(m):
            if not src.startswith("/"):
                src = os.path.join(self.bundle, src)
            if not os.path.exists(src):
                raise SetupError(f"mount source {src} for {dest} does not exist")
            if os.path.isdir(src):
                os.makedirs(target, exist_ok=True)
            else:
                _mkfile(target)
            M.mount(src, target, None, M.MS_BIND | (flags & M.MS_REC))
            extra = flags & ~(M.MS_BIND | M.MS_REC | M.MS_REMOUNT)
            if extra:
                remount_bind(target, extra, userns=self.userns)
        elif typ == "cgroup" or typ == "cgroup2":
            self.mount_cgroup(target, flags)
        else:
            os.makedirs(target, exist_ok=True)
            try:
                M.mount(src or typ, target, typ, flags & ~M.MS_REMOUNT, data)
            except OSError as e:
                if typ == "sysfs" and e.errno == 1:
                    # sysfs of the host's network namespace cannot be mounted from a user namespace
                    M.mount("/sys", target, None, M.MS_BIND | M.MS_REC)
                    remount_bind(target, flags | M.MS_RDONLY, userns=True)
                else:
                    raise SetupError(f"cannot mount {typ} on {dest}: {e.strerror}") from None
        if pflags:
            for o in m.get("options") or ():
                if o in M.PROPAGATION:
                    M.mount(None, target, None, M.PROPAGATION[o])

    def mount_cgroup(self, target: str, flags: int) -> None:
        os.makedirs(target, exist_ok=True)
        ro = flags & M.MS_RDONLY
        if self.cgroup_v2:
            d = self.cgroup_dirs.get("")
            if d and os.path.isdir(d):
                M.mount(d, target, None, M.MS_BIND | M.MS_REC)
                remount_bind(target, (flags & ~M.MS_REC) | M.MS_NOSUID | M.MS_NODEV | M.MS_NOEXEC, userns=self.userns)
            return
        M.mount("tmpfs", target, "tmpfs", M.MS_NOSUID | M.MS_NODEV | M.MS_NOEXEC, "mode=755")
        for key, d in self.cgroup_dirs.items():
            name = key.replace("name=", "")
            sub = os.path.join(target, name)
            try:
                os.mkdir(sub)  # in the fresh tmpfs
            except FileExistsError:
                pass
            if os.path.isdir(d):
                M.mount(d, sub, None, M.MS_BIND | M.MS_REC)
                remount_bind(sub, M.MS_NOSUID | M.MS_NODEV | M.MS_NOEXEC | ro, userns=self.userns)
        if ro:
            M.mount(None, target, None, M.MS_REMOUNT | M.MS_RDONLY | M.MS_NOSUID | M.MS_NODEV | M.MS_NOEXEC)

    def create_devices(self) -> None:
        T.stage("devices")
        dev = secure_join(self.rootfs, "/dev")
        os.makedirs(dev, exist_ok=True)
        seen = set()
        old = os.umask(0)
        try:
            for d in list(self.linux.get("devices") or []) + DEFAULT_DEVICES:
                p = os.path.normpath(d.get("path") or "")
                if p in seen:
                    continue
                seen.add(p)
                if not p.startswith("/dev/"):
                    raise SetupError(f"device path {p} is not under /dev")
                target = secure_join(self.rootfs, p)
                try:
                    make_node(target, d, bind_from_host=self.userns,
                              mount_fn=lambda s, t: M.mount(s, t, None, M.MS_BIND),
                              parent_exists=os.path.dirname(target) == dev)
                except OSError as e:
                    raise SetupError(f"cannot create device {p}: {e.strerror}") from None
        finally:
            os.umask(old)

    # -- the switch ---------------------------------------------------------------------
    def pivot(self, no_pivot: bool) -> None:
        T.stage("pivot_root")
        if no_pivot:
            self._move_root()
            return
        oldroot = os.open("/", os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
        newroot = os.open(self.rootfs, os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
        try:
            os.fchdir(newroot)
            M.pivot_root(".", ".")
            os.fchdir(oldroot)
            M.mount(None, ".", None, M.MS_SLAVE | M.MS_REC)
            M.umount(".", M.MNT_DETACH)
            os.chdir("/")
        finally:
            os.close(oldroot)
            os.close(newroot)

    def _move_root(self) -> None:
        root = self.rootfs.rstrip("/")
        # hide what is not below the new root (deepest first), then move it over /
        for mp, _ in sorted(_mountinfo(), key=lambda t: -len(t[0])):
            if mp == "/" or mp == root or mp.startswith(root + "/"):
                continue
            try:
                M.umount(mp, M.MNT_DETACH)
            except OSError:
                pass
        os.chdir(root)
        M.mount(root, "/", None, M.MS_MOVE)
        M.chroot(".")
        os.chdir("/")

    # -- after pivot --------------------------------------------------------------------
    def dev_links(self) -> None:
        if os.path.isdir("/dev"):
            self._dev_links()

    def finish(self, *, terminal_slave: str | None) -> None:
        if terminal_slave:
            _mkfile("/dev/console")
            M.mount(terminal_slave, "/dev/console", None, M.MS_BIND)
        T.stage("sysctls")
        for k, v in (self.linux.get("sysctl") or {}).items():
            p = "/proc/sys/" + k.replace(".", "/")
            try:
                kernfs.write_file(p, str(v))
            except OSError as e:
                raise SetupError(f"cannot set sysctl {k}: {e}") from None
        prop = self.linux.get("rootfsPropagation")
        if prop:
            M.mount(None, "/", None, M.PROPAGATION[prop])
        T.stage("readonly paths")
        for p in self.linux.get("readonlyPaths") or ():
            self._readonly(p)
        T.stage("masked paths")
        for p in self.linux.get("maskedPaths") or ():
            self._mask(p)
        if (self.cfg.get("root") or {}).get("readonly"):
            remount_bind("/", M.MS_RDONLY | _statvfs_flags("/", M.MS_NOSUID | M.MS_NODEV | M.MS_NOEXEC),
                         userns=self.userns)

    def _dev_links(self) -> None:
        links = [("/proc/self/fd", "/dev/fd"), ("/proc/self/fd/0", "/dev/stdin"),
                 ("/proc/self/fd/1", "/dev/stdout"), ("/proc/self/fd/2", "/dev/stderr")]
        if os.path.exists("/proc/kcore"):
            links.append(("/proc/kcore", "/dev/core"))
        for src, dst in links:
            if not os.path.lexists(dst):
                try:
                    os.symlink(src, dst)
                except OSError:
                    pass
        if os.path.exists("/dev/pts/ptmx"):
            try:
                if os.path.lexists("/dev/ptmx"):
                    os.unlink("/dev/ptmx")
                os.symlink("pts/ptmx", "/dev/ptmx")
            except OSError:
                pass

    def _readonly(self, p: str) -> None:
        if not os.path.lexists(p):
            return
        try:
            M.mount(p, p, None, M.MS_BIND | M.MS_REC)
            remount_bind(p, M.MS_RDONLY | M.MS_REC | _statvfs_flags(p, M.MS_NOSUID | M.MS_NODEV | M.MS_NOEXEC),
                         userns=self.userns)
        except OSError as e:
            raise SetupError(f"cannot make {p} read-only: {e.strerror}") from None

    def _mask(self, p: str) -> None:
        if not os.path.lexists(p):
            return
        try:
            if os.path.isdir(p):
                M.mount("tmpfs", p, "tmpfs", M.MS_RDONLY)
            else:
                M.mount("/dev/null", p, None, M.MS_BIND)
        except OSError as e:
            raise SetupError(f"cannot mask {p}: {e.strerror}") from None


def _is_bind(m: dict) -> bool:
    return m.get("type") == "bind" or any(o in ("bind", "rbind") for o in m.get("options") or ())
