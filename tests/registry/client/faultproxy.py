"""A small HTTP proxy in front of a real registry that injects the faults a registry cannot produce.

    with FaultProxy("127.0.0.1:5000") as proxy:     # forwards to the upstream registry
        proxy.rules.append(Rule("GET", "/blobs/", drop_after=1000, times=1))
        ... pull from proxy.host ...

A rule matches a method and a path substring and acts `times` times (None:
always): `status` answers that status itself (429/503 with Retry-After 0, 404...),
`drop_after` forwards the response headers and that many body bytes and then
closes the connection, `corrupt` flips a byte of the body, `rate` sends the
body at that many bytes per second, `content_type`/`body` replace the answer.
`hits` counts the requests by (method, path); `sent` the blob bytes sent;
`relative_locations` turns absolute `Location` headers into paths.
"""

from __future__ import annotations

import http.client
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler

from helpers.net import ThreadedServer


@dataclass
class Rule:
    method: str
    path: str
    status: int | None = None
    drop_after: int | None = None
    corrupt: bool = False
    rate: float | None = None
    body: bytes | None = None
    content_type: str | None = None
    times: int | None = 1
    headers: dict | None = None

    def take(self, method: str, path: str) -> bool:
        if method != self.method or self.path not in path or self.times == 0:
            return False
        if self.times is not None:
            self.times -= 1
        return True


class FaultProxy(ThreadedServer):
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.rules: list[Rule] = []
        self.hits: list[tuple[str, str, dict]] = []
        self.sent = 0
        self.relative_locations = False   # rewrite Location headers to paths (as some registries send)
        self._lock = threading.Lock()

    def _rule(self, method: str, path: str) -> Rule | None:
        with self._lock:
            for r in self.rules:
                if r.take(method, path):
                    return r
        return None

    def _handler(self):
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a) -> None:
                pass

            def _forward(self) -> None:
                method, path = self.command, self.path
                proxy.hits.append((method, path, dict(self.headers)))
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                rule = proxy._rule(method, path)
                if rule is not None and rule.status is not None:
                    data = rule.body if rule.body is not None else b'{"errors":[{"code":"UNAVAILABLE","message":"injected"}]}'
                    self.send_response(rule.status)
                    self.send_header("Content-Type", rule.content_type or "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    if rule.status in (429, 503):
                        self.send_header("Retry-After", "0")
                    for k, v in (rule.headers or {}).items():
                        self.send_header(k, v)
                    self.end_headers()
                    if method != "HEAD":
                        self.wfile.write(data)
                    return
                conn = http.client.HTTPConnection(proxy.upstream, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                headers["Host"] = proxy.upstream
                conn.request(method, path, body=body, headers=headers)
                resp = conn.getresponse()
                if rule is not None and rule.body is not None:
                    resp.read()
                    data = rule.body
                    self.send_response(resp.status if rule.status is None else rule.status)
                    self.send_header("Content-Type", rule.content_type or resp.getheader("Content-Type", ""))
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    conn.close()
                    return
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() in ("connection", "transfer-encoding", "keep-alive"):
                        continue
                    if k.lower() == "location":
                        v = v.replace(f"//{proxy.upstream}/", f"//{proxy.host}/")
                        if proxy.relative_locations:
                            v = v.replace(f"http://{proxy.host}", "")
                    self.send_header(k, v)
                chunked = resp.getheader("Content-Length") is None and method != "HEAD" and resp.status != 204
                if chunked:
                    self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                if method == "HEAD":
                    conn.close()
                    return
                sent = 0
                start = time.monotonic()
                while True:
                    chunk = resp.read(16384 if rule is None or rule.rate is None else 4096)
                    if not chunk:
                        break
                    if rule is not None and rule.corrupt and sent == 0:
                        i = min(len(chunk) - 1, 100)
                        chunk = chunk[:i] + bytes([chunk[i] ^ 0xFF]) + chunk[i + 1:]
                    if rule is not None and rule.drop_after is not None and sent + len(chunk) > rule.drop_after:
                        chunk = chunk[:rule.drop_after - sent]
                        self.wfile.write(chunk)
                        self.wfile.flush()
                        proxy.sent += len(chunk)
                        conn.close()
                        self.close_connection = True
                        self.connection.shutdown(2)
                        return
                    if chunked:
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    else:
                        self.wfile.write(chunk)
                    sent += len(chunk)
                    proxy.sent += len(chunk)
                    if rule is not None and rule.rate:
                        ahead = sent / rule.rate - (time.monotonic() - start)
                        if ahead > 0:
                            time.sleep(ahead)
                if chunked:
                    self.wfile.write(b"0\r\n\r\n")
                conn.close()

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _forward

        return Handler

    @property
    def host(self) -> str:
        assert self._server is not None
        return f"127.0.0.1:{self._server.server_address[1]}"
