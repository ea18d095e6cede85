"""pallet.build.ignore: .dockerignore reading, moby's pattern matching, which file is used.

moby/patternmatcher's TestMatches cases are read in place from
../shared/vendor-data/dockerignore/patternmatcher-cases.json; the project's own cases
below run everywhere.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pallet.build.ignore import (
    BadPattern,
    PatternMatcher,
    find_ignore_file,
    load_ignore,
    matches_or_parent_matches,
    read_ignore,
)

VENDOR = Path(__file__).resolve().parents[2] / ".." / "shared" / "vendor-data"
CASES_FILE = VENDOR / "dockerignore" / "patternmatcher-cases.json"


def _cases(kind: str) -> list[dict]:
    if not CASES_FILE.is_file():
        return [{"absent": True}]
    return json.loads(CASES_FILE.read_text(encoding="utf-8"))[kind]


def _id(case: dict) -> str:
    return repr(case.get("pattern", case.get("patterns"))) + " " + repr(case.get("path"))


@pytest.fixture(scope="module")
def cases_file(vendor_data: Path) -> Path:
    f = vendor_data / "dockerignore" / "patternmatcher-cases.json"
    assert f.is_file(), f"missing {f}"
    return f


# --- moby's cases ----------------------------------------------------------------------------

@pytest.mark.parametrize("case", _cases("single"), ids=_id)
def test_vendored_single_pattern(cases_file: Path, case: dict) -> None:
    pm = PatternMatcher([case["pattern"]])
    assert pm.matches_or_parent_matches(case["path"]) is case["match"]


@pytest.mark.parametrize("case", _cases("multi"), ids=_id)
def test_vendored_pattern_lists(cases_file: Path, case: dict) -> None:
    assert matches_or_parent_matches(case["path"], case["patterns"]) is case["match"]


def test_vendored_case_counts(cases_file: Path) -> None:
    doc = json.loads(cases_file.read_text(encoding="utf-8"))
    assert (len(doc["single"]), len(doc["multi"])) == (68, 4)


# --- reading .dockerignore -------------------------------------------------------------------

def test_read_ignore_normalizes() -> None:
    text = (
        "\ufeff# comment\n"
        "\n"
        "   \n"
        "node_modules\n"
        "  *.log  \n"
        "/build/\n"
        "./tmp/../cache//x\n"
        "! keep.log\n"
        "!/dist/keep\n"
        " # not a comment: it does not start the line\n"
        "/\n"
        "crlf\r\n"
    )
    assert read_ignore(text) == [
        "node_modules", "*.log", "build", "cache/x", "!keep.log", "!dist/keep", "# not a comment: it does not start the line",
        "/", "crlf"]


def test_read_ignore_bytes_and_lone_bang() -> None:
    assert read_ignore(b"a\n!\n") == ["a", "!"]
    with pytest.raises(BadPattern):
        PatternMatcher(read_ignore(b"a\n!\n"))


# --- matching --------------------------------------------------------------------------------

@pytest.mark.parametrize(("patterns", "path", "excluded"), [
    (["*.log"], "a.log", True),
    (["*.log"], "dir/a.log", False),  # * does not cross /
    (["**/*.log"], "dir/sub/a.log", True),
    (["node_modules"], "node_modules/x/y.js", True),  # a parent matches
    (["node_modules"], "src/node_modules/x", False),
    (["**/node_modules"], "src/node_modules/x", True),
    (["*", "!src"], "src/main.py", False),
    (["*", "!src", "src/*.tmp"], "src/a.tmp", True),  # the last match decides
    (["docs", "!docs/README.md"], "docs/README.md", False),
    (["docs", "!docs/README.md"], "docs/other.md", True),
    (["a?c"], "abc", True),
    (["a?c"], "a/c", False),
    (["[abc]x"], "bx", True),
    (["[!a]x"], "bx", False),  # filepath.Match negates with ^, not !
    (["[^a]x"], "bx", True),
    (["a\\*"], "a*", True),
    (["a\\*"], "ab", False),
    (["dir/"], "dir/file", True),  # cleaned: the trailing / goes
    (["./dir"], "dir", True),
    (["Dockerfile", ".dockerignore"], "Dockerfile", True),
    (["**"], "anything/at/all", True),
    (["x/**"], "x", False),
])
def test_matching(patterns: list[str], path: str, excluded: bool) -> None:
    assert matches_or_parent_matches(path, patterns) is excluded


def test_dot_is_never_excluded() -> None:
    assert matches_or_parent_matches(".", ["**"]) is False
    assert matches_or_parent_matches("./", ["*"]) is False


def test_exact_matching_ignores_parents() -> None:
    pm = PatternMatcher(["dir"])
    assert pm.matches_or_parent_matches("dir/file") is True
    assert pm.matches_exact("dir/file") is False
    assert pm.matches_exact("dir") is True


def test_exclusions_flag() -> None:
    assert PatternMatcher(["a", "!b"]).exclusions is True
    assert PatternMatcher(["a"]).exclusions is False


@pytest.mark.parametrize("pattern", ["[", "a[", "[]", "[a-]", "a\\", "[\\"])
def test_bad_patterns(pattern: str) -> None:
    with pytest.raises(BadPattern):
        PatternMatcher([pattern])


# --- which ignore file -----------------------------------------------------------------------

def test_dockerfile_specific_ignore_comes_first(tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    (ctx / "docker").mkdir(parents=True)
    dockerfile = ctx / "docker" / "app.Dockerfile"
    dockerfile.write_text("FROM scratch\n")
    (ctx / ".dockerignore").write_text("root-rule\n")
    (ctx / ".containerignore").write_text("podman-rule\n")
    assert find_ignore_file(ctx, dockerfile) == ctx / ".dockerignore"
    assert load_ignore(ctx, dockerfile) == ["root-rule"]

    specific = ctx / "docker" / "app.Dockerfile.dockerignore"
    specific.write_text("")  # present but empty: still wins over the root file
    assert find_ignore_file(ctx, dockerfile) == specific
    assert load_ignore(ctx, dockerfile) == []

    podman_specific = ctx / "docker" / "app.Dockerfile.containerignore"
    podman_specific.write_text("podman-specific\n")
    assert find_ignore_file(ctx, dockerfile) == specific  # .dockerignore first
    specific.unlink()
    assert find_ignore_file(ctx, dockerfile) == podman_specific
    podman_specific.unlink()
    (ctx / ".dockerignore").unlink()
    assert find_ignore_file(ctx, dockerfile) == ctx / ".containerignore"
    (ctx / ".containerignore").unlink()
    assert find_ignore_file(ctx, dockerfile) is None
    assert load_ignore(ctx, dockerfile) == []


def test_ignore_file_without_dockerfile(tmp_path: Path) -> None:
    (tmp_path / ".dockerignore").write_text("x\n")
    assert find_ignore_file(tmp_path) == tmp_path / ".dockerignore"


def test_a_directory_in_the_way_is_an_error(tmp_path: Path) -> None:
    dockerfile = tmp_path / "Dockerfile"
    (tmp_path / "Dockerfile.dockerignore").mkdir()
    (tmp_path / ".dockerignore").write_text("x\n")
    with pytest.raises(OSError):
        load_ignore(tmp_path, dockerfile)
