"""Short names as podman resolves them: containers-registries.conf(5) search registries, aliases, modes.

Where the files come from (containers/image's order):

- `$CONTAINERS_REGISTRIES_CONF`, if set, is the one file (no drop-ins);
- otherwise `~/.config/containers/registries.conf` if it exists, else `/etc/containers/registries.conf`,
  then the drop-ins `*.conf` of `/etc/containers/registries.conf.d/` and of
  `~/.config/containers/registries.conf.d/`, in name order (each later one overrides: its search
  list replaces, its aliases and `[[registry]]` entries are added).

What is read: `unqualified-search-registries`, `short-name-mode` (enforcing, permissive, disabled),
`[aliases]` and `[[registry]]` (prefix/location, insecure, blocked, `[[registry.mirror]]` locations),
plus the v1 tables `[registries.search]` / `[registries.insecure]` / `[registries.block]`.

How a name resolves (`resolve`): a fully-qualified name is used as given; an alias gives its value
(the tag or digest of the name kept); otherwise each search registry gives a candidate, in order.
With no search registry configured, docker's rule applies (`docker.io/library/`). With several
candidates, enforcing mode needs a choice: without a terminal that is an error listing them, as
podman says it; permissive and disabled modes try them in order. (An image already in the store
under the short name is found before any of this: the caller looks there first.)
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from pallet import reference as R
from pallet.errors import PalletError

MODES = ("enforcing", "permissive", "disabled")
SYSTEM_FILE = Path("/etc/containers/registries.conf")
SYSTEM_DROPINS = Path("/etc/containers/registries.conf.d")


@dataclass
class RegistryEntry:
    prefix: str
    location: str
    insecure: bool | None = None
    blocked: bool = False
    mirrors: list[str] = field(default_factory=list)


@dataclass
class ShortNameConfig:
    search: list[str] = field(default_factory=list)
    mode: str = "enforcing"
    aliases: dict[str, str] = field(default_factory=dict)
    alias_source: dict[str, str] = field(default_factory=dict)     # alias -> the file that set it
    registries: list[RegistryEntry] = field(default_factory=list)
    search_source: str = ""
    files: list[str] = field(default_factory=list)

    def registry_for(self, name: str) -> RegistryEntry | None:
        """The [[registry]] entry with the longest prefix matching `name` (a repository or host)."""
        best = None
        for e in self.registries:
            p = e.prefix
            if name == p or name.startswith(p + "/") or name.startswith(p + ":"):
                if best is None or len(p) > len(best.prefix):
                    best = e
        return best


def config_files(env=None) -> list[Path]:
    env = os.environ if env is None else env
    given = env.get("CONTAINERS_REGISTRIES_CONF")
    if given:
        return [Path(given)]
    home = Path(env.get("HOME") or "~").expanduser()
    user = Path(env.get("XDG_CONFIG_HOME") or home / ".config") / "containers"
    files = [user / "registries.conf" if (user / "registries.conf").is_file() else SYSTEM_FILE]
    for d in (SYSTEM_DROPINS, user / "registries.conf.d"):
        try:
            files += sorted(p for p in d.iterdir() if p.suffix == ".conf" and p.is_file())
        except OSError:
            pass
    return files


def load(env=None) -> ShortNameConfig:
    cfg = ShortNameConfig()
    for path in config_files(env):
        try:
            data = tomllib.loads(path.read_text())
        except FileNotFoundError:
            continue
        except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise PalletError(f"registries configuration {path} cannot be read: {e}") from None
        _merge(cfg, data, str(path))
        cfg.files.append(str(path))
    return cfg


def _strings(v, what: str, path: str) -> list[str]:
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise PalletError(f"{path}: {what} must be a list of strings")
    return list(v)


def _merge(cfg: ShortNameConfig, data: dict, path: str) -> None:
    if "unqualified-search-registries" in data:
        cfg.search = _strings(data["unqualified-search-registries"], "unqualified-search-registries", path)
        cfg.search_source = path
    v1 = data.get("registries")
    if isinstance(v1, dict):   # the v1 format
        if isinstance(v1.get("search"), dict) and "registries" in v1["search"]:
            cfg.search = _strings(v1["search"]["registries"], "registries.search.registries", path)
            cfg.search_source = path
        for key, attr in (("insecure", "insecure"), ("block", "blocked")):
            table = v1.get(key)
            if isinstance(table, dict):
                for host in _strings(table.get("registries", []), f"registries.{key}.registries", path):
                    e = cfg.registry_for(host) or _add(cfg, host, host)
                    setattr(e, attr, True)
    mode = data.get("short-name-mode")
    if mode is not None:
        if mode not in MODES:
            raise PalletError(f"{path}: short-name-mode {mode!r} is not one of {', '.join(MODES)}")
        cfg.mode = mode
    aliases = data.get("aliases") or {}
    if not isinstance(aliases, dict):
        raise PalletError(f"{path}: [aliases] must be a table")
    for k, v in aliases.items():
        if not isinstance(v, str):
            raise PalletError(f"{path}: alias {k!r} must be a string")
        cfg.aliases[k] = v
        cfg.alias_source[k] = path
    regs = data.get("registry")
    if regs is not None and not isinstance(regs, list):
        raise PalletError(f"{path}: [[registry]] must be an array of tables")
    for r in regs or []:
        location = r.get("location") or ""
        prefix = r.get("prefix") or location
        if not prefix:
            raise PalletError(f"{path}: a [[registry]] needs a location or a prefix")
        e = _add(cfg, prefix, location or prefix)
        if "insecure" in r:
            e.insecure = bool(r["insecure"])
        e.blocked = bool(r.get("blocked", False))
        e.mirrors = [m["location"] for m in r.get("mirror") or [] if isinstance(m, dict) and m.get("location")]


def _add(cfg: ShortNameConfig, prefix: str, location: str) -> RegistryEntry:
    cfg.registries = [e for e in cfg.registries if e.prefix != prefix]
    e = RegistryEntry(prefix, location)
    cfg.registries.append(e)
    return e


def is_short(text: str) -> bool:
    """A name without a registry: its first component has no '.' or ':' and is not localhost."""
    first, sep, _ = text.partition("/")
    return not sep or not ("." in first or ":" in first or first == "localhost" or first.lower() != first)


@dataclass
class Resolution:
    name: str                      # what was asked
    candidates: list[str]          # fully-qualified references, in the order to try
    rule: str                      # which rule resolved it, in words
    source: str = ""               # the file the rule came from
    enforcing: bool = False        # several candidates and enforcing mode: the user must choose


def _suffix(text: str) -> tuple[str, str]:
    """('repo/name', ':tag' or '@digest' or '')."""
    ref = R.parse(text)
    name = ref.name
    if ref.digest:
        return name, "@" + ref.digest
    return name, ":" + (ref.tag or "latest")


def resolve(text: str, cfg: ShortNameConfig) -> Resolution:
    R.normalize(text)   # docker's grammar first: a malformed reference is its error
    if not is_short(text):
        return Resolution(text, [text], "fully qualified: used as given")
    name, suffix = _suffix(text)
    if name in cfg.aliases:
        target = cfg.aliases[name]
        tref = R.normalize(target)
        full = f"{tref.name}{suffix}" if not (R.parse(target).tag or R.parse(target).digest) else str(tref)
        return Resolution(text, [full], f"alias {name!r} = {target!r}", cfg.alias_source.get(name, ""))
    if not cfg.search:
        return Resolution(text, [text], "no unqualified-search registries: docker's default (docker.io/library/)")
    cands = []
    for reg in cfg.search:
        cand = f"{reg}/{name}"
        if reg in ("docker.io", "index.docker.io") and "/" not in name:
            cand = f"docker.io/library/{name}"
        cands.append(str(R.normalize(cand + suffix)))
    rule = f"unqualified-search-registries {', '.join(cfg.search)} (short-name-mode {cfg.mode})"
    return Resolution(text, cands, rule, cfg.search_source, enforcing=cfg.mode == "enforcing" and len(cands) > 1)


def choose(res: Resolution, *, tty: bool, ask=None) -> list[str]:
    """The candidates to try, in order: enforcing mode with several needs a terminal to ask on."""
    if not res.enforcing:
        return res.candidates
    if not tty or ask is None:
        raise PalletError("short-name resolution enforced but cannot prompt without a TTY: "
                          f"{res.name!r} could be {', '.join(res.candidates)} (give the full name, or an alias "
                          "in registries.conf)")
    return [ask(res)]


def blocked(cfg: ShortNameConfig, full: str) -> bool:
    e = cfg.registry_for(full)
    return bool(e and e.blocked)


def pull_first(text: str, pull_one, *, tty: bool, env=None):
    """Resolve `text` and call `pull_one(full_reference)` on each candidate until one succeeds.

    A fully-qualified name is pulled as given (and its errors are its own); for a short name the
    errors of every candidate are reported together."""
    cfg = load(env)
    res = resolve(text, cfg)
    cands = [c for c in choose(res, tty=tty, ask=_ask) if not blocked(cfg, c)]
    if not cands:
        raise PalletError(f"registry for {res.candidates[0]} is blocked in registries.conf")
    if len(cands) == 1:
        return pull_one(cands[0])
    errors = []
    for cand in cands:
        try:
            return pull_one(cand)
        except PalletError as e:
            errors.append(f"{cand}: {e.message}")
    raise PalletError(f"{text}: no candidate could be pulled ({'; '.join(errors)})")


def _ask(res: Resolution) -> str:
    import sys

    sys.stderr.write(f"? Please select an image for {res.name!r}:\n")
    for i, c in enumerate(res.candidates, 1):
        sys.stderr.write(f"  {i}) {c}\n")
    sys.stderr.write("> ")
    sys.stderr.flush()
    line = sys.stdin.readline().strip()
    if line.isdigit() and 1 <= int(line) <= len(res.candidates):
        return res.candidates[int(line) - 1]
    raise PalletError(f"no image selected for {res.name!r}")
