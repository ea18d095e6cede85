"""pallet's own modules served from one file of code objects, written at install time.

Importing a small module the ordinary way costs ~150 µs here: the path finder's lookups, a stat of the
source, an open and read of its .pyc, the header checks. `pallet run --rm IMAGE true` imports ~60 of
pallet's modules before its container starts (more in its monitor), so the engine's small modules (one
concern each) would cost several milliseconds of start-up. The launchers that `make install` writes
(scripts/fast-launchers.py) call `install(BUNDLE)` first; from then on a module of `pallet` found in the
bundle is made from the code object stored there: one file read per process, and for each module one
`os.stat` and a `marshal.loads`.

The bundle never serves stale code: each entry keeps its source's size and mtime, and a module whose
source differs (edited, removed), a module that is not in the bundle, and a bundle made by another
Python are imported the ordinary way. `python -m pallet.codebundle BUNDLE` writes it again.
"""

from __future__ import annotations

import _frozen_importlib
import _frozen_importlib_external
import marshal
import os
import sys

# a bundle made by another interpreter is not read: its code objects' format is the bytecode magic's
HEADER = b"pallet-code\0" + _frozen_importlib_external.MAGIC_NUMBER


class BundleFinder:
    """A meta path finder and loader for the modules one bundle holds."""

    def __init__(self, path: str, fd: int, index: dict[str, tuple[str, bool, int, int, int, int]],
                 base: int) -> None:
        self.path = path
        self.fd = fd
        self.file_id = _file_id(os.fstat(fd))
        self.index = index  # name -> (source path, is a package, st_mtime_ns, st_size, offset, length)
        self.base = base    # where the code objects start; an offset counts from here

    def find_spec(self, name: str, path=None, target=None):
        entry = self.index.get(name)
        if entry is None:
            return None
        origin, is_package, mtime_ns, size, offset, length = entry
        try:
            st = os.stat(origin)
            if st.st_mtime_ns != mtime_ns or st.st_size != size:
                return None
            code = os.pread(self._fd(), length, self.base + offset)
        except OSError:
            return None
        if len(code) != length:
            return None
        spec = _frozen_importlib.ModuleSpec(name, self, origin=origin, loader_state=code, is_package=is_package)
        spec.has_location = True  # __file__ as the ordinary import sets it (seccomp's profile sits beside it)
        if is_package:
            spec.submodule_search_locations = [os.path.dirname(origin)]
        return spec

    def _fd(self) -> int:
        """The bundle's descriptor, opened again in a process that closed it (a monitor closes what it
        does not need after its fork), so that what is read is never another file under the same number."""
        try:
            if _file_id(os.fstat(self.fd)) == self.file_id:
                return self.fd
        except OSError:
            pass
        fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        if _file_id(os.fstat(fd)) != self.file_id:  # written again since: its index is not this one
            os.close(fd)
            self.index = {}
            raise OSError("the bundle was replaced")
        self.fd = fd
        return fd

    def create_module(self, spec) -> None:
        return None

    def exec_module(self, module) -> None:
        exec(marshal.loads(module.__spec__.loader_state), module.__dict__)


def _file_id(st: os.stat_result) -> tuple[int, int, int]:
    return st.st_dev, st.st_ino, st.st_mtime_ns


def install(bundle: str) -> bool:
    """Put the bundle's finder first on sys.meta_path; False (and nothing changed) if it is unreadable.

    Only the index is read now; each module's code is read when it is imported."""
    try:
        fd = os.open(bundle, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        head = os.pread(fd, len(HEADER) + 8, 0)
        if len(head) != len(HEADER) + 8 or not head.startswith(HEADER):
            raise ValueError("not a bundle of this Python")
        length = int.from_bytes(head[len(HEADER):], "little")
        if length > os.fstat(fd).st_size - len(head):
            raise ValueError("the index runs past the end")
        index = marshal.loads(os.pread(fd, length, len(head)))
        if not isinstance(index, dict):
            raise ValueError("no index")
    except (OSError, ValueError, EOFError, TypeError):
        os.close(fd)
        return False
    sys.meta_path.insert(0, BundleFinder(bundle, fd, index, len(head) + length))
    return True


def build(package_dir: str, package: str = "pallet") -> dict[str, tuple[str, bool, int, int, bytes]]:
    """Every module under package_dir, compiled, keyed by its dotted name."""
    entries = {}
    root = os.path.abspath(package_dir)
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        if "__init__.py" not in filenames:
            dirnames.clear()
            continue
        rel = os.path.relpath(dirpath, root)
        prefix = package if rel == "." else package + "." + rel.replace(os.sep, ".")
        for filename in sorted(filenames):
            if not filename.endswith(".py"):
                continue
            path = os.path.join(dirpath, filename)
            is_package = filename == "__init__.py"
            name = prefix if is_package else f"{prefix}.{filename[:-3]}"
            with open(path, "rb") as f:
                st = os.fstat(f.fileno())
                code = compile(f.read(), path, "exec", dont_inherit=True)
            entries[name] = (path, is_package, st.st_mtime_ns, st.st_size, marshal.dumps(code))
    return entries


def write(bundle: str, package_dir: str, package: str = "pallet") -> int:
    """Write the bundle atomically: the header, the index's length, the index, then the code objects.

    Returns the number of modules it holds."""
    entries = build(package_dir, package)
    index, blobs = {}, []
    offset = 0
    for name, (path, is_package, mtime_ns, size, code) in entries.items():
        index[name] = (path, is_package, mtime_ns, size, offset, len(code))
        blobs.append(code)
        offset += len(code)
    packed = marshal.dumps(index)
    tmp = f"{bundle}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(HEADER + len(packed).to_bytes(8, "little") + packed)
        f.write(b"".join(blobs))
    os.replace(tmp, bundle)
    return len(entries)


if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    if len(sys.argv) != 2:
        sys.exit("usage: python -m pallet.codebundle BUNDLE")
    print(f"{sys.argv[1]}: {write(sys.argv[1], here)} modules")
