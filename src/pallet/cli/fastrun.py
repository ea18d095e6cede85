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

from pallet.cli.runflags import FLAG, MULTI, OPTIONAL, RUN_OPTIONS, VALUE  # noqa: F401 (the kinds, for callers)

# (option strings, keyword name, kind) — the options of `run_cmd`, in click's order, from the one table
OPTIONS: list[tuple[tuple[str, ...], str, str]] = [(names, dest, kind) for names, dest, kind, _, _ in RUN_OPTIONS]
DEFAULTS = {dest: extra["default"] for _, dest, _, _, extra in RUN_OPTIONS if "default" in extra}
SIG_PROXY = "sig_proxy"

_BY_NAME = {o: (dest, kind) for opts, dest, kind in OPTIONS for o in opts}
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
    kw = _defaults()
    sig_proxy = True
    n = len(args)
    while i < n:
        a = args[i]
        if a == "--":
            i += 1
            break
        if a[:1] != "-" or a == "-":
            break   # the image: everything after it is the command (no interspersed options)
        if a.startswith("--"):
            name, eq, value = a.partition("=")
            if name == "--sig-proxy":
                v = value.strip().lower()
                if not eq or v not in _TRUE | _FALSE:
                    return None   # the value-less form and bad values: click's business
                sig_proxy = v in _TRUE
                i += 1
                continue
            spec = _BY_NAME.get(name)
            if spec is None:
                return None
            dest, kind = spec
            if kind == FLAG:
                if eq:
                    return None
                kw[dest] = True
                i += 1
                continue
            if kind == OPTIONAL:   # --trace or --trace=FILE: the next word is never its value
                kw[dest] = value if eq else ""
                i += 1
                continue
            if not eq:
                if i + 1 >= n:
                    return None
                value = args[i + 1]
                i += 1
            i += 1
            if not _store(kw, dest, kind, value):
                return None
            continue
        # short options, possibly several in one token (-it, -dit, -eFOO=1, -it -e X)
        j = 1
        while j < len(a):
            spec = _BY_NAME.get("-" + a[j])
            if spec is None:
                return None
            dest, kind = spec
            if kind == FLAG:
                kw[dest] = True
                j += 1
                continue
            if kind == OPTIONAL:
                return None   # (no short optional-value options: click's business)
            value = a[j + 1:]
            if not value:
                if i + 1 >= n:
                    return None
                value = args[i + 1]
                i += 1
            if not _store(kw, dest, kind, value):
                return None
            break
        i += 1
    if i >= n:
        return None   # no image: click says so
    image, command = args[i], tuple(args[i + 1:])
    detach = kw.pop("detach")
    return Parsed(st, image, command, kw, detach, sig_proxy)


def _store(kw: dict, dest: str, kind: str, value: str) -> bool:
    if dest == "env_file" and os.path.isdir(value):
        return False   # click.Path(dir_okay=False) refuses it with its own message
    if kind == MULTI:
        kw[dest] = (*kw[dest], value)
    else:
        kw[dest] = value
    return True


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
