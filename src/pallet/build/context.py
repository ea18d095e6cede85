"""The build context: a directory with the .dockerignore applied, and content hashes of its files.

`Context.select(src)` gives the entries one COPY/ADD source names (a path or a glob, relative to
the context root), with everything the ignore file excludes left out. A source that is a
symlink is followed only inside the context: one pointing outside selects nothing. Symlinks met
while walking a directory are copied as symlinks, never followed, so nothing from outside the
context is ever read.

`HashIndex` is the stat-keyed content-hash index: (path, size, mtime, inode) -> sha256, kept in
one JSON file per storage root, so an unchanged large context is not read again by the next
build's cache lookups.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import stat
import threading
from dataclasses import dataclass
from pathlib import Path

from pallet.build.ignore import PatternMatcher, load_ignore
from pallet.errors import PalletError

__all__ = ["Context", "Entry", "HashIndex", "SourceNotFound"]


class SourceNotFound(PalletError):
    exit_code = 1


@dataclass
class Entry:
    """One file, directory or symlink of the context; `rel` is its path relative to the copy's source."""

    path: str        # absolute path on the host
    ctx_rel: str     # relative to the context root
    rel: str         # name below the destination
    st: os.stat_result


class HashIndex:
    """(path, size, mtime_ns, inode) -> content digest, persisted as JSON."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._data: dict[str, list] = {}
        self._dirty = False
        if path is not None:
            try:
                self._data = json.loads(path.read_text())
            except (OSError, ValueError):
                self._data = {}

    def digest(self, path: str, st: os.stat_result) -> str:
        key = [st.st_size, st.st_mtime_ns, st.st_ino]
        with self._lock:
            hit = self._data.get(path)
        if hit is not None and hit[:3] == key:
            return hit[3]
        h = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        d = "sha256:" + h.hexdigest()
        with self._lock:
            self._data[path] = [*key, d]
            self._dirty = True
        return d

    def save(self) -> None:
        if self.path is None or not self._dirty:
            return
        with self._lock:
            tmp = self.path.with_name(self.path.name + f".{os.getpid()}.tmp")
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(self._data))
            os.replace(tmp, self.path)
            self._dirty = False


class Context:
    def __init__(self, root: str | os.PathLike, *, dockerfile: str | None = None, index: HashIndex | None = None,
                 ignore: list[str] | None = None) -> None:
        self.root = os.path.realpath(root)
        if not os.path.isdir(self.root):
            raise PalletError(f"unable to prepare context: path {str(root)!r} not found", exit_code=1)
        patterns = ignore if ignore is not None else load_ignore(self.root, dockerfile)
        self.matcher = PatternMatcher(patterns)
        self.index = index or HashIndex(None)

    def ignored(self, ctx_rel: str) -> bool:
        return ctx_rel not in ("", ".") and self.matcher.matches_or_parent_matches(ctx_rel)

    def _inside(self, real: str) -> bool:
        return real == self.root or real.startswith(self.root + os.sep)

    def select(self, src: str) -> tuple[list[Entry], bool]:
        """(entries, is_dir_source) for one source; SourceNotFound when nothing matches."""
        clean = os.path.normpath("/" + src).lstrip("/") or "."
        if glob.has_magic(clean):
            names = sorted(glob.glob(clean, root_dir=self.root, include_hidden=True))
            names = [n for n in names if not self.ignored(n)]
        else:
            names = [clean] if clean == "." or not self.ignored(clean) else []
        out: list[Entry] = []
        is_dir = False
        found = False
        for name in names:
            p = os.path.join(self.root, name) if name != "." else self.root
            real = os.path.realpath(p)
            if not self._inside(real) or not os.path.lexists(real):
                continue    # a symlink out of the context: nothing from outside
            try:
                st = os.lstat(real)
            except FileNotFoundError:
                continue
            found = True
            if stat.S_ISDIR(st.st_mode):
                is_dir = True
                real_rel = os.path.relpath(real, self.root)
                out += self._walk(real, "" if real_rel == "." else real_rel)
            else:
                out.append(Entry(real, os.path.relpath(real, self.root), os.path.basename(name), st))
        if not found:
            raise SourceNotFound(f'failed to compute cache key: "/{clean.lstrip("./") if clean != "." else ""}"'
                                 f": not found")
        return out, is_dir or len(names) > 1

    def _walk(self, top: str, ctx_prefix: str) -> list[Entry]:
        out: list[Entry] = []

        def walk(d: str, rel: str) -> None:
            try:
                names = sorted(os.listdir(d))
            except OSError as e:
                raise PalletError(f"reading the build context: {e}", exit_code=1) from None
            for n in names:
                p = os.path.join(d, n)
                r = f"{rel}/{n}" if rel else n
                cr = f"{ctx_prefix}/{r}" if ctx_prefix else r
                if self.ignored(cr):
                    if not self.matcher.exclusions:
                        continue
                    st = os.lstat(p)
                    if stat.S_ISDIR(st.st_mode):
                        walk(p, r)   # an exception below may re-include something; dirs come with it
                    continue
                st = os.lstat(p)
                out.append(Entry(p, cr, r, st))
                if stat.S_ISDIR(st.st_mode):
                    walk(p, r)

        walk(top, "")
        return out

    def digest(self, entries: list[Entry]) -> str:
        """A content hash of exactly these entries: names, types, modes, link targets, content."""
        h = hashlib.sha256()
        for e in entries:
            st = e.st
            if stat.S_ISREG(st.st_mode):
                what = self.index.digest(e.path, st)
            elif stat.S_ISLNK(st.st_mode):
                what = "link:" + os.readlink(e.path)
            else:
                what = "dir" if stat.S_ISDIR(st.st_mode) else f"other:{st.st_mode:o}"
            h.update(json.dumps([e.rel, stat.S_IMODE(st.st_mode), stat.S_IFMT(st.st_mode), what]).encode())
            h.update(b"\n")
        return "sha256:" + h.hexdigest()
