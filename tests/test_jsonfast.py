"""pallet.jsonfast must be json, byte for byte (digests of documents pallet writes depend on it)."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pallet import jsonfast

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=5) |
                      st.dictionaries(st.text(), inner, max_size=5), max_leaves=30)


@given(values)
def test_dumps_is_compact_json(v):
    assert jsonfast.dumps(v) == json.dumps(v, separators=(",", ":"))
    assert jsonfast.dumps(v, ensure_ascii=False) == json.dumps(v, separators=(",", ":"), ensure_ascii=False)


@given(values)
def test_loads_is_json_loads(v):
    for text in (json.dumps(v), json.dumps(v, indent=2, ensure_ascii=False), f" \n{json.dumps(v)}\t"):
        assert jsonfast.loads(text) == json.loads(text)
        assert jsonfast.loads(text.encode()) == json.loads(text.encode())


def test_constants_and_encodings():
    got = jsonfast.loads('[NaN, Infinity, -Infinity, 1e400, 12345678901234567890]')
    assert math.isnan(got[0]) and got[1:4] == [math.inf, -math.inf, math.inf] and got[4] == 12345678901234567890
    assert jsonfast.loads('{"é": "\\u00e9"}'.encode("utf-16")) == {"é": "é"}   # (json reads UTF-16 too)
    for enc in ("utf-16-le", "utf-16-be", "utf-32-le"):   # no BOM: json tells them by their NULs
        assert jsonfast.loads('{"a": [1]}'.encode(enc)) == {"a": [1]}
    assert jsonfast.dumps({"é": [1.5, None]}) == '{"\\u00e9":[1.5,null]}'


@pytest.mark.parametrize("bad", ["", "{", "[1,]", '{"a": 1} x', "\ufeff{}", b"\xff\xfe\x00", "nul"])
def test_malformed_input_raises_what_json_raises(bad):
    with pytest.raises(ValueError) as ours:
        jsonfast.loads(bad)
    with pytest.raises(ValueError) as theirs:
        json.loads(bad)
    assert type(ours.value) is type(theirs.value) and str(ours.value) == str(theirs.value)


def test_unserializable_raises_type_error():
    with pytest.raises(TypeError, match="not JSON serializable"):
        jsonfast.dumps({"a": object()})
