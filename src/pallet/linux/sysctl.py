"""/proc/sys: read and write one kernel setting of the calling thread's namespaces."""

from __future__ import annotations


def _path(key: str) -> str:
    return "/proc/sys/" + key.replace(".", "/")


def get(key: str) -> str:
    with open(_path(key)) as f:
        return f.read().strip()


def write(key: str, value: str) -> None:
    """Write `value` unless it is already there (a write of the same value still costs a syscall)."""
    if get(key) != value:
        from pallet.linux import kernfs

        kernfs.write_file(_path(key), value)
