"""`-u USER[:GROUP]` resolved inside the container's root filesystem.

Files are opened component by component from a descriptor of the root with
O_NOFOLLOW; a symlink is read and resolved as if the container's root were `/`
(an absolute target or a `..` past the top stays inside), so a hostile image
whose /etc/passwd links to the host's never makes us read a host file.
"""

from __future__ import annotations

import errno
import os
import stat

from pallet.errors import PalletError
from pallet.records import field, record

MAX_SYMLINKS = 40


@record
class ExecUser:
    uid: int
    gid: int
    additional_gids: list[int] = field(default_factory=list)
    home: str = "/"
    name: str | None = None


def open_in_root(root: str, path: str, flags: int = os.O_RDONLY) -> int:
    """Open `path` (absolute, as seen inside the container) below `root`, never leaving it."""
    rootfd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        todo = [c for c in path.split("/") if c not in ("", ".")]
        stack: list[int] = []   # fds of the directories walked, rootfd implied at the bottom
        links = 0
        cur = rootfd
        while todo:
            comp = todo.pop(0)
            if comp == "..":
                if stack:
                    os.close(stack.pop())
                cur = stack[-1] if stack else rootfd
                continue
            last = not todo
            fd = os.open(comp, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=cur)
            st = os.fstat(fd)
            if stat.S_ISLNK(st.st_mode):
                links += 1
                if links > MAX_SYMLINKS:
                    os.close(fd)
                    raise OSError(errno.ELOOP, f"too many symlinks resolving {path}")
                target = os.readlink(comp, dir_fd=cur)
                os.close(fd)
                if target.startswith("/"):
                    for d in stack:
                        os.close(d)
                    stack = []
                    cur = rootfd
                todo[:0] = [c for c in target.split("/") if c not in ("", ".")]
                continue
            if last:
                os.close(fd)
                return os.open(comp, flags | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=cur)
            if not stat.S_ISDIR(st.st_mode):
                os.close(fd)
                raise OSError(errno.ENOTDIR, f"{path}: not a directory")
            stack.append(fd)
            cur = fd
        return os.open(".", flags | os.O_CLOEXEC, dir_fd=cur)
    finally:
        for d in locals().get("stack", []):
            try:
                os.close(d)
            except OSError:
                pass
        os.close(rootfd)


def read_in_root(root: str, path: str, limit: int = 4 << 20) -> str | None:
    try:
        fd = open_in_root(root, path)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return os.read(fd, limit).decode("utf-8", "replace")
    finally:
        os.close(fd)


def _entries(text: str | None, nfields: int) -> list[list[str]]:
    out = []
    for line in (text or "").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(":")
        if len(parts) < nfields:
            parts += [""] * (nfields - len(parts))
        out.append(parts)
    return out


def _int(text: str) -> int | None:
    try:
        v = int(text, 10)
    except ValueError:
        return None
    return v if 0 <= v < 2**32 - 1 else None


def resolve_user(root: str, spec: str | None) -> ExecUser:
    """USER[:GROUP] (names or numbers) -> uid, gid, supplementary gids, home, like runc's GetExecUser."""
    spec = (spec or "").strip()
    user_part, _, group_part = spec.partition(":")
    passwd = _entries(read_in_root(root, "/etc/passwd"), 7)
    uid, gid, home, name = 0, 0, "/", "root"
    if user_part:
        num = _int(user_part)
        match = next((p for p in passwd if (p[0] == user_part) or (num is not None and _int(p[2]) == num)), None)
        if match is None:
            if num is None:
                raise PalletError(f"unable to find user {user_part}: no matching entries in passwd file")
            uid, name = num, None
        else:
            uid, gid, home, name = _int(match[2]) or 0, _int(match[3]) or 0, match[5] or "/", match[0]
    else:
        match = next((p for p in passwd if _int(p[2]) == 0), None)
        if match:
            home = match[5] or "/"
    groups = None
    if group_part:
        groups = _entries(read_in_root(root, "/etc/group"), 4)
        num = _int(group_part)
        g = next((x for x in groups if x[0] == group_part or (num is not None and _int(x[2]) == num)), None)
        if g is None:
            if num is None:
                raise PalletError(f"unable to find group {group_part}: no matching entries in group file")
            gid = num
        else:
            gid = _int(g[2]) or 0
    extra: list[int] = []
    if name and not group_part:
        groups = groups if groups is not None else _entries(read_in_root(root, "/etc/group"), 4)
        for g in groups:
            members = [m.strip() for m in g[3].split(",") if m.strip()]
            gnum = _int(g[2])
            if name in members and gnum is not None and gnum != gid and gnum not in extra:
                extra.append(gnum)
    return ExecUser(uid, gid, extra, home, name)
