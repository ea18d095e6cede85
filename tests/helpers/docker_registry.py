"""Debian's `docker-registry` (distribution 2.8) on 127.0.0.1, for tests: plain, TLS, htpasswd, token auth.

    with DockerRegistry(tmp_path / "reg") as reg:                         # plain http
        reg.host                   # "127.0.0.1:PORT"
    ca = make_ca(tmp_path / "ca")                                          # test CA + server cert
    with DockerRegistry(dir, tls=ca, htpasswd={"alice": "secret"}) as reg:  # Basic auth behind TLS
        reg.url                    # "https://127.0.0.1:PORT"
    with TokenIssuer(users=...) as issuer, DockerRegistry(dir, token=issuer) as reg: ...

The config is generated; the process is started on a free port and stopped by
its pid (terminate, then kill). `reg.log` is the registry's output.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class TLSFiles:
    ca_cert: Path        # the test CA (trust this)
    cert: Path           # server certificate for 127.0.0.1 and localhost, signed by the CA
    key: Path


def make_ca(directory: str | os.PathLike, *, hosts: tuple[str, ...] = ("127.0.0.1", "localhost")) -> TLSFiles:
    """A throw-away CA and a server certificate for `hosts`, written as PEM files in `directory`."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pallet test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
          .not_valid_after(now + dt.timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = []
    for h in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            sans.append(x509.DNSName(h))
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    (d / "ca").mkdir(exist_ok=True)      # the CA alone: a --cert-dir / certs.d/HOST for clients
    (d / "server").mkdir(exist_ok=True)
    files = TLSFiles(d / "ca" / "ca.crt", d / "server" / "server.crt", d / "server" / "server.key")
    files.ca_cert.write_bytes(ca.public_bytes(pem))
    files.cert.write_bytes(cert.public_bytes(pem))
    files.key.write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return files


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


class DockerRegistry:
    def __init__(self, directory: str | os.PathLike, *, tls: TLSFiles | None = None,
                 htpasswd: dict[str, str] | None = None, token: Any = None, port: int | None = None,
                 extra_config: str = "") -> None:
        if shutil.which("docker-registry") is None:
            raise RuntimeError("docker-registry is not installed (apt-get install docker-registry)")
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.tls = tls
        self.port = port or free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.url = f"{'https' if tls else 'http'}://{self.host}"
        self.config = self.dir / "config.yml"
        self.log = self.dir / "registry.log"
        self.proc: subprocess.Popen | None = None
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

    def start(self) -> DockerRegistry:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(["docker-registry", "serve", str(self.config)], stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        ctx = None
        if self.tls:
            ctx = ssl.create_default_context(cafile=str(self.tls.ca_cert))
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"docker-registry exited {self.proc.returncode}: {self.log.read_text()[-2000:]}")
            try:
                urllib.request.urlopen(f"{self.url}/v2/", timeout=2, context=ctx)
                return self
            except urllib.error.HTTPError:
                return self  # 401: up, asking for auth
            except (OSError, urllib.error.URLError):
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"docker-registry did not come up on {self.host}: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def __enter__(self) -> DockerRegistry:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
