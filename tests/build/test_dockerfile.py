"""pallet.build.dockerfile: BuildKit's parser.

The first half runs BuildKit's own parser cases, read in place from
../shared/vendor-data/buildkit-dockerfile/parser (never copied here; skipped with the
suite's one reason when that directory is absent). The second half is the project's own
cases, which run everywhere: error messages, heredocs, directives, flags, line numbers.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pallet.build._go import go_quote
from pallet.build.dockerfile import DockerfileError, Heredoc, parse, parse_file, parse_heredoc, suggest

VENDOR = Path(__file__).resolve().parents[2] / ".." / "shared" / "vendor-data"
PARSER_DATA = VENDOR / "buildkit-dockerfile" / "parser"


def _case_names(sub: str) -> list[str]:
    d = PARSER_DATA / sub
    # Without the data there is nothing to list; one placeholder lets the fixture skip it.
    return sorted(p.name for p in d.iterdir()) if d.is_dir() else ["absent"]


@pytest.fixture(scope="module")
def parser_data(vendor_data: Path) -> Path:
    d = vendor_data / "buildkit-dockerfile" / "parser"
    assert d.is_dir(), f"missing {d}"
    return d


# --- BuildKit's cases ------------------------------------------------------------------------

def test_vendored_case_counts(parser_data: Path) -> None:
    assert len(list((parser_data / "testfiles").iterdir())) == 33
    assert len(list((parser_data / "testfiles-negative").iterdir())) == 4


@pytest.mark.parametrize("case", _case_names("testfiles"))
def test_vendored_parse_result(parser_data: Path, case: str) -> None:
    d = parser_data / "testfiles" / case
    result = parse((d / "Dockerfile").read_bytes())
    assert result.ast.dump() + "\n" == (d / "result").read_text(encoding="utf-8")


@pytest.mark.parametrize("case", _case_names("testfiles-negative"))
def test_vendored_negative(parser_data: Path, case: str) -> None:
    with pytest.raises(DockerfileError):
        parse((parser_data / "testfiles-negative" / case / "Dockerfile").read_bytes())


def test_vendored_line_information(parser_data: Path) -> None:
    result = parse_file(parser_data / "testfile-line" / "Dockerfile")
    assert (result.ast.start_line, result.ast.end_line) == (5, 31)
    assert [(c.start_line, c.end_line) for c in result.children] == [(5, 5), (11, 12), (17, 31)]


# --- errors ----------------------------------------------------------------------------------

def test_unknown_instruction_names_line_and_suggests() -> None:
    with pytest.raises(DockerfileError) as e:
        parse("# a comment\n\nFORM alpine\nRUN true\n")
    assert str(e.value) == "Dockerfile:3: unknown instruction: FORM (did you mean FROM?)"
    assert e.value.line == 3


@pytest.mark.parametrize(("word", "message"), [
    ("RUNN", "unknown instruction: RUNN (did you mean RUN?)"),
    ("cpoy", "unknown instruction: cpoy (did you mean COPY?)"),
    ("ENTRYPONT", "unknown instruction: ENTRYPONT (did you mean ENTRYPOINT?)"),
    ("XYZZY", "unknown instruction: XYZZY"),
])
def test_unknown_instruction_suggestions(word: str, message: str) -> None:
    with pytest.raises(DockerfileError) as e:
        parse(f"FROM scratch\n{word} x\n")
    assert str(e.value) == f"Dockerfile:2: {message}"


def test_unknown_instruction_kept_when_not_strict() -> None:
    result = parse("FROM scratch\nFORM x y\n", strict=False)
    assert result.ast.dump() == '(from "scratch")\n(form "")'


def test_error_spans_continuation_and_uses_filename() -> None:
    with pytest.raises(DockerfileError) as e:
        parse("FROM scratch\nENV a=1 \\\n  b\n", filename="app.Dockerfile")
    assert str(e.value) == ('app.Dockerfile:2: Syntax error - can\'t find = in "b". '
                            "Must be of the form: name=value")
    assert (e.value.line, e.value.end_line) == (2, 3)


@pytest.mark.parametrize(("text", "message"), [
    ("", "Dockerfile:1: file with no instructions"),
    ("# only\n# comments\n", "Dockerfile:2: file with no instructions"),
    ("FROM a\nENV PATH\n", "Dockerfile:2: ENV must have two arguments"),
    ("FROM a\nLABEL x\n", "Dockerfile:2: LABEL must have two arguments"),
    ('FROM a\nCMD ["a", 1]\n',
     "Dockerfile:2: when using JSON array syntax, arrays must be comprised of strings only"),
    ("# escape=x\nFROM a\n", "Dockerfile:1: invalid escape token 'x' does not match ` or \\"),
    ("# escape=`\n# escape=\\\nFROM a\n", "Dockerfile:2: only one escape parser directive can be used"),
    ("FROM a\nRUN <<EOF\necho\n", "Dockerfile:2: unterminated heredoc"),
])
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(DockerfileError) as e:
        parse(text)
    assert str(e.value) == message


def test_parse_file_names_the_file(tmp_path: Path) -> None:
    f = tmp_path / "Containerfile"
    f.write_text("FROM a\nFORM b\n")
    with pytest.raises(DockerfileError) as e:
        parse_file(f)
    assert str(e.value) == f"{f}:2: unknown instruction: FORM (did you mean FROM?)"


# --- forms, flags, continuations -------------------------------------------------------------

def test_all_eighteen_instructions() -> None:
    text = """\
