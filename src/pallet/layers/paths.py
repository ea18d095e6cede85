"""Entry names -> clean relative paths, and symlink resolution confined to a root.

`clean_name` is lexical: absolute names are made relative (as tar, docker and
umoci do), `.`/empty components dropped, `..` resolved -- and a name whose `..`
climbs above the root is refused with `UnsafePath` naming the entry.

`Resolver` maps a clean relative directory path to a real path under the root
that contains no symlinks, following symlinks *inside* the root the way Go's
securejoin does: an absolute link target or a `..` that would leave the root
is evaluated as if the root were `/`, so it lands inside the root. Results are
cached per directory; the cache must be cleared (`forget()`) whenever a
directory or symlink in the tree is removed or replaced, because a cached path
was resolved through it. The cache is what makes per-entry resolution cost a
dict lookup instead of an lstat per path component; it is sound because the
tree being unpacked is private to the unpacker while it works (layers unpack
into a fresh temp dir; the copy driver's flattened trees likewise).
"""

from __future__ import annotations

import os
import posixpath
import stat

from pallet.errors import InvalidArchive, UnsafePath

MAX_LINKS = 255


def clean_name(name: str, *, what: str = "tar entry") -> str:
    """'./usr//bin/' -> 'usr/bin'; '' for the root itself; UnsafePath if it climbs out."""
    if "\0" in name:
        raise UnsafePath(f"{what} {name!r} has a NUL byte in its name")
    fast = name
    if fast.startswith("./"):
        fast = fast[2:]
    if fast.endswith("/"):
        fast = fast.rstrip("/")
    if not (fast.startswith("/") or "//" in fast or "/./" in fast or ".." in fast or fast == "."
            or fast.endswith("/.") or fast.startswith("./")):
        return fast
    parts: list[str] = []
    for comp in name.split("/"):
        if comp in ("", "."):
            continue
        if comp == "..":
            if not parts:
                raise UnsafePath(f"{what} {name!r} points outside the layer root (through '..'); refused")
            parts.pop()
        else:
            parts.append(comp)
    return "/".join(parts)


class Resolver:
    """Resolve (and create, on request) directories under `root` without ever leaving it."""

    def __init__(self, root: str) -> None:
        self.root = root.rstrip("/") or "/"
        # rel dir -> (real absolute path without symlinks, directory has setgid bit)
        self._cache: dict[str, tuple[str, bool]] = {"": (self.root, False)}
        self.created_mode = 0o755

    def forget(self) -> None:
        self._cache = {"": self._cache[""]}

    def remember(self, rel: str, real: str, sgid: bool) -> None:
        self._cache[rel] = (real, sgid)

    def set_root_sgid(self, sgid: bool) -> None:
        self._cache[""] = (self.root, sgid)

    def lookup(self, rel: str) -> tuple[str, bool] | None:
        return self._cache.get(rel)

    def dir(self, rel: str, *, create: bool, entry: str) -> tuple[str, bool] | None:
        """Real path of directory `rel` (clean, relative). Missing dirs are made when `create`,
        else None is returned. A non-directory in the way is an InvalidArchive naming `entry`."""
        hit = self._cache.get(rel)
        if hit is not None:
            return hit
        # walk from the deepest cached ancestor
        parts = rel.split("/")
        i = len(parts) - 1
        while i > 0 and "/".join(parts[:i]) not in self._cache:
            i -= 1
        base_rel = "/".join(parts[:i])
        real, sgid = self._cache[base_rel]
        pending = parts[i:]
        done = parts[:i]  # the rel prefix that `real` corresponds to (for caching)
        links = 0
        cacheable = True
        while pending:
            comp = pending.pop(0)
            if comp in ("", "."):
                continue
            if comp == "..":
                # only reachable through symlink targets; confined: never above the root
                real = posixpath.dirname(real) if real != self.root else self.root
                if not (real == self.root or real.startswith(self.root + "/")):
                    real = self.root
                cacheable = False
                sgid = False
                continue
            path = real + "/" + comp
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                if not create:
                    return None
                try:
                    os.mkdir(path, self.created_mode)
                except FileExistsError:
                    pending.insert(0, comp)
                    continue
                if sgid:
                    os.chmod(path, self.created_mode | stat.S_ISGID)
                real = path
            else:
                if stat.S_ISDIR(st.st_mode):
                    real = path
                    sgid = bool(st.st_mode & stat.S_ISGID)
                elif stat.S_ISLNK(st.st_mode):
                    links += 1
                    if links > MAX_LINKS:
                        raise InvalidArchive(f"entry {entry!r}: too many levels of symbolic links under the root")
                    target = os.readlink(path)
                    if target.startswith("/"):
                        real = self.root
                    pending[:0] = [c for c in target.split("/") if c]
                    cacheable = False
                    continue
                else:
                    raise InvalidArchive(f"entry {entry!r}: {posixpath.join(*done, comp)!r} is not a directory")
            done.append(comp)
            if cacheable:
                self._cache["/".join(done)] = (real, sgid)
        self._cache[rel] = (real, sgid)
        return real, sgid
