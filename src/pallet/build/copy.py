"""COPY/ADD of local files: the selected entries as a tar, extracted by a child chroot'ed into the
step's workspace (so symlinks in the destination resolve inside the image, never on the host).

Destination rules as docker's: a destination ending in `/`, several sources, or a directory
source make it a directory (created 0755 root:root with its parents); one file to a path that
is an existing directory goes inside it; a relative destination is below the WORKDIR.
Owner is 0:0 unless `--chown`; mode is the source's unless `--chmod` (octal).
"""

from __future__ import annotations

import grp  # noqa: F401 (imported before the fork: tarfile uses them in the child)
import os
import pwd  # noqa: F401
import stat
import tarfile
import tempfile

from pallet.errors import PalletError

__all__ = ["BadFlag", "archive_kind", "copy_into", "parse_chmod", "resolve_chown", "unpack_archive"]


class BadFlag(PalletError):
    exit_code = 1


def parse_chmod(value: str | None):
    """--chmod: an octal mode (int), or a symbolic one (`u+x,go-w`, `a=rX`) as a function of the
    source's mode and whether it is a directory; None when not given."""
    if value is None or value == "":
        return None
    try:
        mode = int(value, 8)
    except ValueError:
        return _symbolic(value)
    if mode > 0o7777:
        raise BadFlag(f"invalid chmod parameter {value!r}")
    return mode


_WHO = {"u": 0o4700, "g": 0o2070, "o": 0o1007}


def _symbolic(value: str):
    import re

    clauses = []
    for part in value.split(","):
        m = re.fullmatch(r"([ugoa]*)([-+=])([rwxXst]*)", part)
        if m is None:
            raise BadFlag(f"invalid chmod parameter {value!r}")
        clauses.append(m.groups())

    def apply(old: int, is_dir: bool) -> int:
        mode = old & 0o7777
        for who, op, perms in clauses:
            who = who.replace("a", "ugo") or "ugo"
            mask = 0
            for w in set(who):
                bits = 0
                for p in perms:
                    if p == "r":
                        bits |= 0o444
                    elif p == "w":
                        bits |= 0o222
                    elif p == "x" or (p == "X" and (is_dir or old & 0o111)):
                        bits |= 0o111
                    elif p == "s":
                        bits |= 0o6000
                    elif p == "t":
                        bits |= 0o1000
                mask |= bits & _WHO[w]
            if op == "+":
                mode |= mask
            elif op == "-":
                mode &= ~mask
            else:
                clear = 0
                for w in set(who):
                    clear |= _WHO[w] & 0o777 | (_WHO[w] & 0o7000)
                mode = (mode & ~clear) | mask
        return mode
    return apply


def _mode_for(mode, st) -> int:
    if mode is None:
        return stat.S_IMODE(st.st_mode)
    if callable(mode):
        return mode(stat.S_IMODE(st.st_mode), stat.S_ISDIR(st.st_mode))
    return mode


def resolve_chown(root: str, value: str | None) -> tuple[int, int] | None:
    """--chown=USER[:GROUP] with names looked up in the image; a lone user gives gid = uid's
    primary group for a name, the same number for a number (docker's rule)."""
    if not value:
        return None
    from pallet.engine.users import resolve_user

    user, sep, group = value.partition(":")
    try:
        if sep:
            u = resolve_user(root, f"{user}:{group}")
            return u.uid, u.gid
        u = resolve_user(root, user)
        return (u.uid, u.uid) if user.isdigit() else (u.uid, u.gid)
    except PalletError as e:
        raise BadFlag(f"unable to convert uid/gid chown string to host mapping: {e.message}") from None


def _makedirs(path: str, owner: tuple[int, int] | None) -> None:
    """mkdir -p; the directories it creates get the --chown owner (as BuildKit and buildah do)."""
    if os.path.isdir(path):
        return
    parent = os.path.dirname(path.rstrip("/")) or "/"
    if parent != path:
        _makedirs(parent, owner)
    try:
        os.mkdir(path, 0o755)
    except FileExistsError:
        return
    os.chmod(path, 0o755)
    if owner:
        os.chown(path, *owner)


def archive_kind(path: str) -> str | None:
    """'gzip', 'zstd', 'bzip2', 'xz' or '' (plain tar) for a file ADD unpacks; None for any other file."""
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError:
        return None
    if head.startswith(b"\x1f\x8b"):
        return "gzip"
    if head.startswith(b"\x28\xb5\x2f\xfd"):
        return "zstd"
    if head.startswith(b"BZh"):
        return "bzip2"
    if head.startswith(b"\xfd7zXZ\x00"):
        return "xz"
    if len(head) >= 262 and head[257:262] == b"ustar":
        return ""
    return None