FROM --platform=linux/amd64 alpine:3.19 AS base
ARG VERSION=1 OTHER
ENV A=1 B="two words"
LABEL org.opencontainers.image.title="x" y=z
MAINTAINER someone <a@b.c>
RUN echo hi
CMD ["sh", "-c", "echo"]
ENTRYPOINT ["/init"]
EXPOSE 80/tcp 443
ADD --chmod=644 https://example.com/a.tar /a/
COPY --from=base --chown=1:2 /src /dst
VOLUME ["/data", "/logs"]
USER app:app
WORKDIR /work
ONBUILD RUN make
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=5s CMD curl -f http://localhost/
SHELL ["/bin/bash", "-c"]
"""
    result = parse(text)
    assert [c.instruction for c in result.children] == [
        "from", "arg", "env", "label", "maintainer", "run", "cmd", "entrypoint", "expose", "add",
        "copy", "volume", "user", "workdir", "onbuild", "stopsignal", "healthcheck", "shell"]
    assert result.ast.dump().splitlines() == [
        '(from ["--platform=linux/amd64"] "alpine:3.19" "AS" "base")',
        '(arg "VERSION=1" "OTHER")',
        '(env "A" "1" "=" "B" "\\"two words\\"" "=")',
        '(label "org.opencontainers.image.title" "\\"x\\"" "=" "y" "z" "=")',
        '(maintainer "someone <a@b.c>")',
        '(run "echo hi")',
        '(cmd "sh" "-c" "echo")',
        '(entrypoint "/init")',
        '(expose "80/tcp" "443")',
        '(add ["--chmod=644"] "https://example.com/a.tar" "/a/")',
        '(copy ["--from=base" "--chown=1:2"] "/src" "/dst")',
        '(volume "/data" "/logs")',
        '(user "app:app")',
        '(workdir "/work")',
        '(onbuild (run "make"))',
        '(stopsignal "SIGTERM")',
        '(healthcheck ["--interval=5s"] "CMD" "curl -f http://localhost/")',
        '(shell "/bin/bash" "-c")',
    ]
    assert [c.start_line for c in result.children] == list(range(1, 19))


def test_json_and_shell_forms() -> None:
    run_json, run_shell, cmd_bad = parse('RUN ["a", "b c"]\nRUN a "b c"\nCMD [a]\n').children
    assert run_json.json and run_json.args == ["a", "b c"]
    assert not run_shell.json and run_shell.args == ['a "b c"']
    assert not cmd_bad.json and cmd_bad.args == ["[a]"]  # not JSON: the shell form


def test_instruction_case_is_kept_but_dumped_lower() -> None:
    node = parse("from alpine\n").children[0]
    assert node.value == "from" and node.instruction == "from"
    node = parse("From alpine\n").children[0]
    assert node.value == "From" and node.dump() == 'from "alpine"'


def test_flags_quotes_and_double_dash() -> None:
    node = parse('RUN --mount=type=cache,target=/root/.cache --network="none" -- pip install x\n').children[0]
    assert node.flags == ["--mount=type=cache,target=/root/.cache", "--network=none"]
    assert node.args == ["pip install x"]


def test_continuations_comments_and_empty_lines() -> None:
    text = "RUN apt-get update \\\n    # a comment inside\n\n    && apt-get install -y x\nRUN one\n"
    result = parse(text)
    assert result.children[0].args == ["apt-get update     && apt-get install -y x"]
    assert (result.children[0].start_line, result.children[0].end_line) == (1, 4)
    assert (result.children[1].start_line, result.children[1].end_line) == (5, 5)
    assert len(result.warnings) == 1
    assert result.warnings[0].short.startswith("Empty continuation line found in: RUN apt-get update")


def test_escaped_escape_does_not_continue() -> None:
    result = parse("ENV A=x\\\\\nENV B=y\n")
    assert [c.args for c in result.children] == [["A", "x\\\\", "="], ["B", "y", "="]]


def test_crlf_and_bom() -> None:
    result = parse(b"\xef\xbb\xbfFROM a\r\nRUN b \\\r\n  c\r\n")
    assert result.ast.dump() == '(from "a")\n(run "b   c")'


def test_continuation_at_end_of_file() -> None:
    assert parse("FROM a\nRUN x \\").children[1].args == ["x"]


# --- directives ------------------------------------------------------------------------------

def test_directives_are_read_from_the_top_only() -> None:
    text = "# syntax=docker/dockerfile:1.7\n# check=skip=all\n#escape=`\n\nFROM a\n# escape=\\\nRUN x `\n  y\n"
    result = parse(text)
    assert [(d.name, d.value, d.line) for d in result.directives] == [
        ("syntax", "docker/dockerfile:1.7", 1), ("check", "skip=all", 2), ("escape", "`", 3)]
    assert result.escape_token == "`"
    assert result.directive("syntax") == "docker/dockerfile:1.7"
    assert result.children[1].args == ["x   y"]


def test_directive_after_a_comment_is_a_comment() -> None:
    result = parse("# hello\n# escape=`\nFROM a\n")
    assert result.directives == [] and result.escape_token == "\\"


def test_backtick_escape_keeps_windows_paths() -> None:
    result = parse("# escape=`\nFROM windows\nCOPY a.txt C:\\dir\\ \nRUN dir `\n  C:\\\n")
    assert result.children[1].args == ["a.txt", "C:\\dir\\"]
    assert result.children[2].args == ["dir   C:\\"]


def test_prev_comment_attached() -> None:
    result = parse("# syntax=x\n# builds the app\nRUN make\n")
    assert result.children[0].prev_comment == ["builds the app"]


# --- heredocs --------------------------------------------------------------------------------

def test_run_heredoc() -> None:
    text = "FROM a\nRUN <<EOF\necho hello\necho $HOME\nEOF\nRUN after\n"
    result = parse(text)
    run = result.children[1]
    assert run.args == ["<<EOF"]
    assert run.heredocs == [Heredoc(name="EOF", file_descriptor=0, expand=True, chomp=False,
                                    content="echo hello\necho $HOME\n")]
    assert (run.start_line, run.end_line) == (2, 5)
    assert (result.children[2].start_line, result.children[2].args) == (6, ["after"])


def test_heredoc_tab_stripping() -> None:
    run = parse("RUN <<-EOT\n\t\techo a\n\techo b\n\tEOT\n").children[0]
    assert run.heredocs[0].chomp
    assert run.heredocs[0].content == "\t\techo a\n\techo b\n"  # as written; BuildKit chomps later
    assert run.heredocs[0].chomped_content == "echo a\necho b\n"


def test_heredoc_without_dash_needs_exact_terminator() -> None:
    run = parse("RUN <<EOT\n\tEOT\nEOT\n").children[0]
    assert run.heredocs[0].content == "\tEOT\n"


@pytest.mark.parametrize(("word", "name", "expand"), [
    ("<<EOF", "EOF", True),
    ('<<"EOF"', "EOF", False),
    ("<<'EOF'", "EOF", False),
    ('<<E"O"F', "EOF", False),
    ("<<-EOF", "EOF", True),
    ("3<<EOF", "EOF", True),
])
def test_heredoc_delimiter_quoting(word: str, name: str, expand: bool) -> None:
    h = parse_heredoc(word)
    assert h is not None and (h.name, h.expand) == (name, expand)


@pytest.mark.parametrize("word", ["<<", "<<a b", "x<<EOF", "<<<EOF", "<EOF"])
def test_not_a_heredoc(word: str) -> None:
    assert parse_heredoc(word) is None


def test_quoted_heredoc_in_instruction() -> None:
    run = parse("RUN <<'EOF' bash\necho $X\nEOF\n").children[0]
    assert run.heredocs[0].name == "EOF" and not run.heredocs[0].expand
    assert run.args == ["<<'EOF' bash"]


def test_several_heredocs_in_one_instruction() -> None:
    text = "COPY <<one.txt <<two.txt /dest/\nfirst\none.txt\nsecond\ntwo.txt\nRUN x\n"
    result = parse(text)
    copy = result.children[0]
    assert copy.args == ["<<one.txt", "<<two.txt", "/dest/"]
    assert [(h.name, h.content) for h in copy.heredocs] == [("one.txt", "first\n"), ("two.txt", "second\n")]
    assert (copy.start_line, copy.end_line) == (1, 5)
    assert result.children[1].start_line == 6


def test_copy_heredoc_to_file() -> None:
    copy = parse('COPY --chmod=755 <<EOF /usr/local/bin/hello\n#!/bin/sh\necho "hi"\nEOF\n').children[0]
    assert copy.flags == ["--chmod=755"]
    assert copy.args == ["<<EOF", "/usr/local/bin/hello"]
    assert copy.heredocs[0].content == '#!/bin/sh\necho "hi"\n'


def test_heredoc_file_descriptor_and_command() -> None:
    run = parse("RUN cat 3<<EOF >/out\nx\nEOF\n").children[0]
    assert run.heredocs[0].file_descriptor == 3


def test_no_heredoc_in_json_form_or_other_instructions() -> None:
    result = parse('RUN ["cat", "<<EOF"]\nCMD cat <<EOF\nENV A=1\n')
    assert [c.heredocs for c in result.children] == [[], [], []]
    assert len(result.children) == 3


def test_onbuild_heredoc() -> None:
    node = parse("ONBUILD RUN <<EOF\necho\nEOF\n").children[0]
    assert node.dump() == 'onbuild (run "<<EOF")'
    assert node.heredocs[0].content == "echo\n"


def test_heredoc_in_quotes_is_not_a_heredoc() -> None:
    run = parse('RUN echo "<<EOF"\n').children[0]
    assert run.heredocs == []


# --- helpers ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("s", "quoted"), [
    ("plain", '"plain"'),
    ('a"b\\c', '"a\\"b\\\\c"'),
    ("\t\n\r\b\f\v\a", '"\\t\\n\\r\\b\\f\\v\\a"'),
    ("\x00\x1f\x7f", '"\\x00\\x1f\\x7f"'),
    ("♥ 한국어", '"♥ 한국어"'),
    ("\u00a0\u200b", '"\\u00a0\\u200b"'),
    ("\U0001f600", '"\U0001f600"'),
    ("\U000e0001", '"\\U000e0001"'),
])
def test_go_quote(s: str, quoted: str) -> None:
    assert go_quote(s) == quoted


def test_suggest_distance_depends_on_length() -> None:
    assert suggest("RNU", ["RUN"]) is None  # distance 2 is too far for a 3-letter word
    assert suggest("RU", ["RUN"]) == "RUN"
    assert suggest("EXPOS", ["EXPOSE", "ENV"]) == "EXPOSE"
