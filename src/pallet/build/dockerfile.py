"""BuildKit's Dockerfile parser (frontend/dockerfile/parser), node for node.

`parse()` turns Dockerfile text into BuildKit's tree: a root `Node` whose children are
the instructions, each a `Node` whose `value` is the instruction word as written, whose
`flags` are its `--name=value` flags and whose `next` chain holds its arguments:

    RUN echo hi           -> (run "echo hi")            one shell-form string
    CMD ["a", "b"]        -> (cmd "a" "b")              JSON form, attributes["json"]
    ENV a=1 b=2           -> (env "a" "1" "=" "b" "2" "=")   key, value, separator
    ONBUILD RUN x         -> (onbuild (run "x"))        the trigger as a child node

`Node.dump()` prints that s-expression form exactly as BuildKit's `Node.Dump()` does, which
is how the vendored BuildKit cases are compared.

What the parser handles before dispatch: parser directives (`# syntax=`, `# escape=`,
`# check=`) on the first lines only; the escape character (`\\` or `` ` ``) as line
continuation; comment lines and empty lines inside a continuation (skipped; the latter
warned about as BuildKit does); heredocs (`<<EOF`, `<<-EOF`, quoted delimiters, several
per instruction) after RUN, COPY and ADD (and ONBUILD of those); the first and last
line of every instruction.

Like BuildKit, the parser itself accepts instruction words it does not know (BuildKit
rejects them one step later, when turning nodes into instructions); `parse(strict=True)`,
the default here, rejects them at once with BuildKit's message and suggestion:
`Dockerfile:3: unknown instruction: FORM (did you mean FROM?)`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pallet.build._go import go_isspace, go_lstrip, go_quote, go_strip
from pallet.build.shell import Lex, ShellError

__all__ = [
    "DEFAULT_ESCAPE", "INSTRUCTIONS", "Directive", "DockerfileError", "Heredoc", "Node", "ParseWarning",
    "Result", "chomp_heredoc_content", "parse", "parse_file", "parse_heredoc", "suggest",
    "unknown_instruction_message",
]

# The 18 instructions, in the order BuildKit's command package lists them.
INSTRUCTIONS = (
    "add", "arg", "cmd", "copy", "entrypoint", "env", "expose", "from", "healthcheck", "label",
    "maintainer", "onbuild", "run", "shell", "stopsignal", "user", "volume", "workdir",
)
DEFAULT_ESCAPE = "\\"
VALID_DIRECTIVES = ("syntax", "escape", "check")
HEREDOC_INSTRUCTIONS = frozenset({"add", "copy", "run"})

_WHITESPACE = re.compile(r"[\t\v\f\r ]+")
_DIRECTIVE = re.compile(r"([a-zA-Z][a-zA-Z0-9]*)[\t\n\f\r ]*=[\t\n\f\r ]*(.+?)[\t\n\f\r ]*\Z")
_HEREDOC = re.compile(r"([0-9]*)<<(-?)([^<]*)\Z")
_LEADING_TABS = re.compile(r"^\t+", re.MULTILINE)


class DockerfileError(ValueError):
    """A Dockerfile BuildKit would not parse; str() is `FILE:LINE: message`."""

    def __init__(self, message: str, line: int, end_line: int | None = None, filename: str = "Dockerfile"):
        self.message = message
        self.line = line
        self.end_line = end_line if end_line is not None and end_line >= line else line
        self.filename = filename
        super().__init__(f"{filename}:{line}: {message}")


@dataclass
class Heredoc:
    """One heredoc of an instruction: `name` is the delimiter word with its quotes removed.

    expand is False when any part of the delimiter was quoted (`<<"EOF"`, `<<'EOF'`,
    `<<E"O"F`): the body is then taken literally, as a shell would. chomp is `<<-`, whose
    body loses its leading tabs (`chomped_content`); `content` is the body as written,
    every line with its newline, the delimiter line excluded.
    """

    name: str
    file_descriptor: int = 0
    expand: bool = True
    chomp: bool = False
    content: str = ""

    @property
    def chomped_content(self) -> str:
        return chomp_heredoc_content(self.content) if self.chomp else self.content


@dataclass
class Node:
    """BuildKit's parse node: a value, the next argument, and (for ONBUILD, the root) children."""

    value: str = ""
    next: Node | None = None
    children: list[Node] = field(default_factory=list)
    heredocs: list[Heredoc] = field(default_factory=list)
    attributes: dict[str, bool] = field(default_factory=dict)
    original: str = ""
    flags: list[str] = field(default_factory=list)
    start_line: int = 0
    end_line: int = 0
    prev_comment: list[str] = field(default_factory=list)

    @property
    def instruction(self) -> str:
        """The instruction word in lower case (`value` keeps the case it was written in)."""
        return self.value.lower()

    @property
    def json(self) -> bool:
        return bool(self.attributes.get("json"))

    def arg_nodes(self) -> Iterator[Node]:
        n = self.next
        while n is not None:
            yield n
            n = n.next

    @property
    def args(self) -> list[str]:
        """The argument strings (the values of the `next` chain)."""
        return [n.value for n in self.arg_nodes()]

    def dump(self) -> str:
        """BuildKit's Node.Dump(): the s-expression form of the vendored `result` files."""
        s = self.value.lower()
        if self.flags:
            s += " [" + " ".join(go_quote(f) for f in self.flags) + "]"
        for c in self.children:
            s += "(" + c.dump() + ")\n"
        for n in self.arg_nodes():
            s += " " + (n.dump() if n.children else go_quote(n.value))
        return go_strip(s)


