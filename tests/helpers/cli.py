"""Running pallet's command-line programs from tests: a crash cannot pass a test.

Every runner of `pallet` / `pallet-runtime` in the suite goes through `run_cli` (or checks what it
captured with `assert_no_traceback`): a Python traceback on stderr fails the test, whatever the exit
code and whatever the test asserts afterwards. pallet's own failures are one line and exit 125.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
PALLET = str(BIN / "pallet")
PALLET_RUNTIME = str(BIN / "pallet-runtime")
TRACEBACK = "Traceback (most recent call last)"


def _text(s: str | bytes | None) -> str:
    if s is None:
        return ""
    return s.decode(errors="replace") if isinstance(s, bytes) else s


def assert_no_traceback(stderr: str | bytes | None, argv=(), *, allow_traceback: bool = False) -> None:
    """Fail the calling test when `stderr` holds a Python traceback (a crash, never an answer)."""
    err = _text(stderr)
    if allow_traceback or TRACEBACK not in err:
        return
    cmd = " ".join(str(a) for a in argv)
    pytest.fail(f"`{cmd}` crashed with a Python traceback (errors must be one line):\n{err}", pytrace=False)


def run_cli(argv, *, allow_traceback: bool = False, **kw) -> subprocess.CompletedProcess:
    """subprocess.run(argv, **kw), then the traceback check on whatever stderr was captured (before
    `check=True` raises for the exit code, so a crash is reported as a crash)."""
    check = kw.pop("check", False)
    cp = subprocess.run(argv, **kw)
    assert_no_traceback(cp.stderr, argv, allow_traceback=allow_traceback)
    if check:
        cp.check_returncode()
    return cp


def assert_fails(cp: subprocess.CompletedProcess, message: str, code: int = 125) -> None:
    """`cp` failed the way docker fails: exit `code` and `message` within one line of stderr."""
    err = _text(cp.stderr)
    assert cp.returncode == code, f"exit {cp.returncode}, expected {code}: {err}"
    lines = [ln for ln in err.splitlines() if message in ln]
    assert lines, f"{message!r} not in stderr: {err}"


def run_pallet(argv: list[str], *, env: dict, input: str | bytes | None = None, check: bool = False,
               timeout: float = 60, allow_traceback: bool = False) -> subprocess.CompletedProcess:
    """The suite's pallet runner (conftest's `pallet`, engine's `pallet_env`, a netns' `npallet`):
    `argv` (the program and its arguments, maybe behind a prefix) with its output captured (text unless
    `input` is bytes), the traceback check, and with `check` an AssertionError that shows the output."""
    cp = run_cli(argv, input=input, capture_output=True, text=not isinstance(input, bytes), env=env,
                 timeout=timeout, allow_traceback=allow_traceback)
    if check and cp.returncode != 0:
        i = next((n for n, a in enumerate(argv) if str(a).endswith("/pallet")), 0)
        raise AssertionError(f"pallet {' '.join(map(str, argv[i + 1:]))} exited {cp.returncode}:\n{cp.stdout}\n"
                             f"{cp.stderr}")
    return cp
