"""Writes to the kernel's files (procfs, sysfs, cgroupfs): the one place the runtime does them.

A refused write names its file, as runc's do (Go's *os.PathError): `open PATH: ERRNO`, `write PATH:
ERRNO`, with the errno in Go's words (lower case: `permission denied`). With `show_value`, the value
goes first (the default) as in runc's cgroup writes: `failed to write "VALUE": write PATH: ERRNO`.
"""

from __future__ import annotations

import os

from pallet.linux import trace as T


def errno_text(errno: int | None) -> str:
    """strerror as Go spells it (syscall.Errno.Error): `permission denied`."""
    return os.strerror(errno).lower() if errno else "unknown error"


class KernelWriteError(OSError):
    """OSError(errno, message) whose str() is the message alone (no `[Errno N]` in front)."""

    def __str__(self) -> str:
        return str(self.args[1]) if len(self.args) > 1 else super().__str__()


def go_quote(value: str) -> str:
    """Go's %q of a string, for the characters kernel values hold: "0 1000 1\\n"."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t") + '"'


def _error(op: str, path: str, e: OSError, value: str | None, cls: type[KernelWriteError]) -> KernelWriteError:
    msg = f"{op} {path}: {errno_text(e.errno)}"
    if value is not None:
        msg = f"failed to write {go_quote(value)}: {msg}"
    return cls(e.errno, msg)


def open_w(path: str, flags: int = 0, *, error: type[KernelWriteError] = KernelWriteError) -> int:
    """os.open(path, O_WRONLY|O_CLOEXEC|flags); a refusal is `open PATH: ERRNO`."""
    try:
        return os.open(path, os.O_WRONLY | os.O_CLOEXEC | flags)
    except OSError as e:
        raise _error("open", path, e, None, error) from None


def write_fd(fd: int, path: str, value: str | bytes, *, show_value: bool = True,
             error: type[KernelWriteError] = KernelWriteError) -> None:
    """One write(2) of `value` to `fd` (opened on `path`): kernel files take a value in one write."""
    data = value.encode() if isinstance(value, str) else value
    r = T.recorder
    t = T.now() if r else 0
    try:
        os.write(fd, data)
    except OSError as e:
        if r:
            r.done("write", t, {"path": path, "value": data.decode(errors="replace")}, e)
        shown = data.decode(errors="replace") if show_value else None
        raise _error("write", path, e, shown, error) from None
    if r:
        r.done("write", t, {"path": path, "value": data.decode(errors="replace")})


def write_file(path: str, value: str | bytes, *, flags: int = 0, show_value: bool = True,
               error: type[KernelWriteError] = KernelWriteError) -> None:
    """Open `path` for writing, write `value` in one write(2), close it."""
    fd = open_w(path, flags, error=error)
    try:
        write_fd(fd, path, value, show_value=show_value, error=error)
    finally:
        os.close(fd)
