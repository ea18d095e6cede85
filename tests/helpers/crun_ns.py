"""A private mount namespace in which crun can run on a cgroup v1 "hybrid" host.

crun refuses a hybrid host whose cgroup2 root still owns controllers ("cgroups in hybrid mode not
supported, drop all controllers from cgroupv2"). Mounting those controllers as v1 hierarchies moves
them off the cgroup2 root, which is what ../shared/tools/runtime-validation.sh does on the host.
Tests must not depend on that having happened, nor change the host's mounts: so they mount the
hierarchies in a mount namespace of their own, on a tmpfs of its own over /sys/fs/cgroup (the
host's hierarchies bound into it), and run pallet there with `nsenter --mount=FILE`. The namespace
is pinned by a bind mount of its nsfs file, and `close()` ends it; a v1 hierarchy with no cgroups
left is destroyed with its last mount, which hands its controllers back to cgroup2.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

UNIFIED = Path("/sys/fs/cgroup/unified")


def crun_refuses_host() -> bool:
    """True on a hybrid host with controllers on the cgroup2 root (crun refuses every container)."""
    try:
        return (UNIFIED / "cgroup.controllers").read_text().strip() != ""
    except OSError:
        return False


def missing_v1_controllers() -> list[str]:
    """Controllers on the cgroup2 root plus enabled v1 controllers bound to no hierarchy."""
    names = set((UNIFIED / "cgroup.controllers").read_text().split())
    for line in Path("/proc/cgroups").read_text().splitlines()[1:]:
        name, hierarchy, _, enabled = line.split()
        if hierarchy == "0" and enabled == "1":
            names.add(name)
    groups = {"net_cls,net_prio" if n in ("net_cls", "net_prio") else n for n in names}
    return sorted(groups)


SETUP = r"""
set -e
old=$1; shift
mount --rbind /sys/fs/cgroup "$old"
mount -t tmpfs -o mode=755 tmpfs /sys/fs/cgroup
for d in "$old"/*; do
  n=${d##*/}
  if [ -L "$d" ]; then ln -s "$(readlink "$d")" "/sys/fs/cgroup/$n"
  else mkdir "/sys/fs/cgroup/$n"; mount --rbind "$d" "/sys/fs/cgroup/$n"; fi
done
umount -l "$old"
for c in "$@"; do
  mkdir "/sys/fs/cgroup/$c"
  mount -t cgroup -o "$c" cgroup "/sys/fs/cgroup/$c"
done
if [ -d /sys/fs/cgroup/net_cls,net_prio ]; then
  ln -s net_cls,net_prio /sys/fs/cgroup/net_cls; ln -s net_cls,net_prio /sys/fs/cgroup/net_prio
fi
"""

CLEANUP = r"""
for c in "$@"; do
  [ -d "/sys/fs/cgroup/$c" ] || continue
  find "/sys/fs/cgroup/$c" -mindepth 1 -depth -type d -exec rmdir {} + 2>/dev/null || true
  umount "/sys/fs/cgroup/$c" || true
done
"""


class CrunMountNamespace:
    def __init__(self, workdir: Path) -> None:
        self.dir = workdir
        self.nsfile = workdir / "mnt"
        self.controllers = missing_v1_controllers()
        self._pinned = False

    @property
    def prefix(self) -> list[str]:
        return ["nsenter", f"--mount={self.nsfile}", "--"]

    def start(self) -> CrunMountNamespace:
        self.dir.mkdir(parents=True, exist_ok=True)
        # the nsfs bind needs a mount point whose propagation is private
        subprocess.run(["mount", "--bind", str(self.dir), str(self.dir)], check=True)
        self._pinned = True
        subprocess.run(["mount", "--make-private", str(self.dir)], check=True)
        self.nsfile.touch()
        old = self.dir / "old-cgroup"
        old.mkdir()
        subprocess.run(["unshare", f"--mount={self.nsfile}", "--propagation", "private",
                        "sh", "-c", SETUP, "sh", str(old), *self.controllers], check=True,
                       capture_output=True, text=True)
        return self

    def close(self) -> None:
        if not self._pinned:
            return
        subprocess.run([*self.prefix, "sh", "-c", CLEANUP, "sh", *self.controllers], capture_output=True)
        subprocess.run(["umount", str(self.nsfile)], capture_output=True)
        subprocess.run(["umount", "-l", str(self.dir)], capture_output=True)
        self._pinned = False
        release_lingering(self.controllers, self.dir / "release")


def _bound(controllers: list[str]) -> list[str]:
    ids = {}
    for line in Path("/proc/cgroups").read_text().splitlines()[1:]:
        name, hierarchy, *_ = line.split()
        ids[name] = hierarchy
    return [c for c in controllers if ids.get(c.split(",")[0]) not in (None, "0")]


def release_lingering(controllers: list[str], mountpoint: Path, tries: int = 20) -> None:
    """Hand the controllers back to cgroup2 if their v1 hierarchy outlived its mounts.

    A hierarchy unmounted while it still had (dying) child cgroups is kept by the kernel with no
    mount; mounting it again once it is empty and unmounting it then destroys it."""
    for _ in range(tries):
        if not _bound(controllers):
            return
        time.sleep(0.1)
        left = _bound(controllers)
        script = "".join(f'mkdir -p "$1/{i}"; mount -t cgroup -o "{c}" cgroup "$1/{i}" && umount "$1/{i}"; '
                         for i, c in enumerate(left))
        subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh",
                        str(mountpoint)], capture_output=True)
        for _ in range(20):          # the kernel destroys an idle hierarchy asynchronously
            if not _bound(controllers):
                return
            time.sleep(0.1)
