"""The json-file log writer: docker's line format and size rotation."""

from __future__ import annotations

import json

from pallet.engine.monitor import JsonLog


def test_json_lines_and_partial_lines(tmp_path):
    log = JsonLog(tmp_path / "c-json.log")
    log.write("stdout", b"hello\nwor")
    log.write("stderr", b"oops\n")
    log.write("stdout", b"ld\n")
    log.write("stdout", b"no newline")
    log.close()
    recs = [json.loads(x) for x in (tmp_path / "c-json.log").read_text().splitlines()]
    assert [(r["stream"], r["log"]) for r in recs] == [("stdout", "hello\n"), ("stderr", "oops\n"),
                                                       ("stdout", "world\n"), ("stdout", "no newline")]
    assert all(r["time"].endswith("Z") and "T" in r["time"] for r in recs)


def test_rotation_keeps_bounded_files(tmp_path):
    log = JsonLog(tmp_path / "c-json.log", max_size=1000, max_files=2)
    for i in range(200):
        log.write("stdout", f"line {i}\n".encode())
    log.close()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["c-json.log", "c-json.log.1"]
    assert (tmp_path / "c-json.log").stat().st_size <= 1000
    last = json.loads((tmp_path / "c-json.log").read_text().splitlines()[-1])
    assert last["log"] == "line 199\n"


def test_iter_logs_yields_records_and_writes_nothing(tmp_path, capfd):
    """The reader is the engine's: records out, nothing on stdout or stderr (the caller renders them)."""
    from pallet.engine.logs import iter_logs

    class Eng:
        def log_path(self, cid):
            return tmp_path / f"{cid}-json.log"

    class C:
        id = "c1"

    log = JsonLog(tmp_path / "c1-json.log", max_size=200, max_files=2)
    for i in range(12):
        log.write("stderr" if i % 3 == 0 else "stdout", f"line {i}\n".encode())
    log.close()
    recs = list(iter_logs(Eng(), C()))
    assert capfd.readouterr() == ("", "")
    assert recs[-1][0] == "stdout" and recs[-1][2] == b"line 11\n" and recs[-3][0] == "stderr"
    assert all(ts.endswith("Z") for _, ts, _ in recs)
    # the rotated file first, then the current one: in order, the newest ones (older rotations are gone)
    nums = [int(d.split()[1]) for _, _, d in recs]
    assert nums == sorted(nums) and nums[-1] == 11
    assert [d for _, _, d in iter_logs(Eng(), C(), tail=2)] == [b"line 10\n", b"line 11\n"]
    assert list(iter_logs(Eng(), C(), tail=0)) == []
    assert list(iter_logs(Eng(), C(), since="2999-01-01T00:00:00Z")) == []
