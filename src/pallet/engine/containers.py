"""The containers table: a container's directories, its row (get, list, insert, update, rename), the
per-container lock, and reconciling a row with the kernel (`refresh`: a dead process is Exited)."""

from __future__ import annotations

import _sqlite3 as sqlite3  # (not the `sqlite3` package: its dbapi2 imports datetime, ~2 ms at start-up)
import os
import time
from contextlib import contextmanager
from pathlib import Path

from pallet import jsonfast
from pallet.engine import exitwatch
from pallet.engine.events import container_event
from pallet.engine.model import UNKNOWN_EXIT, Container, alive
from pallet.engine.names import random_name, validate_name
from pallet.errors import Conflict, NotFound

TYPE_CHECKING = False  # typing is not imported at run time (start-up)
if TYPE_CHECKING:
    from typing import Any


class Containers:
    """Engine methods (a mixin of `core.Engine`: `self.store`, `self.root`, `self.runroot`)."""

    # ---- paths ------------------------------------------------------------------------------
    def dir(self, cid: str) -> Path:
        return self.root / "containers" / cid

    def run_dir(self, cid: str) -> Path:
        return self.runroot / "containers" / cid

    def log_path(self, cid: str) -> Path:
        return self.dir(cid) / f"{cid}-json.log"

    def before_fork(self) -> None:
        """SQLite connections must not cross fork (the child would share the parent's lock state and
        WAL descriptors, and writes can land in a WAL another process already deleted): close ours."""
        self.store.db.close()
        self._db_closed = True

    def after_fork_parent(self) -> None:
        """The parent reopens its connection lazily, on its next query (a foreground run needs none)."""

    def after_fork(self) -> None:
        """In a forked monitor: a fresh database connection (never share one across fork)."""
        from pallet.store.db import Database

        self.store.db = Database(self.root / "pallet.db")
        self._db_closed = False  # (inherited True from before_fork: `db` would open a second one)
        self._runtimes = {}

    _db_closed = False

    @property
    def db(self):
        if self._db_closed:
            from pallet.store.db import Database

            self.store.db = Database(self.root / "pallet.db")
            self._db_closed = False
        return self.store.db

    # ---- rows --------------------------------------------------------------------------------
    def _rows(self, where: str = "", params: tuple = ()) -> list[Container]:
        return [Container.from_row(r) for r in self.db.query(f"SELECT * FROM containers {where}", params)]

    def get(self, ref: str, *, refresh: bool = True) -> Container:
        """By full id, name, or unique id prefix (docker's lookup order)."""
        rows = self._rows("WHERE id = ? OR name = ?", (ref, ref.removeprefix("/")))
        if not rows and len(ref) >= 1 and all(ch in "0123456789abcdef" for ch in ref):
            rows = self._rows("WHERE id LIKE ?", (ref + "%",))
            if len(rows) > 1:
                raise Conflict(f"multiple containers match the ID prefix {ref!r}; give more of the ID")
        if not rows:
            raise NotFound(f"No such container: {ref}")
        c = rows[0]
        return self.refresh(c) if refresh else c

    def list(self, *, all: bool = True) -> list[Container]:
        cs = [self.refresh(c) for c in self._rows("ORDER BY created DESC")]
        return cs if all else [c for c in cs if c.status == "running"]

    def _update(self, cid: str, **cols: Any) -> None:
        sets = ", ".join(f"{k} = ?" for k in cols)
        with self.db.transaction() as conn:
            conn.execute(f"UPDATE containers SET {sets} WHERE id = ?", (*cols.values(), cid))

    def refresh(self, c: Container) -> Container:
        """Reconcile a row with the kernel: a dead process is Exited whatever the row says."""
        if c.status == "restarting" and not alive(c.monitor_pid, c.monitor_start):
            c.status = "exited"   # its monitor died while waiting to restart it
            self._update(c.id, status="exited", monitor_pid=None)
        if c.status == "running" and not alive(c.pid, c.pid_start):
            if alive(c.monitor_pid, c.monitor_start):
                # the monitor is recording the exit right now: wait for the real code (its exit FIFO
                # closes once the row has it; at most 30 s)
                deadline = time.monotonic() + 30
                fd = exitwatch.open_watch(self.run_dir(c.id))
                try:
                    while True:
                        fresh = self._rows("WHERE id = ?", (c.id,))
                        if not fresh:
                            c.status = "removing"
                            return c
                        if fresh[0].status != "running":
                            return fresh[0]
                        if not alive(c.monitor_pid, c.monitor_start) or time.monotonic() >= deadline:
                            break
                        if fd is None:
                            time.sleep(0.02)
                        else:
                            exitwatch.wait_hangup(fd, min(deadline, time.monotonic() + 1))
                finally:
                    if fd is not None:
                        os.close(fd)
            c.status, c.exit_code, c.finished_at = "exited", UNKNOWN_EXIT, c.finished_at or time.time()
            c.error = "the container's process is gone and its monitor did not record how it exited"
            c.pid = None
            self._update(c.id, status="exited", exit_code=UNKNOWN_EXIT, finished_at=c.finished_at,
                         error=c.error, pid=None, monitor_pid=None)
        return c

    def _insert(self, c: Container, *, explicit_name: bool) -> None:
        for attempt in range(20):
            if not explicit_name:
                c.name = random_name(attempt)
            try:
                with self.db.transaction() as conn:
                    conn.execute(
                        "INSERT INTO containers(id, name, image_id, image_name, created, runtime, config, status) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (c.id, c.name, c.image_id, c.image_name, c.created, c.runtime, jsonfast.dumps(c.config),
                         c.status))
                return
            except sqlite3.IntegrityError:
                if explicit_name:
                    other = self.db.query("SELECT id FROM containers WHERE name = ?", (c.name,))
                    oid = other[0][0] if other else "?"
                    raise Conflict(f'the container name "/{c.name}" is already in use by container "{oid}"; '
                                   "remove (or rename) that container to reuse the name") from None
        raise Conflict("could not find a free container name; give one with --name")

    @contextmanager
    def locked(self, c: Container):
        """A per-container lock serializing start / stop / remove of the same container between processes."""
        import fcntl

        try:
            fd = os.open(self.dir(c.id) / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except FileNotFoundError:
            raise NotFound(f"No such container: {c.name or c.id}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def rename(self, c: Container, new: str) -> None:
        new = validate_name(new)
        try:
            with self.db.transaction() as conn:
                conn.execute("UPDATE containers SET name = ? WHERE id = ?", (new, c.id))
                conn.execute("UPDATE network_leases SET name = ? WHERE container_id = ?", (new, c.id))
        except sqlite3.IntegrityError:
            raise Conflict(f'the container name "/{new}" is already in use') from None
        old, c.name = c.name, new
        container_event(self, c, "rename", oldName=f"/{old}")
