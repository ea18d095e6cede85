"""The server process: startup and request log lines, config file, restarts, SIGTERM, workers, kill -9."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from helpers.cli import assert_fails, run_cli
from helpers.registry_server import RegistryProcess, make_manifest, push_blob, push_manifest, sha256

pytestmark = pytest.mark.network


def test_startup_and_request_log(serve):
    rp = serve()
    with rp.client() as c:
        c.get("/v2/")
        c.get("/v2/log/app/manifests/nope")
    time.sleep(0.2)
    log = rp.log()
    assert f"listening on http://{rp.addr}, storage {rp.storage}" in log
    assert re.search(r"127\.0\.0\.1 GET /v2/ 200 2 [\d.]+ms", log), log  # body "{}"
    assert re.search(r"GET /v2/log/app/manifests/nope 404 \d+ [\d.]+ms", log), log


def test_config_file_same_keys_flags_win(serve, tmp_path):
    port_rp = RegistryProcess(tmp_path / "unused", [], tmp_path / "x.log")
    cfg = tmp_path / "registry.toml"
    cfg.write_text(f'addr = "127.0.0.1:{port_rp.port}"\nstorage = "{tmp_path / "store"}"\nno-delete = true\n'
                   'upload_purge_age = 3600\n')
    rp = serve("--config", str(cfg), run=False)
    # the fixture adds --addr/--storage flags; they override the file's, as flags do
    rp.start()
    with rp.client() as c:
        raw, digest = make_manifest(c, "cfg/app", "cfg")
        push_manifest(c, "cfg/app", "v1", raw)
        assert c.delete(f"/v2/cfg/app/manifests/{digest}").status_code == 405
    bad = tmp_path / "bad.toml"
    bad.write_text('storage = "/x"\nno_such_key = 1\n')
    cp = run_cli([str(rp_bin()), "registry", "serve", "--config", str(bad)], capture_output=True, text=True,
                 timeout=30)
    assert_fails(cp, f"Error: config file {bad}: unknown key 'no_such_key'")


def rp_bin():
    import sys
    from pathlib import Path

    return Path(sys.executable).parent / "pallet"


def test_bad_flags_are_one_sentence(tmp_path):
    for args, msg in ((["--addr", "nonsense"], "invalid --addr"),
                      (["--storage", str(tmp_path), "--token-realm", "http://x"], "token auth needs"),
                      (["--storage", str(tmp_path), "--tls-cert", __file__], "--tls-cert and --tls-key go together")):
        cp = run_cli([str(rp_bin()), "registry", "serve", *args], capture_output=True, text=True, timeout=30)
        assert cp.returncode == 125 and msg in cp.stderr, cp.stderr


def test_an_address_it_cannot_listen_on_is_one_line(tmp_path):
    """A port out of range, a port in use, an address not of this host, a bad certificate: these were
    Python tracebacks (OverflowError, OSError, socket.gaierror, ssl.SSLError), now one line and 125."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        in_use = f"127.0.0.1:{busy.getsockname()[1]}"
        st = str(tmp_path / "st")
        for args, msg in (
                (["--addr", "127.0.0.1:99999"], "Error: invalid --addr '127.0.0.1:99999': expected HOST:PORT (port 0-65535)"),
                (["--addr", in_use], f"Error: cannot listen on {in_use}: Address already in use"),
                (["--addr", "192.0.2.1:5000"], "Error: cannot listen on 192.0.2.1:5000: Cannot assign requested address"),
                (["--addr", "127.0.0.1:0", "--tls-cert", __file__, "--tls-key", __file__],
                 f"Error: cannot use --tls-cert {__file__} with --tls-key {__file__}: not a PEM certificate")):
            cp = run_cli([str(rp_bin()), "registry", "serve", "--storage", st, *args], capture_output=True,
                         text=True, timeout=30)
            assert_fails(cp, msg)
            assert cp.stderr.count("\n") == 1, cp.stderr


def test_upload_resumes_after_restart(serve):
    data = os.urandom(300_000)
    rp = serve()
    with rp.client() as c:
        loc = c.post("/v2/resume/app/blobs/uploads/").headers["Location"]
        assert c.patch(loc, content=data[:100_000], headers={"Content-Range": "0-99999"}).status_code == 202
    assert rp.stop() == 0
    rp.start()
    with rp.client() as c:
        s = c.get(loc)
        assert s.status_code == 204 and s.headers["Range"] == "0-99999"
        assert c.patch(loc, content=data[100_000:], headers={"Content-Range": f"100000-{len(data) - 1}"}
                       ).status_code == 202
        assert c.put(loc, params={"digest": sha256(data)}).status_code == 201
        assert c.get(f"/v2/resume/app/blobs/{sha256(data)}").content == data


