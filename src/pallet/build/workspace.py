"""A step's writable root: an overlay snapshot of the parent's layers, and the layer it leaves.

`Workspace(store, layers)` unpacks the parent's layers (once, shared with containers), makes a
snapshot with a random key and mounts it; `finish()` unmounts it and writes the upper dir as a
layer blob (None when the step changed no file); `close()` always removes the snapshot, so a
failing or interrupted step leaves no mount, snapshot or blob.
"""

from __future__ import annotations

import functools
import os
import secrets
import tempfile

from pallet.errors import PalletError
from pallet.layers.snapshots import LayerSource, Snapshots

__all__ = ["Workspace", "layer_sources", "remove_stale"]


def layer_sources(store, layers: list[dict]) -> list[LayerSource]:
    return [LayerSource(diff_id=x["diff_id"], digest=x["digest"], media_type=x["media_type"],
                        open=functools.partial(store.blobs.open, x["digest"]), size=x.get("size", 0),
                        trusted=True, diff_verified=True) for x in layers]


def _clamp_mtimes(top: str, epoch: int) -> None:
    """Every mtime above `epoch` becomes `epoch` (children first, so directories keep theirs)."""
    for d, dirs, files in os.walk(top, topdown=False):
        for n in files + dirs:
            p = os.path.join(d, n)
            st = os.lstat(p)
            if st.st_mtime > epoch:
                os.utime(p, (epoch, epoch), follow_symlinks=False)
    if os.lstat(top).st_mtime > epoch:
        os.utime(top, (epoch, epoch))


def _starttime(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def remove_stale(store, driver: str | None = None) -> int:
    """Remove the workspaces of builds that died without cleaning up (SIGKILL); returns how many."""
    snaps = Snapshots(store.root, driver)
    n = 0
    for key in snaps.containers():
        if not key.startswith("build-"):
            continue
        snap = snaps.container(key)
        try:
            pid, start = (snap.path / "owner").read_text().split()
        except (OSError, ValueError):
            continue
        if _starttime(int(pid)) == start:
            continue   # its build is still running
        try:
            snap.remove()
            n += 1
        except (OSError, PalletError):
            pass
    return n


class Workspace:
    def __init__(self, store, layers: list[dict], *, driver: str | None = None) -> None:
        self.store = store
        self.snaps = Snapshots(store.root, driver)
        if self.snaps.driver != "overlay":
            raise PalletError("pallet build needs the overlay snapshot driver", exit_code=1)
        self.key = "build-" + secrets.token_hex(8)
        with store.shared_lock():
            ids = self.snaps.ensure(layer_sources(store, layers), parallel=False)
            self.snap = self.snaps.create_container(self.key, ids)
        try:
            with open(self.snap.path / "owner", "w") as f:   # for remove_stale after a SIGKILL
                f.write(f"{os.getpid()} {_starttime(os.getpid())}")
        except OSError:
            pass
        try:
            self.root = str(self.snap.mount())
        except BaseException:
            self.snap.remove()
            raise

    def finish(self, clamp: int | None = None) -> dict | None:
        """Unmount and write the change as a gzip layer; its descriptor, or None when nothing changed.
        `clamp` (SOURCE_DATE_EPOCH): no entry of the layer is newer than it."""
        from pallet.layers.diff import write_layer

        self.snap.unmount()
        upper = str(self.snap.upper)
        if not os.listdir(upper):
            return None
        if clamp is not None:
            _clamp_mtimes(upper, clamp)
        with tempfile.NamedTemporaryFile(dir=self.store.tmp, prefix="build-layer-") as tmp:
            res = write_layer(tmp, upper=upper, compression="gzip")
            tmp.flush()
            tmp.seek(0)
            digest = self.store.blobs.put_stream(tmp, expected=res.digest)
        self.store.record_layer(digest, res.diff_id, res.size)
        return {"digest": digest, "diff_id": res.diff_id, "size": res.compressed_size,
                "media_type": res.media_type}

    def close(self) -> None:
        try:
            self.snap.remove()
        except (OSError, PalletError):
            pass

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
