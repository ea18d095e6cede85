"""`Registry`: one registry host spoken to over httpx.

- TLS with the system CAs plus the per-registry CA dirs
  (`/etc/containers/certs.d/HOST:PORT/*.crt`, `/etc/docker/certs.d/…`, `--cert-dir`;
  `*.cert`+`*.key` pairs there are client certificates).
- Insecure registries (`--tls-verify=false`, `insecure = true` in the settings, and
  `localhost`/`127.0.0.1`/`::1` unless `--tls-verify=true`): https without
  verification first, then plain http -- what podman does.
- Auth: the first 401 of a request is answered from its `WWW-Authenticate`
  challenge (Basic, or a Bearer token fetched from the realm for the request's
  scope, with or without credentials); tokens are cached per scope set until
  they expire.
- Retries: connection errors, 408/429/5xx are retried with exponential backoff
  (honouring a short `Retry-After`); the last failure becomes a `RegistryError`.
- Redirects are followed by hand, dropping `Authorization` when the host changes.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import random
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from pallet.errors import RegistryError
from pallet.registry.client import auth
from pallet.registry.client.settings import Settings

RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})
TIMEOUT = httpx.Timeout(connect=15.0, read=120.0, write=120.0, pool=300.0)
USER_AGENT = "pallet/0.1 (+https://github.com/pallet)"
CERTS_D = ("/etc/containers/certs.d", "/etc/docker/certs.d")


@dataclass
class Options:
    """What the user said about how to reach registries (flags of pull/push/login)."""

    tls_verify: bool | None = None      # None: verify, except insecure-allowed hosts
    creds: auth.Credentials | None = None
    authfile: str | None = None
    cert_dir: str | None = None
    settings: Settings = field(default_factory=Settings)
    retries: int = 5                    # attempts after the first
    backoff: float = 0.25               # first retry delay, doubled each time
    max_parallel: int = 3
    chunk_size: int = 0                 # >0: chunked blob upload (PATCH per chunk)


def is_local(host: str) -> bool:
    if host.startswith("["):
        name = host[1:host.index("]")] if "]" in host else host
    elif host.count(":") == 1:
        name = host.split(":")[0]
    else:
        name = host
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def api_host(domain: str) -> str:
    return "registry-1.docker.io" if domain == "docker.io" else domain


def certs_dirs(host: str, cert_dir: str | None) -> list[Path]:
    roots = [p for p in os.environ.get("PALLET_CERTS_D", "").split(":") if p]
    roots += list(CERTS_D)
    if os.geteuid() != 0:
        roots.insert(0, os.path.join(os.path.expanduser("~"), ".config", "containers", "certs.d"))
    dirs = [Path(cert_dir)] if cert_dir else []
    dirs += [Path(r) / host for r in roots]
    return [d for d in dirs if d.is_dir()]


def ssl_context(host: str, opts: Options, *, verify: bool) -> ssl.SSLContext:
    if verify:
        ctx = ssl.create_default_context()  # the system CAs (loading them costs ~0.1 s: only when verifying)
    else:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    for d in certs_dirs(host, opts.cert_dir):
        for f in sorted(d.iterdir()):
            try:
                if f.suffix == ".crt" and verify:
                    ctx.load_verify_locations(cafile=str(f))
                elif f.suffix == ".cert":
                    key = f.with_suffix(".key")
                    if not key.exists():
                        raise RegistryError(f"client certificate {f} has no matching key {key.name}")
                    ctx.load_cert_chain(str(f), str(key))
            except ssl.SSLError as e:
                raise RegistryError(f"cannot use certificate {f}: {e}") from None
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    return ctx


class TransportFailure(RegistryError):
    """The connection failed (refused, reset, timed out) after the retries the request allowed."""


class _Token:
    __slots__ = ("value", "expires")

    def __init__(self, value: str, expires: float) -> None:
        self.value = value
        self.expires = expires


def _describe(e: BaseException) -> str:
    text = str(e) or e.__class__.__name__
    cause = e.__cause__ or e.__context__
    while cause is not None and not str(text).strip():
        text = str(cause)
        cause = cause.__cause__
    return text


class Registry:
    """A registry host (`127.0.0.1:5000`, `docker.io`, `quay.io`) and the state of talking to it."""

    def __init__(self, domain: str, opts: Options) -> None:
        self.domain = domain
        self.host = api_host(domain)
        self.opts = opts
        reg_settings = opts.settings.for_host(domain)
        if opts.tls_verify is not None:
            self.insecure = not opts.tls_verify
        elif reg_settings.insecure is not None:
            self.insecure = reg_settings.insecure
        else:
            self.insecure = is_local(self.host)
        self.base: str | None = None
        # one httpx client (pool) per thread: httpcore's HTTP/2 connections are not safe to
        # multiplex from several threads (streams closed by one thread race another's)
        self._local = threading.local()
        self._clients: list[httpx.Client] = []
        self._verify = True
        self._lock = threading.Lock()
        self._tokens: dict[frozenset[str], _Token] = {}
        self._token_locks: dict[frozenset[str], threading.Lock] = {}
        self._challenge: auth.Challenge | None = None
        self._creds: dict[str, auth.Credentials | None] = {}

    # ---- connection --------------------------------------------------------------------------
    def _make_client(self, verify: bool, https: bool = True) -> httpx.Client:
        limits = httpx.Limits(max_connections=max(8, self.opts.max_parallel * 2),
                              max_keepalive_connections=max(8, self.opts.max_parallel * 2))
        return httpx.Client(http2=https, verify=ssl_context(self.host, self.opts, verify=verify),
                            timeout=TIMEOUT, limits=limits, follow_redirects=False,
                            headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"})

    @property
    def _client(self) -> httpx.Client:
        c = getattr(self._local, "client", None)
        if c is None:
            c = self._make_client(self._verify, bool(self.base and self.base.startswith("https")))
            self._local.client = c
            with self._lock:
                self._clients.append(c)
        return c

    def close(self) -> None:
        with self._lock:
            clients, self._clients = self._clients, []
        for c in clients:
            c.close()
        self._local = threading.local()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def ping(self) -> httpx.Response:
        """GET /v2/ to learn the scheme and the auth challenge. Called once, before any other request."""
        with self._lock:
            if self.base is not None:
                return None  # type: ignore[return-value]
            attempts: list[tuple[str, bool]] = [("https", True)]
            if self.insecure:
                # https (unverified) first, then http; a bare TLS handshake decides which without
                # building (and importing HTTP/2 for) an https client that would only fail
                tls = _speaks_tls(self.host)
                attempts = [("https", False)] if tls else [("http", False)] if tls is False else \
                    [("https", False), ("http", False)]
            errors = []
            for scheme, verify in attempts:
                client = self._make_client(verify, scheme == "https")
                url = f"{scheme}://{self.host}/v2/"
                resp = None
                for attempt in range(self.opts.retries + 1):
                    try:
                        resp = client.get(url)
                    except httpx.TransportError as e:
                        resp = None
                        msg = _describe(e)
                        if isinstance(e, httpx.ConnectError) and ("SSL" in msg or "ssl" in msg.lower() or
                                                                  "certificate" in msg.lower()):
                            errors.append(f"{scheme}: {msg}")
                            break
                        if attempt < self.opts.retries and not isinstance(e, httpx.ConnectError):
                            self._sleep(attempt, None)
                            continue
                        errors.append(f"{scheme}: {msg}")
                        break
                    if resp.status_code in RETRY_STATUS and attempt < self.opts.retries:
                        self._sleep(attempt, resp)
                        continue
                    break
                if resp is None:
                    client.close()
                    continue
                self.base, self._verify = f"{scheme}://{self.host}", verify
                self._local.client = client
                self._clients.append(client)
                if resp.status_code == 401:
                    self._challenge = self._pick_challenge(resp)
                if resp.status_code in RETRY_STATUS:
                    raise RegistryError(f"registry {self.domain} is unavailable: GET /v2/ answered "
                                        f"{resp.status_code} {resp.reason_phrase} after {self.opts.retries} retries")
                return resp
            hint = "" if self.insecure else " (use --tls-verify=false for a registry without a trusted certificate)"
            raise RegistryError(f"cannot reach registry {self.domain}: {'; '.join(errors)}{hint}")

    def _pick_challenge(self, resp: httpx.Response) -> auth.Challenge | None:
        chs = []
        for value in resp.headers.get_list("www-authenticate"):
            chs.extend(auth.parse_challenges(value))
        for ch in chs:
            if ch.scheme == "bearer":
                return ch
        for ch in chs:
            if ch.scheme == "basic":
                return ch
        return chs[0] if chs else None

    # ---- credentials and tokens ----------------------------------------------------------------
    def credentials(self, repo_path: str = "") -> auth.Credentials | None:
        """--creds, else the auth files' entry for this registry (a `host/namespace` entry wins for its repos)."""
        if self.opts.creds is not None:
            return self.opts.creds
        if repo_path not in self._creds:
            self._creds[repo_path] = auth.lookup(self.domain, repo_path, authfile=self.opts.authfile)
        return self._creds[repo_path]

    @staticmethod
    def _repo_of(scopes: frozenset[str]) -> str:
        for s in sorted(scopes):
            parts = s.split(":")
            if len(parts) >= 3 and parts[0] == "repository" and parts[-1] and "push" in parts[-1]:
                return ":".join(parts[1:-1])
        for s in sorted(scopes):
            parts = s.split(":")
            if len(parts) >= 3 and parts[0] == "repository":
                return ":".join(parts[1:-1])
        return ""

    def _auth_header(self, scopes: frozenset[str], *, refresh: bool = False) -> str | None:
        ch = self._challenge
        if ch is None:
            return None
        if ch.scheme == "basic":
            creds = self.credentials(self._repo_of(scopes))
            if creds is None:
                raise RegistryError(f"registry {self.domain} requires authentication: log in with "
                                    f"`pallet login {self.domain}` or pass --creds", exit_code=125)
            return creds.basic()
        if ch.scheme != "bearer":
            raise RegistryError(f"registry {self.domain} asks for unsupported authentication {ch.scheme!r}")
        with self._lock:
            lock = self._token_locks.setdefault(scopes, threading.Lock())
        with lock:
            tok = self._tokens.get(scopes)
            if tok is not None and not refresh and tok.expires > time.time():
                return "Bearer " + tok.value
            tok = self._fetch_token(ch, scopes)
            self._tokens[scopes] = tok
            return "Bearer " + tok.value

    def _fetch_token(self, ch: auth.Challenge, scopes: frozenset[str]) -> _Token:
        realm = ch.realm
        if not realm:
            raise RegistryError(f"registry {self.domain} sent a Bearer challenge without a realm")
        parsed = urllib.parse.urlparse(realm)
        if parsed.scheme not in ("http", "https"):
            raise RegistryError(f"registry {self.domain} sent a token realm that is not an http(s) URL: {realm}")
        creds = self.credentials(self._repo_of(scopes))
        params: list[tuple[str, str]] = []
        if ch.params.get("service"):
            params.append(("service", ch.params["service"]))
        for s in sorted(scopes):
            params.append(("scope", s))
        headers = {}
        if creds is not None and not creds.identity_token:
            headers["Authorization"] = creds.basic()
            params.append(("account", creds.username))
        for attempt in range(self.opts.retries + 1):
            try:
                if creds is not None and creds.identity_token:
                    data = {"grant_type": "refresh_token", "refresh_token": creds.identity_token,
                            "client_id": "pallet", "service": ch.params.get("service", ""),
                            "scope": " ".join(sorted(scopes))}
                    resp = self._client.post(realm, data=data)
                else:
                    resp = self._client.get(realm, params=params, headers=headers)
            except httpx.TransportError as e:
                if attempt < self.opts.retries:
                    self._sleep(attempt, None)
                    continue
                raise RegistryError(f"cannot reach the token server {realm} of {self.domain}: {_describe(e)}") from None
            if resp.status_code in RETRY_STATUS and attempt < self.opts.retries:
                self._sleep(attempt, resp)
                continue
            break
        if resp.status_code in (401, 403):
            who = f"as {creds.username!r}" if creds else "anonymously"
            raise RegistryError(f"authentication to {self.domain} failed {who}: the token server answered "
                                f"{resp.status_code}{' (wrong user name or password?)' if creds else ''}")
        if resp.status_code != 200:
            raise RegistryError(f"the token server {realm} of {self.domain} answered {resp.status_code} "
                                f"{resp.reason_phrase}")
        try:
            doc = resp.json()
        except ValueError:
            raise RegistryError(f"the token server {realm} of {self.domain} sent a reply that is not JSON") from None
        value = doc.get("token") or doc.get("access_token")
        if not value or not isinstance(value, str):
            raise RegistryError(f"the token server {realm} of {self.domain} sent no token")
        try:
            expires_in = max(int(doc.get("expires_in") or 60), 60)
        except (TypeError, ValueError):
            expires_in = 60
        return _Token(value, time.time() + expires_in - 5)

    # ---- requests ------------------------------------------------------------------------------
    def url(self, path: str) -> str:
        if self.base is None:
            self.ping()
        return self.base + path  # type: ignore[operator]

    def _sleep(self, attempt: int, resp: httpx.Response | None) -> None:
        delay = self.opts.backoff * (2 ** attempt)
        if resp is not None and resp.headers.get("retry-after", "").isdigit():
            delay = max(delay, min(float(resp.headers["retry-after"]), 10.0))
        time.sleep(delay * (0.8 + 0.4 * random.random()))

    def request(self, method: str, url: str, *, scopes: frozenset[str] | set[str] = frozenset(),
                headers: dict[str, str] | None = None, content: Callable[[], object] | bytes | None = None,
                stream: bool = False, ok: tuple[int, ...] = (), retry: bool = True,
                follow_redirects: bool = True) -> httpx.Response:
        """Send a request with auth, retries and redirects. `url` may be a path (`/v2/...`).

        `content` is bytes or a callable returning a fresh body (so a retry can resend it).
        Statuses in `ok` and 2xx/3xx are returned; anything else after the retries is returned
        too (the caller turns it into an error message with `error_for`).
        """
        if self.base is None:
            self.ping()
        if url.startswith("/"):
            url = self.base + url  # type: ignore[operator]
        scopes = frozenset(scopes)
        refreshed = False
        attempt = 0
        while True:
            hdrs = dict(headers or {})
            authz = self._auth_header(scopes) if self._challenge is not None else None
            if authz:
                hdrs["Authorization"] = authz
            body = content() if callable(content) else content
            try:
                resp = self._send(method, url, hdrs, body, stream=stream, follow=follow_redirects)
            except httpx.TransportError as e:
                if retry and attempt < self.opts.retries:
                    self._sleep(attempt, None)
                    attempt += 1
                    continue
                raise TransportFailure(f"{method} {_path(url)} on {self.domain} failed: {_describe(e)}") from None
            if resp.status_code == 401 and not refreshed:
                ch = self._pick_challenge(resp)
                if ch is not None:
                    if ch.scheme == "bearer" and ch.params.get("scope"):
                        scopes = scopes | frozenset(ch.params["scope"].split(" "))
                    self._challenge = ch if ch.scheme in ("bearer", "basic") else self._challenge
                    resp.close()
                    refreshed = True
                    hdrs_auth = self._auth_header(scopes, refresh=True)
                    if hdrs_auth is None:
                        return resp
                    continue
            if retry and resp.status_code in RETRY_STATUS and attempt < self.opts.retries:
                resp.close()
                self._sleep(attempt, resp)
                attempt += 1
                continue
            return resp

    def _send(self, method: str, url: str, headers: dict[str, str], body, *, stream: bool,
              follow: bool) -> httpx.Response:
        origin = urllib.parse.urlsplit(url).netloc
        for _ in range(10):
            req = self._client.build_request(method, url, headers=headers,
                                             content=body if not isinstance(body, dict) else None)
            resp = self._client.send(req, stream=stream)
            if not follow or resp.status_code not in (301, 302, 303, 307, 308) or "location" not in resp.headers:
                return resp
            resp.close()
            url = urllib.parse.urljoin(url, resp.headers["location"])
            if urllib.parse.urlsplit(url).netloc != origin:
                headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
            if resp.status_code == 303:
                method, body = "GET", None
        raise RegistryError(f"too many redirects from {self.domain} for {_path(url)}")

    @contextlib.contextmanager
    def stream(self, method: str, url: str, **kw) -> Iterator[httpx.Response]:
        resp = self.request(method, url, stream=True, **kw)
        try:
            yield resp
        finally:
            resp.close()


