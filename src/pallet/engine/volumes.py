"""Volumes and mounts: `-v`, `--mount`, `--tmpfs`, the image's VOLUMEs, and `pallet volume`.

A volume is a directory `<root>/volumes/<name>/_data` (docker's local driver layout)
with a row in the `volumes` table. `-v NAME:/path` creates it on first use and, when
it is empty, seeds it from the image's content at that path (ownership, modes,
symlinks kept), as docker does. Paths the image declares as VOLUME get an anonymous
volume (a random 64-hex name) unless something else is mounted there; `rm -v` and
`--rm` remove those.

At create time the container's mounts are resolved once into `config["Mounts"]`
(docker's inspect shape plus the options needed to build the spec); `spec_mounts`
turns them into runtime-spec mounts at every start.
"""

from __future__ import annotations

import os
import re
import stat
import time

from pallet import jsonfast
from pallet.engine.events import emit
from pallet.engine.units import parse_bytes
from pallet.errors import Conflict, InvalidField, NotFound, PalletError
from pallet.fsutil import rmtree

NAME_RE = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+")
PROPAGATIONS = ("private", "rprivate", "shared", "rshared", "slave", "rslave")


# ---- parsing ---------------------------------------------------------------------------------
def _check_dest(dest: str, what: str) -> str:
    if not dest.startswith("/"):
        raise PalletError(f"invalid {what}: the container path {dest!r} must be absolute")
    d = os.path.normpath(dest)
    if d == "/":
        raise PalletError(f"invalid {what}: the destination cannot be '/'")
    return d


def parse_bind(spec: str) -> dict:
    """-v [SRC:]DST[:OPTS] -> {Type, Source, Target, ReadOnly, Propagation, NoCopy}."""
    what = f"volume specification {spec!r}"
    parts = spec.split(":")
    if not spec or len(parts) > 3 or any(p == "" for p in parts):
        raise PalletError(f"invalid {what}: expected [HOST-DIR|NAME:]CONTAINER-DIR[:ro|rw]")
    if len(parts) == 1:
        src, dst, opts = "", parts[0], ""
    elif len(parts) == 2:
        if parts[1].startswith("/") or not parts[0].startswith("/"):
            src, dst, opts = parts[0], parts[1], ""
        else:
            src, dst, opts = "", parts[0], parts[1]
    else:
        src, dst, opts = parts
    dst = _check_dest(dst, what)
    ro, prop, nocopy = False, "", False
    modes = [o for o in opts.split(",") if o] if opts else []
    for o in modes:
        if o in ("ro", "rw"):
            ro = o == "ro"
        elif o in PROPAGATIONS:
            prop = o
        elif o == "nocopy":
            nocopy = True
        elif o in ("z", "Z", "consistent", "cached", "delegated"):
            pass
        else:
            raise PalletError(f"invalid {what}: unknown mode {o!r} (ro, rw, nocopy, z, Z, a propagation)")
    if src.startswith("/"):
        kind = "bind"
        src = os.path.normpath(src)
    elif src:
        kind = "volume"
        if not NAME_RE.fullmatch(src):
            raise PalletError(f"invalid {what}: {src!r} is neither an absolute host path nor a volume name "
                              "([a-zA-Z0-9][a-zA-Z0-9_.-]+)")
    else:
        kind = "volume"
    return {"Type": kind, "Source": src, "Target": dst, "ReadOnly": ro, "Propagation": prop, "NoCopy": nocopy,
            "Mode": ",".join(modes)}


MOUNT_TYPES = ("bind", "volume", "tmpfs")


def check_mount(m: dict) -> dict:
    """One of HostConfig.Mounts (docker's Mount: Type, Source, Target, ReadOnly, BindOptions,
    VolumeOptions, TmpfsOptions) checked -> the entry with its Target normalised. A bad one raises
    InvalidField("Mounts"); its message says `{text}` (the entry as type=,src=,dst=)."""
    kind = m.get("Type") or "volume"
    text = ",".join(f"{k}={v}" for k, v in (("type", kind), ("src", m.get("Source")), ("dst", m.get("Target"))) if v)

    def bad(msg: str, **values) -> InvalidField:
        return InvalidField("Mounts", "invalid {name} {text!r}: " + msg, text=text, **values)

    if kind not in MOUNT_TYPES:
        raise bad("type must be bind, volume or tmpfs")
    prop = (m.get("BindOptions") or {}).get("Propagation")
    if prop and prop not in PROPAGATIONS:
        raise bad("bind-propagation must be one of " + ", ".join(PROPAGATIONS))
    target, src = m.get("Target") or "", m.get("Source") or ""
    if not target:
        raise bad("a target (dst=) is required")
    if not target.startswith("/"):
        raise bad("the container path {dest!r} must be absolute", dest=target)
    target = os.path.normpath(target)
    if target == "/":
        raise bad("the destination cannot be '/'")
    if kind == "bind":
        if not src:
            raise bad("a bind mount needs a source (src=)")
        if not src.startswith("/"):
            raise bad("the bind source must be an absolute path")
        if not os.path.exists(src):
            raise bad("bind source path does not exist: {src}", src=src)
    elif kind == "volume":
        if src and not NAME_RE.fullmatch(src):
            raise bad("{src!r} is not a valid volume name", src=src)
    elif kind == "tmpfs" and src:
        raise bad("a tmpfs mount takes no source")
    return {**m, "Type": kind, "Source": src, "Target": target, "ReadOnly": bool(m.get("ReadOnly"))}


