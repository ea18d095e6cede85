"""BuildKit's shell lexer (frontend/dockerfile/shell): word splitting and `$var` expansion.

This is not a shell: there is no command substitution, no globbing, no arithmetic. It is
the small POSIX-flavoured language BuildKit applies to instruction arguments (and to
heredoc words): single and double quotes, the escape character (`\\` or the backtick
chosen by the `escape` directive), and the parameter expansions

    $v  ${v}  ${v:-w} ${v-w}  ${v:+w} ${v+w}  ${v:?msg} ${v?msg}
    ${v#p} ${v##p} ${v%p} ${v%%p}  ${v/p/r} ${v//p/r}

`process_word` gives the expanded string (spaces kept), `process_words` splits it into
words *after* expansion (unquoted whitespace produced by an expansion splits words, quoted
whitespace does not), and `process_word_with_matches` also reports which variables were
looked up and found or not, as BuildKit's linter uses it.

The quirks are BuildKit's and kept on purpose: an escape character at the end of input is
dropped, inside double quotes the escape only escapes `"`, `$` and itself, positional and
special parameters (`$1`, `$@`, `$#` ...) are always unset, `${v:=w}` is an error.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from pallet.build._go import go_isspace, go_quote

__all__ = ["Lex", "ProcessWordResult", "ShellError", "build_envs"]

_EOF = ""  # what the scanner returns past the end of input (no real character is "")


class ShellError(ValueError):
    """A word BuildKit's lexer rejects (unterminated quote, bad substitution, `${v:?msg}` ...)."""


def _isdigit(ch: str) -> bool:
    # Go's unicode.IsDigit is category Nd only; str.isdigit also accepts superscripts.
    return unicodedata.category(ch) == "Nd"


def _isletter(ch: str) -> bool:
    return ch.isalpha()


def build_envs(env: Iterable[str]) -> dict[str, str]:
    """`KEY=value` strings to a mapping; a later key wins, a bare `KEY` is set and empty."""
    out: dict[str, str] = {}
    for e in env:
        k, sep, v = e.partition("=")
        out[k] = v if sep else ""
    return out


@dataclass
class ProcessWordResult:
    result: str
    words: list[str]
    matched: set[str] = field(default_factory=set)
    unmatched: set[str] = field(default_factory=set)


class _Scanner:
    __slots__ = ("src", "pos")

    def __init__(self, src: str) -> None:
        self.src = src
        self.pos = 0

    def peek(self) -> str:
        return self.src[self.pos] if self.pos < len(self.src) else _EOF

    def next(self) -> str:
        if self.pos < len(self.src):
            ch = self.src[self.pos]
            self.pos += 1
            return ch
        return _EOF


class _Words:
    """Accumulates words: characters from expansions split on whitespace, quoted text does not."""

    __slots__ = ("word", "words", "in_word")

    def __init__(self) -> None:
        self.word = ""
        self.words: list[str] = []
        self.in_word = False

    def add_char(self, ch: str) -> None:
        if go_isspace(ch):
            if self.in_word and self.word:
                self.words.append(self.word)
                self.word = ""
                self.in_word = False
        else:
            self.add_raw_char(ch)

    def add_raw_char(self, ch: str) -> None:
        self.word += ch
        self.in_word = True

    def add_string(self, s: str) -> None:
        for ch in s:
            self.add_char(ch)

    def add_raw_string(self, s: str) -> None:
        self.word += s
        self.in_word = True

    def get_words(self) -> list[str]:
        if self.word:
            self.words.append(self.word)
            self.word = ""
            self.in_word = False
        return self.words


EnvLike = Mapping[str, str] | Iterable[str]


