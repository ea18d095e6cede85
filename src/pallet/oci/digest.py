"""Content digests (`algorithm:hex`), per the OCI image spec's descriptor section."""

from __future__ import annotations

import re

from pallet.errors import InvalidDigest
from pallet.records import record

# algorithm -> (hex length, hashlib name)
ALGORITHMS: dict[str, tuple[int, str]] = {"sha256": (64, "sha256"), "sha512": (128, "sha512")}
_GRAMMAR = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")
_HEX = re.compile(r"^[a-f0-9]+$")

_SMALL = 1 << 20


def hexdigest(name: str, data: bytes | memoryview) -> str:
    """hex digest of `data` with hash `name` (sha256, sha512).

    Small inputs (documents, chain ids) use CPython's built-in implementation: importing `hashlib`
    loads OpenSSL, ~10 ms at every start of `pallet run`, which only reads small documents. Large
    ones and streams (`Hasher`) use hashlib's OpenSSL, the faster one for bulk data.
    """
    if len(data) <= _SMALL:
        try:
            if name == "sha256":
                from _sha256 import sha256 as h
            elif name == "sha512":
                from _sha512 import sha512 as h
            else:
                h = None
            if h is not None:
                return h(data).hexdigest()
        except ImportError:   # Python >= 3.12 (_sha2), or built without the built-in hashes
            pass
    import hashlib

    return hashlib.new(name, data).hexdigest()


@record(frozen=True, slots=True)
class Digest:
    algorithm: str
    hex: str

    @classmethod
    def parse(cls, text: str) -> Digest:
        if not isinstance(text, str) or not _GRAMMAR.match(text):
            raise InvalidDigest(f"invalid digest {text!r}: expected algorithm:hex, e.g. sha256:<64 hex digits>")
        algorithm, _, hexpart = text.partition(":")
        if algorithm not in ALGORITHMS:
            raise InvalidDigest(f"unsupported digest algorithm {algorithm!r} in {text!r} (sha256 and sha512 are)")
        length, _ = ALGORITHMS[algorithm]
        if len(hexpart) != length or not _HEX.match(hexpart):
            raise InvalidDigest(f"invalid {algorithm} digest {text!r}: expected {length} lower-case hex digits")
        return cls(algorithm, hexpart)

    @classmethod
    def of(cls, data: bytes, algorithm: str = "sha256") -> Digest:
        return cls(algorithm, hexdigest(ALGORITHMS[algorithm][1], data))

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"

    @property
    def short(self) -> str:
        """Docker's 12-character image/container id form."""
        return self.hex[:12]

    def hasher(self) -> Hasher:
        return Hasher(self.algorithm)

    def verify(self, data: bytes) -> bool:
        return hexdigest(ALGORITHMS[self.algorithm][1], data) == self.hex


class Hasher:
    """Incremental digest + byte count, for verifying a stream while it is written."""

    __slots__ = ("algorithm", "_h", "size")

    def __init__(self, algorithm: str = "sha256") -> None:
        if algorithm not in ALGORITHMS:
            raise InvalidDigest(f"unsupported digest algorithm {algorithm!r}")
        import hashlib

        self.algorithm = algorithm
        self._h = hashlib.new(ALGORITHMS[algorithm][1])
        self.size = 0

    def update(self, data: bytes | memoryview) -> None:
        self._h.update(data)
        self.size += len(data)

    def digest(self) -> Digest:
        return Digest(self.algorithm, self._h.hexdigest())


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hexdigest("sha256", data)


def is_digest(text: str) -> bool:
    try:
        Digest.parse(text)
    except InvalidDigest:
        return False
    return True


def chain_ids(diff_ids: list[str] | tuple[str, ...]) -> list[str]:
    """ChainID per the OCI image spec: ChainID(L0) = DiffID(L0); ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln))."""
    out: list[str] = []
    for d in diff_ids:
        out.append(d if not out else "sha256:" + hexdigest("sha256", f"{out[-1]} {d}".encode()))
    return out
