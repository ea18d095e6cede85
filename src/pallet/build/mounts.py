"""`RUN --mount=...` values (BuildKit's instructions/commands_runmount.go).

A mount is a CSV list of `key=value` fields (Go encoding/csv quoting, so a field may be
quoted to hold a comma): `type=cache,target=/root/.cache,sharing=locked`. BuildKit's
defaults are applied here so the runner does not have to know them: bind mounts are
read-only unless `rw`, cache mounts are shared and keyed by their target, secrets go to
/run/secrets/<id>, the SSH agent socket to /run/buildkit/ssh_agent.<n>.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass

__all__ = ["MOUNT_TYPES", "Mount", "MountError", "parse_mount"]

MOUNT_TYPES = ("bind", "cache", "tmpfs", "secret", "ssh")
SHARING_MODES = ("shared", "private", "locked")


class MountError(ValueError):
    pass


@dataclass
class Mount:
    type: str = "bind"
    from_: str | None = None
    source: str | None = None
    target: str = ""
    readonly: bool = False
    cache_id: str | None = None
    cache_sharing: str | None = None
    required: bool = False
    mode: int | None = None
    uid: int | None = None
    gid: int | None = None
    size: str | None = None
    env: str | None = None


def _bool(key: str, value: str) -> bool:
    v = value.lower()
    if v in ("1", "t", "true"):
        return True
    if v in ("0", "f", "false"):
        return False
    raise MountError(f"invalid value for {key}: {value}")


def _int(key: str, value: str, base: int = 10) -> int:
    try:
        return int(value, base)
    except ValueError:
        raise MountError(f"invalid value for {key}: {value}") from None


def parse_mount(value: str, ssh_index: int = 0) -> Mount:
    """One --mount value; ssh_index numbers SSH sockets without an explicit target."""
    try:
        fields = next(csv.reader([value], skipinitialspace=False), [])
    except csv.Error as e:
        raise MountError(f"invalid mount {value!r}: {e}") from None
    m = Mount()
    pending: list[tuple[str, str, bool]] = []
    for f in fields:
        f = f.strip()
        if not f:
            continue
        key, eq, val = f.partition("=")
        key = key.lower()
        if key == "type":
            if not eq or val not in MOUNT_TYPES:
                raise MountError(f"unsupported mount type {val!r}")
            m.type = val
            continue
        pending.append((key, val, bool(eq)))
    if m.type == "bind":
        m.readonly = True
    for key, val, has_value in pending:
        if key in ("readonly", "ro") and not has_value:
            m.readonly = True
            continue
        if key in ("readwrite", "rw") and not has_value:
            m.readonly = False
            continue
        if key == "required" and not has_value and m.type in ("secret", "ssh"):
            m.required = True
            continue
        if not has_value:
            raise MountError(f"invalid field '{key}' must be a key=value pair")
        if key == "from":
            m.from_ = val
        elif key in ("source", "src"):
            m.source = val
        elif key in ("target", "dst", "destination"):
            m.target = val
        elif key in ("readonly", "ro"):
            m.readonly = _bool(key, val)
        elif key in ("readwrite", "rw"):
            m.readonly = not _bool(key, val)
        elif key == "required":
            m.required = _bool(key, val)
        elif key == "id":
            m.cache_id = val
        elif key == "sharing":
            if val not in SHARING_MODES:
                raise MountError(f"unsupported sharing value {val!r}")
            m.cache_sharing = val
        elif key == "mode":
            m.mode = _int(key, val, 8)
        elif key == "uid":
            m.uid = _int(key, val)
        elif key == "gid":
            m.gid = _int(key, val)
        elif key == "size" and m.type == "tmpfs":
            m.size = val
        elif key == "env" and m.type == "secret":
            m.env = val
        else:
            raise MountError(f"unexpected key '{key}' in '{key}={val}'")

    if m.type == "secret":
        if m.cache_id is None and m.target == "" and m.env is None:
            raise MountError("one of source, target required")
        if m.cache_id is None:
            m.cache_id = m.source or (m.target.rsplit("/", 1)[-1] if m.target else None) or m.env
        if m.target == "" and m.env is None:
            m.target = "/run/secrets/" + (m.cache_id or "")
    elif m.type == "ssh":
        if m.cache_id is None:
            m.cache_id = "default"
        if m.target == "":
            m.target = f"/run/buildkit/ssh_agent.{ssh_index}"
    elif m.target == "":
        raise MountError("mount target is required")
    if m.type == "cache":
        if m.cache_sharing is None:
            m.cache_sharing = "shared"
        if m.cache_id is None:
            m.cache_id = m.target
    elif m.cache_sharing is not None:
        raise MountError("sharing is only supported for cache mounts")
    return m
