"""The table parser: a command line's options read from a table of rows, without click or argparse.

Two command lines on the hot path use it: `pallet run` (`pallet.cli.fastrun`, click's forms of the rows
in `pallet.cli.runflags`) and `pallet-runtime` (`pallet.runtime.cli`, runc's urfave/cli forms). A row
is (option strings, keyword name, kind); `index(rows)` maps every option string to (keyword, kind).

    kw, i = parse(args, index(rows), defaults={...})      # options until the first positional
    args[i:]                                                # the positionals

Kinds: FLAG (no value), VALUE (one value), MULTI (repeatable, a tuple of values), OPTIONAL (`--opt`
alone is "", `--opt=VALUE` the only form with a value). A value follows its option as the next word,
after `=` (long) or attached (`-eFOO`). `bundle=True` reads several one-letter flags in one word as
click does (`-it`, `-dit`, `-eFOO`); without it `-xVALUE` is one option with its value (urfave/cli).
`flag_values=True` lets a FLAG take `=false` / `=0` (urfave/cli); else a FLAG with `=` is refused.
Whatever the table does not allow raises FlagError, which each caller words in its own way.
"""

from __future__ import annotations

FLAG, VALUE, MULTI, OPTIONAL = "flag", "value", "multi", "optional"


class FlagError(Exception):
    """`why`: "unknown" (not in the table), "needs-value" (the value is missing), "bad-value" (refused
    by `check`), "flag-value" (a value given to a FLAG), "short-optional" (an OPTIONAL in a bundle)."""

    def __init__(self, why: str, name: str, value: str | None = None) -> None:
        super().__init__(why, name, value)
        self.why, self.name, self.value = why, name, value


def index(rows) -> dict[str, tuple[str, str]]:
    """option string -> (keyword, kind), from rows whose first three items are (names, keyword, kind)."""
    return {o: (row[1], row[2]) for row in rows for o in row[0]}


def parse(args: list[str], by_name: dict[str, tuple[str, str]], *, start: int = 0, defaults: dict | None = None,
          bundle: bool = True, flag_values: bool = False, check=None, special=None) -> tuple[dict, int]:
    """Options from args[start:] until `--` (skipped) or the first positional; returns (values, index of
    the first positional). `check(keyword, value)` may refuse a value (False: FlagError "bad-value");
    `special` maps an option string to a function called with its `=VALUE` (None without one) that
    stores it itself (raise FlagError to refuse)."""
    kw = dict(defaults or {})
    i, n = start, len(args)
    while i < n:
        a = args[i]
        if a == "--":
            return kw, i + 1
        if a[:1] != "-" or a == "-":
            break
        if a.startswith("--") or not bundle:
            name, eq, value = a.partition("=")
            if not bundle and not name.startswith("--") and len(name) > 2:
                name, value, eq = name[:2], name[2:], "="    # -xVALUE
            if special and name in special:
                special[name](value if eq else None)
                i += 1
                continue
            spec = by_name.get(name)
            if spec is None:
                raise FlagError("unknown", name)
            dest, kind = spec
            if kind == FLAG:
                if eq and not flag_values:
                    raise FlagError("flag-value", name, value)
                kw[dest] = True if not eq else value.lower() not in ("false", "0")
                i += 1
                continue
            if kind == OPTIONAL:   # the next word is never its value
                kw[dest] = value if eq else ""
                i += 1
                continue
            if not eq:
                if i + 1 >= n:
                    raise FlagError("needs-value", name)
                value = args[i + 1]
                i += 1
            _store(kw, name, dest, kind, value, check)
            i += 1
            continue
        j = 1   # one-letter options bundled in one word (-it, -dit, -eFOO=1)
        while j < len(a):
            name = "-" + a[j]
            spec = by_name.get(name)
            if spec is None:
                raise FlagError("unknown", name)
            dest, kind = spec
            if kind == FLAG:
                kw[dest] = True
                j += 1
                continue
            if kind == OPTIONAL:
                raise FlagError("short-optional", name)
            value = a[j + 1:]
            if not value:
                if i + 1 >= n:
                    raise FlagError("needs-value", name)
                value = args[i + 1]
                i += 1
            _store(kw, name, dest, kind, value, check)
            break
        i += 1
    return kw, i


def _store(kw: dict, name: str, dest: str, kind: str, value: str, check) -> None:
    if check is not None and not check(dest, value):
        raise FlagError("bad-value", name, value)
    if kind == MULTI:
        kw[dest] = (*kw.get(dest, ()), value)
    else:
        kw[dest] = value