@dataclass
class Directive:
    name: str
    value: str
    line: int


@dataclass
class ParseWarning:
    """A parser warning (BuildKit's parser.Warning), e.g. an empty line inside a continuation."""

    short: str
    detail: str
    url: str
    line: int


@dataclass
class Result:
    ast: Node
    escape_token: str = DEFAULT_ESCAPE
    warnings: list[ParseWarning] = field(default_factory=list)
    directives: list[Directive] = field(default_factory=list)

    @property
    def children(self) -> list[Node]:
        return self.ast.children

    def directive(self, name: str) -> str | None:
        for d in self.directives:
            if d.name == name:
                return d.value
        return None


class _Directives:
    """The parser-directive state: escape token and the `# key=value` lines seen so far."""

    def __init__(self) -> None:
        self.escape = DEFAULT_ESCAPE
        self.continuation = _continuation_regex(DEFAULT_ESCAPE)
        self.done = False
        self.line = 0
        self.seen: list[Directive] = []

    def set_escape(self, s: str) -> None:
        if s not in ("`", "\\"):
            raise ValueError(f"invalid escape token '{s}' does not match ` or \\")
        self.escape = s
        self.continuation = _continuation_regex(s)

    def possible_directive(self, line: str) -> bool:
        """Directives are `# key=value` lines before anything else; the first other line ends them."""
        self.line += 1
        if self.done:
            return False
        if not line.startswith("#"):
            self.done = True
            return False
        m = _DIRECTIVE.match(go_lstrip(line[1:]))
        if not m or m.group(1).lower() not in VALID_DIRECTIVES:
            self.done = True
            return False
        key = m.group(1).lower()
        if any(d.name == key for d in self.seen):
            raise ValueError(f"only one {key} parser directive can be used")
        self.seen.append(Directive(key, m.group(2), self.line))
        if key == "escape":
            self.set_escape(m.group(2))
        return True


def _continuation_regex(esc: str) -> re.Pattern[str]:
    # The escape character ends a line as a continuation unless it is itself escaped (the
    # preceding character is another escape); alone on a line it is a continuation too.
    e = re.escape(esc)
    return re.compile(f"([^{e}]){e}[ \\t]*\\Z|^{e}[ \\t]*\\Z")


def _trim_continuation(line: str, d: _Directives) -> tuple[str, bool]:
    """(line without its continuation character, whether the instruction ends here)."""
    if d.continuation.search(line):
        return d.continuation.sub(r"\1", line), False
    return line, True


def _is_comment(line: str) -> bool:
    return go_lstrip(line.rstrip("\r\n")).startswith("#")


def _process_line(d: _Directives, token: str, strip_left: bool) -> tuple[str, bool]:
    token = token.rstrip("\r\n")
    if strip_left:
        token = go_lstrip(token)
    ok = d.possible_directive(token)
    return ("" if _is_comment(token) else token), ok


