"""engine.views: docker's ps filters and Status column, called in-process as an API daemon would."""

from __future__ import annotations

import pytest

from engine.engine_support import IMAGE
from pallet.engine.views import parse_filters, ps, status_text
from pallet.errors import PalletError

pytestmark = pytest.mark.root


def test_filters_from_flags_and_from_the_api_shape_are_the_same():
    assert parse_filters(["label=a=1", "status=exited", "label=b"]) == {"label": ["a=1", "b"], "status": ["exited"]}
    assert parse_filters({"label": ["a=1", "b"], "status": ["exited"]}) == parse_filters(
        ["label=a=1", "label=b", "status=exited"])
    with pytest.raises(PalletError, match="invalid filter 'colour'"):
        parse_filters({"colour": ["red"]})
    with pytest.raises(PalletError, match="expected KEY=VALUE"):
        parse_filters(["name"])


def test_ps_filters_and_status(pallet_env, engine):
    pallet_env("run", "--name", "ok", "-l", "tier=web", IMAGE, "true", check=True)
    pallet_env("run", "--name", "bad", "-l", "tier=db", IMAGE, "sh", "-c", "exit 3")
    pallet_env("create", "--name", "new", IMAGE, "true", check=True)
    running = pallet_env("run", "-d", "--name", "up", IMAGE, "sleep", "60", check=True).stdout.strip()
    assert [c.name for c in ps(engine)] == ["up"]
    assert {c.name for c in ps(engine, all=True)} == {"ok", "bad", "new", "up"}
    assert ps(engine, filters={"label": ["tier=db"]}) == []     # without -a: running ones only
    assert [c.name for c in ps(engine, all=True, filters={"label": ["tier=db"]})] == ["bad"]
    assert [c.name for c in ps(engine, all=True, filters={"exited": ["3"]})] == ["bad"]
    assert [c.name for c in ps(engine, filters={"status": ["created"]})] == ["new"]
    assert len(ps(engine, all=True, last=2)) == 2
    texts = {c.name: status_text(engine, c) for c in ps(engine, all=True)}
    assert texts["new"] == "Created"
    assert texts["bad"].startswith("Exited (3) ") and texts["bad"].endswith(" ago")
    assert texts["up"].startswith("Up ")
    pallet_env("rm", "-f", running, check=True)
