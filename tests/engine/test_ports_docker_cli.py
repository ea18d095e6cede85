"""ps's PORTS column and `port`'s lines against the real docker CLI (28.2 here): the CLI is pointed at a
fake Engine API on a unix socket that answers /containers/json and /containers/ID/json with the same
ports, and its output must equal pallet's formatting (pallet.engine.ports) for each case."""

from __future__ import annotations

import json
import shutil
import socketserver
import subprocess
import threading
from http.server import BaseHTTPRequestHandler

import pytest

from pallet.engine.ports import column, describe, summary

pytestmark = pytest.mark.skipif(shutil.which("docker") is None, reason="needs the docker CLI")

CID = "c" * 64


class _Api(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    exposed: dict = {}
    bindings: dict = {}

    def _send(self, body: str, ctype: str = "application/json") -> None:
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Api-Version", "1.50")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def do_HEAD(self) -> None:  # noqa: N802 - http.server's names
        self._send("OK", "text/plain")

    def do_GET(self) -> None:  # noqa: N802
        path = self.path.split("?")[0]
        if path.endswith("/_ping"):
            return self._send("OK", "text/plain")
        if path.endswith("/containers/json"):
            ports = [{"IP": ip, "PrivatePort": private, "PublicPort": public, "Type": proto} if ip else
                     {"PrivatePort": private, "Type": proto}
                     for ip, private, public, proto in summary(self.exposed, self.bindings)]
            return self._send(json.dumps([{"Id": CID, "Names": ["/x"], "Image": "i", "ImageID": "", "Command": "c",
                                           "Created": 0, "Ports": ports, "Labels": {}, "State": "running",
                                           "Status": "Up", "HostConfig": {}, "NetworkSettings": {"Networks": {}},
                                           "Mounts": []}]))
        if path.endswith(f"/containers/{CID}/json") or path.endswith("/containers/x/json"):
            return self._send(json.dumps({"Id": CID, "Name": "/x", "State": {"Running": True, "Status": "running"},
                                          "Config": {}, "HostConfig": {},
                                          "NetworkSettings": {"Ports": self.bindings}}))
        self.send_response(404)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args) -> None:
        pass


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def get_request(self):
        conn, _ = super().get_request()
        return conn, ("local", 0)


@pytest.fixture
def fake_docker(tmp_path):
    sock = str(tmp_path / "docker.sock")
    srv = _Server(sock, _Api)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()

    def docker(*args: str) -> str:
        cp = subprocess.run(["docker", "-H", f"unix://{sock}", *args], capture_output=True, text=True, timeout=30,
                            env={"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path),
                                 "DOCKER_CONFIG": str(tmp_path / "cfg")})
        assert cp.returncode == 0, cp.stderr
        return cp.stdout

    try:
        yield docker
    finally:
        srv.shutdown()
        srv.server_close()


def _b(*pairs: tuple[str, str]) -> list[dict]:
    return [{"HostIp": ip, "HostPort": port} for ip, port in pairs]


CASES = [
    ({}, {"80/tcp": _b(("0.0.0.0", "8080"), ("::", "8080"))}),
    ({"443/tcp": {}, "444/tcp": {}, "81/tcp": {}}, {
        "8000/tcp": _b(("0.0.0.0", "8000")), "8001/tcp": _b(("0.0.0.0", "8001")),
        "8002/tcp": _b(("0.0.0.0", "8002"), ("::", "8002")), "8003/tcp": _b(("0.0.0.0", "8003"))}),
    ({}, {f"{80 + i}/tcp": _b(("0.0.0.0", str(8000 + i)), ("::", str(8000 + i))) for i in range(4)}),
    ({"53/udp": {}}, {"53/udp": _b(("127.0.0.1", "5353")), "53/tcp": _b(("127.0.0.1", "53")),
                      "90/udp": _b(("0.0.0.0", "9000")), "91/udp": _b(("0.0.0.0", "9001"))}),
    ({"5000/sctp": {}, "7000/tcp": {}, "7002/tcp": {}}, {"132/sctp": _b(("0.0.0.0", "9132"))}),
    ({"80/tcp": {}}, {"80/tcp": _b(("10.0.0.5", "80"), ("0.0.0.0", "80"), ("fd00::1", "80"))}),
]


@pytest.mark.parametrize("exposed, bindings", CASES)
def test_ps_ports_and_port_match_the_docker_cli(fake_docker, exposed, bindings):
    _Api.exposed, _Api.bindings = exposed, bindings
    assert fake_docker("ps", "--format", "{{.Ports}}") == column(summary(exposed, bindings)) + "\n"
    assert fake_docker("port", "x").splitlines() == describe(bindings)
    key = next(iter(bindings))
    assert fake_docker("port", "x", key).splitlines() == [ln.partition(" -> ")[2] for ln in describe({key: bindings[key]})]
