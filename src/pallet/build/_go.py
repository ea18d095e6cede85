"""Go string behaviour the ported BuildKit/moby code depends on.

Which characters are whitespace, how a string is quoted in BuildKit's dumps (`%q`) and
what `filepath.Clean` does differ between Go and Python in small ways that decide test
results, so they live here once.
"""

from __future__ import annotations

__all__ = ["go_clean", "go_isspace", "go_lstrip", "go_parse_duration", "go_quote", "go_strip"]


def go_isspace(ch: str) -> bool:
    """Go's unicode.IsSpace, which (unlike str.isspace) is false for U+001C..U+001F."""
    return ch.isspace() and ch not in "\x1c\x1d\x1e\x1f"


def go_lstrip(s: str) -> str:
    """strings.TrimLeftFunc(s, unicode.IsSpace)."""
    i = 0
    while i < len(s) and go_isspace(s[i]):
        i += 1
    return s[i:]


def go_strip(s: str) -> str:
    """strings.TrimSpace(s)."""
    s = go_lstrip(s)
    j = len(s)
    while j > 0 and go_isspace(s[j - 1]):
        j -= 1
    return s[:j]


_SIMPLE = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v",
           "\\": "\\\\", '"': '\\"'}


def go_quote(s: str) -> str:
    """strconv.Quote: a double-quoted Go string literal, printable characters kept as they are."""
    out = ['"']
    for ch in s:
        if ch in _SIMPLE:
            out.append(_SIMPLE[ch])
        elif ch.isprintable():
            out.append(ch)
        else:
            cp = ord(ch)
            if 0xDC80 <= cp <= 0xDCFF:  # an undecodable byte kept by surrogateescape
                out.append(f"\\x{cp - 0xDC00:02x}")
            elif cp < 0x20 or cp == 0x7F:
                out.append(f"\\x{cp:02x}")
            elif cp < 0x10000:
                out.append(f"\\u{cp:04x}")
            else:
                out.append(f"\\U{cp:08x}")
    out.append('"')
    return "".join(out)


def go_clean(path: str) -> str:
    """path/filepath.Clean on Unix: the shortest equivalent path, "." for an empty one.

    Unlike posixpath.normpath, a leading "//" becomes "/".
    """
    if path == "":
        return "."
    rooted = path.startswith("/")
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts and parts[-1] != "..":
                parts.pop()
            elif not rooted:
                parts.append("..")
            continue
        parts.append(part)
    out = "/".join(parts)
    if rooted:
        return "/" + out
    return out or "."


_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def go_parse_duration(s: str) -> float:
    """time.ParseDuration, in seconds: "1h30m", "2.5s", "300ms", "-1s", "0"; ValueError otherwise."""
    import re

    orig = s
    sign = 1.0
    if s[:1] in ("-", "+"):
        sign = -1.0 if s[0] == "-" else 1.0
        s = s[1:]
    if s == "0":
        return 0.0
    if s == "":
        raise ValueError(f'time: invalid duration "{orig}"')
    total = 0.0
    for m in re.finditer(r"([0-9]*(?:\.[0-9]*)?)([a-zµμ]+)|(.)", s):
        number, unit, junk = m.groups()
        if junk is not None or number in ("", ".") or unit not in _DURATION_UNITS:
            if unit is not None and unit not in _DURATION_UNITS and junk is None and number not in ("", "."):
                raise ValueError(f'time: unknown unit "{unit}" in duration "{orig}"')
            raise ValueError(f'time: invalid duration "{orig}"')
        total += float(number) * _DURATION_UNITS[unit]
    return sign * total
