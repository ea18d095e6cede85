""".dockerignore files: reading them (moby/patternmatcher/ignorefile) and matching paths
(moby/patternmatcher) the way BuildKit filters a build context.

Semantics, all moby's:

* a line starting with `#` is a comment; blank lines are skipped; each pattern is trimmed,
  cleaned like filepath.Clean, and a leading `/` is dropped (patterns are relative to the
  context root); `!pattern` re-includes what an earlier pattern excluded;
* `*` and `?` do not cross `/`, `**` matches any number of directories (also none), `[...]`
  classes and `\\` escapes are filepath.Match's;
* a path is excluded when it or one of its parent directories matches, and the last
  pattern that matches decides (`MatchesOrParentMatches`).

Which file: BuildKit reads `<Dockerfile>.dockerignore` (the Dockerfile's path plus
`.dockerignore`, e.g. `build/app.Dockerfile.dockerignore`) if it exists, even empty, and
otherwise `.dockerignore` at the context root. Podman (buildah) also knows the
`.containerignore` names: `<Containerfile>.containerignore` is taken when there is no
`<Containerfile>.dockerignore`, and a root `.containerignore` when there is no root
`.dockerignore` (buildah would prefer the root `.containerignore` over `.dockerignore`;
when both exist BuildKit's answer is taken here).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pallet.build._go import go_clean, go_strip

__all__ = [
    "BadPattern", "PatternMatcher", "find_ignore_file", "load_ignore", "matches_or_parent_matches",
    "read_ignore",
]


class BadPattern(ValueError):
    """A pattern filepath.Match would reject (unclosed `[`, a trailing `\\` ...), or a lone `!`."""


def read_ignore(source: str | bytes) -> list[str]:
    """The patterns of a .dockerignore file, normalized as moby's ignorefile.ReadAll does."""
    if isinstance(source, bytes):
        source = source.decode("utf-8", errors="surrogateescape")
    out: list[str] = []
    for n, line in enumerate(source.split("\n")):
        line = line.removesuffix("\r")  # bufio.ScanLines drops a \r before the \n
        if n == 0:
            line = line.removeprefix("\ufeff")
        if line.startswith("#"):
            continue
        pattern = go_strip(line)
        if not pattern:
            continue
        invert = pattern[0] == "!"
        if invert:
            pattern = go_strip(pattern[1:])
        if pattern:
            pattern = go_clean(pattern)
            if len(pattern) > 1 and pattern[0] == "/":
                pattern = pattern[1:]
        out.append("!" + pattern if invert else pattern)
    return out


def _check_glob(pattern: str) -> None:
    """Reject what Go's filepath.Match calls ErrBadPattern (it checks the whole pattern)."""
    i, n = 0, len(pattern)

    def esc_char(j: int) -> int:
        if j >= n or pattern[j] in "-]":
            raise BadPattern(f"syntax error in pattern: {pattern}")
        if pattern[j] == "\\":
            j += 1
            if j >= n:
                raise BadPattern(f"syntax error in pattern: {pattern}")
        return j + 1

    while i < n:
        c = pattern[i]
        if c == "\\":
            if i + 1 >= n:
                raise BadPattern(f"syntax error in pattern: {pattern}")
            i += 2
        elif c == "[":
            i += 1
            if i < n and pattern[i] == "^":
                i += 1
            nrange = 0
            while True:
                if i < n and pattern[i] == "]" and nrange > 0:
                    i += 1
                    break
                i = esc_char(i)
                if i < n and pattern[i] == "-":
                    i = esc_char(i + 1)
                nrange += 1
        else:
            i += 1


_REGEX_ESCAPE = set(".+()|{}$")
_EXACT, _PREFIX, _SUFFIX, _REGEX = range(4)