class Lex:
    """A lexer with BuildKit's options.

    raw_quotes keeps the quote characters in the output, raw_escapes keeps escape
    characters, skip_process_quotes treats quotes as ordinary characters, and
    skip_unset_env leaves references to unset variables as written (`$v`, `${v:-w}`)
    instead of expanding them to "" — the parser uses those to find heredoc words.
    """

    def __init__(self, escape_token: str = "\\", *, raw_quotes: bool = False, raw_escapes: bool = False,
                 skip_process_quotes: bool = False, skip_unset_env: bool = False) -> None:
        if escape_token not in ("\\", "`"):
            raise ValueError(f"invalid escape token {escape_token!r}")
        self.escape_token = escape_token
        self.raw_quotes = raw_quotes
        self.raw_escapes = raw_escapes
        self.skip_process_quotes = skip_process_quotes
        self.skip_unset_env = skip_unset_env

    def process_word(self, word: str, env: EnvLike = ()) -> str:
        """The word with quotes removed and variables expanded (spaces between words kept)."""
        return self.process_word_with_matches(word, env).result

    def process_words(self, word: str, env: EnvLike = ()) -> list[str]:
        """The word expanded then split into words, as ENV/ARG/heredoc handling needs it."""
        return self.process_word_with_matches(word, env).words

    def process_word_with_matches(self, word: str, env: EnvLike = ()) -> ProcessWordResult:
        envs = dict(env) if isinstance(env, Mapping) else build_envs(env)
        sw = _ShellWord(self, word, envs)
        try:
            result, words = sw.process_stop_on(_EOF, self.raw_escapes)
        except ShellError as e:
            raise ShellError(f"failed to process {go_quote(word)}: {e}") from None
        return ProcessWordResult(result, words, sw.matches, sw.unmatched)