def unpack_archive(path: str, kind: str, tmp_dir: str) -> str:
    """Unpack a local archive for ADD into a new temp dir with the layer reader's rules (no entry
    leaves the dir: a hostile tar is refused as a hostile layer is); returns the dir."""
    from pallet.layers.stream import apply_layer
    from pallet.oci import mediatypes as mt

    out = tempfile.mkdtemp(prefix="build-add-", dir=tmp_dir)
    try:
        if kind in ("bzip2", "xz"):
            import bz2
            import lzma

            opener = bz2.open if kind == "bzip2" else lzma.open
            with opener(path, "rb") as f:
                apply_layer(f, out, mt.OCI_LAYER, mode="flat", what="ADD archive", threaded=False)
        else:
            media = {"gzip": mt.OCI_LAYER_GZIP, "zstd": mt.OCI_LAYER_ZSTD, "": mt.OCI_LAYER}[kind]
            with open(path, "rb") as f:
                apply_layer(f, out, media, mode="flat", what="ADD archive", threaded=False)
    except BaseException:
        import shutil

        shutil.rmtree(out, ignore_errors=True)
        raise
    return out


def _extract(tar_fd: int, dest: str, single: str | None, owner: tuple[int, int] | None = None) -> None:
    """In the chroot: make dest, decide the base dir, extract."""
    base = dest
    if single is not None and not dest.endswith("/"):
        if os.path.isdir(dest):
            base = dest
        else:
            base = os.path.dirname(dest.rstrip("/")) or "/"
    _makedirs(base, owner)
    with os.fdopen(tar_fd, "rb") as f, tarfile.open(fileobj=f, mode="r|") as tar:
        for m in tar:
            if single is not None and not dest.endswith("/") and not os.path.isdir(dest):
                m.name = os.path.basename(dest.rstrip("/"))
            target = os.path.join(base, m.name)
            _makedirs(os.path.dirname(target) or "/", owner)
            if not m.isdir():
                if os.path.lexists(target) and not os.path.isdir(target):
                    os.unlink(target)
            tar.extract(m, base, numeric_owner=True, set_attrs=True)


def _write_tar(out, entries, contents, owner: tuple[int, int] | None, mode: int | None,
               keep_owner: bool = False) -> None:
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for e in entries:
            st = e.st
            ti = tarfile.TarInfo(e.rel)
            ti.mtime = int(st.st_mtime)
            ti.uid, ti.gid = owner if owner else ((st.st_uid, st.st_gid) if keep_owner else (0, 0))
            ti.mode = _mode_for(mode, st)
            if stat.S_ISDIR(st.st_mode):
                ti.type = tarfile.DIRTYPE
                tar.addfile(ti)
            elif stat.S_ISLNK(st.st_mode):
                ti.type = tarfile.SYMTYPE
                ti.linkname = os.readlink(e.path)
                ti.mode = 0o777
                tar.addfile(ti)
            elif stat.S_ISREG(st.st_mode):
                ti.size = st.st_size
                with open(e.path, "rb") as f:
                    tar.addfile(ti, f)
        for name, data in contents:
            import io
            import time

            raw = data.encode()
            ti = tarfile.TarInfo(name)
            ti.size = len(raw)
            ti.mode = (mode(0o644, False) if callable(mode) else mode) if mode is not None else 0o644
            ti.uid, ti.gid = owner if owner else (0, 0)
            ti.mtime = int(time.time())
            tar.addfile(ti, io.BytesIO(raw))


def copy_into(ws, entries, dest: str, *, single: str | None, tmp_dir: str, chown: str | None = None,
              chmod: str | None = None, contents: list[tuple[str, str]] = (), keep_owner: bool = False) -> None:
    """Copy `entries` (context.Entry-like: path, rel, st) to `dest` (absolute) in the workspace."""
    from pallet.build.run import _FORK_LOCK

    mode = parse_chmod(chmod)
    owner = resolve_chown(ws.root, chown)
    with tempfile.TemporaryFile(dir=tmp_dir) as tmp:
        _write_tar(tmp, entries, contents, owner, mode, keep_owner)
        tmp.flush()
        fd = os.dup(tmp.fileno())
        os.lseek(fd, 0, os.SEEK_SET)
        err_r, err_w = os.pipe()
        from pallet.linux.mount import chroot
        from pallet.linux.proc import fork

        with _FORK_LOCK:
            pid = fork()
        if pid == 0:
            code = 0
            try:
                os.close(err_r)
                chroot(ws.root)
                os.chdir("/")
                _extract(fd, dest, single, owner)
            except BaseException as e:  # noqa: BLE001
                msg = f"{e.strerror}: {e.filename}" if isinstance(e, OSError) and e.filename else str(e)
                try:
                    os.write(err_w, msg.encode()[:4000])
                except OSError:
                    pass
                code = 1
            finally:
                os._exit(code)
        os.close(fd)
        os.close(err_w)
        chunks = []
        while b := os.read(err_r, 4096):
            chunks.append(b)
        os.close(err_r)
        _, status = os.waitpid(pid, 0)
        if chunks or status != 0:
            raise PalletError("copying failed: " + (b"".join(chunks).decode(errors="replace") or "error"),
                              exit_code=1)