def test_stale_uploads_are_purged(serve, tmp_path):
    cfg = tmp_path / "purge.toml"
    cfg.write_text("upload_purge_age = 1\n")
    rp = serve("--config", str(cfg))
    with rp.client() as c:
        loc = c.post("/v2/purge/app/blobs/uploads/").headers["Location"]
        c.patch(loc, content=b"abandoned")
    rp.stop()
    time.sleep(1.2)
    rp.start()
    time.sleep(0.3)
    with rp.client() as c:
        assert c.get(loc).status_code == 404
    assert list((rp.storage / "uploads").iterdir()) == []


def test_sigterm_drains_in_flight_requests(serve):
    rp = serve()
    data = os.urandom(2_000_000)
    with socket.create_connection(("127.0.0.1", rp.port), timeout=30) as sock:
        head = (f"POST /v2/drain/app/blobs/uploads/?digest={sha256(data)} HTTP/1.1\r\nHost: {rp.addr}\r\n"
                f"Content-Length: {len(data)}\r\nContent-Type: application/octet-stream\r\n\r\n")
        sock.sendall(head.encode() + data[:500_000])
        time.sleep(0.3)
        rp.proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        with pytest.raises(httpx.ConnectError):
            httpx.get(rp.url + "/v2/", timeout=2)  # no new connections once draining
        assert rp.proc.poll() is None  # still finishing the upload
        sock.sendall(data[500_000:])
        response = b""
        while b"\r\n\r\n" not in response:
            chunk = sock.recv(65536)
            if not chunk:
                break
            response += chunk
    assert response.startswith(b"HTTP/1.1 201"), response
    assert rp.proc.wait(30) == 0
    assert (rp.storage / "blobs" / "sha256" / sha256(data)[7:]).read_bytes() == data
    assert "draining" in rp.log()


def test_workers(serve):
    rp = serve("--workers", "2")
    time.sleep(0.5)
    children = subprocess.run(["pgrep", "-P", str(rp.proc.pid)], capture_output=True, text=True).stdout.split()
    assert len(children) == 2
    with ThreadPoolExecutor(8) as ex:
        def one(i: int) -> None:
            with rp.client() as c:
                raw, digest = make_manifest(c, f"workers/app{i}", f"w{i}", layers=2)
                assert push_manifest(c, f"workers/app{i}", "v1", raw).status_code == 201
                assert c.get(f"/v2/workers/app{i}/manifests/{digest}").content == raw
        list(ex.map(one, range(16)))
    assert rp.stop() == 0
    for pid in children:
        assert not os.path.exists(f"/proc/{pid}") or "zombie" in open(f"/proc/{pid}/status").read().lower()


@pytest.mark.slow
def test_kill_9_never_exposes_partial_content(serve):
    """Push continuously, SIGKILL the server mid-stream, restart: everything acknowledged is whole."""
    rp = serve()
    acked: list[tuple[str, str, str]] = []  # (repo, tag, manifest digest)
    stop = threading.Event()

    def pusher(n: int) -> None:
        i = 0
        with rp.client() as c:
            while not stop.is_set():
                i += 1
                name = f"crash/p{n}"
                try:
                    big = os.urandom(400_000)
                    push_blob(c, name, big)
                    raw, digest = make_manifest(c, name, f"{n}-{i}", layers=2)
                    if push_manifest(c, name, f"t{i}", raw).status_code == 201:
                        acked.append((name, f"t{i}", digest))
                except (httpx.HTTPError, AssertionError):
                    return

    threads = [threading.Thread(target=pusher, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    time.sleep(1.5)
    rp.proc.send_signal(signal.SIGKILL)
    rp.proc.wait()
    stop.set()
    for t in threads:
        t.join(30)
    assert acked
    # nothing under a digest name that does not hash to it
    for alg_dir in (rp.storage / "blobs").iterdir():
        for f in alg_dir.iterdir():
            if f.name.startswith(".tmp-"):
                continue
            assert hashlib.new(alg_dir.name, f.read_bytes()).hexdigest() == f.name
    rp.start()
    with rp.client() as c:
        for name, tag, digest in acked:
            r = c.get(f"/v2/{name}/manifests/{tag}")
            assert r.status_code == 200 and r.headers["Docker-Content-Digest"] == digest
            m = json.loads(r.content)
            for desc in (m["config"], *m["layers"]):
                b = c.get(f"/v2/{name}/blobs/{desc['digest']}")
                assert b.status_code == 200 and sha256(b.content) == desc["digest"]
        # every tag that exists (acknowledged or not) points at a whole manifest
        for repo in c.get("/v2/_catalog").json()["repositories"]:
            for tag in c.get(f"/v2/{repo}/tags/list").json()["tags"]:
                r = c.get(f"/v2/{repo}/manifests/{tag}")
                assert r.status_code == 200 and sha256(r.content) == r.headers["Docker-Content-Digest"]


def test_default_storage_is_under_pallet_root(tmp_path):
    from helpers.registry_server import free_port

    port = free_port()
    env = dict(os.environ, PALLET_ROOT=str(tmp_path / "root"))
    proc = subprocess.Popen([str(rp_bin()), "registry", "serve", "--addr", f"127.0.0.1:{port}"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()
        assert f"storage {tmp_path / 'root' / 'registry'}" in line, line
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
