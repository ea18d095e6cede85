"""Registry settings from the settings file (`pallet.toml` in the config dir, or `--config`).

    [registries."docker.io"]
    mirrors = ["127.0.0.1:5000"]          # tried in order before the registry itself
    insecure = false                       # allow https without verification and plain http

    [registries."127.0.0.1:5000"]
    insecure = true

    [client]
    retries = 5                            # retries of a failed request (5xx, 429, reset)
    retry-delay = 0.25                     # seconds before the first retry, doubled each time
    max-parallel = 3                       # default of --max-parallel
    upload-chunk-size = 0                  # >0: push blobs in PATCH chunks of this many bytes
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from pallet.errors import PalletError


@dataclass
class RegistrySettings:
    mirrors: list[str] = field(default_factory=list)
    insecure: bool | None = None


@dataclass
class Settings:
    registries: dict[str, RegistrySettings] = field(default_factory=dict)
    retries: int = 5
    retry_delay: float = 0.25
    max_parallel: int = 3
    upload_chunk_size: int = 0

    def for_host(self, host: str) -> RegistrySettings:
        return self.registries.get(host) or RegistrySettings()


def settings_path(config_file: str | None = None) -> Path:
    if config_file:
        return Path(config_file)
    from pallet.config import config_dir

    return config_dir() / "pallet.toml"


def load_settings(config_file: str | None = None) -> Settings:
    """pallet.toml, then what containers-registries.conf(5) adds for hosts pallet.toml does not name."""
    from pallet.registry.client import shortnames

    out = _load_toml(config_file)
    add_registries_conf(out, shortnames.load())
    return out


def add_registries_conf(settings: Settings, cfg) -> None:
    """[[registry]] entries whose location is a host add their insecure flag and mirrors to the client
    settings of that host, where pallet.toml says nothing of it (pallet.toml wins)."""
    for e in cfg.registries:
        host = e.location.split("/", 1)[0]
        if host in settings.registries or "/" in e.location:
            continue
        if e.insecure is not None or e.mirrors:
            settings.registries[host] = RegistrySettings(list(e.mirrors), e.insecure)


def _load_toml(config_file: str | None) -> Settings:
    path = settings_path(config_file)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        if config_file:
            raise PalletError(f"settings file {path} does not exist") from None
        return Settings()
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise PalletError(f"settings file {path} is not valid TOML: {e}") from None
    regs = data.get("registries") or {}
    if not isinstance(regs, dict):
        raise PalletError(f"{path}: [registries] must be a table of registry hosts")
    out = Settings()
    for host, table in regs.items():
        if not isinstance(table, dict):
            raise PalletError(f"{path}: registries.{host!r} must be a table")
        mirrors = table.get("mirrors", [])
        if not isinstance(mirrors, list) or not all(isinstance(m, str) and m for m in mirrors):
            raise PalletError(f"{path}: registries.{host!r}.mirrors must be a list of registry hosts")
        insecure = table.get("insecure")
        if insecure is not None and not isinstance(insecure, bool):
            raise PalletError(f"{path}: registries.{host!r}.insecure must be true or false")
        out.registries[host] = RegistrySettings([m.rstrip("/") for m in mirrors], insecure)
    client = data.get("client") or {}
    for key, attr, typ in (("retries", "retries", int), ("retry-delay", "retry_delay", (int, float)),
                           ("max-parallel", "max_parallel", int), ("upload-chunk-size", "upload_chunk_size", int)):
        if key in client:
            val = client[key]
            if not isinstance(val, typ) or isinstance(val, bool) or val < 0:
                raise PalletError(f"{path}: client.{key} must be a non-negative number")
            setattr(out, attr, val)
    return out
