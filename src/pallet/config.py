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
