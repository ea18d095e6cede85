"""pallet.build.shell: BuildKit's word lexer.

BuildKit's expansion and word-splitting tables (shell/envVarTest, shell/wordsTest) are read
in place from ../shared/vendor-data/buildkit-dockerfile and evaluated as BuildKit's
lex_test.go evaluates them; the project's own cases below run everywhere.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pallet.build.shell import Lex, ShellError, build_envs

VENDOR = Path(__file__).resolve().parents[2] / ".." / "shared" / "vendor-data"
SHELL_DATA = VENDOR / "buildkit-dockerfile" / "shell"

# The environment BuildKit's envVarTest is evaluated with.
ENV_VAR_TEST_ENV = ["PWD=/home", "SHELL=bash", "KOREAN=한국어", "NULL="]


def _env_var_cases() -> list[tuple[int, str, str]]:
    """(line number, input, expected) for the Unix and all-platform lines of envVarTest."""
    f = SHELL_DATA / "envVarTest"
    if not f.is_file():
        return [(0, "absent", "absent")]
    cases = []
    for n, line in enumerate(f.read_text(encoding="utf-8").split("\n"), 1):
        if line.startswith("#"):
            continue
        line = line.strip()
        if not line:
            continue
        platform, source, expected = (part.strip() for part in line.split("|"))
        if platform in ("A", "U"):
            cases.append((n, source, expected))
    return cases


def _words_cases() -> list[tuple[int, list[str], str, list[str]]]:
    """(line number, environment so far, input, expected words) from wordsTest."""
    f = SHELL_DATA / "wordsTest"
    if not f.is_file():
        return [(0, [], "absent", [])]
    env: list[str] = []
    cases = []
    for n, line in enumerate(f.read_text(encoding="utf-8").split("\n"), 1):
        if line.startswith("#") or line == "":
            continue
        if line.startswith("ENV "):
            env.append(line[3:].lstrip(" "))  # trailing spaces are part of the value
            continue
        source, expected = line.split("|")
        cases.append((n, list(env), source.strip(), expected.lstrip(" ").split(",")))
    return cases


@pytest.fixture(scope="module")
def shell_data(vendor_data: Path) -> Path:
    d = vendor_data / "buildkit-dockerfile" / "shell"
    assert (d / "envVarTest").is_file() and (d / "wordsTest").is_file(), f"missing files in {d}"
    return d


# --- BuildKit's tables -----------------------------------------------------------------------

@pytest.mark.parametrize(("line", "source", "expected"), _env_var_cases(),
                         ids=lambda v: str(v) if isinstance(v, int) else None)
def test_vendored_env_var_expansion(shell_data: Path, line: int, source: str, expected: str) -> None:
    lex = Lex("\\")
    if expected == "error":
        with pytest.raises(ShellError):
            lex.process_word(source, ENV_VAR_TEST_ENV)
    else:
        assert lex.process_word(source, ENV_VAR_TEST_ENV) == expected
        assert lex.process_word(source, build_envs(ENV_VAR_TEST_ENV)) == expected


@pytest.mark.parametrize(("line", "env", "source", "expected"), _words_cases(),
                         ids=lambda v: str(v) if isinstance(v, int) else None)
def test_vendored_words(shell_data: Path, line: int, env: list[str], source: str, expected: list[str]) -> None:
    try:
        got = Lex("\\").process_words(source, env)
    except ShellError:
        got = ["error"]
    assert got == expected


def test_vendored_tables_are_complete(shell_data: Path) -> None:
    assert len(_env_var_cases()) == 228
    assert len(_words_cases()) == 24


# --- the project's own cases -----------------------------------------------------------------

ENV = {"FOO": "xxyy", "EMPTY": "", "PATHS": "/a/b/c.tar.gz", "SP": "a  b", "URL": "http://x.org"}


@pytest.mark.parametrize(("word", "expected"), [
    ("$FOO", "xxyy"),
    ("${FOO}bar", "xxyybar"),
    ("${NOPE}", ""),
    ("${NOPE:-d}|${EMPTY:-d}|${FOO:-d}", "d|d|xxyy"),
    ("${NOPE-d}|${EMPTY-d}|${FOO-d}", "d||xxyy"),
    ("${NOPE:+a}|${EMPTY:+a}|${FOO:+a}", "||a"),
    ("${NOPE+a}|${EMPTY+a}|${FOO+a}", "|a|a"),
    ("${EMPTY?}|${FOO:?}", "|xxyy"),
    ("${PATHS#*/}", "a/b/c.tar.gz"),
    ("${PATHS##*/}", "c.tar.gz"),
    ("${PATHS%.*}", "/a/b/c.tar"),
    ("${PATHS%%.*}", "/a/b/c"),
    ("${FOO#x}|${FOO##x*}|${FOO%y}|${FOO%%y*}", "xyy||xxy|xx"),
    ("${FOO#?}", "xyy"),
    ("${FOO/x/Z}|${FOO//x/Z}", "Zxyy|ZZyy"),
    ("${URL/http:\\/\\//https://}", "https://x.org"),
    ("${PATHS//\\//-}", "-a-b-c.tar.gz"),
    ("${FOO/y*/}", "xx"),
    ("${NOPE:-${FOO:-z}}", "xxyy"),
    ("${NOPE:-a b}", "a b"),
    ("'$FOO'\"$FOO\"", "$FOOxxyy"),
    ('"a\\"b\\$c\\\\d\\e"', 'a"b$c\\d\\e'),
    ("\\$FOO", "$FOO"),
    ("a\\ b", "a b"),
    ("$", "$"),
    ("$1$@$#", ""),
    ("x\\", "x"),
])
def test_expansions(word: str, expected: str) -> None:
    assert Lex().process_word(word, ENV) == expected


@pytest.mark.parametrize(("word", "message"), [
    ("${FOO", "syntax error: missing '}'"),
    ("${}", "syntax error: bad substitution"),
    ("${:-x}", "syntax error: bad substitution"),
    ("${FOO:=x}", "unsupported modifier (:=) in substitution"),
    ("${FOO^^}", "unsupported modifier (^) in substitution"),
    ("${NOPE?}", "NOPE: is not allowed to be unset"),
    ("${EMPTY:?}", "EMPTY: is not allowed to be empty"),
    ("${NOPE:?set NOPE please}", "NOPE: set NOPE please"),
    ("'abc", "unexpected end of statement while looking for matching single-quote"),
    ('"abc', "unexpected end of statement while looking for matching double-quote"),
    ("${FOO#\\x}", "invalid escape '\\x'"),
])
def test_errors(word: str, message: str) -> None:
    with pytest.raises(ShellError) as e:
        Lex().process_word(word, ENV)
    assert str(e.value).startswith("failed to process ")
    assert message in str(e.value)


@pytest.mark.parametrize(("word", "words"), [
    ("a b  c", ["a", "b", "c"]),
    ("$SP", ["a", "b"]),
    ('"$SP"', ["a  b"]),
    ("x${SP}y", ["xa", "by"]),
    ("'a b' c", ["a b", "c"]),
    ("a\\ b c", ["a b", "c"]),
    ("${EMPTY}", []),
    ('""', []),
    ("  ", []),
])
def test_word_splitting(word: str, words: list[str]) -> None:
    assert Lex().process_words(word, ENV) == words


def test_backtick_escape() -> None:
    lex = Lex("`")
    assert lex.process_word("C:\\dir\\`$FOO", ENV) == "C:\\dir\\$FOO"
    assert lex.process_word('"a`"b"', ENV) == 'a"b'
    assert lex.process_words("a` b c", ENV) == ["a b", "c"]


def test_raw_quotes_and_escapes() -> None:
    assert Lex(raw_quotes=True).process_word("'a'\"$FOO\"", ENV) == "'a'\"xxyy\""
    assert Lex(raw_escapes=True).process_word("a\\ b\\$FOO", ENV) == "a\\ b\\$FOO"
    assert Lex(skip_process_quotes=True).process_word("'$FOO'", ENV) == "'xxyy'"


def test_skip_unset_env_leaves_references() -> None:
    lex = Lex(skip_unset_env=True)
    assert lex.process_word("$NOPE ${NOPE} ${NOPE:-d} ${NOPE/a/b} $FOO", ENV) == \
        "$NOPE ${NOPE} ${NOPE:-d} ${NOPE/a/b} xxyy"


def test_matches_and_unmatched() -> None:
    r = Lex().process_word_with_matches("${FOO:-a} ${EMPTY+b} ${NOPE:-c} $OTHER", ENV)
    assert r.result == "xxyy b c "
    assert r.words == ["xxyy", "b", "c"]
    assert r.matched == {"FOO", "EMPTY"}
    assert r.unmatched == {"NOPE", "OTHER"}


def test_matches_inside_defaults_and_patterns() -> None:
    r = Lex().process_word_with_matches("${NOPE:-$FOO}${FOO#$EMPTY}", ENV)
    assert r.result == "xxyyxxyy"
    assert r.matched == {"FOO", "EMPTY"} and r.unmatched == {"NOPE"}


def test_env_list_later_value_wins() -> None:
    assert build_envs(["a=1", "b", "a=2", "c=x=y"]) == {"a": "2", "b": "", "c": "x=y"}
    assert Lex().process_word("$a$c", ["a=1", "a=2", "c=x=y"]) == "2x=y"


def test_names() -> None:
    lex = Lex()
    assert lex.process_word("$FOO_x", {"FOO_x": "1", "FOO": "2"}) == "1"
    assert lex.process_word("$FOO-x", {"FOO": "2"}) == "2-x"
    assert lex.process_word("$변수!", {"변수": "v"}) == "v!"
    assert lex.process_word("$12a", {"1": "no", "12": "no"}) == "noa"  # digits are one name


def test_invalid_escape_token() -> None:
    with pytest.raises(ValueError):
        Lex("x")
