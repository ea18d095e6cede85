"""pallet.flagtable: the table parser both `pallet run`'s fast path and `pallet-runtime` read their options with."""

from __future__ import annotations

import pytest

from pallet.flagtable import FLAG, MULTI, OPTIONAL, VALUE, FlagError, index, parse

ROWS = [(("-i", "--interactive"), "interactive", FLAG), (("-t", "--tty"), "tty", FLAG),
        (("-e", "--env"), "env", MULTI), (("--name",), "name", VALUE), (("--trace",), "trace", OPTIONAL),
        (("-d", "--detach"), "detach", FLAG)]
BY = index(ROWS)


def test_click_forms():
    kw, i = parse(["-it", "-eA=1", "--env", "B", "--name=x", "--trace", "img", "-e", "C"], BY,
                  defaults={"env": ()})
    assert kw == {"interactive": True, "tty": True, "env": ("A=1", "B"), "name": "x", "trace": ""} and i == 6
    kw, i = parse(["-dit", "-e", "X", "--", "-img"], BY)
    assert kw == {"detach": True, "interactive": True, "tty": True, "env": ("X",)} and i == 4
    assert parse(["--trace=/tmp/t", "img"], BY) == ({"trace": "/tmp/t"}, 1)


@pytest.mark.parametrize("args, why, name", [
    (["--nope", "img"], "unknown", "--nope"), (["-ix", "img"], "unknown", "-x"), (["--name"], "needs-value", "--name"),
    (["-e"], "needs-value", "-e"), (["--tty=false", "img"], "flag-value", "--tty"),
])
def test_refusals_say_why(args, why, name):
    with pytest.raises(FlagError) as e:
        parse(args, BY)
    assert (e.value.why, e.value.name) == (why, name)


def test_urfave_forms_and_checks():
    rows = [(("-b", "--bundle"), "bundle", VALUE), (("-d", "--detach"), "detach", FLAG),
            (("-e", "--env"), "env", MULTI), (("--pids",), "pids", VALUE)]
    by = index(rows)
    kw, i = parse(["-b/x", "--detach=false", "-eA", "-e", "B", "id"], by, bundle=False, flag_values=True)
    assert kw == {"bundle": "/x", "detach": False, "env": ("A", "B")} and i == 5
    with pytest.raises(FlagError) as e:
        parse(["--pids", "many"], by, bundle=False, check=lambda k, v: v.isdigit())
    assert (e.value.why, e.value.name, e.value.value) == ("bad-value", "--pids", "many")
    seen = []
    assert parse(["--x=1", "a"], by, special={"--x": seen.append}) == ({}, 1) and seen == ["1"]
