"""RUN --mount: what each mount type becomes in the runtime spec, and what it adds to the cache key.

- `cache`: a directory under `<root>/buildcache/mounts/<id>` that outlives builds (`id` defaults to
  the target; `uid`/`gid`/`mode` when it is created); `sharing=locked` holds an flock on it while the
  step runs, `shared` and `private` share it. Never part of a layer or the key's content.
- `tmpfs`: a fresh tmpfs (`size`).
- `bind`: a read-only bind of a path in another stage or image (`from=`), or of the build context
  (ignore file applied: a filtered copy); `rw` binds a scratch copy whose writes are dropped.
  Its content hash is part of the key.
- `secret`: the file given by `--secret id=ID,src=PATH|env=VAR` at `/run/secrets/ID` (or `target`),
  mode 0400 (or `mode`), `uid`/`gid`; only the id is in the key, never the content. A `required`
  secret that was not given is an error; a missing optional one is skipped.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile

from pallet.errors import PalletError

__all__ = ["MountPlan", "plan_mounts", "script_mount"]


class MountPlan:
    """The mounts of one RUN: `key` for the cache, `setup()` -> OCI mounts, `cleanup()` afterwards."""

    def __init__(self) -> None:
        self.key: list = []
        self.env: list[str] = []      # secret env= values: added to the process, not to the key
        self._setups: list = []
        self._cleanups: list = []

    def setup(self) -> list[dict]:
        out: list[dict] = []
        try:
            for fn in self._setups:
                m = fn()
                if m is not None:
                    out.append(m)
        except BaseException:
            self.cleanup()
            raise
        return out

    def cleanup(self) -> None:
        while self._cleanups:
            fn = self._cleanups.pop()
            try:
                fn()
            except OSError:
                pass


def script_mount(plan: MountPlan, store, name: str, data: str) -> None:
    """A RUN heredoc script with a #! line, executable at /dev/pipes/NAME (BuildKit's place for it)."""
    plan.key.append(("script", name, data))

    def setup():
        fd, path = tempfile.mkstemp(prefix="build-script-", dir=str(store.tmp))
        plan._cleanups.append(lambda p=path: os.unlink(p))
        with os.fdopen(fd, "w") as f:
            f.write(data)
        os.chmod(path, 0o755)
        return {"destination": "/dev/pipes/" + name, "type": "bind", "source": path,
                "options": ["bind", "ro", "rprivate"]}
    plan._setups.append(setup)


def _copy_tree(entries, dest: str) -> None:
    import stat

    for e in entries:
        p = os.path.join(dest, e.rel)
        if stat.S_ISDIR(e.st.st_mode):
            os.makedirs(p, exist_ok=True)
        elif stat.S_ISLNK(e.st.st_mode):
            os.makedirs(os.path.dirname(p), exist_ok=True)
            os.symlink(os.readlink(e.path), p)
        elif stat.S_ISREG(e.st.st_mode):
            os.makedirs(os.path.dirname(p), exist_ok=True)
            shutil.copy2(e.path, p)


