"""Image references with the exact semantics of github.com/distribution/reference.

Upstream's functions, by their Python names:

=========================  ==========================================================
``Parse``                  :func:`parse` — syntax only, no docker.io normalization
``ParseNamed``             :func:`parse_named` — must already be fully normalized
``ParseNormalizedNamed``   :func:`parse_normalized_named` — ``busybox`` →
                           ``docker.io/library/busybox``
``TagNameOnly``            :func:`tag_name_only` — add ``:latest`` to a bare name
``ParseAnyReference``      :func:`parse_any_reference` — also accepts an image ID
``ParseDockerRef``         :func:`parse_docker_ref` — normalize, default ``latest``,
                           drop the tag when there is a digest
``FamiliarName/String``    :func:`familiar_name` / :func:`familiar_string`
``FamiliarMatch``          :func:`familiar_match`
``WithName/Tag/Digest``    :func:`with_name` / :func:`with_tag` / :func:`with_digest`
``TrimNamed``              :func:`trim_named`
=========================  ==========================================================

Errors are :class:`pallet.errors.InvalidReference` carrying upstream's exact
message; upstream's sentinel errors (``ErrNameEmpty`` ...) are the subclasses
below, so ``except NameNotCanonical`` works like ``errors.Is``.

For the rest of pallet: :func:`normalize` (what docker does with a user's
reference) and :func:`looks_like_id` (is this text an image ID or ID prefix?).

This module is on the hot path of ``pallet run``: it imports only ``re`` and
``pallet.records`` (and ``pallet.errors``), and compiles each regex on first use.
"""

from __future__ import annotations

from pallet.errors import InvalidReference
from pallet.records import record
from pallet.reference import grammar as _g

__all__ = [
    "DEFAULT_DOMAIN", "DEFAULT_TAG", "DIGEST_ALGORITHMS", "LEGACY_DEFAULT_DOMAIN", "NAME_TOTAL_LENGTH_MAX",
    "OFFICIAL_REPO_PREFIX", "DigestInvalidFormat", "InvalidReference", "NameContainsUppercase", "NameEmpty",
    "NameNotCanonical", "NameTooLong", "Reference", "ReferenceInvalidFormat", "TagInvalidFormat",
    "familiar_match", "familiar_name", "familiar_string", "id_hex", "looks_like_id", "normalize", "parse",
    "parse_any_reference", "parse_docker_ref", "parse_named", "parse_normalized_named", "split_docker_domain",
    "tag_name_only", "trim_named", "with_digest", "with_name", "with_tag",
]

NAME_TOTAL_LENGTH_MAX = 255
DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
OFFICIAL_REPO_PREFIX = "library/"
DEFAULT_TAG = "latest"
#: Docker Hub's registry API is not served at docker.io.
DOCKER_HUB_API_HOST = "registry-1.docker.io"

#: Digest algorithms a reference may use, with their hex length — go-digest's
#: "available" algorithms. sha256 and sha512 are the OCI-registered ones (the
#: same set as pallet.oci.digest.ALGORITHMS; a test keeps them in step) and the
#: ones a docker binary links in. Any other well-formed algorithm is
#: "unsupported digest algorithm", as upstream says.
DIGEST_ALGORITHMS: dict[str, int] = {"sha256": 64, "sha512": 128}


# --- upstream's sentinel errors ------------------------------------------------------------------

class ReferenceInvalidFormat(InvalidReference):
    """ErrReferenceInvalidFormat."""

    def __init__(self, message: str = "invalid reference format") -> None:
        super().__init__(message)


class TagInvalidFormat(InvalidReference):
    """ErrTagInvalidFormat."""

    def __init__(self, message: str = "invalid tag format") -> None:
        super().__init__(message)


class DigestInvalidFormat(InvalidReference):
    """ErrDigestInvalidFormat."""

    def __init__(self, message: str = "invalid digest format") -> None:
        super().__init__(message)


class NameContainsUppercase(InvalidReference):
    """ErrNameContainsUppercase."""

    def __init__(self, message: str = "repository name must be lowercase") -> None:
        super().__init__(message)


class NameEmpty(InvalidReference):
    """ErrNameEmpty."""

    def __init__(self, message: str = "repository name must have at least one component") -> None:
        super().__init__(message)


class NameTooLong(InvalidReference):
    """ErrNameTooLong."""

    def __init__(self, message: str = f"repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters"
                 ) -> None:
        super().__init__(message)


class NameNotCanonical(InvalidReference):
    """ErrNameNotCanonical."""

    def __init__(self, message: str = "repository name must be canonical") -> None:
        super().__init__(message)


