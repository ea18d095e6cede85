"""pallet.reference against every vector of github.com/distribution/reference.

The vectors live in ../shared/vendor-data/distribution-reference/ and are read
from there at test time (never copied). Each table of test-tables.json has a
"semantics" string; the checker for that table below implements it. A table in
the file without a checker fails `test_every_table_has_a_checker`.

Digest algorithms: upstream's tests register only sha256 (`import _ "crypto/sha256"`),
so there `name@sha512:<128 hex>` is "unsupported digest algorithm". pallet accepts
sha512 too (OCI registers it, and a docker binary links it in), so these tests run
with the algorithm set of upstream's test binary; test_sha512_is_accepted covers
pallet's own default.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import pallet.reference as R
from pallet.errors import InvalidReference
from pallet.reference import grammar as G

Case = Any


@pytest.fixture(scope="module")
def ref_vectors(vendor_data: Path) -> Path:
    d = vendor_data / "distribution-reference"
    assert (d / "test-tables.json").is_file(), f"missing {d}/test-tables.json"
    return d


@pytest.fixture(scope="module")
def tables(ref_vectors: Path) -> dict[tuple[str, str], dict]:
    doc = json.loads((ref_vectors / "test-tables.json").read_text())
    return {(t["test"], t["table"]): t for t in doc["tables"]}


@pytest.fixture(scope="module")
def upstream_results(ref_vectors: Path) -> list[dict]:
    return json.loads((ref_vectors / "upstream-results.json").read_text())["results"]


@pytest.fixture(autouse=True)
def upstream_digest_algorithms(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(R, "DIGEST_ALGORITHMS", {"sha256": 64})


# --- helpers -------------------------------------------------------------------------------------

def expect_error(err: dict, fn: Callable[[], object]) -> None:
    """`fn` must raise InvalidReference with upstream's exact text, and the sentinel class if named."""
    with pytest.raises(InvalidReference) as info:
        fn()
    e = info.value
    assert e.message == err["error"]
    if err["name"]:
        assert isinstance(e, R.SENTINELS[err["name"]]), f"{type(e).__name__} is not {err['name']}"
    else:
        assert not isinstance(e, tuple(R.SENTINELS.values())), f"{type(e).__name__} should be a plain error"


def go_groups(m) -> list[str]:
    """Go's FindStringSubmatch()[1:]: unmatched groups are ""."""
    return [g or "" for g in m.groups()]


# --- one checker per table, implementing its "semantics" -------------------------------------

def check_domain_and_path(c: Case) -> None:
    # reference.WithName(input) succeeds; Domain()==domain, Path()==path.
    ref = R.with_name(c["input"])
    assert (ref.domain, ref.path) == (c["domain"], c["path"])


def check_domain_regexp(c: Case) -> None:
    # ^domainAndPort$: MatchString(input)==match.
    assert bool(G.ANCHORED_DOMAIN_RE.match(c["input"])) is c["match"]


def check_full_name_regexp(c: Case) -> None:
    # anchoredNameRegexp: match, and subs == [domain, path] when given.
    m = G.ANCHORED_NAME_RE.match(c["input"])
    assert bool(m) is c["match"]
    if m and c["subs"]:
        assert go_groups(m) == c["subs"]


def check_identifier_regexp(c: Case) -> None:
    # anchoredIdentifierRegexp (^[a-f0-9]{64}$): MatchString(input)==match.
    assert bool(G.ANCHORED_IDENTIFIER_RE.match(c["input"])) is c["match"]
    assert R._is_identifier(c["input"]) is c["match"]  # the regex-free check parse uses


def check_match(c: Case) -> None:
    # FamiliarMatch(pattern, ParseAnyReference(reference)) == expected.
    assert R.familiar_match(c["pattern"], R.parse_any_reference(c["reference"])) is c["expected"]


def check_normalized_split_hostname(c: Case) -> None:
    # ParseNormalizedNamed(input): Domain()==domain, Path()==path.
    ref = R.parse_normalized_named(c["input"])
    assert (ref.domain, ref.path) == (c["domain"], c["path"])


def check_parse_any_reference(c: Case) -> None:
    # ParseAnyReference(Reference).String()==Equivalent, and equals Parse(Equivalent), or the
    # digest-only reference Expected.
    ref = R.parse_any_reference(c["Reference"])
    assert str(ref) == c["Equivalent"]
    if c["Expected"] is not None:
        assert ref == R.Reference("", "", None, c["Expected"])
        assert not ref.is_named
    else:
        assert ref == R.parse(c["Equivalent"])