def plan_mounts(builder, inst, mounts, expand, secrets: dict[str, str], workdir: str) -> MountPlan:
    plan = MountPlan()
    store = builder.store
    for m in mounts:
        target = expand(m.target) if m.target else m.target
        if target and not target.startswith("/"):
            target = os.path.join(workdir or "/", target)
        if m.type == "ssh":
            raise builder._fail(inst, "RUN --mount=type=ssh is not supported by pallet build yet")
        if m.type == "tmpfs":
            opts = ["nosuid", "nodev"] + ([f"size={m.size}"] if m.size else [])
            plan.key.append(("tmpfs", target, m.size))
            plan._setups.append(lambda t=target, o=opts: {"destination": t, "type": "tmpfs", "source": "tmpfs",
                                                         "options": o})
        elif m.type == "cache":
            cid = expand(m.cache_id or target)
            plan.key.append(("cache", target, cid, m.cache_sharing, m.mode, m.uid, m.gid))
            base = os.path.join(str(store.root), "buildcache", "mounts")
            import hashlib

            d = os.path.join(base, hashlib.sha256(cid.encode()).hexdigest()[:32])

            def cache_setup(d=d, t=target, m=m, ro=m.readonly):
                if not os.path.isdir(d):
                    os.makedirs(os.path.dirname(d), exist_ok=True)
                    tmp = tempfile.mkdtemp(dir=os.path.dirname(d), prefix=".new-")
                    os.chmod(tmp, m.mode if m.mode is not None else 0o755)
                    os.chown(tmp, m.uid or 0, m.gid or 0)
                    try:
                        os.rename(tmp, d)
                    except OSError:
                        os.rmdir(tmp)
                if m.cache_sharing == "locked":
                    fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
                    fcntl.flock(fd, fcntl.LOCK_EX)
                    plan._cleanups.append(lambda fd=fd: os.close(fd))
                return {"destination": t, "type": "bind", "source": d,
                        "options": ["rbind", "rprivate"] + (["ro"] if ro else [])}
            plan._setups.append(cache_setup)
        elif m.type == "secret":
            sid = m.cache_id or ""
            src = secrets.get(sid)
            plan.key.append(("secret", target, sid, m.env, m.mode, m.uid, m.gid))
            if src is None:
                if m.required:
                    raise builder._fail(inst, f"secret {sid} not found")
                continue
            if m.env:   # the secret as an environment variable of this RUN only (never in the key)
                with open(src) as f:
                    plan.env.append(f"{expand(m.env)}={f.read()}")
                if not m.target:
                    continue

            def secret_setup(src=src, t=target, m=m):
                fd, path = tempfile.mkstemp(prefix="build-secret-", dir=str(store.tmp))
                plan._cleanups.append(lambda p=path: os.unlink(p))
                with os.fdopen(fd, "wb") as f, open(src, "rb") as s:
                    f.write(s.read())
                os.chmod(path, m.mode if m.mode is not None else 0o400)
                os.chown(path, m.uid or 0, m.gid or 0)
                return {"destination": t, "type": "bind", "source": path, "options": ["bind", "ro", "rprivate"]}
            plan._setups.append(secret_setup)
        elif m.type == "bind":
            source = expand(m.source or "/") if m.source else "/"
            frm = expand(m.from_) if m.from_ else None
            if frm is None:
                try:
                    entries, is_dir = builder.ctx.select(source)
                except PalletError as e:
                    raise builder._fail(inst, e.message) from None
                plan.key.append(("bind", target, source, not m.readonly, builder.ctx.digest(entries)))

                def ctx_setup(entries=entries, t=target, m=m, is_dir=is_dir):
                    d = tempfile.mkdtemp(prefix="build-bind-", dir=str(store.tmp))
                    plan._cleanups.append(lambda d=d: shutil.rmtree(d, ignore_errors=True))
                    _copy_tree(entries, d)
                    if not is_dir and len(entries) == 1:
                        d = os.path.join(d, entries[0].rel)
                    return {"destination": t, "type": "bind", "source": d,
                            "options": ["rbind", "rprivate"] + (["ro"] if m.readonly else [])}
                plan._setups.append(ctx_setup)
            else:
                layers, skey = builder._copy_source(inst, frm)
                plan.key.append(("bind", target, source, not m.readonly, skey))

                def stage_setup(layers=layers, t=target, source=source, ro=m.readonly, frm=frm):
                    from pallet.build.workspace import Workspace
                    from pallet.runtime.rootfs import secure_join

                    ws = Workspace(store, layers, driver=builder.driver)
                    plan._cleanups.append(ws.close)
                    src = secure_join(ws.root, source)
                    if not os.path.lexists(src):
                        raise builder._fail(inst, f"bind mount source {source!r} not found in {frm}")
                    # a writable snapshot: rw writes land in its upper dir and are thrown away
                    return {"destination": t, "type": "bind", "source": src,
                            "options": ["rbind", "rprivate"] + (["ro"] if ro else [])}
                plan._setups.append(stage_setup)
    return plan