class _ShellWord:
    def __init__(self, lex: Lex, word: str, envs: dict[str, str]) -> None:
        self.lex = lex
        self.esc = lex.escape_token
        self.scanner = _Scanner(word)
        self.envs = envs
        self.raw_escapes = lex.raw_escapes
        self.matches: set[str] = set()
        self.unmatched: set[str] = set()

    def get_env(self, name: str) -> tuple[str, bool]:
        if name in self.envs:
            self.matches.add(name)
            return self.envs[name], True
        self.unmatched.add(name)
        return "", False

    def process_stop_on(self, stop: str, raw_escapes: bool) -> tuple[str, list[str]]:
        saved = self.raw_escapes
        self.raw_escapes = raw_escapes
        try:
            return self._process_stop_on(stop)
        finally:
            self.raw_escapes = saved

    def _process_stop_on(self, stop: str) -> tuple[str, list[str]]:
        result: list[str] = []
        words = _Words()
        sc = self.scanner
        quotes = not self.lex.skip_process_quotes
        while sc.peek() != _EOF:
            ch = sc.peek()
            if stop != _EOF and ch == stop:
                sc.next()
                return "".join(result), words.get_words()
            if ch == "$":
                tmp = self.process_dollar()
                result.append(tmp)
                words.add_string(tmp)
            elif quotes and ch == "'":
                tmp = self.process_single_quote()
                result.append(tmp)
                words.add_raw_string(tmp)
            elif quotes and ch == '"':
                tmp = self.process_double_quote()
                result.append(tmp)
                words.add_raw_string(tmp)
            else:
                ch = sc.next()
                if ch == self.esc:
                    if self.raw_escapes:
                        words.add_raw_char(ch)
                        result.append(ch)
                    ch = sc.next()
                    if ch == _EOF:  # an escape at the very end is dropped
                        break
                    words.add_raw_char(ch)
                else:
                    words.add_char(ch)
                result.append(ch)
        if stop != _EOF:
            raise ShellError(f"unexpected end of statement while looking for matching {stop}")
        return "".join(result), words.get_words()

    def process_single_quote(self) -> str:
        # Everything up to the next ' is literal; a ' cannot be escaped inside.
        sc = self.scanner
        out: list[str] = []
        ch = sc.next()
        if self.lex.raw_quotes:
            out.append(ch)
        while True:
            ch = sc.next()
            if ch == _EOF:
                raise ShellError("unexpected end of statement while looking for matching single-quote")
            if ch == "'":
                if self.lex.raw_quotes:
                    out.append(ch)
                return "".join(out)
            out.append(ch)

    def process_double_quote(self) -> str:
        # Literal except $ (expanded) and the escape, which escapes only ", $ and itself.
        sc = self.scanner
        out: list[str] = []
        ch = sc.next()
        if self.lex.raw_quotes:
            out.append(ch)
        while True:
            p = sc.peek()
            if p == _EOF:
                raise ShellError("unexpected end of statement while looking for matching double-quote")
            if p == '"':
                ch = sc.next()
                if self.lex.raw_quotes:
                    out.append(ch)
                return "".join(out)
            if p == "$":
                out.append(self.process_dollar())
                continue
            ch = sc.next()
            if ch == self.esc:
                if self.raw_escapes:
                    out.append(ch)
                p = sc.peek()
                if p == _EOF:
                    continue  # the loop then reports the missing quote
                if p in ('"', "$", self.esc):
                    ch = sc.next()
            out.append(ch)

    def process_dollar(self) -> str:
        sc = self.scanner
        sc.next()  # the $
        skip_unset = self.lex.skip_unset_env
        if sc.peek() != "{":
            name = self.process_name()
            if not name:
                return "$"
            value, found = self.get_env(name)
            if not found and skip_unset:
                return "$" + name
            return value

        sc.next()  # the {
        p = sc.peek()
        if p == _EOF:
            raise ShellError("syntax error: missing '}'")
        if p in ("{", "}", ":"):
            raise ShellError("syntax error: bad substitution")
        name = self.process_name()
        ch = sc.next()
        if ch == _EOF:
            # BuildKit reports "unsupported modifier (\ufffd)" here (Go's string(EOF)); same error, clearer words
            raise ShellError("syntax error: missing '}'")
        chs = ch
        null_is_unset = False

        if ch == "}":
            value, found = self.get_env(name)
            if not found and skip_unset:
                return "${" + name + "}"
            return value

        if ch == ":":
            null_is_unset = True
            ch = sc.next()
            chs += ch if ch != _EOF else "\ufffd"
            return self._modifier(name, ch, chs, null_is_unset)
        if ch in ("+", "-", "?", "#", "%"):
            return self._modifier(name, ch, chs, null_is_unset)
        if ch == "/":
            return self._replace(name)
        raise ShellError(f"unsupported modifier ({chs}) in substitution")

    def _modifier(self, name: str, ch: str, chs: str, null_is_unset: bool) -> str:
        sc = self.scanner
        raw = ch in ("#", "%")  # patterns keep their escapes for the pattern compiler
        try:
            word, _ = self.process_stop_on("}", raw)
        except ShellError:
            if sc.peek() == _EOF:
                raise ShellError("syntax error: missing '}'") from None
            raise
        value, found = self.get_env(name)
        if self.lex.skip_unset_env and not found:
            return "${" + name + chs + word + "}"
        empty = not found or (null_is_unset and value == "")
        if ch == "-":
            return word if empty else value
        if ch == "+":
            return "" if empty else word
        if ch == "?":
            if not found:
                raise ShellError(f"{name}: {word or 'is not allowed to be unset'}")
            if null_is_unset and value == "":
                raise ShellError(f"{name}: {word or 'is not allowed to be empty'}")
            return value
        if ch in ("%", "#"):
            greedy = False
            if word and word[0] == ch:
                greedy = True
                word = word[1:]
            if ch == "%":
                return _trim_suffix(word, value, greedy)
            return _trim_prefix(word, value, greedy)
        raise ShellError(f"unsupported modifier ({chs}) in substitution")

    def _replace(self, name: str) -> str:
        sc = self.scanner
        replace_all = sc.peek() == "/"
        if replace_all:
            sc.next()
        try:
            pattern, _ = self.process_stop_on("/", True)
        except ShellError:
            if sc.peek() == _EOF:
                raise ShellError("syntax error: missing '/' in ${}") from None
            raise
        try:
            replacement, _ = self.process_stop_on("}", True)
        except ShellError:
            if sc.peek() == _EOF:
                raise ShellError("syntax error: missing '}'") from None
            raise
        value, found = self.get_env(name)
        if self.lex.skip_unset_env and not found:
            return "${" + name + "/" + pattern + "/" + replacement + "}"
        rx = _shell_pattern_regex(pattern, greedy=True, anchored=False)
        if replace_all:
            # Go's ReplaceAllString expands $name/${name} in the replacement (no groups exist here).
            return rx.sub(lambda _m: _expand_go_template(replacement), value)
        m = rx.search(value)
        if m:
            value = value[:m.start()] + replacement + value[m.end():]
        return value

    def process_name(self) -> str:
        """A variable name: letters, digits and _, or all digits, or one special parameter."""
        sc = self.scanner
        name: list[str] = []
        while sc.peek() != _EOF:
            ch = sc.peek()
            if not name and _isdigit(ch):
                while sc.peek() != _EOF and _isdigit(sc.peek()):
                    name.append(sc.next())
                return "".join(name)
            if not name and ch in "@*#?-$!0":
                return sc.next()
            if not (_isletter(ch) or _isdigit(ch) or ch == "_"):
                break
            name.append(sc.next())
        return "".join(name)


