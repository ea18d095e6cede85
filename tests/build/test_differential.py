"""pallet.build.dockerfile against BuildKit's Go parser itself, as PyPI's `dockerfile` wheel
ships it (github.com/asottile/dockerfile: moby/buildkit's parser compiled into a module).

Every Dockerfile — the vendored BuildKit cases when present, the project's own, and
Dockerfiles generated from tricky pieces (continuations, both escape characters, quotes,
JSON, flags, heredocs, comments, directives) — must give the same instructions, flags,
arguments, heredocs and line numbers, or fail in both, with the same message.

The wheel hands strings to Go as C strings, so a NUL ends them there; no case has one. Its
BuildKit predates the `# check=` directive (to it, that line is a comment ending the
directives), so no case here uses it; tests/build/test_dockerfile.py covers it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pallet.build.dockerfile import DockerfileError, parse

dockerfile = pytest.importorskip("dockerfile", reason="needs the dockerfile package (pip install dockerfile)")

VENDOR = Path(__file__).resolve().parents[2] / ".." / "shared" / "vendor-data"
PARSER_DATA = VENDOR / "buildkit-dockerfile" / "parser"

Outcome = list[tuple] | str


def ours(text: str) -> Outcome:
    try:
        result = parse(text, strict=False)
    except DockerfileError as e:
        return "error: " + e.message
    out = []
    for n in result.children:
        node, sub = n, None
        if n.instruction == "onbuild" and n.next is not None and n.next.children:
            node = n.next.children[0]
            sub = node.value
        values = node.args
        if node.instruction in ("env", "label"):
            values = [v for i, v in enumerate(values) if i % 3 != 2]  # the wheel drops the separators
        # For ONBUILD the wheel reports the trigger's heredocs, which BuildKit leaves empty (it puts
        # them on the ONBUILD node); the line numbers still show the body was consumed.
        heredocs = node.heredocs if sub else n.heredocs
        out.append((n.value.upper(), sub, node.json, n.start_line, n.end_line, tuple(n.flags), tuple(values),
                    tuple((h.name, h.file_descriptor, h.content) for h in heredocs)))
    return out


def buildkit(text: str) -> Outcome:
    try:
        commands = dockerfile.parse_string(text)
    except dockerfile.GoParseError as e:
        return "error: " + str(e)
    return [((c.cmd or "").upper(), c.sub_cmd, c.json, c.start_line, c.end_line, c.flags, c.value,
             tuple((h.name, h.file_descriptor, h.content) for h in c.heredocs)) for c in commands]


def _vendored() -> list[str]:
    if not PARSER_DATA.is_dir():
        return []
    files = sorted(PARSER_DATA.glob("*/*/Dockerfile")) + [PARSER_DATA / "testfile-line" / "Dockerfile"]
    return [str(f.relative_to(PARSER_DATA)) for f in files]


@pytest.mark.parametrize("case", _vendored() or ["absent"])
def test_vendored_dockerfiles_agree(vendor_data: Path, case: str) -> None:
    text = (vendor_data / "buildkit-dockerfile" / "parser" / case).read_text(encoding="utf-8")
    text = text.replace("\\u0000", "\\u0001")  # the json case's NUL would be cut short by the wheel
    assert ours(text) == buildkit(text)


OWN = [
    "FROM a\nRUN <<EOF\necho $X\nEOF\n",
    "FROM a\nRUN <<-EOT\n\t\techo a\n\tEOT\n",
    "RUN <<'EOF' bash\nx\nEOF\nRUN 3<<A cat <<-B\na\nA\n\tb\n\tB\n",
    "COPY <<one <<two /d/\n1\none\n2\ntwo\n",
    "ONBUILD RUN <<EOF\necho\nEOF\n",
    "# syntax=x\n#escape=`\nFROM a\nRUN a `\n b\nCOPY C:\\x C:\\y\\\n",
    "FROM a\nENV A=x\\\\\nENV B=y\n",
    "FROM a\nRUN one \\\n  # comment\n\n  two\n",
    "FROM a\r\nRUN b \\\r\n  c\r\n",
    "RUN --mount=type=cache,target=/x --network='none' -- echo\nCOPY --from=\"a b\" x y\n",
    "CMD [\"a\", 1]\n",
    "FROM a\nRUN <<EOF\nunterminated\n",
    "# escape=x\nFROM a\n",
    "",
    "HEALTHCHECK --interval=1s   CMD  [\"a\"]\nHEALTHCHECK NONE\n",
    "ARG a b=c \"d e\"=f\nLABEL a b c\nLABEL \"x\"=y z='w v'\n",
]


@pytest.mark.parametrize("text", OWN)
def test_own_dockerfiles_agree(text: str) -> None:
    assert ours(text) == buildkit(text)


PIECES = [
    "FROM", "RUN", "CMD", "ENV", "LABEL", "ARG", "COPY", "ADD", "ONBUILD", "HEALTHCHECK", "SHELL", "VOLUME",
    "EXPOSE", "USER", "WORKDIR", "MAINTAINER", "STOPSIGNAL", "ENTRYPOINT", "from", "run", "FORM",
    " ", "  ", "\t", "\n", "\n", "\n", "\\\n", "`\n", "\\", "`", "\\\\", "\r\n",
    "a", "b=c", "x=", "=y", "\"q r\"", "'s t'", "\"", "'", "$v", "${v:-w}",
    "[", "]", "\"j\"", ",", "[\"k\", \"l\"]", "[]",
    "--f=v", "--flag", "--", "-x", "--m=\"a b\"",
    "<<EOF", "<<-EOF", "<<'EOF'", "<<\"EOF\"", "EOF", "\tEOF", "<<E", "E", "2<<EOF",
    "#", "# c", "# escape=`", "# escape=\\", "# syntax=s", "CMD", "NONE",
    "ü", "♥",
]


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(PIECES), max_size=40))
def test_generated_dockerfiles_agree(pieces: list[str]) -> None:
    text = "".join(pieces)
    assert ours(text) == buildkit(text)
