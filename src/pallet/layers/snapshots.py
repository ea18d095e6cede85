"""Snapshots: unpacked layers shared by every image that has them, and per-container views.

On-disk layout under ``<root>/layers``::

    <chain-hex>/diff          the layer, unpacked in overlay form (whiteouts = 0/0 char devices,
                              opaque dirs = trusted.overlay.opaque=y), whatever the driver
    <chain-hex>/layer.json    diff id, parent chain id, blob digest, sizes, entry count
    <chain-hex>/link          its short name
    <chain-hex>/flat          copy driver only: the whole tree up to this layer, flattened
    l/<short> -> ../<chain-hex>/diff
    mnt/<image-hex>/          read-only views (`pallet image mount`): overlay, or a read-only bind
                              mount of the copy driver's `flat` tree
    containers/<key>/         upper, work, merged (overlay) or merged (copy) of one container
    tmp/                      unpacks in progress; renamed into place when complete

A layer is unpacked into ``tmp/<random>/diff`` and the whole directory is
renamed to ``<chain-hex>`` when the unpack (and its digest checks) succeeded,
so a crash never leaves a half layer that looks complete; concurrent unpackers
of the same layer both finish and the loser discards its copy.

Overlay lowerdir lists name layers by ``l/<short>`` relative to an O_PATH file
descriptor of the layers dir (``/proc/self/fd/N/l/<short>``, 31 bytes a layer),
so that an image of 100+ layers fits in the one page a mount call's options
may take.

Drivers: ``overlay`` (the default where a test mount in the storage dir works)
and ``copy`` (merged views are real copies; used when overlayfs is missing or
the storage dir cannot be an overlay upper dir, e.g. itself on overlayfs).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from pallet import jsonfast
from pallet.errors import NotFound, PalletError
from pallet.fsutil import rmtree
from pallet.layers.chain import chain_ids
from pallet.records import record

TYPE_CHECKING = False  # typing is not imported at run time (start-up)
if TYPE_CHECKING:
    from typing import BinaryIO

    from pallet.layers.stream import LayerResult

# (the unpacker, subprocess and the like are imported where used: `pallet run` of an image already
# unpacked only mounts a snapshot and must not pay for them)

DRIVERS = ("overlay", "copy")
_EMPTY = "empty"


@record
class LayerSource:
    """One layer of an image: what to unpack and how to open its blob."""

    diff_id: str
    digest: str
    media_type: str
    open: Callable[[], BinaryIO]
    size: int = 0
    trusted: bool = False   # the blob was verified against `digest` when stored: do not hash it again
    diff_verified: bool = False  # its diff id was checked when stored (load, pull): do not hash again


def _hex(digest: str) -> str:
    return digest.partition(":")[2] or digest


def _is_mount(path: Path) -> bool:
    """Whether `path` is a mount point (by mountinfo: a bind mount from the same filesystem
    has the parent's st_dev, so os.path.ismount misses it)."""
    try:
        if os.path.ismount(path):
            return True
        real = os.path.realpath(path)
        with open("/proc/self/mountinfo") as f:
            for line in f:
                mp = line.split(" ", 5)[4]
                if "\\" in mp:
                    mp = mp.encode().decode("unicode_escape")
                if mp == real:
                    return True
    except OSError:
        return False
    return False


def _probe_overlay(layers: Path) -> tuple[bool, str]:
    if os.geteuid() != 0:
        return False, "not running as root"
    try:
        with open("/proc/filesystems") as f:
            if "overlay" not in f.read():
                import subprocess

                subprocess.run(["modprobe", "overlay"], capture_output=True, timeout=10)
    except OSError:
        pass
    probe = layers / "tmp" / f"probe-{os.urandom(4).hex()}"
    try:
        for d in ("lower", "upper", "work", "merged"):
            (probe / d).mkdir(parents=True)
        (probe / "lower" / "f").write_bytes(b"")
        try:
            _mount_overlay([str(probe / "lower")], str(probe / "merged"), upper=str(probe / "upper"),
                           work=str(probe / "work"))
        except PalletError as e:
            return False, f"overlay mount failed in {layers}: {e.message}"
        try:
            os.unlink(probe / "merged" / "f")  # makes a whiteout in upper: needs mknod + trusted xattrs
        finally:
            _umount(str(probe / "merged"))
        return True, "overlayfs works in the storage directory"
    except OSError as e:
        return False, f"overlay probe failed: {e}"
    finally:
        rmtree(probe)


def _mount_overlay(lowers: Sequence[str], target: str, *, upper: str | None = None, work: str | None = None,
                   readonly: bool = False, base: str | None = None, volatile: bool = False) -> None:
    """Mount overlayfs. `lowers` top first; with `base`, lowers are relative to that directory;
    `volatile` (with an upper dir): no sync of the upper filesystem, at unmount or ever."""
    fd = None
    try:
        if base is not None:
            fd = os.open(base, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            prefix = f"/proc/self/fd/{fd}/"
            lowers = [prefix + x for x in lowers]
        opts = "lowerdir=" + ":".join(lowers)
        if upper:
            # redirect_dir/metacopy off: a renamed lower dir is copied up whole, so the upper dir
            # is a self-contained change that `diff.diff_upper` can turn into a layer (as docker does)
            opts += f",upperdir={upper},workdir={work},redirect_dir=off,metacopy=off,index=off"
            if volatile:
                opts += ",volatile"
        if len(opts) > 4000:
            raise PalletError(f"too many layers for one overlay mount ({len(lowers)}): the option string "
                              f"has {len(opts)} bytes, the kernel takes at most 4096")
        try:
            from pallet.linux import mount as m
        except ImportError:
            m = None
        if m is not None:
            try:
                m.mount("overlay", target, "overlay", m.MS_RDONLY if readonly else 0, opts)
            except OSError as e:
                raise PalletError(f"mounting overlayfs on {target} failed: {e.strerror or e}") from None
        else:
            import subprocess

            args = ["mount", "-t", "overlay", "overlay", "-o", ("ro," if readonly else "") + opts, target]
            cp = subprocess.run(args, capture_output=True, text=True, pass_fds=(fd,) if fd is not None else ())
            if cp.returncode:
                raise PalletError(f"mounting overlayfs on {target} failed: {cp.stderr.strip()}")
    finally:
        if fd is not None:
            os.close(fd)


def _bind_readonly(source: str, target: str) -> None:
    """A read-only bind mount (bind, then remount read-only: the kernel ignores MS_RDONLY on the bind)."""
    try:
        from pallet.linux import mount as m
    except ImportError:
        m = None
    if m is not None:
        try:
            m.mount(source, target, None, m.MS_BIND)
            m.mount(None, target, None, m.MS_BIND | m.MS_REMOUNT | m.MS_RDONLY)
        except OSError as e:
            if _is_mount(Path(target)):
                _umount(target)
            raise PalletError(f"bind-mounting {source} read-only on {target} failed: {e.strerror or e}") from None
        return
    import subprocess

    cp = subprocess.run(["mount", "--bind", "-o", "ro", source, target], capture_output=True, text=True)
    if cp.returncode:
        raise PalletError(f"bind-mounting {source} read-only on {target} failed: {cp.stderr.strip()}")


def _umount(target: str) -> None:
    try:
        from pallet.linux import mount as m
    except ImportError:
        m = None
    if m is not None:
        try:
            m.umount(target)
        except OSError as e:
            raise PalletError(f"unmounting {target} failed: {e.strerror or e}") from None
        return
    import subprocess

    cp = subprocess.run(["umount", target], capture_output=True, text=True)
    if cp.returncode:
        raise PalletError(f"unmounting {target} failed: {cp.stderr.strip()}")


def _unpack_one(args: tuple) -> tuple[str, dict]:
    """Worker: unpack one layer into tmp/<x>/diff (a process of its own, for parallelism)."""
    from pallet.layers.stream import apply_layer

    tmpdir, path, media_type, digest, diff_id, trusted, diff_verified = args
    os.makedirs(tmpdir + "/diff")
    with open(path, "rb") as f:
        r = apply_layer(f, tmpdir + "/diff", media_type, expected_digest=None if trusted else digest or None,
                        expected_diff_id=None if diff_verified else diff_id, threaded=False,
                        hash_blob=not trusted, hash_diff=not diff_verified)
    return tmpdir, r.__dict__


class Snapshots:
    """The layer snapshots of one storage root."""

    def __init__(self, root: str | os.PathLike, driver: str | None = None) -> None:
        self.root = Path(root)
        self.dir = self.root / "layers"
        for d in ("l", "tmp", "mnt", "containers"):
            (self.dir / d).mkdir(parents=True, exist_ok=True)
        (self.dir / _EMPTY).mkdir(exist_ok=True)
        if driver is not None and driver not in DRIVERS:
            raise PalletError(f"unknown storage driver {driver!r} (overlay or copy)")
        self._forced = driver
        self._driver: str | None = driver
        self._reason = "forced with --storage-driver" if driver else ""

    # ---- driver ----------------------------------------------------------------------------
    @property
    def driver(self) -> str:
        if self._driver is None:
            self._driver, self._reason = self._detect()
        return self._driver

    def _detect(self) -> tuple[str, str]:
        cache = self.dir / "driver.json"
        kernel = os.uname().release
        try:
            rec = jsonfast.loads(cache.read_text())
            if rec.get("kernel") == kernel and rec.get("euid") == os.geteuid():
                return rec["driver"], rec["reason"]
        except (OSError, ValueError, KeyError):
            pass
        ok, reason = _probe_overlay(self.dir)
        driver = "overlay" if ok else "copy"
        from pallet.fsutil import atomic_write

        atomic_write(cache, jsonfast.dumps({"driver": driver, "reason": reason, "kernel": kernel,
                                            "euid": os.geteuid()}).encode(), fsync=False)
        return driver, reason

    def info(self) -> dict:
        """For `pallet system info`: the driver in use, why, and what is stored."""
        driver = self.driver
        layers = [p for p in self.dir.iterdir() if len(p.name) == 64 and (p / "diff").is_dir()]
        return {"Driver": driver, "Reason": self._reason, "Root": str(self.dir), "Layers": len(layers),
                "BackingFilesystem": _fs_type(self.dir)}

    # ---- layers ----------------------------------------------------------------------------
    def layer_dir(self, chain_id: str) -> Path:
        return self.dir / _hex(chain_id)

    def has(self, chain_id: str) -> bool:
        return (self.layer_dir(chain_id) / "diff").is_dir()

    def diff_path(self, chain_id: str) -> Path:
        return self.layer_dir(chain_id) / "diff"

    def layer_meta(self, chain_id: str) -> dict:
        try:
            return jsonfast.loads((self.layer_dir(chain_id) / "layer.json").read_text())
        except (OSError, ValueError):
            return {}

    def _tmp(self) -> str:
        mark_topdir(str(self.dir / "tmp"))
        return str(self.dir / "tmp" / f"unpack-{os.urandom(16).hex()}")

    def _publish(self, tmpdir: str, chain_id: str, parent: str | None, result: dict) -> None:
        meta = {"chain_id": chain_id, "parent": parent, **{k: v for k, v in result.items() if k != "warnings"}}
        with open(tmpdir + "/layer.json", "w") as f:
            f.write(jsonfast.dumps(meta))
        short = self._short_name(chain_id)
        with open(tmpdir + "/link", "w") as f:
            f.write(short)
        try:
            os.rename(tmpdir, self.layer_dir(chain_id))
        except OSError:
            if not self.has(chain_id):
                raise
            rmtree(tmpdir)  # another unpacker won the race
        self._ensure_link(chain_id)

    def _short_name(self, chain_id: str) -> str:
        h = _hex(chain_id)
        for n in range(12, 65, 4):
            link = self.dir / "l" / h[:n]
            try:
                target = os.readlink(link)
            except FileNotFoundError:
                return h[:n]
            except OSError:
                continue
            if target == f"../{h}/diff":
                return h[:n]
        raise PalletError(f"no free short name for layer {chain_id}")

    def _ensure_link(self, chain_id: str) -> str:
        h = _hex(chain_id)
        try:
            short = (self.layer_dir(chain_id) / "link").read_text().strip()
        except FileNotFoundError:
            short = self._short_name(chain_id)
        link = self.dir / "l" / short
        try:
            os.symlink(f"../{h}/diff", link)
        except FileExistsError:
            if os.readlink(link) != f"../{h}/diff":
                raise PalletError(f"short layer name {short} is taken by another layer") from None
        return short

    def unpack_writer(self, chain_id: str, parent: str | None, media_type: str, *,
                      expected_digest: str | None = None, expected_diff_id: str | None = None) -> PendingLayer:
        """Push-style unpack of one layer while it downloads (the pull path):

            w = snaps.unpack_writer(chain, parent, desc.media_type, expected_digest=desc.digest,
                                    expected_diff_id=diff_id)
            for chunk in body: w.feed(chunk)
            w.commit()       # or w.abort() on failure
        """
        return PendingLayer(self, chain_id, parent, media_type, expected_digest, expected_diff_id)

    def ensure(self, layers: Sequence[LayerSource], *, parallel: bool = True) -> list[str]:
        """Unpack the layers of an image that are not unpacked yet; returns their chain ids."""
        ids = chain_ids([x.diff_id for x in layers])
        missing = [(i, src) for i, src in enumerate(layers) if not self.has(ids[i])]
        for i, _ in enumerate(layers):
            if self.has(ids[i]):
                self._ensure_link(ids[i])
        if not missing:
            return ids
        jobs = []
        for i, src in missing:
            tmp = self._tmp()
            with src.open() as f:
                path = getattr(f, "name", None)
            jobs.append((i, tmp, path, src))
        workers = min(len(jobs), os.cpu_count() or 1)
        try:
            import threading

            # forking is only safe from a single-threaded process (a thread may hold a lock)
            if parallel and workers > 1 and threading.active_count() == 1 and all(isinstance(j[2], str) for j in jobs):
                import multiprocessing
                from concurrent.futures import ProcessPoolExecutor

                order = sorted(jobs, key=lambda j: -(j[3].size or 0))  # biggest first
                with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as ex:
                    futs = {ex.submit(_unpack_one, (t, p, s.media_type, s.digest, s.diff_id, s.trusted,
                                                       s.diff_verified)): i
                            for i, t, p, s in order}
                    for fut, i in futs.items():
                        tmpdir, result = fut.result()
                        result["digest"] = result["digest"] or layers[i].digest
                        result["diff_id"] = result["diff_id"] or layers[i].diff_id
                        self._publish(tmpdir, ids[i], ids[i - 1] if i else None, result)
            else:
                from pallet.layers.stream import apply_layer

                for i, tmp, _, src in jobs:
                    os.makedirs(tmp + "/diff")
                    with src.open() as f:
                        r = apply_layer(f, tmp + "/diff", src.media_type,
                                        expected_digest=None if src.trusted else src.digest or None,
                                        expected_diff_id=None if src.diff_verified else src.diff_id,
                                        hash_blob=not src.trusted, hash_diff=not src.diff_verified)
                    self._publish(tmp, ids[i], ids[i - 1] if i else None,
                                  {**r.__dict__, "digest": r.digest or src.digest, "diff_id": r.diff_id or src.diff_id})
        finally:
            for _, tmp, _, _ in jobs:
                if os.path.exists(tmp):
                    rmtree(tmp)
        return ids

    # ---- views -----------------------------------------------------------------------------
    def _lowers(self, ids: Sequence[str]) -> list[str]:
        """Relative (to the layers dir) lowerdir names, top layer first."""
        lowers = ["l/" + self._ensure_link(c) for c in reversed(ids)]
        if len(lowers) == 1:
            lowers.append(_EMPTY)  # overlayfs wants two lowers when there is no upper
        return lowers

    def _flat(self, ids: Sequence[str]) -> Path:
        """Copy driver: the flattened tree of a chain, built once and kept with the top layer."""
        from pallet.layers.flatten import flatten

        top = self.layer_dir(ids[-1]) / "flat"
        if top.is_dir():
            return top
        tmp = self._tmp()
        os.makedirs(tmp)
        try:
            flatten([str(self.diff_path(c)) for c in ids], tmp)
            try:
                os.rename(tmp, top)
            except OSError:
                if not top.is_dir():
                    raise
        finally:
            rmtree(tmp)
        return top

    def mount_image(self, key: str, ids: Sequence[str]) -> Path:
        """A read-only merged view of the chain `ids`; idempotent. Returns its path."""
        if not ids:
            return self.dir / _EMPTY
        copy = self.driver == "copy"
        flat = self._flat(ids) if copy else None
        if copy and os.geteuid() != 0:
            return flat  # no bind mounts without root: the flattened tree itself (writable!)
        target = self.dir / "mnt" / _hex(key)
        if _is_mount(target):
            return target
        target.mkdir(parents=True, exist_ok=True)
        try:
            if copy:
                _bind_readonly(str(flat), str(target))
            else:
                _mount_overlay(self._lowers(ids), str(target), readonly=True, base=str(self.dir))
        except BaseException:
            try:
                target.rmdir()
            except OSError:
                pass
            raise
        return target

    def unmount_image(self, key: str) -> bool:
        """Undo `mount_image`; False when it was not mounted."""
        target = self.dir / "mnt" / _hex(key)
        if not _is_mount(target):
            if target.is_dir():
                try:
                    target.rmdir()
                except OSError:
                    pass
            return False
        _umount(str(target))
        target.rmdir()
        return True

    def mounted_images(self) -> list[str]:
        return [p.name for p in (self.dir / "mnt").iterdir() if _is_mount(p)]

    # ---- containers ------------------------------------------------------------------------
    def create_container(self, key: str, ids: Sequence[str]) -> ContainerSnapshot:
        """A writable snapshot for a container on top of the chain `ids` (not mounted yet)."""
        d = self.dir / "containers" / key
        if d.exists():
            raise PalletError(f"a snapshot named {key} already exists")
        tmp = Path(self._tmp())
        tmp.mkdir()
        try:
            (tmp / "merged").mkdir()
            if self.driver == "overlay":
                (tmp / "upper").mkdir()
                (tmp / "work").mkdir()
            else:
                from pallet.layers.flatten import flatten

                flatten([str(self.diff_path(c)) for c in ids], str(tmp / "merged"))
            (tmp / "snapshot.json").write_text(jsonfast.dumps({"driver": self.driver, "layers": list(ids)}))
            os.rename(tmp, d)
        finally:
            rmtree(tmp)
        return ContainerSnapshot(self, key, d)

    def container(self, key: str) -> ContainerSnapshot:
        d = self.dir / "containers" / key
        if not (d / "snapshot.json").is_file():
            raise NotFound(f"no snapshot named {key}")
        return ContainerSnapshot(self, key, d)

    def containers(self) -> list[str]:
        return sorted(p.name for p in (self.dir / "containers").iterdir() if (p / "snapshot.json").is_file())

    # ---- garbage collection ----------------------------------------------------------------
    def in_use(self) -> set[str]:
        """Chain ids that container snapshots stand on."""
        used: set[str] = set()
        for key in self.containers():
            try:
                used.update(jsonfast.loads((self.dir / "containers" / key / "snapshot.json").read_text())["layers"])
            except (OSError, ValueError, KeyError):
                continue
        return used

    def gc(self, keep: set[str]) -> list[str]:
        """Remove unpacked layers whose chain id is neither in `keep` nor under a container."""
        keep_hex = {_hex(c) for c in keep | self.in_use()}
        mounted = self.mounted_images()
        removed = []
        if mounted:
            return removed  # a mounted view may stand on any layer; collect next time
        for p in self.dir.iterdir():
            if len(p.name) != 64 or p.name in keep_hex:
                continue
            try:
                short = (p / "link").read_text().strip()
                os.unlink(self.dir / "l" / short)
            except OSError:
                pass
            trash = self._tmp()
            try:
                os.rename(p, trash)
            except OSError:
                continue
            rmtree(trash)
            removed.append("sha256:" + p.name)
        return removed


class PendingLayer:
    """A layer being unpacked from pushed bytes into a temp dir; `commit()` publishes it."""

    def __init__(self, snaps: Snapshots, chain_id: str, parent: str | None, media_type: str,
                 expected_digest: str | None, expected_diff_id: str | None) -> None:
        self.snaps = snaps
        self.chain_id = chain_id
        self.parent = parent
        self.tmp = snaps._tmp()
        os.makedirs(self.tmp + "/diff")
        from pallet.layers.stream import LayerWriter

        self.writer = LayerWriter(self.tmp + "/diff", media_type, expected_digest=expected_digest,
                                  expected_diff_id=expected_diff_id)

    def feed(self, data: bytes) -> None:
        try:
            self.writer.feed(data)
        except BaseException:
            self.abort()
            raise

    def commit(self) -> LayerResult:
        try:
            r = self.writer.close()
            self.snaps._publish(self.tmp, self.chain_id, self.parent, r.__dict__)
            return r
        finally:
            rmtree(self.tmp)

    def abort(self) -> None:
        self.writer.abort()
        rmtree(self.tmp)


class ContainerSnapshot:
    """A container's writable root: overlay upper/work over the image's layers, or a full copy."""

    def __init__(self, snaps: Snapshots, key: str, path: Path) -> None:
        self.snaps = snaps
        self.key = key
        self.path = path
        meta = jsonfast.loads((path / "snapshot.json").read_text())
        self.driver: str = meta["driver"]
        self.layers: list[str] = meta["layers"]

    @property
    def merged(self) -> Path:
        return self.path / "merged"

    @property
    def upper(self) -> Path | None:
        return self.path / "upper" if self.driver == "overlay" else None

    def mount(self) -> Path:
        """Mount (idempotent) and return the root filesystem path."""
        if self.driver == "copy" or _is_mount(self.merged):
            return self.merged
        lowers = self.snaps._lowers(self.layers) if self.layers else [_EMPTY]
        if lowers[-1] == _EMPTY and len(lowers) > 1:
            lowers.pop()
        upper, work = str(self.path / "upper"), str(self.path / "work")
        if _volatile_supported():
            # A container's writable layer is scratch space (docker's data lives in volumes): mounted
            # `volatile` (as podman does), unmounting it does not sync the whole upper filesystem, which
            # takes up to seconds on a busy disk at every stop, rm and --rm. The kernel leaves
            # work/work/incompat/volatile behind and refuses the next mount while it is there; like
            # containers/storage we remove it before mounting again (the container is not running).
            rmtree(os.path.join(work, "work", "incompat", "volatile"))
            try:
                _mount_overlay(lowers, str(self.merged), upper=upper, work=work, base=str(self.snaps.dir),
                               volatile=True)
                return self.merged
            except PalletError:
                _VOLATILE[0] = False   # refused (an older kernel or an odd upper fs): mount it plainly
        _mount_overlay(lowers, str(self.merged), upper=upper, work=work, base=str(self.snaps.dir))
        return self.merged

    def unmount(self) -> None:
        if self.driver == "overlay" and _is_mount(self.merged):
            _umount(str(self.merged))

    def remove(self) -> None:
        self.unmount()
        trash = self.snaps._tmp()
        os.rename(self.path, trash)
        rmtree(trash)


_VOLATILE: list[bool | None] = [None]


def _volatile_supported() -> bool:
    """overlayfs' `volatile` option exists since Linux 5.10 (and may be refused anyway: then we fall back)."""
    if _VOLATILE[0] is None:
        if os.environ.get("PALLET_OVERLAY_VOLATILE", "1") == "0":
            _VOLATILE[0] = False
        else:
            try:
                major, minor = (int(x) for x in os.uname().release.split(".")[:2])
            except ValueError:
                major, minor = 0, 0
            _VOLATILE[0] = (major, minor) >= (5, 10)
    return bool(_VOLATILE[0])


_TOPDIRS: set[str] = set()
_FS_IOC_GETFLAGS, _FS_IOC_SETFLAGS, _FS_TOPDIR_FL = 0x80086601, 0x40086602, 0x00020000


def mark_topdir(path: str) -> None:
    """Mark the directory that layers are unpacked in as the top of directory hierarchies (ext4's
    `chattr +T`), best effort, once per process.

    Each layer is a tree of its own; with the flag, ext4's Orlov allocator places each new layer
    dir in a block group of its own with free inodes, instead of near its parent's. Near the
    parent -- a busy tmp or storage dir -- the groups are full of recently deleted inodes, which
    ext4 (without a journal) scans past on every inode allocation: measured here, that made the
    kernel side of unpacking the bench image 5-7x slower (7.3 s of system time instead of 1.0 s).
    Filesystems without the flag refuse or ignore it; nothing else changes.
    """
    if path in _TOPDIRS:
        return
    _TOPDIRS.add(path)
    try:
        import fcntl

        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except (ImportError, OSError):
        return
    try:
        buf = bytearray(8)
        fcntl.ioctl(fd, _FS_IOC_GETFLAGS, buf, True)
        flags = int.from_bytes(buf[:4], "little")
        if not flags & _FS_TOPDIR_FL:
            fcntl.ioctl(fd, _FS_IOC_SETFLAGS, (flags | _FS_TOPDIR_FL).to_bytes(4, "little") + bytes(4))
    except OSError:
        pass
    finally:
        os.close(fd)


def _fs_type(path: Path) -> str:
    best, kind = "", ""
    try:
        with open("/proc/self/mounts") as f:
            for line in f:
                parts = line.split()
                if len(parts) > 2 and str(path).startswith(parts[1]) and len(parts[1]) > len(best):
                    best, kind = parts[1], parts[2]
    except OSError:
        pass
    return kind


def gc_hook(store) -> None:
    """Called by `Store.gc()` under its exclusive lock: drop layers no image or container needs."""
    keep: set[str] = set()
    for rec in store.images():
        try:
            keep.update(chain_ids(store.config(rec).diff_ids))
        except PalletError:
            continue
    Snapshots(store.root).gc(keep)
