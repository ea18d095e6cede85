"""pallet.store.db: opening the SQLite database."""

import os

from pallet.store.db import Database


def test_processes_opening_a_new_database_at_once_all_succeed(tmp_path):
    """`pallet run` and its early-forked monitor can both be the first to open a new store: switching
    it to WAL must not fail with 'database is locked' in either (seen as 2 failures in 120 opens)."""
    failures = 0
    for i in range(40):
        path = tmp_path / f"s{i}" / "pallet.db"
        path.parent.mkdir()
        pids = []
        for _ in range(3):
            pid = os.fork()
            if pid == 0:
                code = 1
                try:
                    db = Database(path)
                    db.query("SELECT 1")
                    code = 0
                finally:
                    os._exit(code)
            pids.append(pid)
        for pid in pids:
            failures += os.waitpid(pid, 0)[1] != 0
    assert failures == 0
    assert Database(tmp_path / "s0" / "pallet.db").query("PRAGMA journal_mode")[0][0] == "wal"