def _split_lines(text: str) -> list[str]:
    """Lines with their newline kept (like BuildKit's scanLines); only \\n ends a line."""
    lines = text.split("\n")
    out = [ln + "\n" for ln in lines[:-1]]
    if lines[-1]:
        out.append(lines[-1])
    return out


# --- dispatch: one argument parser per instruction (BuildKit's line_parsers.go) ----------------

class _NotStringArray(ValueError):
    pass


def _chain(values: list[str]) -> Node | None:
    head: Node | None = None
    for v in reversed(values):
        head = Node(value=v, next=head)
    return head


def _parse_ignore(rest: str, d: _Directives) -> tuple[Node | None, dict[str, bool]]:
    return Node(), {}


def _parse_sub_command(rest: str, d: _Directives) -> tuple[Node | None, dict[str, bool]]:
    if rest == "":
        return None, {}
    child = _node_from_line(rest, d, [])
    return Node(children=[child]), {}


def _parse_words(rest: str, d: _Directives) -> list[str]:
    """Split on unquoted whitespace, keeping quotes and escapes (ENV/LABEL/ARG)."""
    words: list[str] = []
    word = ""
    in_spaces, in_word, in_quote = 0, 1, 2
    phase = in_spaces
    quote = ""
    blank_ok = False
    esc = d.escape
    n = len(rest)
    pos = 0
    while pos <= n:
        ch = rest[pos] if pos < n else ""
        if phase == in_spaces:
            if pos == n:
                break
            if go_isspace(ch):
                pos += 1
                continue
            phase = in_word
        if phase in (in_word, in_quote) and pos == n:
            if blank_ok or word:
                words.append(word)
            break
        if phase == in_word:
            if go_isspace(ch):
                phase = in_spaces
                if blank_ok or word:
                    words.append(word)
                word = ""
                blank_ok = False
                pos += 1
                continue
            if ch in ("'", '"'):
                quote = ch
                blank_ok = True
                phase = in_quote
            if ch == esc:
                if pos + 1 == n:
                    pos += 1
                    continue  # an escape at the end of the line is dropped
                # unquoted, an escape and the character after it are kept, even a quote
                word += ch
                pos += 1
                ch = rest[pos]
            word += ch
            pos += 1
            continue
        if phase == in_quote:
            if ch == quote:
                phase = in_word
            if ch == esc and quote != "'":
                if pos + 1 == n:
                    phase = in_word
                    pos += 1
                    continue
                pos += 1
                word += ch
                ch = rest[pos]
            word += ch
            pos += 1
    return words


def _key_value(key: str, value: str, sep: str) -> list[str]:
    return [key, value, sep]


def _parse_name_val(rest: str, key: str, d: _Directives) -> Node | None:
    # `KEY name value` (old form, one pair, the value is the rest of the line) when the first
    # word has no "=", else `KEY a=1 b=2 ...`.
    words = _parse_words(rest, d)
    if not words:
        return None
    if "=" not in words[0]:
        parts = _WHITESPACE.split(rest, maxsplit=1)
        if len(parts) < 2:
            raise ValueError(f"{key} must have two arguments")
        return _chain(_key_value(parts[0], parts[1], ""))
    values: list[str] = []
    for w in words:
        if "=" not in w:
            raise ValueError(f"Syntax error - can't find = in {go_quote(w)}. Must be of the form: name=value")
        k, _, v = w.partition("=")
        values += _key_value(k, v, "=")
    return _chain(values)


def _parse_env(rest: str, d: _Directives) -> tuple[Node | None, dict[str, bool]]:
    return _parse_name_val(rest, "ENV", d), {}


def _parse_label(rest: str, d: _Directives) -> tuple[Node | None, dict[str, bool]]:
    return _parse_name_val(rest, "LABEL", d), {}


def _parse_name_or_name_val(rest: str, d: _Directives) -> tuple[Node | None, dict[str, bool]]:
    return _chain(_parse_words(rest, d)), {}


def _parse_whitespace_delimited(rest: str, d: _Directives) -> tuple[Node | None, dict[str, bool]]:
    if rest == "":
        return None, {}
    return _chain(_WHITESPACE.split(rest)), {}


def _parse_string(rest: str, d: _Directives) -> tuple[Node | None, dict[str, bool]]:
    if rest == "":
        return None, {}
    return Node(value=rest), {}