def check_parse_docker_ref(c: Case) -> None:
    # ParseDockerRef(input).String()==expected.
    assert str(R.parse_docker_ref(c["input"])) == c["expected"]


def check_parse_named(c: Case) -> None:
    # ParseNamed(input): fails with err, else Domain()/Path().
    if c["err"]:
        expect_error(c["err"], lambda: R.parse_named(c["input"]))
        return
    ref = R.parse_named(c["input"])
    assert (ref.domain, ref.path) == (c["domain"], c["path"])


def check_parse_repository_info(c: Case) -> None:
    # each of FamiliarName, FullName, AmbiguousName (if set) parsed with ParseNormalizedNamed gives
    # FamiliarName, FullName, Domain, RemoteName.
    for text in (c["FamiliarName"], c["FullName"], c["AmbiguousName"]):
        if not text:
            continue
        ref = R.parse_normalized_named(text)
        assert R.familiar_name(ref) == c["FamiliarName"] == ref.familiar
        assert str(ref) == c["FullName"]
        assert ref.domain == c["Domain"]
        assert ref.path == c["RemoteName"]


def check_reference_parse(c: Case) -> None:
    # Parse(input): err, or String()==input, Name()/Domain() when repository, tag / digest or not.
    if c["err"]:
        expect_error(c["err"], lambda: R.parse(c["input"]))
        return
    ref = R.parse(c["input"])
    assert str(ref) == c["input"]
    if c["repository"]:
        assert ref.is_named
        assert ref.name == c["repository"]
        assert ref.domain == c["domain"]
    assert ref.tag == (c["tag"] or None)
    assert ref.digest == (c["digest"] or None)


def check_reference_regexp(c: Case) -> None:
    # ReferenceRegexp: match, subs == [name, tag, digest].
    m = G.REFERENCE_RE.match(c["input"])
    assert bool(m) is c["match"]
    if m:
        assert go_groups(m) == c["subs"]
    # the one-regex form parse() uses must agree with the two-step upstream form
    p = G.PARSE_RE.match(c["input"])
    assert bool(p) is bool(m)
    if p:
        domain, path, tag, digest = go_groups(p)
        assert [domain + "/" + path if domain else path, tag, digest] == c["subs"]


def check_serialization(c: Case) -> None:
    # JSON round trip of reference.Field = Parse on unmarshal, String() on marshal.
    if c["err"]:
        expect_error(c["err"], lambda: R.parse(c["input"]))
        return
    ref = R.parse(c["input"])
    if c["name"]:
        assert ref.name == c["name"]
    assert ref.tag == (c["tag"] or None)
    assert ref.digest == (c["digest"] or None)
    assert json.dumps({"Field": str(ref)}) == json.dumps({"Field": c["input"]})


def check_valid_name(name: str) -> None:
    # ParseNormalizedNamed(name) parses.
    R.parse_normalized_named(name)


def check_invalid_name(name: str) -> None:
    # ParseNormalizedNamed(name) fails.
    with pytest.raises(InvalidReference):
        R.parse_normalized_named(name)


def check_with_digest(c: Case) -> None:
    # WithName(name) [WithTag(tag)] then WithDigest(digest); String()==combined.
    ref = R.with_name(c["name"])
    if c["tag"]:
        ref = R.with_tag(ref, c["tag"])
    assert str(R.with_digest(ref, c["digest"])) == c["combined"]


def check_with_name_failure(c: Case) -> None:
    # WithName(input) fails with err.
    expect_error(c["err"], lambda: R.with_name(c["input"]))


def check_with_tag(c: Case) -> None:
    # WithName(name) [WithDigest(digest)] then WithTag(tag); String()==combined.
    ref = R.with_name(c["name"])
    if c["digest"]:
        ref = R.with_digest(ref, c["digest"])
    assert str(R.with_tag(ref, c["tag"])) == c["combined"]


CHECKERS: dict[tuple[str, str], Callable[[Case], None]] = {
    ("TestDomainAndPath", "tests"): check_domain_and_path,
    ("TestDomainRegexp", "tests"): check_domain_regexp,
    ("TestFullNameRegexp", "tests"): check_full_name_regexp,
    ("TestIdentifierRegexp", "tests"): check_identifier_regexp,
    ("TestMatch", "tests"): check_match,
    ("TestNormalizedSplitHostname", "tests"): check_normalized_split_hostname,
    ("TestParseAnyReference", "tests"): check_parse_any_reference,
    ("TestParseDockerRef", "tests"): check_parse_docker_ref,
    ("TestParseNamed", "tests"): check_parse_named,
    ("TestParseRepositoryInfo", "tests"): check_parse_repository_info,
    ("TestReferenceParse", "tests"): check_reference_parse,
    ("TestReferenceRegexp", "tests"): check_reference_regexp,
    ("TestSerialization", "tests"): check_serialization,
    ("TestValidateReferenceName", "validRepoNames"): check_valid_name,
    ("TestValidateReferenceName", "invalidRepoNames"): check_invalid_name,
    ("TestValidateRemoteName", "validRepositoryNames"): check_valid_name,
    ("TestValidateRemoteName", "invalidRepositoryNames"): check_invalid_name,
    ("TestWithDigest", "tests"): check_with_digest,
    ("TestWithNameFailure", "tests"): check_with_name_failure,
    ("TestWithTag", "tests"): check_with_tag,
}


