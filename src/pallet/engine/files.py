"""Files in and out of containers: cp, diff, export, commit.

Every path inside a container is resolved *inside* it: the tar is written (cp out,
export) or unpacked (cp in) by a forked child that has chroot'ed into the container's
root — `/proc/PID/root` of a running container (so its volumes are there too) or its
mounted snapshot — so a symlink to /etc/shadow means the container's /etc/shadow, and
`..` or an absolute link can never reach the host. A tar coming *out* of a container is
unpacked on the host with a filter that refuses any entry whose path (after the
symlinks it already created) lands outside the destination.
"""

from __future__ import annotations

import json
import os
import stat
import tarfile
from contextlib import contextmanager

from pallet.engine.freezer import freeze, paused
from pallet.errors import PalletError


# ---- roots ----------------------------------------------------------------------------------
class Root(str):
    """A container root path; `binds` are (host source, container destination) pairs the chroot'ed
    child mounts first (in a private mount namespace) so a stopped container's volumes are there too."""

    binds: tuple = ()


@contextmanager
def container_root(engine, c, *, live: bool = True):
    """The container's root for reading/writing files: /proc/PID/root while it runs (with its mounts)
    when `live`, else its snapshot, mounted for the duration if it was not (with its volumes and
    bind mounts when `live`)."""
    from pallet.engine import snapshots

    if live and c.status == "running" and c.pid:
        yield Root(f"/proc/{c.pid}/root")
        return
    snap = snapshots._snaps(engine).container(c.id)
    was = snap.driver == "copy" or os.path.ismount(snap.merged)
    root = Root(snapshots.mount(engine, c))
    if live:
        root.binds = tuple((m["Source"], m["Destination"]) for m in c.config.get("Mounts") or ()
                           if m.get("Type") in ("bind", "volume") and m.get("Source"))
    try:
        yield root
    finally:
        if not was and engine.get(c.id).status != "running":
            try:
                snapshots.unmount(engine, c)
            except PalletError:
                pass


def _in_chroot(root: str, fn, *, child_fds: tuple[int, ...] = (), parent_fds: tuple[int, ...] = (),
               after_fork=None) -> None:
    """Fork, chroot into `root`, run fn(); raise its error (one sentence) in the parent.

    `child_fds` are closed in the child, `parent_fds` in the parent (the pipe ends the other side
    uses); `after_fork()` runs in the parent (threads start only after the fork) and is joined.
    """
    from pallet.linux import mount as M
    from pallet.linux.proc import fork

    err_r, err_w = os.pipe()
    pid = fork()
    if pid == 0:
        code = 0
        try:
            os.close(err_r)
            for fd in child_fds:
                os.close(fd)
            _bind_volumes(root, getattr(root, "binds", ()))
            M.chroot(str(root))
            os.chdir("/")
            fn()
        except BaseException as e:  # noqa: BLE001
            msg = e.message if isinstance(e, PalletError) else (
                f"{e.strerror}: {e.filename}" if isinstance(e, OSError) and e.strerror and e.filename else
                (e.strerror if isinstance(e, OSError) and e.strerror else f"{type(e).__name__}: {e}"))
            try:
                os.write(err_w, msg.encode()[:4000])
            except OSError:
                pass
            code = 1
        finally:
            os._exit(code)
    os.close(err_w)
    for fd in parent_fds:
        os.close(fd)
    t = None
    if after_fork is not None:
        import threading

        t = threading.Thread(target=after_fork, daemon=True)
        t.start()
    chunks = []
    while True:
        b = os.read(err_r, 4096)
        if not b:
            break
        chunks.append(b)
    os.close(err_r)
    _, st = os.waitpid(pid, 0)
    if t is not None:
        t.join()
    if chunks or st != 0:
        raise PalletError(b"".join(chunks).decode(errors="replace") or "copying failed")


def _bind_volumes(root: str, binds) -> None:
    """In the child: a private mount namespace with the container's volumes/binds on its snapshot."""
    if not binds:
        return
    from pallet.linux import mount as M
    from pallet.linux.ns import CLONE_NEWNS, unshare
    from pallet.runtime.rootfs import secure_join

    unshare(CLONE_NEWNS)
    M.mount(None, "/", None, M.MS_REC | M.MS_PRIVATE)
    for src, dest in sorted(binds, key=lambda b: len(b[1].rstrip("/").split("/"))):
        target = secure_join(root, dest)
        if os.path.exists(src) and os.path.exists(target) and os.path.isdir(src) == os.path.isdir(target):
            M.mount(src, target, None, M.MS_BIND | M.MS_REC)


