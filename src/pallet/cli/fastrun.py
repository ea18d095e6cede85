"""The click-free fast path of `pallet run` / `pallet container run` (the hot path of the CLI).

Importing click costs more than the rest of a `pallet run --rm IMAGE true`'s parsing, so the console
script (`pallet.cli.main` is not imported at all) first tries `parse()` here. It understands the global
options (--root, --runroot, --storage-driver, --config and their PALLET_* variables) and the options of
`run` in the forms click accepts for them; for anything else — an unknown or malformed flag, --help, a
missing value or image, a value click would reject while converting it — it returns None and the click
command runs instead, so errors and help are click's own.

On success it calls `pallet.cli.containerrun.run()` with exactly the arguments the click command
`run_cmd` passes to it (tests/cli/test_fastrun.py checks a table of command lines against click, and
that `OPTIONS` below lists the same options as the click command).
"""

from __future__ import annotations

import os
import sys

from pallet import flagtable
from pallet.cli.runflags import FLAG, MULTI, OPTIONAL, RUN_OPTIONS, VALUE  # noqa: F401 (the kinds, for callers)
from pallet.flagtable import FlagError

# (option strings, keyword name, kind) — the options of `run_cmd`, in click's order, from the one table
OPTIONS: list[tuple[tuple[str, ...], str, str]] = [(names, dest, kind) for names, dest, kind, _, _ in RUN_OPTIONS]
DEFAULTS = {dest: extra["default"] for _, dest, _, _, extra in RUN_OPTIONS if "default" in extra}
SIG_PROXY = "sig_proxy"

_BY_NAME = flagtable.index(OPTIONS)
_TRUE = {"1", "true", "t", "yes", "y", "on"}
_FALSE = {"0", "false", "f", "no", "n", "off"}

# the group's options (pallet.cli.main.cli): name -> (State field, environment variable)
GLOBALS = {"--root": ("root", "PALLET_ROOT"), "--runroot": ("runroot", "PALLET_RUNROOT"),
           "--storage-driver": ("storage_driver", "PALLET_STORAGE_DRIVER"),
           "--config": ("config_file", "PALLET_CONFIG")}
STORAGE_DRIVERS = ("overlay", "copy")


class Parsed:
    """What the click commands would have been called with."""

    def __init__(self, state: dict, image: str, command: tuple[str, ...], kw: dict, detach: bool,
                 sig_proxy: bool) -> None:
        self.state = state          # keyword arguments of pallet.cli.common.State
        self.image = image
        self.command = command
        self.kw = kw
        self.detach = detach
        self.sig_proxy = sig_proxy


def _defaults() -> dict:
    kw: dict = {}
    for _, dest, kind in OPTIONS:
        kw[dest] = () if kind == MULTI else False if kind == FLAG else DEFAULTS.get(dest)   # (OPTIONAL: None)
    return kw


def _parse_globals(args: list[str], env) -> tuple[dict, int] | None:
    """The group's options up to the command name; (State kwargs, index of the command) or None."""
    st = {field: None for field, _ in GLOBALS.values()}
    given: set[str] = set()
    i = 0
    while i < len(args):
        a = args[i]
        if not a.startswith("-"):
            break
        name, eq, value = a.partition("=")
        if name not in GLOBALS:
            return None
        if not eq:
            if i + 1 >= len(args):
                return None
            value = args[i + 1]
            i += 1
        st[GLOBALS[name][0]] = value
        given.add(name)
        i += 1
    for name, (field, var) in GLOBALS.items():
        if name not in given:
            st[field] = env.get(var) or None    # click ignores an empty variable
    # conversions click would do (and fail on): leave those cases to click
    if st["storage_driver"] is not None and st["storage_driver"] not in STORAGE_DRIVERS:
        return None
    for field, bad in (("root", os.path.isfile), ("runroot", os.path.isfile), ("config_file", os.path.isdir)):
        if st[field] is not None and bad(st[field]):
            return None
    return st, i


def parse(args: list[str], env=None) -> Parsed | None:
    """`pallet [GLOBAL OPTIONS] (run | container run) [OPTIONS] IMAGE [COMMAND...]` -> Parsed, or None
    when click must handle the command line."""
    env = os.environ if env is None else env
    g = _parse_globals(args, env)
    if g is None:
        return None
    st, i = g
    if args[i:i + 1] == ["run"]:
        i += 1
    elif args[i:i + 2] == ["container", "run"]:
        i += 2
    else:
        return None
    flags = {"sig_proxy": True}

    def sig_proxy(value: str | None) -> None:
        v = (value or "").strip().lower()
        if value is None or v not in _TRUE | _FALSE:
            raise FlagError("bad-value", "--sig-proxy", value)   # the value-less form and bad values: click's
        flags["sig_proxy"] = v in _TRUE

    try:
        kw, i = flagtable.parse(args, _BY_NAME, start=i, defaults=_defaults(), check=_check,
                                special={"--sig-proxy": sig_proxy})
    except FlagError:
        return None   # click's business: its own message (or its own reading)
    n = len(args)
    if i >= n:
        return None   # no image: click says so
    image, command = args[i], tuple(args[i + 1:])
    detach = kw.pop("detach")
    return Parsed(st, image, command, kw, detach, flags["sig_proxy"])


def _check(dest: str, value: str) -> bool:
    # click.Path(dir_okay=False) refuses a directory with its own message
    return not (dest == "env_file" and os.path.isdir(value))


def main(args: list[str]) -> None:
    """Run `args` if they are a `run` this module understands (never returns then); else return."""
    p = parse(args)
    if p is None:
        return
    from pallet.cli.common import State
    from pallet.cli.containerrun import run
    from pallet.errors import PalletError

    # the same handling as pallet.cli.main.main for what the run command can raise
    try:
        rv = run(State(**p.state), p.image, p.command, p.kw, detach=p.detach, sig_proxy=p.sig_proxy)
    except PalletError as e:
        sys.stderr.write(f"Error: {e.message}\n")
        _exit(e.exit_code)
    except KeyboardInterrupt:
        _exit(130)
    except BrokenPipeError:
        _exit(1)   # stdout closed early (`pallet run ... | head`): click's main exits 1 quietly for EPIPE
    _exit(rv if isinstance(rv, int) else 0)


def _exit(code: int) -> None:
    """Flush stdout and stderr and leave at once: tearing down the interpreter (freeing every module and
    object) costs tens of milliseconds of CPU, competing with the container's monitor; nothing of ours
    needs it (the database connection was closed before the monitor was forked)."""
    for f in (sys.stdout, sys.stderr):
        try:
            f.flush()
        except BrokenPipeError:   # stdout closed early: quiet, exit 1 as click does for EPIPE
            code = 1 if code == 0 else code
        except (OSError, ValueError):
            pass
    os._exit(code & 0xFF)
