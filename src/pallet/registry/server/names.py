"""Repository name and tag grammar of the distribution spec.

A name that fails the grammar is rejected before it is ever turned into a path.
"""

from __future__ import annotations

import re

_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
NAME_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
TAG_RE = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$")
UPLOAD_ID_RE = re.compile(r"^[0-9a-f]{32}$")
MAX_NAME = 255


def valid_name(name: str) -> bool:
    return len(name) <= MAX_NAME and NAME_RE.match(name) is not None


def valid_tag(tag: str) -> bool:
    return TAG_RE.match(tag) is not None
