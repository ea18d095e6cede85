import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pallet.errors import InvalidDigest
from pallet.oci.digest import Digest, Hasher, chain_ids, is_digest


def test_parse_valid_sha256_and_sha512():
    h = hashlib.sha256(b"x").hexdigest()
    d = Digest.parse(f"sha256:{h}")
    assert (d.algorithm, d.hex, d.short) == ("sha256", h, h[:12])
    h5 = hashlib.sha512(b"x").hexdigest()
    assert str(Digest.parse(f"sha512:{h5}")) == f"sha512:{h5}"


@pytest.mark.parametrize("bad", [
    "", "sha256", "sha256:", "sha256:abc", "sha256:" + "A" * 64, "sha256:" + "g" * 64,
    "md5:" + "a" * 32, "sha512:" + "a" * 64, ":" + "a" * 64, "sha256:" + "a" * 65, "SHA256:" + "a" * 64,
])
def test_parse_rejects(bad):
    with pytest.raises(InvalidDigest):
        Digest.parse(bad)
    assert not is_digest(bad)


@given(st.binary(max_size=4096), st.integers(min_value=1, max_value=97))
def test_hasher_matches_one_shot(data, chunk):
    h = Hasher()
    for i in range(0, len(data), chunk):
        h.update(data[i:i + chunk])
    assert h.digest() == Digest.of(data)
    assert h.size == len(data)
    assert Digest.of(data).verify(data)
    assert not Digest.of(data).verify(data + b"!")


def test_chain_ids_follow_the_spec():
    a, b, c = (f"sha256:{hashlib.sha256(x).hexdigest()}" for x in (b"a", b"b", b"c"))
    ids = chain_ids([a, b, c])
    ab = "sha256:" + hashlib.sha256(f"{a} {b}".encode()).hexdigest()
    abc = "sha256:" + hashlib.sha256(f"{ab} {c}".encode()).hexdigest()
    assert ids == [a, ab, abc]
    assert chain_ids([]) == []
