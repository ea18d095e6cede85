"""docs/tour.md stays true: every command in the tour runs on this machine (scripts/tour.py --check)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.root
@pytest.mark.slow
def test_every_tour_command_still_works():
    cp = subprocess.run([sys.executable, str(REPO / "scripts" / "tour.py"), "--check"], capture_output=True,
                        text=True, timeout=600)
    assert cp.returncode == 0, cp.stderr[-4000:]


def test_the_page_is_the_tours_output():
    """The committed page has every section and command of the script (make tour writes it)."""
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import tour
    finally:
        sys.path.pop(0)
    page = (REPO / "docs" / "tour.md").read_text()
    for title, _, commands in tour.SECTIONS:
        assert f"## {title}" in page
        for cmd in commands:
            assert "-o $DOCS" in cmd or f"$ {cmd}" in page, cmd
    assert (REPO / "docs" / "tour-diagram.svg").read_text().lstrip().startswith(("<?xml", "<svg"))
