"""A tiny bearer-token server for tests (the docker registry token auth spec), on 127.0.0.1.

    with TokenIssuer(users={"alice": "secret"}, service="registry.test") as issuer:
        issuer.cert_path      # PEM certificate: --token-cert for pallet,
                              # auth.token.rootcertbundle for docker-registry
        issuer.realm          # http://127.0.0.1:PORT/token
        issuer.issuer         # the `iss` claim tokens carry
        issuer.token([{"type": "repository", "name": "a/b", "actions": ["pull"]}])

GET /token?service=S&scope=repository:NAME:ACTIONS (repeatable), with Basic
credentials (or none: anonymous, granted `anonymous` actions only), and the
OAuth2 form `POST /token` (grant_type=password) answer `{"token", "access_token",
"expires_in", "issued_at"}`. Tokens are RS256 JWTs whose `kid` is the libtrust
key id of the signing key, which is how distribution 2.8 finds the key in its
root bundle. `grant(account, type, name, actions)` decides what a user gets
(default: everything asked for, for known users). `requests` records each
request's account and scopes.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import tempfile
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from helpers.net import ThreadedServer
from helpers.tls import ca_certificate

Grant = Callable[[str, str, str, list[str]], list[str]]


def libtrust_key_id(public_key: Any) -> str:
    """distribution's libtrust KeyID: base32(sha256(DER SPKI)[:30]) in colon-separated groups of 4."""
    from cryptography.hazmat.primitives import serialization

    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    s = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode().rstrip("=")
    return ":".join(s[i:i + 4] for i in range(0, len(s), 4))


def make_signing_cert(common_name: str = "pallet test token issuer") -> tuple[Any, bytes]:
    """(RSA private key, self-signed PEM certificate)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key, ca_certificate(key, common_name).public_bytes(serialization.Encoding.PEM)


class TokenIssuer(ThreadedServer):
    def __init__(self, *, users: dict[str, str] | None = None, service: str = "pallet-registry",
                 issuer: str = "pallet-test-issuer", anonymous: tuple[str, ...] = ("pull",),
                 grant: Grant | None = None, ttl: int = 300, directory: str | Path | None = None) -> None:
        self.users = dict(users or {})
        self.service = service
        self.issuer = issuer
        self.anonymous = anonymous
        self.grant = grant
        self.ttl = ttl
        self.requests: list[dict[str, Any]] = []
        self.key, self.cert_pem = make_signing_cert()
        self.kid = libtrust_key_id(self.key.public_key())
        self._dir = Path(directory) if directory else Path(tempfile.mkdtemp(prefix="token-issuer-"))
        self.cert_path = self._dir / "token-cert.pem"
        self.cert_path.write_bytes(self.cert_pem)

    # ---- tokens ----------------------------------------------------------------------------
    def token(self, access: list[dict[str, Any]], *, subject: str = "", expires_in: int | None = None,
              audience: str | None = None, issuer: str | None = None, key: Any = None,
              algorithm: str = "RS256", extra: dict[str, Any] | None = None) -> str:
        """A signed JWT; every argument can be bent to make a bad token for a test."""
        import jwt

        now = int(time.time())
        claims = {"iss": issuer if issuer is not None else self.issuer, "sub": subject,
                  "aud": audience if audience is not None else self.service,
                  "exp": now + (self.ttl if expires_in is None else expires_in), "nbf": now - 5, "iat": now,
                  "jti": uuid.uuid4().hex, "access": access, **(extra or {})}
        if algorithm == "none":
            return jwt.encode(claims, None, algorithm="none", headers={"kid": self.kid})
        return jwt.encode(claims, key or self.key, algorithm=algorithm, headers={"kid": self.kid})

    def _granted(self, account: str, scopes: list[str]) -> list[dict[str, Any]]:
        out = []
        for scope in scopes:
            parts = scope.split(":")
            if len(parts) < 3:
                continue
            typ, name, actions = parts[0], ":".join(parts[1:-1]), parts[-1].split(",")
            if self.grant is not None:
                allowed = self.grant(account, typ, name, actions)
            elif account:
                allowed = actions
            else:
                allowed = [a for a in actions if a in self.anonymous]
            out.append({"type": typ, "name": name, "actions": list(allowed)})
        return out

    def _answer(self, account: str, scopes: list[str]) -> dict[str, Any]:
        self.requests.append({"account": account, "scopes": scopes})
        token = self.token(self._granted(account, scopes), subject=account)
        issued = dt.datetime.now(dt.UTC).isoformat()
        return {"token": token, "access_token": token, "expires_in": self.ttl, "issued_at": issued}

    # ---- HTTP ------------------------------------------------------------------------------
    def _handler(self) -> type[BaseHTTPRequestHandler]:
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _account(self) -> str | None:
                h = self.headers.get("Authorization", "")
                if not h.lower().startswith("basic "):
                    return ""
                try:
                    user, _, password = base64.b64decode(h[6:]).decode().partition(":")
                except ValueError:
                    return None
                return user if issuer.users.get(user) == password else None

            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802
                url = urlparse(self.path)
                q = parse_qs(url.query)
                account = self._account()
                if url.path != "/token":
                    return self._send(404, {"error": "not found"})
                if account is None:
                    return self._send(401, {"error": "invalid credentials"})
                scopes = [s for v in q.get("scope", []) for s in v.split(" ") if s]
                self._send(200, issuer._answer(account, scopes))

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                form = parse_qs(self.rfile.read(length).decode())
                user = form.get("username", [""])[0]
                if form.get("grant_type", [""])[0] != "password" or issuer.users.get(user) != \
                        form.get("password", [""])[0]:
                    return self._send(401, {"error": "invalid_grant"})
                scopes = [s for v in form.get("scope", []) for s in v.split(" ") if s]
                self._send(200, issuer._answer(user, scopes))

        return Handler

    @property
    def realm(self) -> str:
        return f"http://127.0.0.1:{self.port}/token"