_GO_TEMPLATE = re.compile(r"\$(?:\$|\{([A-Za-z0-9_]+)\}|([A-Za-z0-9_]+))")


def _expand_go_template(template: str) -> str:
    # $$ is a dollar; $name and ${name} name a capture group, and there are none, so they vanish;
    # any other $ is kept as written.
    return _GO_TEMPLATE.sub(lambda m: "$" if m.group(0) == "$$" else "", template)


_REGEX_SPECIAL = set("[]{}.+()|^$")


def _shell_pattern_regex(pattern: str, *, greedy: bool, anchored: bool) -> re.Pattern[str]:
    """A ${v#p}/${v/p/r} pattern (`*`, `?`, `\\` escapes; no brackets) as a regular expression."""
    out = ["^"] if anchored else []
    star = ".*" if greedy else ".*?"
    i, n = 0, len(pattern)
    while i < n:
        tok = pattern[i]
        i += 1
        if tok == "*":
            out.append(star)
        elif tok == "?":
            out.append(".")
        elif tok == "\\":
            # \} and \/ are escapes of ${}'s own syntax, not of the pattern
            if i < n and pattern[i] in "}/":
                continue
            nxt = pattern[i] if i < n else ""
            i += 1
            if nxt not in ("*", "?", "\\"):
                raise ShellError(f"invalid pattern ({pattern}) in substitution: invalid escape '\\{nxt}'")
            out.append("\\" + nxt)
        elif tok in _REGEX_SPECIAL:
            out.append("\\" + tok)
        else:
            out.append(re.escape(tok))
    return re.compile("".join(out))


def _trim_prefix(pattern: str, value: str, greedy: bool) -> str:
    m = _shell_pattern_regex(pattern, greedy=greedy, anchored=True).search(value)
    return value[m.end():] if m else value


def _reverse_pattern(pattern: str) -> str:
    """Reverse a pattern keeping each `\\x` escape in front of its character: a\\*c -> c\\*a."""
    out = [""] * len(pattern)
    last = len(pattern) - 1
    i = 0
    while i <= last:
        tok = pattern[i]
        o = last - i
        if tok == "\\" and i != last:
            out[o - 1] = tok
            out[o] = pattern[i + 1]
            i += 2
        else:
            out[o] = tok
            i += 1
    return "".join(out)


def _trim_suffix(pattern: str, value: str, greedy: bool) -> str:
    # A regular expression cannot find the shortest rightmost match, so match the reversed
    # pattern against the reversed value from the left instead.
    return _trim_prefix(_reverse_pattern(pattern), value[::-1], greedy)[::-1]