def tmpfs_options(opts: str, what: str) -> list[str]:
    out = []
    for o in [x for x in opts.split(",") if x]:
        k, _, v = o.partition("=")
        if k in ("size", "mode", "uid", "gid", "nr_inodes", "nr_blocks"):
            if not v:
                raise InvalidField("Tmpfs", "invalid {name} {text!r}: {k} needs a value", text=what, k=k)
            if k == "size":
                    v = str(parse_bytes(v, "tmpfs size"))
            out.append(f"{k}={v}")
        elif k in ("ro", "rw", "exec", "noexec", "suid", "nosuid", "dev", "nodev", "sync", "async", "atime",
                   "noatime", "relatime", "strictatime", "nodiratime", "diratime", "tmpcopyup", "notmpcopyup"):
            out.append(k)
        else:
            raise InvalidField("Tmpfs", "invalid {name} {text!r}: unknown option {k!r}", text=what, k=k)
    return out


def _targets(host: dict) -> list[str]:
    out = [parse_bind(b)["Target"] for b in host.get("Binds") or ()]
    out += [m["Target"] for m in host.get("Mounts") or ()]
    out += list((host.get("Tmpfs") or {}).keys())
    return out


def check_duplicates(host: dict) -> None:
    seen: set[str] = set()
    for t in _targets(host):
        if t in seen:
            raise PalletError(f"Duplicate mount point: {t}")
        seen.add(t)


# ---- the volume store ----------------------------------------------------------------------
def vol_dir(engine, name: str):
    return engine.root / "volumes" / name


class Volumes:
    def __init__(self, engine) -> None:
        self.engine = engine
        self.db = engine.store.db

    def get(self, name: str) -> dict:
        rows = self.db.query("SELECT * FROM volumes WHERE name = ?", (name,))
        if not rows:
            raise NotFound(f"get {name}: no such volume")
        return self._doc(rows[0])

    def list(self) -> list[dict]:
        return [self._doc(r) for r in self.db.query("SELECT * FROM volumes ORDER BY name")]

    def _doc(self, r) -> dict:
        from pallet.engine.model import rfc3339

        return {"CreatedAt": rfc3339(r["created"]), "Driver": r["driver"], "Labels": jsonfast.loads(r["labels"]) or None,
                "Mountpoint": str(vol_dir(self.engine, r["name"]) / "_data"), "Name": r["name"],
                "Options": jsonfast.loads(r["options"]) or None, "Scope": "local",
                "Anonymous": bool(r["anonymous"])}

    def create(self, name: str | None = None, *, labels: dict | None = None, anonymous: bool = False,
               exist_ok: bool = True) -> tuple[dict, bool]:
        """(volume, created-now)."""
        if name is None:
            name = os.urandom(32).hex()
            anonymous = True
        if not NAME_RE.fullmatch(name):
            raise PalletError(f"invalid volume name {name!r}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed "
                              "(at least two characters)")
        with self.db.transaction() as conn:
            cur = conn.execute("INSERT OR IGNORE INTO volumes(name, created, labels, anonymous) VALUES (?, ?, ?, ?)",
                               (name, time.time(), jsonfast.dumps(labels or {}), int(anonymous)))
            created = cur.rowcount == 1
        if not created and not exist_ok:
            raise Conflict(f"volume {name} already exists")
        d = vol_dir(self.engine, name) / "_data"
        try:
            d.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            if created:
                self._delete_row(name)
            raise PalletError(f"cannot create volume {name}: {e.strerror}") from None
        if created:
            emit(self.engine, "volume", "create", name, {"driver": "local"})
        return self.get(name), created

    def users(self, name: str) -> list[str]:
        """Names of containers whose mounts use volume `name`."""
        out = []
        for r in self.db.query("SELECT name, config FROM containers WHERE config LIKE ?", (f"%{name}%",)):
            for m in jsonfast.loads(r["config"]).get("Mounts") or ():
                if m.get("Type") == "volume" and m.get("Name") == name:
                    out.append(r["name"])
                    break
        return out

    def remove(self, name: str, *, force: bool = False) -> None:
        self.get(name)
        users = self.users(name)
        if users and not force:
            raise Conflict(f"remove {name}: volume is in use - [{', '.join(users)}]")
        self._delete_row(name)
        d = vol_dir(self.engine, name)
        if d.exists():
            trash = d.with_name(f".rm-{name}-{os.getpid()}")
            try:
                os.rename(d, trash)
            except OSError:
                trash = d
            rmtree(trash)
        emit(self.engine, "volume", "destroy", name, {"driver": "local"})

    def _delete_row(self, name: str) -> None:
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM volumes WHERE name = ?", (name,))

    def prune(self, *, all: bool = False, labels: list[str] = ()) -> list[str]:
        gone = []
        used: set[str] = set()
        for r in self.db.query("SELECT config FROM containers"):
            for m in jsonfast.loads(r["config"]).get("Mounts") or ():
                if m.get("Type") == "volume":
                    used.add(m.get("Name"))
        for v in self.list():
            if v["Name"] in used or (not all and not v["Anonymous"]):
                continue
            if not _label_match(v.get("Labels") or {}, labels):
                continue
            self.remove(v["Name"], force=True)
            gone.append(v["Name"])
        return gone