def _speaks_tls(host: str, timeout: float = 5.0) -> bool | None:
    """Whether host[:port] completes a TLS handshake (unverified); None when it cannot be reached."""
    import socket

    if host.startswith("["):
        name, _, rest = host[1:].partition("]")
        port = int(rest[1:]) if rest.startswith(":") else 443
    elif host.count(":") == 1:
        name, p = host.split(":")
        port = int(p)
    else:
        name, port = host, 443
    try:
        sock = socket.create_connection((name, port), timeout)
    except OSError:
        return None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with ctx.wrap_socket(sock, server_hostname=name):
            return True
    except (ssl.SSLError, OSError):
        return False
    finally:
        sock.close()


def _path(url: str) -> str:
    p = urllib.parse.urlsplit(url)
    return p.path + (f"?{p.query}" if p.query else "")


def scope(repo: str, *actions: str) -> str:
    return f"repository:{repo}:{','.join(actions or ('pull',))}"


def error_for(resp: httpx.Response, what: str, domain: str) -> RegistryError:
    """A RegistryError that says what the registry answered (OCI error codes included)."""
    detail = ""
    try:
        if not resp.is_stream_consumed:
            resp.read()
        doc = resp.json()
        errs = doc.get("errors") if isinstance(doc, dict) else None
        if errs:
            detail = "; ".join(f"{e.get('code', '')}: {e.get('message', '')}".strip(": ") for e in errs
                               if isinstance(e, dict))
    except Exception:
        pass
    status = resp.status_code
    if status == 401:
        return RegistryError(f"{what}: {domain} denied access (401 unauthorized{': ' + detail if detail else ''}); "
                             f"check the credentials (`pallet login {domain}`)")
    if status == 403:
        return RegistryError(f"{what}: {domain} refused access (403 forbidden{': ' + detail if detail else ''})")
    if status == 404:
        return RegistryError(f"{what}: not found on {domain}{' (' + detail + ')' if detail else ''}")
    if status == 429:
        return RegistryError(f"{what}: {domain} keeps answering 429 too many requests (rate limited); "
                             f"try again later")
    return RegistryError(f"{what}: {domain} answered {status} {resp.reason_phrase}"
                         f"{' (' + detail + ')' if detail else ''}")
