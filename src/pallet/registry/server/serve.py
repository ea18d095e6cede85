"""Run the registry: listening socket, worker processes, request log, graceful SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import ssl
import sys

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from pallet.errors import PalletError
from pallet.registry.server.app import RegistryApp, purge_uploads_forever
from pallet.registry.server.auth import Authorizer, HtpasswdAuthorizer, TokenAuthorizer
from pallet.registry.server.config import ServerConfig
from pallet.registry.server.storage import FilesystemStorage

log = logging.getLogger("pallet.registry")
DRAIN_SECONDS = 30.0


class RequestLog(AbstractAccessLogger):
    """One line per request: client, method, path, status, bytes, milliseconds."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        if request.method == "HEAD" or response.status in (204, 304):
            sent = 0
        else:
            sent = response.content_length if response.content_length is not None else response.body_length
        self.logger.info('%s %s %s %d %d %.1fms', request.remote, request.method, request.path_qs,
                         response.status, sent, time * 1000)

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)


def make_authorizer(cfg: ServerConfig) -> Authorizer:
    if cfg.htpasswd:
        return HtpasswdAuthorizer(cfg.htpasswd, anonymous_pull=cfg.anonymous_pull)
    if cfg.token_realm:
        return TokenAuthorizer(realm=cfg.token_realm, service=cfg.token_service, issuer=cfg.token_issuer,
                               cert=cfg.token_cert, anonymous_pull=cfg.anonymous_pull)
    return Authorizer()


def make_registry(cfg: ServerConfig) -> RegistryApp:
    storage = FilesystemStorage(cfg.storage, fsync=cfg.fsync)
    proxy = None
    if cfg.proxy_remote:
        from pallet.registry.server.proxy import PullThrough

        proxy = PullThrough(cfg.proxy_remote)
    return RegistryApp(storage, authorizer=make_authorizer(cfg), read_only=cfg.read_only,
                       no_delete=cfg.no_delete, proxy=proxy)


def ssl_context(cfg: ServerConfig) -> ssl.SSLContext | None:
    if not cfg.tls_cert:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        ctx.load_cert_chain(cfg.tls_cert, cfg.tls_key)
    except ssl.SSLError:
        raise PalletError(f"cannot use --tls-cert {cfg.tls_cert} with --tls-key {cfg.tls_key}: not a PEM "
                          "certificate and its private key") from None
    except OSError as e:
        raise PalletError(f"cannot read {e.filename or cfg.tls_cert}: {e.strerror}") from None
    return ctx


def bind(cfg: ServerConfig) -> socket.socket:
    host, port = cfg.host_port
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(1024)
    except OSError as e:   # in use, not an address of this host, a name that does not resolve
        sock.close()
        raise PalletError(f"cannot listen on {cfg.addr}: {e.strerror or e}") from None
    sock.setblocking(False)
    return sock


async def _serve(cfg: ServerConfig, sock: socket.socket, *, announce: bool) -> None:
    registry = make_registry(cfg)
    app = registry.make_app()
    runner = web.AppRunner(app, handle_signals=False, access_log_class=RequestLog,
                           access_log=log if cfg.log_requests else None, shutdown_timeout=DRAIN_SECONDS)
    await runner.setup()
    site = web.SockSite(runner, sock, ssl_context=ssl_context(cfg))
    await site.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    purge = asyncio.create_task(purge_uploads_forever(registry.storage, cfg.upload_purge_age))
    if announce:
        host, port = sock.getsockname()[:2]
        scheme = "https" if cfg.tls_cert else "http"
        log.warning("pallet registry listening on %s://%s:%d, storage %s, %d worker(s)", scheme,
                    host, port, os.path.abspath(cfg.storage), cfg.workers)
    await stop.wait()
    purge.cancel()
    log.warning("pallet registry (pid %d) draining in-flight requests", os.getpid())
    # Stop accepting, then let running handlers finish before aiohttp's cleanup (which cancels them).
    await site.stop()
    deadline = loop.time() + DRAIN_SECONDS
    while registry.in_flight and loop.time() < deadline:
        await asyncio.sleep(0.05)
    await runner.cleanup()
    if registry.proxy is not None:
        await registry.proxy.close()


def _run_worker(cfg: ServerConfig, sock: socket.socket, announce: bool) -> None:
    asyncio.run(_serve(cfg, sock, announce=announce))


def serve(cfg: ServerConfig) -> None:
    """Serve until SIGTERM/SIGINT; with several workers, fork them on one listening socket."""
    logging.basicConfig(level=logging.INFO if cfg.log_requests else logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # the pull-through client's own request lines
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    make_registry(cfg)  # fail early (unreadable htpasswd, bad cert) before forking
    ssl_context(cfg)
    sock = bind(cfg)
    if cfg.workers == 1:
        _run_worker(cfg, sock, True)
        return
    children: list[int] = []

    def forward(signum: int, _frame: object) -> None:
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    # installed before forking, so a SIGTERM that arrives meanwhile still reaches the workers
    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for i in range(cfg.workers):
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            code = 0
            try:
                _run_worker(cfg, sock, i == 0)
            except BaseException:  # noqa: BLE001 - a worker must never return into the parent's code
                logging.exception("worker failed")
                code = 1
            finally:
                os._exit(code)
        children.append(pid)
    sock.close()
    stopping = False
    status = 0
    while children:
        try:
            pid, st = os.wait()
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        if pid in children:
            children.remove(pid)
            if os.waitstatus_to_exitcode(st) != 0:
                status = 1
            if not stopping:
                stopping = True
                forward(signal.SIGTERM, None)  # one worker gone: stop the rest too
    if status:
        sys.exit(status)
