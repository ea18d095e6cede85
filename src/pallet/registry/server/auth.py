"""Authentication and authorization: htpasswd (bcrypt) Basic, bearer JWTs, anonymous pull.

A request needs a `Scope` (resource type, name, actions). `Authorizer.check`
returns the user name (or "" for anonymous) or raises an `APIError` 401 whose
`WWW-Authenticate` challenge tells the client where and for what to ask.
"""

from __future__ import annotations

import base64
import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pallet.errors import PalletError
from pallet.registry.server.errors import APIError


@dataclass(frozen=True, slots=True)
class Scope:
    type: str  # "repository" | "registry" | "" (the base endpoint: any valid credential)
    name: str
    actions: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.type}:{self.name}:{','.join(self.actions)}"

    @property
    def pull_only(self) -> bool:
        return self.type == "repository" and set(self.actions) <= {"pull"}


def _quote(v: str) -> str:
    return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Authorizer:
    """No credentials needed: every request is allowed."""

    anonymous_pull = True

    def check(self, authorization: str | None, scope: Scope) -> str:
        return ""


class HtpasswdAuthorizer(Authorizer):
    def __init__(self, path: str | Path, *, realm: str = "pallet-registry", anonymous_pull: bool = False) -> None:
        self.realm = realm
        self.anonymous_pull = anonymous_pull
        self.users: dict[str, bytes] = {}
        try:
            text = Path(path).read_text()
        except OSError as e:
            raise PalletError(f"cannot read htpasswd file {path}: {e.strerror}") from None
        for n, line in enumerate(text.splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            user, sep, hashed = line.partition(":")
            if not sep or not hashed.startswith(("$2y$", "$2b$", "$2a$")):
                raise PalletError(f"{path}:{n}: only bcrypt htpasswd entries are supported (htpasswd -B)")
            self.users[user] = hashed.encode()
        self._verified: dict[bytes, str] = {}

    def _challenge(self) -> APIError:
        return APIError("UNAUTHORIZED", "authentication required", status=401,
                        headers={"WWW-Authenticate": f"Basic realm={_quote(self.realm)}"})

    def check(self, authorization: str | None, scope: Scope) -> str:
        if not authorization or not authorization[:6].lower() == "basic ":
            if self.anonymous_pull and scope.pull_only:
                return ""
            raise self._challenge()
        key = hashlib.sha256(authorization.encode()).digest()
        user = self._verified.get(key)
        if user is not None:
            return user
        try:
            user, _, password = base64.b64decode(authorization[6:].strip(), validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            raise self._challenge() from None
        if not user and self.anonymous_pull and scope.pull_only:
            return ""  # clients without credentials may still send `Basic base64(":")`
        hashed = self.users.get(user)
        import bcrypt

        if hashed is None or not bcrypt.checkpw(password.encode(), hashed.replace(b"$2y$", b"$2b$", 1)):
            raise self._challenge()
        if len(self._verified) > 1024:
            self._verified.clear()
        self._verified[key] = user
        return user


class TokenAuthorizer(Authorizer):
    """Verifies bearer JWTs issued by an external token server (the docker token auth spec)."""

    def __init__(self, *, realm: str, service: str, issuer: str, cert: str | Path,
                 anonymous_pull: bool = False, leeway: float = 0) -> None:
        self.realm, self.service, self.issuer = realm, service, issuer
        self.anonymous_pull = anonymous_pull
        self.leeway = leeway
        self.keys = _load_keys(Path(cert))
        self._cache: dict[str, tuple[float, dict[str, Any]]] = {}

    def _challenge(self, scope: Scope, error: str | None = None, description: str = "") -> APIError:
        parts = [f"realm={_quote(self.realm)}", f"service={_quote(self.service)}"]
        if scope.type:
            parts.append(f"scope={_quote(str(scope))}")
        if error:
            parts.append(f"error={_quote(error)}")
        message = description or "authentication required"
        return APIError("UNAUTHORIZED", message, status=401,
                        headers={"WWW-Authenticate": "Bearer " + ",".join(parts)},
                        detail=[{"Type": scope.type, "Name": scope.name, "Action": a} for a in scope.actions]
                        if scope.type else None)

    def _decode(self, token: str) -> dict[str, Any]:
        import jwt

        cached = self._cache.get(token)
        if cached is not None and cached[0] > time.time():
            return cached[1]
        last: Exception | None = None
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as e:
            raise ValueError(f"malformed token: {e}") from None
        alg = header.get("alg", "")
        for key, algs in self.keys:
            if alg not in algs:
                last = ValueError(f"token algorithm {alg!r} is not accepted")
                continue
            try:
                claims = jwt.decode(token, key, algorithms=algs, audience=self.service, issuer=self.issuer,
                                    leeway=self.leeway, options={"require": ["exp", "iss", "aud"]})
            except jwt.PyJWTError as e:
                last = e
                continue
            if len(self._cache) > 4096:
                self._cache.clear()
            self._cache[token] = (float(claims["exp"]), claims)
            return claims
        raise ValueError(str(last) if last else "no key to verify the token")

    def check(self, authorization: str | None, scope: Scope) -> str:
        if not authorization or authorization[:7].lower() != "bearer ":
            if self.anonymous_pull and scope.pull_only:
                return ""
            raise self._challenge(scope)
        try:
            claims = self._decode(authorization[7:].strip())
        except ValueError as e:
            raise self._challenge(scope, "invalid_token", f"invalid token: {e}") from None
        if scope.type:
            granted: set[str] = set()
            for entry in claims.get("access") or []:
                if isinstance(entry, dict) and entry.get("type") == scope.type and entry.get("name") == scope.name:
                    acts = entry.get("actions") or []
                    granted |= set(acts) if "*" not in acts else {"pull", "push", "delete", "*"}
            if not set(scope.actions) <= granted:
                if self.anonymous_pull and scope.pull_only:
                    return str(claims.get("sub", ""))
                raise self._challenge(scope, "insufficient_scope",
                                      f"token does not grant {','.join(scope.actions)} on {scope.name}")
        return str(claims.get("sub", ""))


def _load_keys(path: Path) -> list[tuple[Any, list[str]]]:
    """Public keys from a PEM bundle of certificates (or bare public keys), with their JWT algorithms."""
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        data = path.read_bytes()
    except OSError as e:
        raise PalletError(f"cannot read token certificate {path}: {e.strerror}") from None
    keys: list[Any] = []
    for block in data.split(b"-----END ")[:-1]:
        start = block.rfind(b"-----BEGIN ")
        if start < 0:
            continue
        kind = block[start + 11:].split(b"-----", 1)[0]
        pem = block[start:] + b"-----END " + kind + b"-----\n"
        try:
            if kind == b"CERTIFICATE":
                keys.append(x509.load_pem_x509_certificate(pem).public_key())
            elif kind == b"PUBLIC KEY":
                keys.append(load_pem_public_key(pem))
        except ValueError as e:
            raise PalletError(f"{path}: unreadable {kind.decode().lower()}: {e}") from None
    if not keys:
        raise PalletError(f"{path} holds no PEM certificate or public key to verify tokens with")
    out = []
    for k in keys:
        if isinstance(k, rsa.RSAPublicKey):
            out.append((k, ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"]))
        elif isinstance(k, ec.EllipticCurvePublicKey):
            out.append((k, ["ES256", "ES384", "ES512"]))
        elif isinstance(k, ed25519.Ed25519PublicKey):
            out.append((k, ["EdDSA"]))
    return out
