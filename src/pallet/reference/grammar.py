"""The reference grammar of github.com/distribution/reference, as Python regexes.

    reference        := name [ ":" tag ] [ "@" digest ]
    name             := [domain '/'] remote-name
    domain           := host [':' port-number]
    host             := domain-name | IPv4address | \\[ IPv6address \\]
    domain-name      := domain-component ['.' domain-component]*
    domain-component := /([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])/
    port-number      := /[0-9]+/
    path-component   := alpha-numeric [separator alpha-numeric]*
    remote-name      := path-component ['/' path-component]*
    alpha-numeric    := /[a-z0-9]+/
    separator        := /[_.]|__|[-]+/
    tag              := /[\\w][\\w.-]{0,127}/
    digest           := algorithm ":" hex      (hex: 32 or more hex digits)
    identifier       := /[a-f0-9]{64}/

The pieces are the same strings as upstream's regexp.go. Two things differ from
Go's RE2 and are handled here, so that every match is the same as upstream's:

- Go's ``\\w`` and ``[[:xdigit:]]`` are ASCII-only: every regex is compiled with
  ``re.ASCII`` and ``[[:xdigit:]]`` is spelled ``[0-9A-Fa-f]``.
- Go's ``$`` matches only at the end of the text; Python's also matches before a
  trailing newline, so anchored patterns end in ``\\Z``.

Each regex is compiled once, on first use (see ``__getattr__`` below).
"""

from __future__ import annotations

import re


def optional(*res: str) -> str:
    return "(?:" + "".join(res) + ")?"


def any_times(*res: str) -> str:
    return "(?:" + "".join(res) + ")*"


def capture(*res: str) -> str:
    return "(" + "".join(res) + ")"


def anchored(*res: str) -> str:
    return "^" + "".join(res) + r"\Z"


ALPHANUMERIC = r"[a-z0-9]+"
SEPARATOR = r"(?:[._]|__|[-]+)"
LOCALHOST = "localhost"
DOMAIN_NAME_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
OPTIONAL_PORT = r"(?::[0-9]+)?"
TAG = r"[\w][\w.-]{0,127}"
DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9A-Fa-f]{32,}"
IDENTIFIER = r"([a-f0-9]{64})"
IPV6_ADDRESS = r"\[(?:[a-fA-F0-9:]+)\]"
DOMAIN_NAME = DOMAIN_NAME_COMPONENT + any_times(r"\.", DOMAIN_NAME_COMPONENT)
HOST = "(?:" + DOMAIN_NAME + "|" + IPV6_ADDRESS + ")"
DOMAIN_AND_PORT = HOST + OPTIONAL_PORT
PATH_COMPONENT = ALPHANUMERIC + any_times(SEPARATOR, ALPHANUMERIC)
REMOTE_NAME = PATH_COMPONENT + any_times("/", PATH_COMPONENT)
NAME = optional(DOMAIN_AND_PORT, "/") + REMOTE_NAME

ANCHORED_NAME_PATTERN = anchored(optional(capture(DOMAIN_AND_PORT), "/"), capture(REMOTE_NAME))
REFERENCE_PATTERN = anchored(capture(NAME), optional(":", capture(TAG)), optional("@", capture(DIGEST)))

#: One regex for Parse: ``^(?:(domain)/)?(path)(?::(tag))?(?:@(digest))?$``. Upstream matches
#: ReferenceRegexp and then splits the name with anchoredNameRegexp; capture groups do not
#: change what a leftmost-first (backtracking) match picks, and the split of a given name
#: does not depend on what follows it, so one match gives the same four parts.
PARSE_PATTERN = anchored(optional(capture(DOMAIN_AND_PORT), "/"), capture(REMOTE_NAME),
                         optional(":", capture(TAG)), optional("@", capture(DIGEST)))

# name -> (pattern, what it is). Compiled on first access (module __getattr__) and kept
# in the module's globals, so each is compiled once and only if used: the hot path
# (`pallet run IMAGE`) needs PARSE_RE and LOWER_HEX_RE, not the rest.
_LAZY: dict[str, str] = {
    # ^(?:(domain)/)?(path)(?::(tag))?(?:@(digest))?$
    "PARSE_RE": PARSE_PATTERN,
    # upstream's ReferenceRegexp ^(name)(?::(tag))?(?:@(digest))?$; groups name, tag, digest
    "REFERENCE_RE": REFERENCE_PATTERN,
    # upstream's anchoredNameRegexp ^(?:(domain)/)?(remote-name)$; groups domain, path
    "ANCHORED_NAME_RE": ANCHORED_NAME_PATTERN,
    # upstream's DomainRegexp (host[:port]), anchored as its tests use it
    "ANCHORED_DOMAIN_RE": anchored(DOMAIN_AND_PORT),
    # upstream's anchoredIdentifierRegexp ^[a-f0-9]{64}$: an image ID without "sha256:"
    "ANCHORED_IDENTIFIER_RE": anchored(IDENTIFIER),
    "ANCHORED_TAG_RE": anchored(TAG),
    # the reference grammar's digest: any algorithm, 32 or more hex digits
    "ANCHORED_DIGEST_RE": anchored(DIGEST),
    # go-digest's DigestRegexpAnchored: tells a well-formed unknown algorithm
    # ("unsupported digest algorithm") from garbage ("invalid checksum digest format")
    "GO_DIGEST_RE": r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+\Z",
    # go-digest's encoded form for sha256/sha512: lower-case hex
    "LOWER_HEX_RE": r"^[a-f0-9]+\Z",
}

PARSE_RE: re.Pattern[str]
REFERENCE_RE: re.Pattern[str]
ANCHORED_NAME_RE: re.Pattern[str]
ANCHORED_DOMAIN_RE: re.Pattern[str]
ANCHORED_IDENTIFIER_RE: re.Pattern[str]
ANCHORED_TAG_RE: re.Pattern[str]
ANCHORED_DIGEST_RE: re.Pattern[str]
GO_DIGEST_RE: re.Pattern[str]
LOWER_HEX_RE: re.Pattern[str]


def __getattr__(name: str) -> re.Pattern[str]:
    pattern = _LAZY.get(name)
    if pattern is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    rx = globals()[name] = re.compile(pattern, re.ASCII)
    return rx