#: Go error variable name -> class, for tests and for callers that speak upstream's names.
SENTINELS: dict[str, type[InvalidReference]] = {
    "ErrReferenceInvalidFormat": ReferenceInvalidFormat,
    "ErrTagInvalidFormat": TagInvalidFormat,
    "ErrDigestInvalidFormat": DigestInvalidFormat,
    "ErrNameContainsUppercase": NameContainsUppercase,
    "ErrNameEmpty": NameEmpty,
    "ErrNameTooLong": NameTooLong,
    "ErrNameNotCanonical": NameNotCanonical,
}


# --- the reference value -------------------------------------------------------------------------

@record(frozen=True, slots=True)
class Reference:
    """A parsed reference: ``[domain/]path[:tag][@digest]``, or a bare digest.

    ``domain`` is ``""`` only for references from :func:`parse` / :func:`with_name`
    that carry no domain (upstream's un-normalized names) and for digest-only
    references (an image ID from :func:`parse_any_reference`, ``path`` also
    ``""``). ``tag`` and ``digest`` are ``None`` when absent.
    """

    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """The full name (upstream's Name()): ``docker.io/library/busybox``."""
        if not self.domain:
            return self.path
        return self.domain + "/" + self.path

    @property
    def is_named(self) -> bool:
        return bool(self.path)

    @property
    def familiar(self) -> str:
        """Docker's short display name (FamiliarName): ``busybox``, ``foo/bar``, ``quay.io/x/y``."""
        return familiar_name(self)

    @property
    def familiar_string(self) -> str:
        """FamiliarString: the familiar name with the tag and digest, ``busybox:latest``."""
        return familiar_string(self)

    def __str__(self) -> str:
        s = self.name
        if self.tag is not None:
            s += ":" + self.tag
        if self.digest is not None:
            s = s + "@" + self.digest if s else self.digest
        return s

    @property
    def registry_host(self) -> str:
        """Where the registry API is served: the domain, except Docker Hub's."""
        if self.domain in (DEFAULT_DOMAIN, LEGACY_DEFAULT_DOMAIN):
            return DOCKER_HUB_API_HOST
        return self.domain

    @property
    def is_loopback(self) -> bool:
        """The registry is on this host: ``localhost`` (and ``*.localhost``), ``127.0.0.0/8`` or
        ``[::1]``, any port -- the hosts pallet's registry client treats as insecure by default."""
        host = self.domain
        if host.startswith("["):
            host = host[: host.find("]") + 1]
            return host in ("[::1]", "[0:0:0:0:0:0:0:1]")
        host = host.partition(":")[0]
        if host == "localhost" or host.endswith(".localhost"):
            return True
        parts = host.split(".")
        return len(parts) == 4 and parts[0] == "127" and all(p.isdigit() and int(p) < 256 for p in parts)

    @property
    def scheme(self) -> str:
        """``https``, for every registry: docker and containers/image try https first, also on a
        registry on this host, and fall back to plain http only for localhost and insecure
        registries (see `api_url(..., scheme="http")` and pallet's registry client)."""
        return "https"

    def api_url(self, kind: str = "manifests", *, scheme: str | None = None) -> str:
        """The distribution-spec URL for this reference.

        ``kind`` is ``manifests`` (by digest if there is one, else by tag, else
        ``latest``), ``blobs`` (needs a digest) or ``tags`` (``/tags/list``).
        ``scheme`` is ``https`` unless given (``http``: the plain-http fallback).
        """
        if not self.domain or not self.path:
            raise InvalidReference(f"reference {str(self)!r} has no registry domain: normalize it first")
        base = f"{scheme or self.scheme}://{self.registry_host}/v2/{self.path}"
        if kind == "manifests":
            return f"{base}/manifests/{self.digest or self.tag or DEFAULT_TAG}"
        if kind == "blobs":
            if self.digest is None:
                raise InvalidReference(f"reference {str(self)!r} has no digest to name a blob")
            return f"{base}/blobs/{self.digest}"
        if kind == "tags":
            return f"{base}/tags/list"
        raise ValueError(f"unknown API kind {kind!r} (manifests, blobs, tags)")


# --- digests (go-digest's Parse, with its messages) ---------------------------------------------

def _validate_digest(text: str) -> None:
    i = text.find(":")
    if i <= 0 or i + 1 == len(text):
        raise InvalidReference("invalid checksum digest format")
    algorithm, encoded = text[:i], text[i + 1:]
    size = DIGEST_ALGORITHMS.get(algorithm)
    if size is None:
        if not _g.GO_DIGEST_RE.match(text):
            raise InvalidReference("invalid checksum digest format")
        raise InvalidReference("unsupported digest algorithm")
    if len(encoded) != size:
        raise InvalidReference("invalid checksum digest length")
    if not _g.LOWER_HEX_RE.match(encoded):
        raise InvalidReference("invalid checksum digest format")


