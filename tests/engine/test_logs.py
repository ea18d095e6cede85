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
