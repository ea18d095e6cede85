"""Device nodes: mknod(2) in the container's /dev, or a bind mount from the host in a user namespace."""

from __future__ import annotations

import os
import stat

from pallet.linux import trace as T

# the default /dev set of the runtime spec ("Default Devices")
DEFAULT_DEVICES = [
    {"path": "/dev/null", "type": "c", "major": 1, "minor": 3, "fileMode": 0o666},
    {"path": "/dev/zero", "type": "c", "major": 1, "minor": 5, "fileMode": 0o666},
    {"path": "/dev/full", "type": "c", "major": 1, "minor": 7, "fileMode": 0o666},
    {"path": "/dev/random", "type": "c", "major": 1, "minor": 8, "fileMode": 0o666},
    {"path": "/dev/urandom", "type": "c", "major": 1, "minor": 9, "fileMode": 0o666},
    {"path": "/dev/tty", "type": "c", "major": 5, "minor": 0, "fileMode": 0o666},
]
# what runc allows in the devices cgroup besides the configured devices
DEFAULT_ALLOW = [
    {"allow": True, "type": "c", "major": None, "minor": None, "access": "m"},
    {"allow": True, "type": "b", "major": None, "minor": None, "access": "m"},
    *({"allow": True, "type": "c", "major": d["major"], "minor": d["minor"], "access": "rwm"}
      for d in DEFAULT_DEVICES),
    {"allow": True, "type": "c", "major": 136, "minor": None, "access": "rwm"},  # /dev/pts/*
    {"allow": True, "type": "c", "major": 5, "minor": 2, "access": "rwm"},  # /dev/ptmx
    {"allow": True, "type": "c", "major": 10, "minor": 200, "access": "rwm"},  # /dev/net/tun
]

_TYPES = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}


def make_node(target: str, dev: dict, *, bind_from_host: bool, mount_fn, parent_exists: bool = False) -> None:
    """Create `target` as the device `dev` (OCI linux.devices entry); an existing file is replaced."""
    if not parent_exists:
        os.makedirs(os.path.dirname(target), exist_ok=True)
    if bind_from_host:
        if not os.path.exists(target):
            os.close(os.open(target, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644))
        mount_fn(dev["path"], target)
        return
    typ = _TYPES.get(dev.get("type", ""))
    if typ is None:
        raise ValueError(f"device {dev.get('path')}: unknown type {dev.get('type')!r}")
    mode = dev.get("fileMode")
    if mode is None:
        mode = 0o666
    devnum = os.makedev(dev.get("major", 0), dev.get("minor", 0)) if typ != stat.S_IFIFO else 0
    r = T.recorder
    t = T.now() if r else 0
    try:
        os.mknod(target, typ | (mode & 0o7777), devnum)
    except FileExistsError:
        os.unlink(target)
        os.mknod(target, typ | (mode & 0o7777), devnum)
    if r:
        r.done("mknod", t, {"path": target, "type": dev.get("type"), "major": dev.get("major", 0),
                            "minor": dev.get("minor", 0), "mode": oct(mode & 0o7777)})
    os.chmod(target, mode & 0o7777)
    os.chown(target, dev.get("uid", 0) or 0, dev.get("gid", 0) or 0)