def _clean_ctr_path(p: str) -> str:
    if not p:
        raise PalletError("the container path must not be empty")
    return p if p.startswith("/") else "/" + p


# ---- cp out ---------------------------------------------------------------------------------
def _tar_out(out_fd: int, path: str, follow: bool) -> None:
    """In the chroot: a tar of `path` named by its basename (its content for a path ending in /.)."""
    content_only = path.endswith("/.") or path == "/"
    clean = os.path.normpath(path)
    st = os.stat(clean) if follow else os.lstat(clean)
    if path.endswith("/") and not stat.S_ISDIR(st.st_mode):
        raise PalletError(f"{path}: not a directory")
    real = os.path.realpath(clean) if follow and os.path.islink(clean) else clean
    with os.fdopen(out_fd, "wb") as f, tarfile.open(fileobj=f, mode="w|", format=tarfile.PAX_FORMAT) as tf:
        if content_only and stat.S_ISDIR(st.st_mode):
            for name in sorted(os.listdir(real)):
                tf.add(os.path.join(real, name), arcname=name)
        else:
            tf.add(real, arcname=os.path.basename(clean) or ".")


def stream_out(engine, c, path: str, out_fd: int, *, follow: bool = False) -> None:
    """Write a tar of the container's `path` to `out_fd` (docker cp CONTAINER:PATH -)."""
    path = _clean_ctr_path(path)
    r, w = os.pipe()

    with container_root(engine, c) as root:
        def pump() -> None:
            try:
                while True:
                    b = os.read(r, 1 << 16)
                    if not b:
                        break
                    view = memoryview(b)
                    while view:
                        n = os.write(out_fd, view)
                        view = view[n:]
            except OSError:
                pass
            finally:
                os.close(r)

        _in_chroot(root, lambda: _tar_out(w, path, follow), child_fds=(r,), parent_fds=(w,), after_fork=pump)


