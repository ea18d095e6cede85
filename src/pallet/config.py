"""Where pallet keeps things: storage root, runtime dirs, config dir.

Root: `--root` > `$PALLET_ROOT` > `/var/lib/pallet` (uid 0) or
`$XDG_DATA_HOME/pallet` (`~/.local/share/pallet`) otherwise.
"""

from __future__ import annotations

import os
from pathlib import Path


def is_root() -> bool:
    return os.geteuid() == 0


def default_root() -> Path:
    env = os.environ.get("PALLET_ROOT")
    if env:
        return Path(env)
    if is_root():
        return Path("/var/lib/pallet")
    data = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(data) / "pallet"


def default_run_dir() -> Path:
    """Volatile state (sockets, pid files); wiped at reboot."""
    env = os.environ.get("PALLET_RUNROOT")
    if env:
        return Path(env)
    if is_root():
        return Path("/run/pallet")
    xdg = os.environ.get("XDG_RUNTIME_DIR") or f"/tmp/pallet-run-{os.geteuid()}"
    return Path(xdg) / "pallet"


def config_dir() -> Path:
    env = os.environ.get("PALLET_CONFIG_DIR")
    if env:
        return Path(env)
    if is_root():
        return Path("/etc/pallet")
    cfg = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(cfg) / "pallet"


def settings_file(config_file: str | None = None) -> Path:
    """The settings file: `--config` (which the CLI also exports as $PALLET_CONFIG, so the processes it
    forks read the same one), else pallet.toml in the config dir."""
    given = config_file or os.environ.get("PALLET_CONFIG")
    return Path(given) if given else config_dir() / "pallet.toml"


def read_settings(config_file: str | None = None) -> dict:
    """The settings file as a dict ({} when the default one does not exist). A file named by `--config`
    that does not exist, or one that is not TOML: PalletError (one sentence, exit 125)."""
    import tomllib

    from pallet.errors import PalletError

    path = settings_file(config_file)
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        if config_file or os.environ.get("PALLET_CONFIG"):
            raise PalletError(f"settings file {path} does not exist") from None
        return {}
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise PalletError(f"settings file {path} is not valid TOML: {e}") from None


def network_settings(config_file: str | None = None) -> dict:
    """The `[network]` table of the settings file ({} without one):

        [network]
        default_bridge = "pallet0"          # the default network's bridge (docker's dockerd --bridge)
        default_subnet = "172.30.0.0/16"    # its subnet; "172.30.0.1/16" also names the gateway (--bip)
    """
    from pallet.errors import PalletError

    data = read_settings(config_file).get("network") or {}
    if not isinstance(data, dict):
        raise PalletError(f"{settings_file(config_file)}: [network] must be a table")
    for key, value in data.items():
        if key not in ("default_bridge", "default_subnet"):
            raise PalletError(f"{settings_file(config_file)}: network.{key} is not a setting "
                              "(known: default_bridge, default_subnet)")
        if not isinstance(value, str) or not value:
            raise PalletError(f"{settings_file(config_file)}: network.{key} must be a non-empty string")
    return data
