"""pallet.store.db: opening the SQLite database."""

import os
import sys
from pathlib import Path

import pytest

from helpers.cli import run_cli
from pallet.errors import PalletError
from pallet.store import Store
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


def test_an_unusable_storage_root_is_one_clear_error(tmp_path):
    (tmp_path / "file").write_text("not a directory\n")
    with pytest.raises(PalletError, match="cannot use .*file/root as pallet's storage root"):
        Store(tmp_path / "file" / "root")
    (tmp_path / "db" / "pallet.db").mkdir(parents=True)
    with pytest.raises(PalletError, match="cannot open pallet's database"):
        Store(tmp_path / "db")
    pallet = str(Path(sys.executable).parent / "pallet")
    for args in (["images"], ["run", "--rm", "busybox", "true"]):
        cp = run_cli([pallet, *args], capture_output=True, text=True,
                     env={"PALLET_ROOT": str(tmp_path / "file" / "root"), "PATH": "/usr/bin:/bin"})
        assert cp.returncode == 125, cp.stderr
        assert cp.stderr.startswith("Error: cannot use ") and cp.stderr.count("\n") == 1, cp.stderr
