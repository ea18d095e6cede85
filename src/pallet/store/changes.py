"""`--change` instructions (Dockerfile syntax) applied to an image config, as `docker import -c` does.

    apply_changes({}, ['CMD ["sh"]', "ENV A=1 B='two words'", "EXPOSE 80 53/udp"])

Supported: CMD, ENTRYPOINT (JSON or shell form), ENV (`K=V ...` or legacy `K V`),
WORKDIR, USER, EXPOSE, LABEL, VOLUME, STOPSIGNAL. Like podman, `CMD=/bin/sh`
(the first `=` instead of a space) is accepted too.
"""

from __future__ import annotations

import json
import posixpath
import re
from typing import Any

from pallet.errors import PalletError

SUPPORTED = ("CMD", "ENTRYPOINT", "ENV", "EXPOSE", "LABEL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR")


class InvalidChange(PalletError):
    """A --change instruction that cannot be applied."""


def split_words(text: str, what: str) -> list[str]:
    """Dockerfile word splitting: whitespace separates; quotes group; backslash escapes."""
    words: list[str] = []
    cur: list[str] = []
    have = False
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            if have:
                words.append("".join(cur))
                cur, have = [], False
            i += 1
            continue
        have = True
        if ch == "\\" and i + 1 < n:
            cur.append(text[i + 1])
            i += 2
        elif ch in "\"'":
            j = i + 1
            while j < n and text[j] != ch:
                if ch == '"' and text[j] == "\\" and j + 1 < n:
                    cur.append(text[j + 1])
                    j += 2
                    continue
                cur.append(text[j])
                j += 1
            if j >= n:
                raise InvalidChange(f"{what}: unterminated {ch} quote")
            i = j + 1
        else:
            cur.append(ch)
            i += 1
    if have:
        words.append("".join(cur))
    return words


def _json_or_shell(value: str) -> list[str]:
    """Exec (JSON array) form, or shell form run by `/bin/sh -c`."""
    v = value.strip()
    if v.startswith("["):
        try:
            arr = json.loads(v)
        except ValueError:
            arr = None
        if isinstance(arr, list) and all(isinstance(x, str) for x in arr):
            return arr
    return ["/bin/sh", "-c", v]


def _pairs(value: str, what: str, *, legacy: bool) -> list[tuple[str, str]]:
    words = split_words(value, what)
    if not words:
        raise InvalidChange(f"{what} needs at least one argument")
    if legacy and "=" not in value.split(None, 1)[0]:
        parts = value.strip().split(None, 1)
        if len(parts) < 2:
            raise InvalidChange(f"{what} must have two arguments (ENV KEY VALUE) or KEY=VALUE pairs")
        return [(parts[0], " ".join(split_words(parts[1], what)))]
    out = []
    for w in words:
        key, eq, val = w.partition("=")
        if not eq or not key:
            raise InvalidChange(f"{what}: {w!r} is not KEY=VALUE")
        out.append((key, val))
    return out


_PORT = re.compile(r"^(\d{1,5})(?:-(\d{1,5}))?(?:/(tcp|udp|sctp))?$", re.IGNORECASE)


def apply_change(cfg: dict[str, Any], change: str) -> None:
    text = change.strip()
    m = re.match(r"^([A-Za-z]+)(?:\s+|=)(.*)$", text, re.DOTALL)
    if not m:
        raise InvalidChange(f"invalid change {change!r}: expected INSTRUCTION VALUE, e.g. 'CMD [\"sh\"]'")
    inst, value = m.group(1).upper(), m.group(2)
    what = f"--change {inst}"
    if inst not in SUPPORTED:
        raise InvalidChange(f"{inst} is not a supported --change instruction ({', '.join(SUPPORTED)})")
    if inst in ("CMD", "ENTRYPOINT"):
        cfg["Cmd" if inst == "CMD" else "Entrypoint"] = _json_or_shell(value)
    elif inst == "ENV":
        env = list(cfg.get("Env") or [])
        for key, val in _pairs(value, what, legacy=True):
            env = [e for e in env if e.partition("=")[0] != key] + [f"{key}={val}"]
        cfg["Env"] = env
    elif inst == "LABEL":
        labels = dict(cfg.get("Labels") or {})
        labels.update(_pairs(value, what, legacy=False))
        cfg["Labels"] = labels
    elif inst == "EXPOSE":
        ports = dict(cfg.get("ExposedPorts") or {})
        words = split_words(value, what)
        if not words:
            raise InvalidChange(f"{what} needs at least one port")
        for w in words:
            pm = _PORT.match(w)
            if not pm or not 0 < int(pm.group(1)) <= 65535:
                raise InvalidChange(f"{what}: invalid port {w!r} (PORT[/tcp|udp|sctp])")
            proto = (pm.group(3) or "tcp").lower()
            lo = int(pm.group(1))
            hi = int(pm.group(2) or lo)
            for p in range(lo, hi + 1):
                ports[f"{p}/{proto}"] = {}
        cfg["ExposedPorts"] = ports
    elif inst == "VOLUME":
        v = value.strip()
        vols = json.loads(v) if v.startswith("[") else split_words(v, what)
        if not vols or not all(isinstance(x, str) and x for x in vols):
            raise InvalidChange(f"{what} needs at least one path")
        cfg["Volumes"] = {**(cfg.get("Volumes") or {}), **{x: {} for x in vols}}
    else:
        words = split_words(value, what)
        if len(words) != 1:
            raise InvalidChange(f"{what} takes exactly one argument")
        key = {"WORKDIR": "WorkingDir", "USER": "User", "STOPSIGNAL": "StopSignal"}[inst]
        val = words[0]
        if inst == "WORKDIR":
            val = posixpath.normpath(posixpath.join(cfg.get("WorkingDir") or "/", val))
        cfg[key] = val


def apply_changes(cfg: dict[str, Any], changes: list[str]) -> dict[str, Any]:
    for c in changes:
        apply_change(cfg, c)
    return cfg
