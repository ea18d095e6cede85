"""Debian's `docker-registry` (distribution 2.8) on 127.0.0.1, for tests: plain, TLS, htpasswd, token auth.

    with DockerRegistry(tmp_path / "reg") as reg:                         # plain http
        reg.host                   # "127.0.0.1:PORT"
    ca = make_ca(tmp_path / "ca")                                          # test CA + server cert
    with DockerRegistry(dir, tls=ca, htpasswd={"alice": "secret"}) as reg:  # Basic auth behind TLS
        reg.url                    # "https://127.0.0.1:PORT"
    with TokenIssuer(users=...) as issuer, DockerRegistry(dir, token=issuer) as reg: ...

The config is generated; the process is started on a free port (the port is in the config) and
stopped by its pid (helpers.net.ServerProcess). `reg.log()` is the registry's output.
"""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from helpers.net import ServerProcess, free_port  # noqa: F401 (tests import free_port from here)
from helpers.tls import TLSFiles, make_ca  # noqa: F401


def write_htpasswd(path: Path, users: dict[str, str]) -> None:
    """bcrypt htpasswd entries (`htpasswd -B` when installed, else the bcrypt module)."""
    lines = []
    tool = shutil.which("htpasswd")
    for user, password in users.items():
        if tool:
            out = subprocess.run([tool, "-nbB", user, password], check=True, capture_output=True, text=True)
            lines.append(out.stdout.strip())
        else:
            import bcrypt

            lines.append(f"{user}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=5)).decode()}")
    path.write_text("\n".join(lines) + "\n")


class DockerRegistry(ServerProcess):
    name = "docker-registry"

    def __init__(self, directory: str | os.PathLike, *, tls: TLSFiles | None = None,
                 htpasswd: dict[str, str] | None = None, token: Any = None, port: int | None = None,
                 extra_config: str = "") -> None:
        if shutil.which("docker-registry") is None:
            raise RuntimeError("docker-registry is not installed (apt-get install docker-registry)")
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        super().__init__(self.dir / "registry.log")
        self.tls = tls
        self.port = port or free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.url = f"{'https' if tls else 'http'}://{self.host}"
        self.config = self.dir / "config.yml"
        lines = ["version: 0.1",
                 "log: {level: warn, accesslog: {disabled: true}}",
                 "storage:",
                 f"  filesystem: {{rootdirectory: {self.dir / 'data'}}}",
                 "  delete: {enabled: true}",
                 "http:",
                 f"  addr: {self.host}",
                 "  secret: pallet-test-secret"]
        if tls:
            lines.append(f"  tls: {{certificate: {tls.cert}, key: {tls.key}}}")
        if htpasswd is not None:
            pw = self.dir / "htpasswd"
            write_htpasswd(pw, htpasswd)
            lines += ["auth:", f"  htpasswd: {{realm: pallet-test, path: {pw}}}"]
        elif token is not None:
            lines += ["auth:", "  token:", f"    realm: {token.realm}", f"    service: {token.service}",
                      f"    issuer: {token.issuer}", f"    rootcertbundle: {token.cert_path}"]
        self.config.write_text("\n".join(lines) + "\n" + extra_config)

    def argv(self) -> list[str]:
        return ["docker-registry", "serve", str(self.config)]

    def ready(self, offset: int) -> bool:
        ctx = ssl.create_default_context(cafile=str(self.tls.ca_cert)) if self.tls else None
        try:
            urllib.request.urlopen(f"{self.url}/v2/", timeout=2, context=ctx)
            return True
        except urllib.error.HTTPError:
            return True  # 401: up, asking for auth
        except (OSError, urllib.error.URLError):
            return False