@dataclass
class Pattern:
    """One cleaned pattern; `exclusion` is a `!` pattern (which re-includes)."""

    cleaned: str
    exclusion: bool = False

    def __post_init__(self) -> None:
        self._kind, self._regex = self._compile()

    def _compile(self) -> tuple[int, re.Pattern[str] | None]:
        # ** at the start (any depth) and at the end (everything below) of an otherwise
        # literal pattern become suffix and prefix tests; anything else is a regular expression.
        p = self.cleaned
        kind = _EXACT
        rx = ["^"]
        i, n, first = 0, len(p), True
        while i < n:
            ch = p[i]
            i += 1
            if ch == "*":
                if i < n and p[i] == "*":
                    i += 1
                    if i < n and p[i] == "/":
                        i += 1
                    if i >= n:
                        if kind == _EXACT:
                            kind = _PREFIX
                        else:
                            rx.append(".*")
                            kind = _REGEX
                    else:
                        rx.append("(.*/)?")
                        kind = _REGEX
                    if first:
                        kind = _SUFFIX
                else:
                    rx.append("[^/]*")
                    kind = _REGEX
            elif ch == "?":
                rx.append("[^/]")
                kind = _REGEX
            elif ch in _REGEX_ESCAPE:
                rx.append("\\" + ch)
            elif ch == "\\":
                if i < n:
                    rx.append("\\" + p[i])
                    i += 1
                    kind = _REGEX
                else:
                    rx.append("\\\\")
            elif ch in "[]":
                rx.append(ch)
                kind = _REGEX
            else:
                rx.append(ch)
            first = False
        if kind != _REGEX:
            return kind, None
        rx.append(r"\Z")  # Go's $ without (?m); Python's $ would also match before a final newline
        try:
            return kind, re.compile("".join(rx))
        except re.error as e:
            raise BadPattern(f"syntax error in pattern: {p}") from e

    def match(self, path: str) -> bool:
        p = self.cleaned
        if self._kind == _EXACT:
            return path == p
        if self._kind == _PREFIX:
            return path.startswith(p[:-2])
        if self._kind == _SUFFIX:
            suffix = p[2:]
            if path.endswith(suffix):
                return True
            return suffix[:1] == "/" and path == suffix[1:]  # **/foo matches foo
        assert self._regex is not None
        return self._regex.match(path) is not None


class PatternMatcher:
    """moby's PatternMatcher over a list of patterns (as read_ignore returns them)."""

    def __init__(self, patterns: Iterable[str]) -> None:
        self.patterns: list[Pattern] = []
        self.exclusions = False
        for raw in patterns:
            p = go_strip(raw)
            if not p:
                continue
            p = go_clean(p)
            exclusion = False
            if p[0] == "!":
                if len(p) == 1:
                    raise BadPattern('illegal exclusion pattern: "!"')
                exclusion = True
                p = p[1:]
                self.exclusions = True
            _check_glob(p)
            self.patterns.append(Pattern(p, exclusion))

    def matches_or_parent_matches(self, path: str) -> bool:
        """Whether path (slash-separated, relative to the context) is excluded."""
        matched = False
        parent = _go_dir(path)
        parent_dirs = parent.split("/")
        for pat in self.patterns:
            # an inclusion cannot change a match, an exclusion cannot change a non-match
            if pat.exclusion != matched:
                continue
            m = pat.match(path)
            if not m and parent != ".":
                for i in range(len(parent_dirs)):
                    if pat.match("/".join(parent_dirs[:i + 1])):
                        m = True
                        break
            if m:
                matched = not pat.exclusion
        return matched

    def matches_exact(self, path: str) -> bool:
        """Like matches_or_parent_matches, without looking at the parent directories."""
        matched = False
        for pat in self.patterns:
            if pat.exclusion != matched:
                continue
            if pat.match(path):
                matched = not pat.exclusion
        return matched


def _go_dir(path: str) -> str:
    """filepath.Dir: everything but the last element, cleaned."""
    i = path.rfind("/")
    return go_clean(path[:i + 1])


def matches_or_parent_matches(path: str, patterns: Iterable[str]) -> bool:
    """The package-level helper: the path is cleaned first and "." is never excluded."""
    pm = PatternMatcher(patterns)
    path = go_clean(path)
    if path == ".":
        return False
    return pm.matches_or_parent_matches(path)


def find_ignore_file(context: str | Path, dockerfile: str | Path | None = None) -> Path | None:
    """The ignore file BuildKit would use for this context and Dockerfile, or None."""
    candidates: list[Path] = []
    if dockerfile is not None:
        candidates += [Path(str(dockerfile) + ".dockerignore"), Path(str(dockerfile) + ".containerignore")]
    ctx = Path(context)
    candidates += [ctx / ".dockerignore", ctx / ".containerignore"]
    for c in candidates:
        if c.exists():  # a directory here is an error when read, not a reason to look further
            return c
    return None


def load_ignore(context: str | Path, dockerfile: str | Path | None = None) -> list[str]:
    """The patterns of the ignore file find_ignore_file picks ([] when there is none)."""
    f = find_ignore_file(context, dockerfile)
    return read_ignore(f.read_bytes()) if f is not None else []
