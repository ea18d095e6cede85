"""Adapter from the engine to `pallet.layers`: one writable snapshot per container, keyed by its id."""

from __future__ import annotations

import os
from pathlib import Path

from pallet.errors import NotFound, PalletError


def _snaps(engine):
    from pallet.layers.snapshots import Snapshots

    return Snapshots(engine.store.root, engine.storage_driver)


def create(engine, c, rec) -> str:
    """Unpack the image's layers if needed, create the container's snapshot, mount it; the rootfs path."""
    from pallet.layers.images import layer_sources
    from pallet.linux import trace as T

    T.stage("snapshot")
    snaps = _snaps(engine)
    with engine.store.shared_lock():   # gc must not drop layers between unpack and snapshot creation
        ids = snaps.ensure(layer_sources(engine.store, rec))
        snap = snaps.create_container(c.id, ids)
    if T.recorder is not None:   # the overlay's lowerdirs (short links) named by layer, top first
        T.note("layers", image=rec.id, lowerdirs=[{"lowerdir": "l/" + snaps._ensure_link(i), "chain_id": i}
                                                  for i in reversed(ids)])
    root = str(snap.mount())
    T.stage("etc files")
    return root


def mount(engine, c) -> str:
    return str(_snaps(engine).container(c.id).mount())


def _detach(snap) -> None:
    """Lazily unmount a container's overlay: a plain umount of overlayfs syncs the upper filesystem
    and can take a second on a busy disk; nothing holds the mount once the container is gone."""
    merged = str(snap.merged)
    if snap.driver == "overlay" and os.path.ismount(merged):
        from pallet.linux.mount import MNT_DETACH, umount

        try:
            umount(merged, MNT_DETACH)
        except OSError as e:
            raise PalletError(f"unmounting {merged} failed: {e.strerror or e}") from None


def unmount(engine, c) -> None:
    try:
        snap = _snaps(engine).container(c.id)
    except NotFound:
        return
    _detach(snap)


def remove(engine, c) -> None:
    try:
        snap = _snaps(engine).container(c.id)
    except NotFound:
        return
    _detach(snap)
    snap.remove()


def graph_driver(engine, c) -> dict:
    snaps = _snaps(engine)
    snap = snaps.container(c.id)
    data = {"MergedDir": str(snap.merged)}
    if snap.driver == "overlay":
        data["UpperDir"] = str(snap.path / "upper")
        data["WorkDir"] = str(snap.path / "work")
        data["LowerDir"] = ":".join(str(snaps.diff_path(x)) for x in reversed(snap.layers))
    return {"Name": snap.driver, "Data": data}


def mkdir_in_root(root: str, path: str) -> None:
    """mkdir -p `path` inside the container root, following symlinks only within it."""
    import stat

    fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        parts = [p for p in path.split("/") if p not in ("", ".")]
        links = 0
        stack: list[int] = []
        while parts:
            comp = parts.pop(0)
            if comp == "..":
                if stack:
                    os.close(fd)
                    fd = stack.pop()
                continue
            try:
                st = os.stat(comp, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                os.mkdir(comp, 0o755, dir_fd=fd)
                st = os.stat(comp, dir_fd=fd, follow_symlinks=False)
            if stat.S_ISLNK(st.st_mode):
                links += 1
                if links > 40:
                    raise PalletError(f"too many symlinks in the working directory {path}")
                target = os.readlink(comp, dir_fd=fd)
                if target.startswith("/"):
                    while stack:
                        os.close(fd)
                        fd = stack.pop()
                parts[:0] = [p for p in target.split("/") if p not in ("", ".")]
                continue
            if not stat.S_ISDIR(st.st_mode):
                raise PalletError(f"the working directory {path} is not a directory in the container")
            nfd = os.open(comp, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
            stack.append(fd)
            fd = nfd
        for f in stack:
            os.close(f)
    finally:
        os.close(fd)


def storage_info(engine) -> dict:
    try:
        return _snaps(engine).info()
    except (ImportError, PalletError, OSError) as e:
        return {"Driver": "", "Reason": str(e), "Root": str(Path(engine.store.root) / "layers")}
