"""Registry credentials and authentication challenges.

Where credentials come from, in podman's (containers/image's) order:

1. `--creds USER[:PASS]` on the command line;
2. `--authfile FILE` (or `$REGISTRY_AUTH_FILE`) -- then only that file;
   otherwise the containers auth file `$XDG_RUNTIME_DIR/containers/auth.json`
   (`/run/containers/<uid>/auth.json` without XDG_RUNTIME_DIR), then
   `$XDG_CONFIG_HOME/containers/auth.json`, then docker's `~/.docker/config.json`
   (`$DOCKER_CONFIG/config.json`), then the legacy `~/.dockercfg`.

In each file: `credHelpers[host]` (a `docker-credential-NAME` program), then
`auths` from the most specific key (`host/ns/repo`, `host/ns`, `host`, also
docker's `https://host/v1/`-style keys), then `credsStore`. `pallet login`
writes the first (primary) file, as `podman login` does.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from pallet.errors import PalletError, RegistryError
from pallet.fsutil import atomic_write

DOCKER_HUB_KEYS = ("https://index.docker.io/v1/", "index.docker.io", "registry-1.docker.io", "docker.io")


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str
    identity_token: str = ""   # an OAuth2 refresh token (docker's "<token>" user from a helper)

    @classmethod
    def parse(cls, text: str) -> Credentials:
        """`user:password` as given to `--creds`."""
        user, sep, password = text.partition(":")
        if not user:
            raise PalletError("--creds must be USERNAME[:PASSWORD], and the user name cannot be empty")
        if not sep:
            import getpass

            password = getpass.getpass(f"Password for {user}: ")
        return cls(user, password)

    def basic(self) -> str:
        return "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode()


# ---- files ------------------------------------------------------------------------------------

def primary_auth_file() -> Path:
    env = os.environ.get("REGISTRY_AUTH_FILE")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg:
        return Path(xdg) / "containers" / "auth.json"
    return Path(f"/run/containers/{os.geteuid()}/auth.json")


def auth_file_paths(authfile: str | None = None) -> list[tuple[Path, bool]]:
    """(path, legacy_format) in lookup order."""
    if authfile:
        return [(Path(authfile), False)]
    paths = [(primary_auth_file(), False)]
    cfg = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    paths.append((Path(cfg) / "containers" / "auth.json", False))
    docker_dir = os.environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")
    paths.append((Path(docker_dir) / "config.json", False))
    paths.append((Path(os.path.expanduser("~")) / ".dockercfg", True))
    return paths


def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise PalletError(f"cannot read the auth file {path}: {e}") from None
    if not isinstance(data, dict):
        raise PalletError(f"the auth file {path} is not a JSON object")
    return data


def _normalize_key(key: str) -> str:
    """docker's `https://host/v1/` keys to `host`; docker hub's aliases to `docker.io`."""
    k = re.sub(r"^https?://", "", key).rstrip("/")
    if k.endswith("/v1") or k.endswith("/v2"):
        k = k[:-3]
    if k in ("index.docker.io", "registry-1.docker.io"):
        k = "docker.io"
    return k


def _decode_auth(entry: dict, where: str) -> Credentials | None:
    if entry.get("identitytoken"):
        user = entry.get("username") or ""
        if entry.get("auth"):
            user = base64.b64decode(entry["auth"]).decode().partition(":")[0]
        return Credentials(user or "<token>", "", entry["identitytoken"])
    if entry.get("auth"):
        try:
            user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            raise PalletError(f"{where}: the 'auth' value is not base64 of user:password") from None
        return Credentials(user, password)
    if entry.get("username"):
        return Credentials(entry["username"], entry.get("password", ""))
    return None


def _helper_get(helper: str, host: str) -> Credentials | None:
    prog = shutil.which(f"docker-credential-{helper}")
    if prog is None:
        raise RegistryError(f"credential helper docker-credential-{helper} (configured for {host}) is not in PATH")
    for server in ([host] if host != "docker.io" else ["https://index.docker.io/v1/", "docker.io"]):
        cp = subprocess.run([prog, "get"], input=server.encode(), capture_output=True, timeout=60)
        if cp.returncode != 0:
            out = (cp.stdout + cp.stderr).decode(errors="replace").strip()
            if "credentials not found" in out.lower():
                continue
            raise RegistryError(f"docker-credential-{helper} get {server} failed: {out or cp.returncode}")
        try:
            doc = json.loads(cp.stdout)
        except ValueError:
            raise RegistryError(f"docker-credential-{helper} printed something that is not JSON") from None
        user, secret = doc.get("Username") or "", doc.get("Secret") or ""
        if user == "<token>":
            return Credentials(user, "", secret)
        if user or secret:
            return Credentials(user, secret)
    return None


def lookup(host: str, repo_path: str = "", *, authfile: str | None = None) -> Credentials | None:
    """Credentials for `host` (and optionally the repository path inside it), or None."""
    want = [host]
    if repo_path:
        parts = repo_path.split("/")
        want = [f"{host}/{'/'.join(parts[:i])}" for i in range(len(parts), 0, -1)] + [host]
    for path, legacy in auth_file_paths(authfile):
        data = _read_json(path)
        if data is None:
            continue
        auths = data if legacy else (data.get("auths") or {})
        helpers = {} if legacy else (data.get("credHelpers") or {})
        for key, helper in helpers.items():
            if _normalize_key(key) == host:
                creds = _helper_get(helper, host)
                if creds:
                    return creds
        normalized = {}
        for key, entry in auths.items():
            if isinstance(entry, dict):
                normalized.setdefault(_normalize_key(key), entry)
        for key in want:
            if key in normalized:
                creds = _decode_auth(normalized[key], str(path))
                if creds:
                    return creds
        store = None if legacy else data.get("credsStore")
        if store:
            creds = _helper_get(store, host)
            if creds:
                return creds
    return None


def save_login(key: str, creds: Credentials, *, authfile: str | None = None) -> Path:
    path = Path(authfile) if authfile else primary_auth_file()
    data = _read_json(path) or {}
    auths = data.setdefault("auths", {})
    auths[key] = {"auth": base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()}
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    atomic_write(path, (json.dumps(data, indent="\t") + "\n").encode(), mode=0o600)
    return path


def remove_login(key: str | None, *, authfile: str | None = None) -> bool:
    """Remove one registry's entry (key None: all of them). True if something was removed."""
    path = Path(authfile) if authfile else primary_auth_file()
    data = _read_json(path)
    if data is None:
        return False
    auths = data.get("auths") or {}
    if key is None:
        removed = bool(auths)
        data["auths"] = {}
    else:
        keys = [k for k in auths if k == key or _normalize_key(k) == key]
        for k in keys:
            del auths[k]
        removed = bool(keys)
    if removed:
        atomic_write(path, (json.dumps(data, indent="\t") + "\n").encode(), mode=0o600)
    return removed


# ---- challenges ---------------------------------------------------------------------------------

_PARAM = re.compile(r'(([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*)))')


@dataclass(frozen=True)
class Challenge:
    scheme: str                  # "bearer" or "basic" (lower-case)
    params: dict[str, str]

    @property
    def realm(self) -> str:
        return self.params.get("realm", "")


def parse_challenges(header: str) -> list[Challenge]:
    """`WWW-Authenticate` values: `Bearer realm="…",service="…",scope="…"`, `Basic realm="…"`."""
    out: list[Challenge] = []
    pos, n = 0, len(header)
    token = re.compile(r'\s*,?\s*([A-Za-z][\w-]*)')
    while pos < n:
        m = token.match(header, pos)
        if not m:
            break
        scheme, pos = m.group(1).lower(), m.end()
        params: dict[str, str] = {}
        while True:
            p = re.compile(r'\s*,?\s*' + _PARAM.pattern).match(header, pos)
            if not p:
                break
            val = p.group(3) if p.group(3) is not None else p.group(4)
            params[p.group(2).lower()] = re.sub(r"\\(.)", r"\1", val)
            pos = p.end()
        out.append(Challenge(scheme, params))
    return out
