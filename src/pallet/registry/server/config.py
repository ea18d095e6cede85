"""Server settings: the same keys from flags or a TOML config file (flags win)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from pallet.errors import PalletError


@dataclass
class Upstream:
    url: str
    username: str = ""
    password: str = ""


@dataclass
class ServerConfig:
    addr: str = "127.0.0.1:5000"
    storage: str = ""
    tls_cert: str = ""
    tls_key: str = ""
    htpasswd: str = ""
    token_realm: str = ""
    token_service: str = ""
    token_issuer: str = ""
    token_cert: str = ""
    anonymous_pull: bool = False
    read_only: bool = False
    no_delete: bool = False
    proxy_remote: list[Upstream] = field(default_factory=list)
    workers: int = 1
    upload_purge_age: float = 7 * 24 * 3600.0  # seconds an unfinished upload session is kept
    gc_grace: float = 3600.0  # seconds a fresh blob is safe from gc
    fsync: bool = True
    log_requests: bool = True

    @property
    def host_port(self) -> tuple[str, int]:
        host, sep, port = self.addr.rpartition(":")
        if not sep or not port.isdigit() or int(port) > 65535:
            raise PalletError(f"invalid --addr {self.addr!r}: expected HOST:PORT (port 0-65535), e.g. 127.0.0.1:5000")
        return host.strip("[]") or "0.0.0.0", int(port)

    def validate(self) -> None:
        self.host_port  # noqa: B018 - raises on a bad address
        if not self.storage:
            raise PalletError("no storage directory: give --storage DIR (or `storage` in the config file)")
        if bool(self.tls_cert) != bool(self.tls_key):
            raise PalletError("--tls-cert and --tls-key go together")
        token = [self.token_realm, self.token_service, self.token_issuer, self.token_cert]
        if any(token) and not all(token):
            raise PalletError("token auth needs all of --token-realm, --token-service, --token-issuer, --token-cert")
        if all(token) and self.htpasswd:
            raise PalletError("choose one of --htpasswd and token auth, not both")
        if self.workers < 1:
            raise PalletError("--workers must be at least 1")
        for u in self.proxy_remote:
            if not u.url.startswith(("http://", "https://")):
                raise PalletError(f"invalid --proxy-remote {u.url!r}: expected an http:// or https:// URL")


def _upstream(v: Any) -> Upstream:
    if isinstance(v, str):
        return Upstream(v.rstrip("/"))
    if isinstance(v, dict) and isinstance(v.get("url"), str):
        return Upstream(v["url"].rstrip("/"), str(v.get("username", "")), str(v.get("password", "")))
    raise PalletError(f"invalid proxy_remote entry {v!r}: a URL or a table with url, username, password")


def load_config(path: str | Path | None, overrides: dict[str, Any], *, default_storage: str = "") -> ServerConfig:
    """Read the config file (if any), then apply every flag that was given (not None)."""
    values: dict[str, Any] = {"storage": default_storage} if default_storage else {}
    if path:
        try:
            raw = tomllib.loads(Path(path).read_text())
        except OSError as e:
            raise PalletError(f"cannot read config file {path}: {e.strerror}") from None
        except tomllib.TOMLDecodeError as e:
            raise PalletError(f"config file {path} is not valid TOML: {e}") from None
        known = {f.name for f in fields(ServerConfig)}
        for k, v in raw.items():
            key = k.replace("-", "_")
            if key not in known:
                raise PalletError(f"config file {path}: unknown key {k!r}")
            values[key] = v
    for k, v in overrides.items():
        if v is not None and v != () and v is not False:
            values[k] = v
    if "proxy_remote" in values:
        pr = values["proxy_remote"]
        values["proxy_remote"] = [_upstream(x) for x in (pr if isinstance(pr, list | tuple) else [pr])]
    try:
        cfg = ServerConfig(**values)
    except TypeError as e:
        raise PalletError(f"invalid server settings: {e}") from None
    cfg.validate()
    return cfg