def _reject_constant(name: str) -> object:
    raise ValueError(f"invalid JSON constant {name}")  # Go's decoder has no NaN/Infinity


_JSON = json.JSONDecoder(parse_constant=_reject_constant)


def _parse_json(rest: str) -> tuple[Node | None, dict[str, bool]]:
    """A JSON array of strings; like Go's json.Decoder, text after the array is ignored."""
    rest = go_lstrip(rest)
    if not rest.startswith("["):
        raise ValueError(f"Error parsing {go_quote(rest)} as a JSON array")
    value, _ = _JSON.raw_decode(rest)
    if not isinstance(value, list):
        raise ValueError("not an array")
    if not all(isinstance(v, str) for v in value):
        raise _NotStringArray("when using JSON array syntax, arrays must be comprised of strings only")
    return _chain(value), {"json": True}


def _parse_maybe_json(rest: str, d: _Directives) -> tuple[Node | None, dict[str, bool]]:
    if rest == "":
        return None, {}
    try:
        return _parse_json(rest)
    except _NotStringArray:
        raise
    except ValueError:
        return Node(value=rest), {}


def _parse_maybe_json_to_list(rest: str, d: _Directives) -> tuple[Node | None, dict[str, bool]]:
    try:
        return _parse_json(rest)
    except _NotStringArray:
        raise
    except ValueError:
        return _parse_whitespace_delimited(rest, d)


def _parse_health_config(rest: str, d: _Directives) -> tuple[Node | None, dict[str, bool]]:
    # HEALTHCHECK's first word is its type (CMD or NONE), the rest is like CMD's argument.
    # Like BuildKit this looks at bytes, so it shares _extract_flags' view of 0x85 and 0xA0.
    data = _bytes(rest)
    sep = 0
    while sep < len(data) and not _byte_is_space(data[sep]):
        sep += 1
    nxt = sep
    while nxt < len(data) and _byte_is_space(data[nxt]):
        nxt += 1
    if sep == 0:
        return None, {}
    cmd, attrs = _parse_maybe_json(_text(data[nxt:]), d)
    return Node(value=_text(data[:sep]), next=cmd), attrs


_DISPATCH = {
    "add": _parse_maybe_json_to_list,
    "arg": _parse_name_or_name_val,
    "cmd": _parse_maybe_json,
    "copy": _parse_maybe_json_to_list,
    "entrypoint": _parse_maybe_json,
    "env": _parse_env,
    "expose": _parse_whitespace_delimited,
    "from": _parse_whitespace_delimited,
    "healthcheck": _parse_health_config,
    "label": _parse_label,
    "maintainer": _parse_string,
    "onbuild": _parse_sub_command,
    "run": _parse_maybe_json,
    "shell": _parse_maybe_json,
    "stopsignal": _parse_string,
    "user": _parse_string,
    "volume": _parse_maybe_json_to_list,
    "workdir": _parse_string,
}
assert set(_DISPATCH) == set(INSTRUCTIONS)


def _bytes(s: str) -> bytes:
    return s.encode("utf-8", errors="surrogateescape")


def _text(b: bytes) -> str:
    return b.decode("utf-8", errors="surrogateescape")


def _byte_is_space(b: int) -> bool:
    # Go's unicode.IsSpace(rune(line[i])) on a single byte: 0x85 and 0xA0 count, and they
    # are continuation bytes of UTF-8 sequences (à is C3 A0).
    return b in (0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20, 0x85, 0xA0)