def _is_valid_digest(text: str) -> bool:
    try:
        _validate_digest(text)
    except InvalidReference:
        return False
    return True


def _is_identifier(text: str) -> bool:
    """anchoredIdentifierRegexp (``^[a-f0-9]{64}$``) without compiling another regex."""
    return len(text) == 64 and _g.LOWER_HEX_RE.match(text) is not None


def _go_lower(s: str) -> str:
    """Go's strings.ToLower: per-rune simple case mapping.

    Python's str.lower() uses the full mapping, which differs only for U+0130
    (İ → "i̇", two runes; Go gives "i").
    """
    return s.replace("\u0130", "i").lower()


# --- upstream's functions -----------------------------------------------------------------------

def parse(text: str) -> Reference:
    """Parse: a syntactically valid reference, not normalized (``busybox`` stays ``busybox``)."""
    if text == "":
        raise NameEmpty()
    m = _g.PARSE_RE.match(text)
    if m is None:
        lowered = _go_lower(text)
        if lowered != text and _g.PARSE_RE.match(lowered):
            raise NameContainsUppercase()
        raise ReferenceInvalidFormat()
    domain, path, tag, digest = m.groups()
    domain = domain or ""
    if len(path) > NAME_TOTAL_LENGTH_MAX:
        raise NameTooLong()
    if digest is not None:
        _validate_digest(digest)
    return Reference(domain, path, tag, digest)


def split_docker_domain(name: str) -> tuple[str, str]:
    """splitDockerDomain: (domain, remainder), filling in docker.io and ``library/``.

    The remainder keeps any ``:tag``/``@digest`` suffix; the input is not validated.
    """
    maybe_domain, sep, maybe_remote = name.partition("/")
    if not sep:
        return DEFAULT_DOMAIN, OFFICIAL_REPO_PREFIX + name
    if maybe_domain == _g.LOCALHOST:
        domain, remote = maybe_domain, maybe_remote
    elif maybe_domain == LEGACY_DEFAULT_DOMAIN:
        domain, remote = DEFAULT_DOMAIN, maybe_remote
    elif "." in maybe_domain or ":" in maybe_domain:
        domain, remote = maybe_domain, maybe_remote
    elif _go_lower(maybe_domain) != maybe_domain:
        # upper case is not allowed in a path, so this must be a domain ("LOCALDOMAIN/x")
        domain, remote = maybe_domain, maybe_remote
    else:
        domain, remote = DEFAULT_DOMAIN, name
    if domain == DEFAULT_DOMAIN and "/" not in remote:
        remote = OFFICIAL_REPO_PREFIX + remote
    return domain, remote


def parse_normalized_named(text: str) -> Reference:
    """ParseNormalizedNamed: a familiar or full name → the full name (``docker.io/library/...``).

    Keeps the tag and the digest as given; adds no default tag (see :func:`tag_name_only`).
    """
    if _is_identifier(text):
        raise InvalidReference(f"invalid repository name ({text}), cannot specify 64-byte hexadecimal strings")
    domain, remainder = split_docker_domain(text)
    i = remainder.find(":")
    remote = remainder[:i] if i >= 0 else remainder
    if _go_lower(remote) != remote:
        raise InvalidReference(f"invalid reference format: repository name ({remote}) must be lowercase")
    return parse(domain + "/" + remainder)


def parse_named(text: str) -> Reference:
    """ParseNamed: like :func:`parse_normalized_named`, but the text must already be canonical."""
    ref = parse_normalized_named(text)
    if str(ref) != text:
        raise NameNotCanonical()
    return ref


def tag_name_only(ref: Reference) -> Reference:
    """TagNameOnly: add the default tag ``latest`` to a name that has neither tag nor digest."""
    if ref.path and ref.tag is None and ref.digest is None:
        return Reference(ref.domain, ref.path, DEFAULT_TAG, None)
    return ref


def parse_any_reference(text: str) -> Reference:
    """ParseAnyReference: a 64-hex ID or a digest gives a digest-only reference, else a normalized name."""
    if _is_identifier(text):
        return Reference("", "", None, "sha256:" + text)
    if _is_valid_digest(text):
        return Reference("", "", None, text)
    return parse_normalized_named(text)


def parse_docker_ref(text: str) -> Reference:
    """ParseDockerRef: normalized, ``:latest`` when there is neither tag nor digest, tag dropped when
    there is a digest (docker pulls by digest and ignores the tag)."""
    ref = parse_normalized_named(text)
    if ref.tag is not None and ref.digest is not None:
        return with_digest(with_name(ref.name), ref.digest)
    return tag_name_only(ref)