def _label_match(have: dict, want: list[str]) -> bool:
    for w in want:
        k, sep, v = w.partition("=")
        if k not in have or (sep and have[k] != v):
            return False
    return True


# ---- container side -------------------------------------------------------------------------
def _seed(root: str, dest: str, data: str) -> None:
    """Copy the image's content at `dest` (inside `root`) into an empty volume dir, keeping owners/modes."""
    from pallet.runtime.rootfs import secure_join

    try:
        src = secure_join(root, dest)
    except Exception:  # noqa: BLE001
        return
    try:
        st = os.lstat(src)
    except OSError:
        return
    if not stat.S_ISDIR(st.st_mode):
        return
    if any(os.scandir(data)):
        return
    os.chown(data, st.st_uid, st.st_gid)
    os.chmod(data, stat.S_IMODE(st.st_mode))
    import shutil  # here, not at the top: only seeding a volume needs it

    for name in os.listdir(src):
        s, d = os.path.join(src, name), os.path.join(data, name)
        sst = os.lstat(s)
        if stat.S_ISDIR(sst.st_mode):
            shutil.copytree(s, d, symlinks=True, copy_function=shutil.copy2)
        elif stat.S_ISLNK(sst.st_mode):
            os.symlink(os.readlink(s), d)
        elif stat.S_ISREG(sst.st_mode):
            shutil.copy2(s, d)
        else:
            continue
    for dirpath, dirnames, filenames in os.walk(data):
        rel = os.path.relpath(dirpath, data)
        for n in dirnames + filenames:
            sp = os.path.join(src, rel, n)
            try:
                sst = os.lstat(sp)
                os.chown(os.path.join(dirpath, n), sst.st_uid, sst.st_gid, follow_symlinks=False)
            except OSError:
                pass