def _extract_flags(line: str) -> tuple[str, list[str]]:
    """Leading `--name[=value]` words (quotes and \\ escapes removed); `--` ends them.

    BuildKit walks this part of the line byte by byte and turns each byte into a
    character, so a non-ASCII flag value comes out as its UTF-8 bytes read as Latin-1
    ("ü" -> "Ã¼"); this does the same, so that flags compare equal to BuildKit's.
    """
    data = _bytes(line)
    words: list[str] = []
    in_spaces, in_word, in_quote = 0, 1, 2
    phase = in_spaces
    word: list[str] = []
    quote = -1
    blank_ok = False
    n = len(data)
    pos = 0
    ch = 0
    while pos <= n:
        if pos < n:
            ch = data[pos]
        if phase == in_spaces:
            if pos == n:
                break
            if _byte_is_space(ch):
                pos += 1
                continue
            if ch != 0x2D or pos + 1 == n or data[pos + 1] != 0x2D:  # not "--"
                return _text(data[pos:]), words
            phase = in_word
        if phase in (in_word, in_quote) and pos == n:
            w = "".join(word)
            if w != "--" and (blank_ok or w):
                words.append(w)
            break
        if phase == in_word:
            if _byte_is_space(ch):
                phase = in_spaces
                w = "".join(word)
                if w == "--":
                    return _text(data[pos:]), words
                if blank_ok or w:
                    words.append(w)
                word = []
                blank_ok = False
                pos += 1
                continue
            if ch in (0x27, 0x22):  # ' "
                quote = ch
                blank_ok = True
                phase = in_quote
                pos += 1
                continue
            if ch == 0x5C:  # backslash
                if pos + 1 == n:
                    pos += 1
                    continue
                pos += 1
                ch = data[pos]
            word.append(chr(ch))
            pos += 1
            continue
        if phase == in_quote:
            if ch == quote:
                phase = in_word
                pos += 1
                continue
            if ch == 0x5C:
                if pos + 1 == n:
                    phase = in_word
                    pos += 1
                    continue
                pos += 1
                ch = data[pos]
            word.append(chr(ch))
            pos += 1
    return "", words


def _split_command(line: str) -> tuple[str, list[str], str]:
    cmdline = _WHITESPACE.split(go_strip(line), maxsplit=1)
    args, flags = "", []
    if len(cmdline) == 2:
        args, flags = _extract_flags(cmdline[1])
    return cmdline[0], flags, go_strip(args)


def _node_from_line(line: str, d: _Directives, comments: list[str]) -> Node:
    cmd, flags, args = _split_command(line)
    fn = _DISPATCH.get(cmd.lower(), _parse_ignore)
    nxt, attrs = fn(args, d)
    return Node(value=cmd, original=line, flags=flags, next=nxt, attributes=attrs, prev_comment=comments)


def _can_contain_heredoc(node: Node) -> bool:
    if node.instruction == "onbuild" and node.next is not None and node.next.children:
        node = node.next.children[0]
    return node.instruction in HEREDOC_INSTRUCTIONS and not node.json


# --- heredocs --------------------------------------------------------------------------------

def parse_heredoc(word: str) -> Heredoc | None:
    """The heredoc a word like `<<EOF`, `<<-"EOF"` or `3<<EOF` opens, or None if it opens none.

    Lexing the delimiter with and without quote removal tells whether any part of it was
    quoted: then the body is not to be expanded.
    """
    m = _HEREDOC.match(word)
    if not m:
        return None
    fd = int(m.group(1)) if m.group(1) else 0
    chomp = m.group(2) == "-"
    rest = m.group(3)
    if not rest:
        return None
    words = Lex("\\", skip_unset_env=True).process_words(rest)
    if len(words) != 1:
        return None
    raw = Lex("\\", skip_unset_env=True, raw_quotes=True).process_words(rest)
    if len(raw) != len(words):
        raise ValueError(f"internal lexing of heredoc produced inconsistent results: {rest}")
    quotes = words[0].count("'") + words[0].count('"')
    raw_quotes = raw[0].count("'") + raw[0].count('"')
    return Heredoc(name=words[0], file_descriptor=fd, expand=quotes == raw_quotes, chomp=chomp)


def _heredocs_from_line(line: str) -> list[Heredoc]:
    try:
        words = Lex("\\", raw_quotes=True, raw_escapes=True, skip_unset_env=True).process_words(line)
    except ShellError:
        words = []  # BuildKit ignores the error here: such a line opens no heredoc
    docs = []
    for w in words:
        h = parse_heredoc(w)
        if h is not None:
            docs.append(h)
    return docs


def chomp_heredoc_content(src: str) -> str:
    """The body of a `<<-` heredoc: leading tabs removed from every line."""
    return _LEADING_TABS.sub("", src)


# --- the parser ------------------------------------------------------------------------------