def with_name(name: str) -> Reference:
    """WithName: a name (no tag, no digest) → a reference; not normalized."""
    m = _g.ANCHORED_NAME_RE.match(name)
    if m is None:
        raise ReferenceInvalidFormat()
    path = m.group(2)
    if len(path) > NAME_TOTAL_LENGTH_MAX:
        raise NameTooLong()
    return Reference(m.group(1) or "", path)


def with_tag(ref: Reference, tag: str) -> Reference:
    """WithTag: the same name (and digest) with ``tag``."""
    if not _g.ANCHORED_TAG_RE.match(tag):
        raise TagInvalidFormat()
    return Reference(ref.domain, ref.path, tag, ref.digest)


def with_digest(ref: Reference, digest: str) -> Reference:
    """WithDigest: the same name (and tag) with ``digest``; checks the grammar only, as upstream."""
    if not _g.ANCHORED_DIGEST_RE.match(digest):
        raise DigestInvalidFormat()
    return Reference(ref.domain, ref.path, ref.tag, digest)


def trim_named(ref: Reference) -> Reference:
    """TrimNamed: the name alone."""
    return Reference(ref.domain, ref.path)


def _familiar_repo(ref: Reference) -> tuple[str, str]:
    domain, path = ref.domain, ref.path
    if domain == DEFAULT_DOMAIN:
        domain = ""
        if path.startswith(OFFICIAL_REPO_PREFIX):
            rest = path[len(OFFICIAL_REPO_PREFIX):]
            if "/" not in rest:
                path = rest
    return domain, path


def familiar_name(ref: Reference) -> str:
    """FamiliarName: ``docker.io/library/busybox`` → ``busybox``, ``docker.io/foo/bar`` → ``foo/bar``."""
    domain, path = _familiar_repo(ref)
    return domain + "/" + path if domain else path


def familiar_string(ref: Reference) -> str:
    """FamiliarString: the familiar name plus ``:tag`` and ``@digest``; a bare digest as is."""
    if not ref.path:
        return str(ref)
    domain, path = _familiar_repo(ref)
    return str(Reference(domain, path, ref.tag, ref.digest))


def familiar_match(pattern: str, ref: Reference) -> bool:
    """FamiliarMatch: Go's path.Match of ``pattern`` against :func:`familiar_string`, or
    else (for a named reference) against :func:`familiar_name`.

    ``*`` matches any run of characters except ``/``, ``?`` one character except
    ``/``, ``[...]`` a class (``^`` negates, ``a-z`` ranges), ``\\`` escapes. A
    malformed pattern raises ValueError (Go's ErrBadPattern).
    """
    from pallet.reference._match import path_match

    matched = path_match(pattern, familiar_string(ref))
    if not matched and ref.is_named:
        try:
            matched = path_match(pattern, familiar_name(ref))
        except ValueError:  # upstream ignores the second error; the first one was already None
            matched = False
    return matched


# --- helpers for the rest of pallet -------------------------------------------------------------

def normalize(text: str) -> Reference:
    """A user's image reference → the full reference docker would use.

    ``busybox`` → ``docker.io/library/busybox:latest``; ``x@sha256:…`` keeps only the
    digest (and ``x:tag@sha256:…`` drops the tag) — upstream's ParseDockerRef.
    The error names the text, in docker's words, as the same InvalidReference
    subclass: ``"Foo" is not a valid repository/tag: invalid reference format:
    repository name (library/Foo) must be lowercase``.
    """
    try:
        return parse_docker_ref(text)
    except InvalidReference as e:
        reason = e.message if e.message.isprintable() else _escape(e.message)
        raise type(e)(f"{_quote(text)} is not a valid repository/tag: {reason}") from None


def _escape(text: str) -> str:
    return text.encode("unicode_escape").decode("ascii")


def _quote(text: str) -> str:
    """Go's %q, near enough: double quotes, and nothing that breaks the one-line message."""
    if text.isprintable() and '"' not in text and "\\" not in text:
        return '"' + text + '"'
    return '"' + _escape(text).replace('"', '\\"') + '"'


def id_hex(text: str) -> str | None:
    """The hex of an image ID or ID prefix (``abc123``, ``sha256:abc123``), else None.

    Image IDs are lower-case sha256 hex; a prefix is 1 to 64 digits.
    """
    hexpart = text[7:] if text.startswith("sha256:") else text
    if 0 < len(hexpart) <= 64 and _g.LOWER_HEX_RE.match(hexpart):
        return hexpart
    return None


def looks_like_id(text: str) -> bool:
    """Whether ``text`` can be an image ID or a unique ID prefix rather than only a name.

    Full IDs (64 hex digits, or ``sha256:`` + hex) can never be names: upstream
    refuses a 64-hex repository name. A shorter bare hex string (``deadbeef``)
    is ambiguous — also a valid name — so resolve it as an ID prefix first and
    fall back to the name when no image ID starts with it.
    """
    return id_hex(text) is not None
