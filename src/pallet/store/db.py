"""SQLite metadata: one database per storage root, WAL mode, migrations from `schema.py`."""

from __future__ import annotations

import _sqlite3 as sqlite3  # (not the `sqlite3` package: its dbapi2 imports datetime, ~2 ms at start-up)
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pallet.store.schema import MIGRATIONS


class Database:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.conn = sqlite3.connect(path, timeout=60, isolation_level=None, check_same_thread=False)
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("PRAGMA busy_timeout = 60000")
        self._wal()
        self.conn.execute("PRAGMA synchronous = NORMAL")
        self.conn.execute("PRAGMA foreign_keys = ON")
        self._migrate()

    def _wal(self) -> None:
        """Switch a new database to WAL. Two processes opening a new store at once (`pallet run` and
        its monitor) can get SQLITE_BUSY here without the busy handler being consulted: retry."""
        deadline = None
        while self.conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            try:
                self.conn.execute("PRAGMA journal_mode = WAL")
            except sqlite3.OperationalError as e:
                import time

                deadline = deadline or time.monotonic() + 60
                if "locked" not in str(e) or time.monotonic() > deadline:
                    raise
                time.sleep(0.005)

    def _migrate(self) -> None:
        self.conn.execute("CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY)")
        done = {r[0] for r in self.conn.execute("SELECT name FROM migrations")}
        if all(name in done for name, _ in MIGRATIONS):
            return
        with self.transaction() as c:
            done = {r[0] for r in c.execute("SELECT name FROM migrations")}
            for name, sql in MIGRATIONS:
                if name not in done:
                    for stmt in sql.split(";"):
                        if stmt.strip():
                            c.execute(stmt)
                    c.execute("INSERT INTO migrations(name) VALUES (?)", (name,))

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (BEGIN IMMEDIATE: concurrent writers queue instead of failing)."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        else:
            self.conn.execute("COMMIT")

    def query(self, sql: str, params: tuple = ()) -> list[sqlite3.Row]:
        return self.conn.execute(sql, params).fetchall()

    def close(self) -> None:
        self.conn.close()