def run_cases(label: str, cases: list, check: Callable[[Case], None]) -> int:
    """Run every case, report every failure (not only the first). Returns how many ran."""
    failures = []
    for i, case in enumerate(cases):
        try:
            check(case)
        except AssertionError as e:
            failures.append(f"  [{i}] {json.dumps(case)[:300]}\n      {str(e).splitlines()[0] if str(e) else 'assert'}")
        except Exception as e:  # an unexpected exception type is a failure too, with its case
            failures.append(f"  [{i}] {json.dumps(case)[:300]}\n      {type(e).__name__}: {e}")
    assert not failures, f"{label}: {len(failures)} of {len(cases)} cases failed:\n" + "\n".join(failures)
    return len(cases)


def test_every_table_has_a_checker(tables: dict) -> None:
    assert set(tables) == set(CHECKERS), "tables without a checker (or checkers without a table)"


@pytest.mark.parametrize("key", list(CHECKERS), ids=lambda k: f"{k[0]}.{k[1]}")
def test_table(key: tuple[str, str], tables: dict) -> None:
    table = tables[key]
    assert table["cases"], f"{key} has no cases"
    ran = run_cases(f"{key[0]}.{key[1]} ({table['semantics']})", table["cases"], CHECKERS[key])
    assert ran == len(table["cases"])


# --- upstream-results.json: every input through every function ---------------------------------

FUNCTIONS: dict[str, Callable[[str], R.Reference]] = {
    "Parse": R.parse,
    "ParseNamed": R.parse_named,
    "ParseNormalizedNamed": R.parse_normalized_named,
    "ParseAnyReference": R.parse_any_reference,
    "ParseDockerRef": R.parse_docker_ref,
}


def check_result(fn_name: str, text: str, want: dict) -> None:
    fn = FUNCTIONS[fn_name]
    if not want["ok"]:
        expect_error(want["error"], lambda: fn(text))
        return
    ref = fn(text)
    assert str(ref) == want["string"]
    assert ref.digest == want.get("digest")
    if "name" not in want:  # a digest-only reference
        assert not ref.is_named
        return
    assert ref.name == want["name"]
    assert ref.domain == want["domain"]
    assert ref.path == want["path"]
    assert ref.tag == want.get("tag")
    assert R.familiar_name(ref) == want["familiar_name"]
    assert R.familiar_string(ref) == want["familiar_string"]
    if "tag_name_only" in want:
        assert str(R.tag_name_only(ref)) == want["tag_name_only"]


@pytest.mark.parametrize("fn_name", list(FUNCTIONS))
def test_upstream_results(fn_name: str, upstream_results: list[dict]) -> None:
    cases = [(r["input"], r[fn_name]) for r in upstream_results]
    assert len(cases) >= 300
    run_cases(f"upstream-results {fn_name}", cases, lambda c: check_result(fn_name, c[0], c[1]))


def test_upstream_results_cover_every_function(upstream_results: list[dict]) -> None:
    for r in upstream_results:
        assert set(r) == {"input", *FUNCTIONS}, r["input"]


# --- where pallet's defaults differ from upstream's test binary --------------------------------

def test_sha512_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.undo()  # pallet's default algorithm set
    text = "validname@sha512:" + "f" * 128
    ref = R.parse(text)
    assert ref.digest == "sha512:" + "f" * 128 and str(ref) == text
    with pytest.raises(InvalidReference, match="^invalid checksum digest length$"):
        R.parse("validname@sha512:" + "f" * 64)
    with pytest.raises(InvalidReference, match="^unsupported digest algorithm$"):
        R.parse("validname@sha384:" + "f" * 96)


def test_digest_algorithms_match_oci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.undo()
    from pallet.oci.digest import ALGORITHMS

    assert {a: n for a, (n, _) in ALGORITHMS.items()} == R.DIGEST_ALGORITHMS
