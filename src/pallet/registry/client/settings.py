"""Registry settings from the settings file (`pallet.toml` in the config dir, or `--config`).

    [registries."docker.io"]
    mirrors = ["127.0.0.1:5000"]          # tried in order before the registry itself
    insecure = false                       # allow https without verification and plain http

    [registries."127.0.0.1:5000"]
    insecure = true
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

    def for_host(self, host: str) -> RegistrySettings:
        return self.registries.get(host) or RegistrySettings()


def settings_path(config_file: str | None = None) -> Path:
    if config_file:
        return Path(config_file)
    from pallet.config import config_dir

    return config_dir() / "pallet.toml"


def load_settings(config_file: str | None = None) -> Settings:
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
    return out