def _seed_locked(root: str, dest: str, data: str) -> None:
    """_seed under a lock beside the volume's _data: concurrent first uses seed it once."""
    import fcntl

    try:
        fd = os.open(os.path.join(os.path.dirname(data), "lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError:
        _seed(root, dest, data)
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        _seed(root, dest, data)
    finally:
        os.close(fd)


def setup(engine, c, rootfs: str) -> None:
    """At create: resolve -v/--mount/--tmpfs/VOLUMEs into config["Mounts"]; create and seed volumes.
    Undoes the volumes it created if anything fails."""
    host = c.HostConfig
    wants = [parse_bind(b) for b in host.get("Binds") or ()]
    for m in host.get("Mounts") or ():
        w = {"Type": m["Type"], "Source": m.get("Source") or "", "Target": m["Target"],
             "ReadOnly": bool(m.get("ReadOnly")),
             "Propagation": (m.get("BindOptions") or {}).get("Propagation", ""),
             "NoCopy": bool((m.get("VolumeOptions") or {}).get("NoCopy")), "Mode": "",
             "Labels": (m.get("VolumeOptions") or {}).get("Labels")}
        if m["Type"] == "tmpfs":
            t = m.get("TmpfsOptions") or {}
            opts = []
            if t.get("SizeBytes"):
                opts.append(f"size={t['SizeBytes']}")
            if t.get("Mode") is not None:
                opts.append(f"mode={t['Mode']:o}")
            w["TmpfsOptions"] = opts
        wants.append(w)
    for path, opts in (host.get("Tmpfs") or {}).items():
        wants.append({"Type": "tmpfs", "Source": "", "Target": path, "ReadOnly": False, "Propagation": "",
                      "NoCopy": False, "Mode": opts, "TmpfsOptions": ["noexec", "nosuid", "nodev",
                                                                       *tmpfs_options(opts, path)]})
    for v in host.get("VolumesFrom") or ():
        ref, _, mode = v.partition(":")
        other = engine.get(ref, refresh=False)
        have = {w["Target"] for w in wants}
        for m in other.config.get("Mounts") or ():
            if m["Type"] == "tmpfs" or m["Destination"] in have:
                continue
            wants.append({"Type": m["Type"], "Source": m.get("Name") or m["Source"], "Target": m["Destination"],
                          "ReadOnly": (mode == "ro") if mode else not m.get("RW", True),
                          "Propagation": m.get("Propagation") or "", "NoCopy": True, "Mode": mode})
    taken = {w["Target"] for w in wants}
    for path in sorted((c.Config.get("Volumes") or {}).keys()):
        p = os.path.normpath(path)
        if p not in taken and p != "/":
            wants.append({"Type": "volume", "Source": "", "Target": p, "ReadOnly": False, "Propagation": "",
                          "NoCopy": False, "Mode": "", "Anonymous": True})
            taken.add(p)
    if not wants:
        return
    vols = None
    made: list[str] = []
    mounts = []
    try:
        for w in wants:
            m = {"Type": w["Type"], "Source": "", "Destination": w["Target"], "Mode": w.get("Mode") or "",
                 "RW": not w["ReadOnly"], "Propagation": w.get("Propagation") or ("rprivate" if w["Type"] != "tmpfs"
                                                                                   else "")}
            if w["Type"] == "bind":
                src = w["Source"]
                if not os.path.exists(src):
                    try:   # -v creates a missing host directory (docker does)
                        os.makedirs(src, 0o755, exist_ok=True)
                    except OSError as e:
                        raise PalletError(f"cannot create the bind source {src}: {e.strerror}") from None
                m["Source"] = src
            elif w["Type"] == "volume":
                if vols is None:
                    vols = Volumes(engine)
                name = w["Source"] or None
                v, created = vols.create(name, labels=w.get("Labels"))
                if created:
                    made.append(v["Name"])
                m.update(Name=v["Name"], Source=v["Mountpoint"], Driver="local",
                         Anonymous=bool(v["Anonymous"]) and not w["Source"])
                if not w.get("NoCopy"):
                    _seed_locked(rootfs, w["Target"], v["Mountpoint"])
            else:
                m["TmpfsOptions"] = w.get("TmpfsOptions") or []
            mounts.append(m)
    except BaseException:
        for name in made:
            try:
                Volumes(engine).remove(name, force=True)
            except PalletError:
                pass
        raise
    c.config["Mounts"] = mounts
    engine._update(c.id, config=jsonfast.dumps(c.config))


def spec_mounts(c) -> list[dict]:
    out = []
    for m in sorted(c.config.get("Mounts") or (), key=lambda m: len(m["Destination"].rstrip("/").split("/"))):
        if m["Type"] == "tmpfs":
            opts = list(m.get("TmpfsOptions") or [])
            if not m.get("RW", True) and "ro" not in opts:
                opts.append("ro")
            out.append({"destination": m["Destination"], "type": "tmpfs", "source": "tmpfs", "options": opts})
            continue
        opts = ["rbind", m.get("Propagation") or "rprivate"]
        if not m.get("RW", True):
            opts.append("ro")
        out.append({"destination": m["Destination"], "type": "bind", "source": m["Source"], "options": opts})
    return out


def inspect_mounts(c) -> list[dict]:
    keep = ("Type", "Name", "Source", "Destination", "Driver", "Mode", "RW", "Propagation")
    return [{k: m[k] for k in keep if k in m} for m in c.config.get("Mounts") or ()]


def release(engine, c, *, remove_anonymous: bool) -> None:
    """After a container's row is gone: remove its anonymous volumes (rm -v, --rm)."""
    if not remove_anonymous:
        return
    names = [m["Name"] for m in c.config.get("Mounts") or () if m.get("Type") == "volume" and m.get("Anonymous")]
    if not names:
        return
    vols = Volumes(engine)
    for n in names:
        try:
            if not vols.users(n):
                vols.remove(n)
        except PalletError:
            pass