def parse(source: str | bytes, *, filename: str = "Dockerfile", strict: bool = True) -> Result:
    """Parse Dockerfile text into BuildKit's tree; raises DockerfileError.

    With strict (the default) an unknown instruction word is an error at once; with
    strict=False it is kept as a node without arguments, as BuildKit's parser does.
    """
    if isinstance(source, bytes):
        source = source.decode("utf-8", errors="surrogateescape")
    if source.startswith("\ufeff"):
        source = source[1:]
    lines = _split_lines(source)
    d = _Directives()
    root = Node(start_line=-1)
    warnings: list[ParseWarning] = []
    comments: list[str] = []
    current = 0
    i = 0

    def fail(e: Exception, start: int, end: int | None = None) -> DockerfileError:
        msg = e.args[0] if e.args else str(e)
        return DockerfileError(str(msg), start, end, filename)

    while i < len(lines):
        raw = lines[i]
        i += 1
        if _is_comment(raw):
            comment = go_strip(go_lstrip(raw)[1:])
            if comment == "":
                comments = []
            else:
                comments.append(comment)
        try:
            text, was_directive = _process_line(d, raw, True)
        except ValueError as e:
            raise fail(e, current + 1) from None
        if was_directive and comments:
            comments.pop()
        current += 1
        start = current
        text, end_of_line = _trim_continuation(text, d)
        if end_of_line and text == "":
            continue
        buf = [text]
        empty_continuation = False
        while not end_of_line and i < len(lines):
            raw = lines[i]
            i += 1
            try:
                text, _ = _process_line(d, raw, False)
            except ValueError as e:
                raise fail(e, current + 1) from None
            current += 1
            if _is_comment(raw):
                continue
            if go_lstrip(text) == "":
                empty_continuation = True
                continue
            text, end_of_line = _trim_continuation(text, d)
            buf.append(text)
        line = "".join(buf)
        if empty_continuation:
            warnings.append(ParseWarning(
                short="Empty continuation line found in: " + line,
                detail="Empty continuation lines will become errors in a future release",
                url="https://docs.docker.com/go/dockerfile/rule/no-empty-continuation/",
                line=current))
        try:
            child = _node_from_line(line, d, comments)
        except ValueError as e:
            raise fail(e, start, current) from None
        if strict and child.instruction not in _DISPATCH:
            raise DockerfileError(unknown_instruction_message(child.value), start, current, filename)

        if _can_contain_heredoc(child) and "<<" in line:
            try:
                heredocs = _heredocs_from_line(line)
            except ValueError as e:
                raise fail(e, start, current) from None
            for h in heredocs:
                terminated = False
                while i < len(lines):
                    body = lines[i]
                    i += 1
                    current += 1
                    candidate = body.rstrip("\r\n")
                    if h.chomp:
                        candidate = candidate.lstrip("\t")
                    if candidate == h.name:
                        terminated = True
                        break
                    h.content += body
                if not terminated:
                    raise DockerfileError("unterminated heredoc", start, current, filename)
                child.heredocs.append(h)

        child.start_line, child.end_line = start, current
        if root.start_line < 0:
            root.start_line = start
        root.end_line = current
        root.children.append(child)
        comments = []

    if root.start_line < 0:
        raise DockerfileError("file with no instructions", max(current, 1), None, filename)
    return Result(ast=root, escape_token=d.escape, warnings=warnings, directives=list(d.seen))


def parse_file(path: str | Path, *, strict: bool = True) -> Result:
    """Parse the Dockerfile at path; errors name the file as given."""
    p = Path(path)
    return parse(p.read_bytes(), filename=str(path), strict=strict)


# --- unknown instructions --------------------------------------------------------------------

def _levenshtein(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def suggest(value: str, options: list[str] | tuple[str, ...], case_sensitive: bool = False) -> str | None:
    """BuildKit's suggest.Search: the closest option within an edit distance of 1 (short words) or 2."""
    if not value:
        return None
    best = 2 if len(value) <= 3 else 3
    match = None
    for o in options:
        a, b = (value, o) if case_sensitive else (value.lower(), o.lower())
        dist = _levenshtein(a, b)
        if dist < best:
            best = dist
            match = o
    return match


def unknown_instruction_message(word: str) -> str:
    msg = f"unknown instruction: {word}"
    match = suggest(word, [i.upper() for i in INSTRUCTIONS])
    if match is not None and match != word:
        msg += f" (did you mean {match}?)"
    return msg