def _safe_filter(rename):
    def f(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo | None:
        name = rename(member.name)
        if name is None:
            return None
        parts = [p for p in name.split("/") if p not in ("", ".")]
        if name.startswith("/") or ".." in parts:
            raise PalletError(f"refusing the archive entry {member.name!r}: it leaves the destination")
        target = os.path.realpath(os.path.join(dest, name))
        root = os.path.realpath(dest)
        if target != root and not target.startswith(root + os.sep):
            raise PalletError(f"refusing the archive entry {member.name!r}: a symlink takes it outside "
                              f"{dest}")
        changes = {"name": name}
        if member.islnk():
            ln = rename(member.linkname)
            if ln is None:
                return None
            lt = os.path.realpath(os.path.join(dest, ln))
            if lt != root and not lt.startswith(root + os.sep):
                raise PalletError(f"refusing the hard link {member.name!r}: its target is outside {dest}")
            changes["linkname"] = ln
        return _replaced(member, changes)
    return f


# Extraction filters (and TarInfo.replace) came with Python 3.11.4; Debian 12's python3 is 3.11.2.
# Without them the same filter function is applied by hand before each extract.
_HAS_FILTERS = hasattr(tarfile, "data_filter")


def _replaced(member: tarfile.TarInfo, changes: dict) -> tarfile.TarInfo:
    if _HAS_FILTERS:
        return member.replace(**changes, deep=False)
    import copy

    m = copy.copy(member)
    for k, v in changes.items():
        setattr(m, k, v)
    return m


def _plan(dest: str, src_is_dir: bool, src_base: str, content_only: bool) -> tuple[str, callable]:
    """docker cp's rules: (directory to extract into, archive-name rewriter)."""
    trailing = dest.endswith("/")
    d = os.path.normpath(dest) if dest not in ("", ".") else "."
    if os.path.isdir(d):
        if content_only:
            return d, lambda n: n
        return d, lambda n: n
    if os.path.lexists(d):
        if src_is_dir:
            raise PalletError(f"cannot copy a directory to a file: {dest}")
        parent, newname = os.path.dirname(d) or ".", os.path.basename(d)
    else:
        if trailing and not src_is_dir:
            raise PalletError(f"{dest}: no such directory")
        parent, newname = os.path.dirname(d) or ".", os.path.basename(d)
        if not os.path.isdir(parent):
            raise PalletError(f"{parent}: no such directory")
    if content_only:
        os.makedirs(d, exist_ok=True)
        return d, lambda n: n

    def rename(n: str) -> str | None:
        n2 = n[2:] if n.startswith("./") else n
        if n2 == src_base:
            return newname
        if n2.startswith(src_base + "/"):
            return newname + n2[len(src_base):]
        return n2
    return parent, rename


def _extract(fileobj, dest: str, src_is_dir: bool | None, src_base: str | None, content_only: bool) -> None:
    try:
        _extract_tar(fileobj, dest, src_is_dir, src_base, content_only)
    except tarfile.ReadError as e:
        if str(e) == "empty file":
            return       # no input at all: nothing to copy (docker's tar reader sees EOF, no entry)
        raise PalletError(f"the input is not a tar archive ({e})") from None
    except tarfile.TarError as e:
        raise PalletError(f"cannot read the tar stream: {e}") from None


def _extract_tar(fileobj, dest: str, src_is_dir: bool | None, src_base: str | None, content_only: bool) -> None:
    with tarfile.open(fileobj=fileobj, mode="r|*") as tf:
        first = None
        if src_is_dir is None:
            directory, rename = (dest, lambda n: n)
            if not os.path.isdir(dest):
                raise PalletError(f"{dest}: the destination must be an existing directory for a tar stream")
        else:
            directory, rename = _plan(dest, src_is_dir, src_base or "", content_only)
        filt = _safe_filter(rename)
        for m in tf:
            if first is None:
                first = m
            if _HAS_FILTERS:
                tf.extract(m, directory, numeric_owner=True, filter=filt)
            else:
                m2 = filt(m, directory)
                if m2 is not None:
                    tf.extract(m2, directory, numeric_owner=True)


def cp_out(engine, c, src: str, dest: str, *, follow: bool = False) -> None:
    """docker cp CONTAINER:SRC DEST (a host path)."""
    src = _clean_ctr_path(src)
    content_only = src.endswith("/.")
    r, w = os.pipe()
    result: dict = {}

    def reader() -> None:
        try:
            with os.fdopen(r, "rb") as f:
                head = _Peek(f)
                m = head.first_member()
                if m is None:
                    return
                _extract(head, dest, m.isdir(), os.path.normpath(m.name.rstrip("/")) if not content_only else "",
                         content_only)
        except BaseException as e:  # noqa: BLE001
            result["err"] = e

    err = None
    with container_root(engine, c) as root:
        try:
            _in_chroot(root, lambda: _tar_out(w, src, follow), child_fds=(r,), parent_fds=(w,), after_fork=reader)
        except PalletError as e:
            err = e
    if err is not None:
        raise PalletError(f"Could not find the file {src} in container {c.name}: {err.message}"
                          if "No such file" in err.message else err.message)
    if "err" in result:
        e = result["err"]
        if isinstance(e, PalletError):
            raise e
        raise PalletError(f"copying to {dest} failed: {e}")


class _Peek:
    """A file object that lets us look at the first tar header before tarfile reads the stream."""

    def __init__(self, f) -> None:
        self.f = f
        self.buf = b""

    def first_member(self) -> tarfile.TarInfo | None:
        import io

        while len(self.buf) < 1 << 16:
            b = self.f.read(1 << 16)
            if not b:
                break
            self.buf += b
        if not self.buf:
            return None
        try:
            with tarfile.open(fileobj=io.BytesIO(self.buf), mode="r|") as tf:
                return tf.next()
        except tarfile.TarError:
            return None

    def read(self, n: int = -1) -> bytes:
        if self.buf:
            if n < 0 or n >= len(self.buf):
                out, self.buf = self.buf, b""
                return out + (self.f.read(n - len(out)) if n > 0 else self.f.read() if n < 0 else b"")
            out, self.buf = self.buf[:n], self.buf[n:]
            return out
        return self.f.read(n)


# ---- cp in ----------------------------------------------------------------------------------
def cp_in(engine, c, src: str, dest: str, *, stdin_tar: bool = False) -> None:
    """docker cp SRC|- CONTAINER:DEST."""
    dest = _clean_ctr_path(dest)
    if c.HostConfig.get("ReadonlyRootfs") and c.status == "running":
        pass   # writes to volumes still work; the kernel refuses the rest (EROFS)
    if stdin_tar:
        src_is_dir, base, content_only = None, None, False
    else:
        try:
            st = os.stat(src)
        except OSError as e:
            raise PalletError(f"could not find the file {src} on the host: {e.strerror}") from None
        content_only = src.endswith("/.")
        src_is_dir = stat.S_ISDIR(st.st_mode)
        base = os.path.basename(os.path.normpath(src))
    r, w = os.pipe()
    err: dict = {}

    def writer() -> None:
        try:
            with os.fdopen(w, "wb") as f:
                if stdin_tar:
                    import sys

                    while True:
                        b = sys.stdin.buffer.read(1 << 16)
                        if not b:
                            break
                        f.write(b)
                    return
                with tarfile.open(fileobj=f, mode="w|", format=tarfile.PAX_FORMAT) as tf:
                    if content_only:
                        for name in sorted(os.listdir(src)):
                            tf.add(os.path.join(src, name), arcname=name)
                    else:
                        tf.add(os.path.realpath(src) if os.path.islink(os.path.normpath(src)) else src,
                               arcname=base)
        except BrokenPipeError:
            pass
        except BaseException as e:  # noqa: BLE001
            err["e"] = e

    with container_root(engine, c) as root:
        def child() -> None:
            with os.fdopen(r, "rb") as f:
                _extract(f, dest, src_is_dir, base, content_only)

        _in_chroot(root, child, child_fds=(w,), parent_fds=(r,), after_fork=writer)
    if "e" in err:
        raise PalletError(f"reading {src} failed: {err['e']}")


# ---- diff -----------------------------------------------------------------------------------
def _mount_points(engine, c) -> set[str]:
    try:
        spec = json.loads((engine.dir(c.id) / "config.json").read_text())
        return {os.path.normpath(m["destination"]) for m in spec.get("mounts") or ()}
    except (OSError, ValueError):
        return {"/etc/hostname", "/etc/hosts", "/etc/resolv.conf", "/proc", "/sys", "/dev"}


def changes(engine, c) -> list[tuple[str, str]]:
    """docker diff: [(kind A|C|D, path)] from the container's overlay upper dir."""
    from pallet.engine import snapshots
    from pallet.layers.apply import OPAQUE_XATTR

    snaps = snapshots._snaps(engine)
    snap = snaps.container(c.id)
    if snap.driver != "overlay":
        raise PalletError("diff needs the overlay snapshot driver (this container uses the copy driver)")
    upper = str(snap.upper)
    lowers = [str(snaps.diff_path(x)) for x in reversed(snap.layers)]
    mounts = _mount_points(engine, c)

    def in_lower(rel: str) -> bool:
        for lo in lowers:
            p = lo + rel
            if os.path.lexists(p):
                return True
            # a whiteout or opaque dir in a higher lower layer hides the rest; good enough for diff
        return False

    out: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(upper):
        rel_dir = dirpath[len(upper):] or "/"
        for n in sorted(dirnames + filenames):
            p = os.path.join(dirpath, n)
            rel = os.path.join(rel_dir, n)
            st = os.lstat(p)
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                out[rel] = "D"
                continue
            if rel in mounts:
                try:
                    empty = st.st_size == 0 if not stat.S_ISDIR(st.st_mode) else not os.listdir(p)
                except OSError:
                    empty = True
                if empty:
                    continue
            if stat.S_ISDIR(st.st_mode):
                try:
                    opaque = os.getxattr(p, OPAQUE_XATTR, follow_symlinks=False) == b"y"
                except OSError:
                    opaque = False
                # a lower dir copied up only because something below changed: C only if that is reported
                out[rel] = "A" if not in_lower(rel) else ("C" if opaque else "C?")
            else:
                out[rel] = "C" if in_lower(rel) else "A"
    # a directory copied up only because something below changed is C if anything below is reported
    keep = {}
    for rel, kind in out.items():
        if kind == "C?":
            if any(k.startswith(rel + "/") and v != "C?" for k, v in out.items()):
                keep[rel] = "C"
            continue
        keep[rel] = kind
    for rel in list(keep):     # parents of reported changes are C (docker shows them)
        parent = os.path.dirname(rel)
        while parent not in ("/", ""):
            if parent in out and parent not in keep:
                keep[parent] = "C"
            parent = os.path.dirname(parent)
    return sorted(((k, p) for p, k in keep.items()), key=lambda x: x[1])


# ---- export ---------------------------------------------------------------------------------
def export(engine, c, out_fd: int) -> None:
    """The container's filesystem (its snapshot, no volumes or mounts) as a tar on `out_fd`."""
    with container_root(engine, c, live=False) as root:
        def child() -> None:
            with os.fdopen(out_fd, "wb", closefd=False) as f, \
                    tarfile.open(fileobj=f, mode="w|", format=tarfile.PAX_FORMAT) as tf:
                for name in sorted(os.listdir("/")):
                    tf.add("/" + name, arcname=name)
        _in_chroot(root, child)


# ---- commit ---------------------------------------------------------------------------------
COMMIT_CONFIG_KEYS = ("Hostname", "Domainname", "User", "ExposedPorts", "Env", "Cmd", "Healthcheck", "Volumes",
                      "WorkingDir", "Entrypoint", "OnBuild", "Labels", "StopSignal", "StopTimeout")


def commit(engine, c, *, name: str | None = None, changes: list[str] = (), message: str | None = None,
           author: str | None = None, pause: bool = True):
    """The container's changes as a new layer on its image, with the container's config and a history entry."""
    import tempfile

    from pallet.engine import snapshots
    from pallet.layers.diff import write_layer
    from pallet.oci import mediatypes as mt
    from pallet.oci.documents import Descriptor, ImageConfig, Manifest, canonical_json
    from pallet.store.changes import apply_changes
    from pallet.store.ingest import Ingest
    from pallet.store.rootfs import rfc3339_now

    store = engine.store
    snap = snapshots._snaps(engine).container(c.id)
    if snap.driver != "overlay":
        raise PalletError("commit needs the overlay snapshot driver (this container uses the copy driver)")
    base_cfg = {k: v for k, v in c.Config.items() if k in COMMIT_CONFIG_KEYS}
    base_cfg.pop("Hostname", None)
    cfg = apply_changes(dict(base_cfg), list(changes))   # a bad --change fails before anything is written
    rec = store.get_image(c.image_id)
    manifest = store.manifest(rec)
    image_cfg = store.config(rec)
    doc = json.loads(image_cfg.raw)
    froze = False
    if pause and c.status == "running":
        if not paused(c):
            try:
                freeze(engine, c, True)
                froze = True
            except PalletError:
                froze = False
    try:
        with tempfile.TemporaryFile(dir=store.tmp) as tmp:
            res = write_layer(tmp, upper=str(snap.upper), compression="gzip")
            if froze:
                freeze(engine, c, False)
                froze = False
            tmp.seek(0)
            with Ingest(store) as ing:
                info = ing.put_stream(tmp, what="layer")
                if info.diff_id != res.diff_id:
                    raise PalletError(f"the new layer does not read back the same: {info.diff_id} != {res.diff_id}")
                created = rfc3339_now()
                cmd = " ".join((c.Config.get("Entrypoint") or []) + (c.Config.get("Cmd") or []))
                doc["config"] = cfg
                doc["created"] = created
                doc["container"] = c.id
                doc.pop("container_config", None)
                if author:
                    doc["author"] = author
                doc.setdefault("rootfs", {"type": "layers", "diff_ids": []})
                doc["rootfs"]["diff_ids"] = list(doc["rootfs"].get("diff_ids") or []) + [res.diff_id]
                h = {"created": created, "created_by": cmd}
                if message:
                    h["comment"] = message
                if author:
                    h["author"] = author
                doc["history"] = list(doc.get("history") or []) + [h]
                if message is not None:
                    doc["comment"] = message
                raw = canonical_json(doc)
                config = ImageConfig.parse(raw)
                cdig = ing.put_bytes(raw, what="config")
                layers = list(manifest.layers) + [Descriptor(mt.OCI_LAYER_GZIP, info.digest, info.size)]
                new = Manifest.build(Descriptor(mt.OCI_CONFIG, cdig, len(raw)), layers)
                ing.add_image(new, config, names=[name] if name else [])
                return ing.commit()[0]
    finally:
        if froze:
            freeze(engine, c, False)
