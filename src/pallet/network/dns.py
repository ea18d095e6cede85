"""The DNS server of a network: one small process per user network with DNS, on the gateway's port 53.

    ensure(store, net)                after an attach: the network's server runs (started if it does not)
    stop_if_unused(store, network_id) after a lease is given back: the last one stops it; `stop` on network rm

Why a process per network: the server of a network only ever sees that network's clients (it listens on
that bridge's gateway address), so it answers that network's names, and another network's only to a
container on both (found by the asker's address, as docker's embedded DNS resolves all the networks of a
container); it starts with the network's first container and ends with its last (or `network rm`), so
an idle host runs none and `run --network none` or the default `bridge` (no DNS, as docker) never start
or import one.

The sockets (UDP and TCP, gateway:53) are bound by the attaching process and handed to the server
(posix_spawn), so the server is reachable the moment the attach returns: a query sent before the
server's interpreter is up waits in the socket's queue. Its pid and start time are kept in
`<root>/network/dns-<net id[:12]>.pid` (flocked: starts and stops of one network are serialized); its
errors go to `dns-<net id[:12]>.log` beside it. Measured here: a start costs the attach ~2.5 ms, the
check that it runs ~0.15 ms, an answer ~22 µs (median), the server ~13 MB resident.

Records are the store's leases, read again on a query whenever the database changed since the last one
(SQLite's data_version): a container's name, its 12-char short id, its hostname and its aliases on that
network (`network_leases.dns_names`). A record appears with the lease and is gone with it (stop, rm,
rm -f after a SIGKILLed monitor, network disconnect). A name that is not a container's is forwarded to
the upstream resolvers: the client's own `--dns` servers (`network_leases.dns_servers`, as docker's
embedded DNS does) or the resolv.conf of the namespace pallet runs in (`$PALLET_RESOLV_CONF`, default
/etc/resolv.conf). AAAA answers come from a lease's `address6` (IPv6 networks; `_addresses`); an AAAA
query for a known name without one is answered with no records (NODATA).
"""

from __future__ import annotations

import os
import socket
import struct

PORT = 53
TTL = 600
A, NS, CNAME, PTR, AAAA, ANY = 1, 2, 5, 12, 28, 255
NOERROR, FORMERR, SERVFAIL, NXDOMAIN = 0, 1, 2, 3
DOMAIN_OPTION = "pallet.dns_domain"     # a network option: its names also answer under this domain (podman's)


def resolv_conf_path() -> str:
    return os.environ.get("PALLET_RESOLV_CONF") or "/etc/resolv.conf"


def host_nameservers() -> list[str]:
    """The name servers of the namespace pallet runs in (loopback ones too: the server runs here)."""
    try:
        text = open(resolv_conf_path()).read()
    except OSError:
        return []
    out = []
    for line in text.splitlines():
        parts = line.split()
        if parts[:1] == ["nameserver"] and len(parts) > 1:
            out.append(parts[1])
    return out


# ---- the wire format (RFC 1035) ---------------------------------------------------------------------
def parse_question(msg: bytes) -> tuple[int, int, str, int, int] | None:
    """(id, flags, name, qtype, question end) of a query, None when it is not one we can read."""
    if len(msg) < 12:
        return None
    qid, flags, qd = struct.unpack("!HHH", msg[:6])
    if qd != 1 or flags & 0x8000:
        return None
    labels, i = [], 12
    while True:
        if i >= len(msg):
            return None
        n = msg[i]
        if n == 0:
            i += 1
            break
        if n & 0xC0 or i + 1 + n > len(msg):
            return None
        labels.append(msg[i + 1:i + 1 + n].decode("ascii", "replace"))
        i += 1 + n
    if i + 4 > len(msg):
        return None
    qtype, _qclass = struct.unpack("!HH", msg[i:i + 4])
    return qid, flags, ".".join(labels).lower(), qtype, i + 4


def encode_name(name: str) -> bytes:
    out = b""
    for label in name.strip(".").split("."):
        if label:
            out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def reply(query: bytes, qend: int, rcode: int, answers: list[tuple[int, bytes]], *, authoritative: bool) -> bytes:
    """The answer to `query`: its question echoed, `answers` (type, rdata) for the question's name."""
    qid, flags = struct.unpack("!HH", query[:4])
    out_flags = 0x8000 | (flags & 0x7900) | 0x0080 | rcode     # QR, opcode and RD kept, RA
    if authoritative:
        out_flags |= 0x0400
    head = struct.pack("!HHHHHH", qid, out_flags, 1, len(answers), 0, 0)
    body = b"".join(struct.pack("!HHHIH", 0xC00C, t, 1, TTL, len(rd)) + rd for t, rd in answers)
    return head + query[12:qend] + body


# ---- the records ---------------------------------------------------------------------------------
class Records:
    """The leases of one network, read from the store's database on each lookup."""

    def __init__(self, db_path: str, network_id: str, domains: tuple[str, ...] = ()) -> None:
        import _sqlite3 as sqlite3

        self.network_id = network_id
        self.domains = domains
        self.conn = sqlite3.connect(db_path, timeout=10, isolation_level=None, check_same_thread=False)
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("PRAGMA busy_timeout = 10000")
        self._version, self._cache = None, {}

    def rows(self):
        return [r for r, _ in self._entries()]

    def _entries(self, network_id: str | None = None) -> list:
        """(row, its names) of each lease of the network (or of `network_id`, a network with DNS), read
        again whenever another connection has written the database since (SQLite's data_version: one
        cheap pragma per query, never a stale answer)."""
        import json

        version = self.conn.execute("PRAGMA data_version").fetchone()[0]
        if version != self._version:
            rows = self.conn.execute("SELECT l.* FROM network_leases l JOIN networks n ON n.id = l.network_id"
                                     " WHERE l.network_id = ? OR n.dns = 1", (self.network_id,)).fetchall()
            by_net: dict = {}
            for r in rows:
                names = {n.lower() for n in json.loads(r["dns_names"] or "[]")} | {r["container_id"][:12]}
                by_net.setdefault(r["network_id"], []).append((r, names))
            self._cache, self._version = by_net, version
        return self._cache.get(network_id or self.network_id, [])

    def in_use(self) -> bool:
        """Whether a container of the network is plugged in here: a lease whose veth exists in this
        namespace (a lease a killed monitor left, in a namespace that is gone, does not count)."""
        for (ifname,) in self.conn.execute("SELECT ifname FROM network_leases WHERE network_id = ?",
                                           (self.network_id,)).fetchall():
            try:
                socket.if_nametoindex(ifname)
                return True
            except OSError:
                continue
        return False

    def network_exists(self) -> bool:
        return bool(self.conn.execute("SELECT 1 FROM networks WHERE id = ?", (self.network_id,)).fetchone())

    def _bare(self, name: str) -> str:
        for d in self.domains:
            if name.endswith("." + d):
                return name[:-len(d) - 1]
        return name

    def lookup(self, name: str, client: str = "") -> list | None:
        """The leases answering to `name` for the container at `client` (None: none has it): this
        network's, else those of the client's other networks."""
        name = self._bare(name)
        found = [r for r, names in self._entries() if name in names]
        if not found and client:
            # docker's embedded DNS: a container resolves the names of every network it is on (with DNS),
            # whichever network's server it asks
            mine = [r["container_id"] for r, _ in self._entries() if r["address"] == client]
            for other in self._cache:
                if other != self.network_id and mine and any(r["container_id"] == mine[0]
                                                             for r, _ in self._entries(other)):
                    found += [r for r, names in self._entries(other) if name in names]
        return found or None

    def reverse(self, name: str) -> str | None:
        """The first name of the container whose address `name` (d.c.b.a.in-addr.arpa) is."""
        import json

        if not name.endswith(".in-addr.arpa"):
            return None
        addr = ".".join(reversed(name[:-len(".in-addr.arpa")].split(".")))
        for r in self.rows():
            if r["address"] == addr:
                names = json.loads(r["dns_names"] or "[]")
                return names[0] if names else r["container_id"][:12]
        return None

    def upstreams(self, client: str) -> list[str]:
        import json

        r = self.conn.execute("SELECT dns_servers FROM network_leases WHERE network_id = ? AND address = ?",
                              (self.network_id, client)).fetchone()
        servers = json.loads(r[0] or "[]") if r else []
        return servers or host_nameservers()


def _addresses(row, qtype: int) -> list[tuple[int, bytes]]:
    """A lease's address records of type `qtype` (the IPv6 hook: a lease row with `address6`)."""
    out = []
    if qtype in (A, ANY):
        out.append((A, socket.inet_aton(row["address"])))
    if qtype in (AAAA, ANY) and "address6" in row.keys() and row["address6"]:
        out.append((AAAA, socket.inet_pton(socket.AF_INET6, row["address6"])))
    return out


def answer(records: Records, msg: bytes, client: str, *, tcp: bool) -> bytes | None:
    """Our answer to `msg` from `client`, or the upstream's (None: no answer at all)."""
    q = parse_question(msg)
    if q is None:
        if len(msg) >= 12:
            return struct.pack("!HHHHHH", struct.unpack("!H", msg[:2])[0], 0x8000 | FORMERR, 0, 0, 0, 0)
        return None
    _qid, _flags, name, qtype, qend = q
    if qtype == PTR:
        target = records.reverse(name)
        if target is not None:
            return reply(msg, qend, NOERROR, [(PTR, encode_name(target))], authoritative=True)
    else:
        found = records.lookup(name, client)
        if found is not None:
            ans = [a for r in found for a in _addresses(r, qtype)]
            return reply(msg, qend, NOERROR, ans, authoritative=True)
    return forward(msg, records.upstreams(client), tcp=tcp) or reply(msg, qend, SERVFAIL, [], authoritative=False)


def forward(msg: bytes, servers: list[str], *, tcp: bool, timeout: float = 3.0) -> bytes | None:
    for server in servers:
        fam = socket.AF_INET6 if ":" in server else socket.AF_INET
        try:
            with socket.socket(fam, socket.SOCK_STREAM if tcp else socket.SOCK_DGRAM) as s:
                s.settimeout(timeout)
                s.connect((server, PORT))
                if tcp:
                    s.sendall(struct.pack("!H", len(msg)) + msg)
                    n = struct.unpack("!H", _recv_exact(s, 2))[0]
                    return _recv_exact(s, n)
                s.send(msg)
                while True:
                    data = s.recv(65535)
                    if data[:2] == msg[:2]:
                        return data
        except (OSError, struct.error):
            continue
    return None


def _recv_exact(s: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise OSError("connection closed")
        buf += chunk
    return buf


# ---- the server process ------------------------------------------------------------------------------
def serve(db_path: str, network_id: str, udp: socket.socket, tcp: socket.socket, domains: tuple[str, ...] = (),
          idle_check: float = 2.0) -> None:
    """Answer on `udp` and `tcp` until no container of the network is plugged in here, the network or
    the store is gone (checked when idle for `idle_check` s, twice in a row): the backstop of `stop`."""
    import selectors
    import threading

    records = Records(db_path, network_id, domains)
    inode = os.stat(db_path).st_ino

    def db_gone() -> bool:       # (the store was deleted: nobody will ever stop us)
        try:
            return os.stat(db_path).st_ino != inode
        except OSError:
            return True
    lock = threading.Lock()      # (one sqlite connection, used by the forwarding threads too)

    class Locked:
        def __getattr__(self, name):
            attr = getattr(records, name)
            if not callable(attr):
                return attr

            def call(*a, **kw):
                with lock:
                    return attr(*a, **kw)
            return call

    rec = Locked()

    def handle_udp(data: bytes, addr) -> None:
        try:
            out = answer(rec, data, addr[0], tcp=False)
            if out is not None:
                udp.sendto(out, addr)
        except Exception:  # noqa: BLE001 - one bad query never ends the server
            pass

    def handle_tcp(conn: socket.socket, addr) -> None:
        try:
            conn.settimeout(10)
            while True:
                try:
                    n = struct.unpack("!H", _recv_exact(conn, 2))[0]
                except OSError:
                    return
                out = answer(rec, _recv_exact(conn, n), addr[0], tcp=True)
                if out is None:
                    return
                conn.sendall(struct.pack("!H", len(out)) + out)
        except Exception:  # noqa: BLE001
            pass
        finally:
            conn.close()

    sel = selectors.DefaultSelector()
    sel.register(udp, selectors.EVENT_READ, "udp")
    sel.register(tcp, selectors.EVENT_READ, "tcp")
    tcp.listen(64)
    idle = 0
    while True:
        events = sel.select(idle_check)
        if not events:
            try:
                with lock:
                    gone = db_gone() or not records.network_exists() or not records.in_use()
            except Exception:  # noqa: BLE001 - a store being migrated: try again
                gone = False
            idle = idle + 1 if gone else 0
            if idle >= 2:
                return
            continue
        for key, _ in events:
            if key.data == "udp":
                try:
                    data, addr = udp.recvfrom(65535)
                except OSError:
                    continue
                q = parse_question(data)
                local = q is not None and (q[3] == PTR or rec.lookup(q[2], addr[0]) is not None)
                if local:
                    handle_udp(data, addr)
                else:     # a forwarded query may take seconds: not on the loop
                    threading.Thread(target=handle_udp, args=(data, addr), daemon=True).start()
            else:
                try:
                    conn, addr = tcp.accept()
                except OSError:
                    continue
                threading.Thread(target=handle_tcp, args=(conn, addr), daemon=True).start()


# ---- starting and stopping ---------------------------------------------------------------------------
def _state_dir(store):
    d = store.root / "network"
    d.mkdir(exist_ok=True)
    return d


def _pidfile(store, network_id: str) -> str:
    return str(_state_dir(store) / f"dns-{network_id[:12]}.pid")


def _start_time(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()
    if fields and fields[0] in ("Z", "X"):
        return None
    return fields[19] if len(fields) > 19 else None


def _running(fd: int) -> int | None:
    """The server's pid from the (locked) pid file when that process still runs."""
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, 100).decode(errors="replace").split()
    if len(text) != 2 or not text[0].isdigit():
        return None
    pid = int(text[0])
    return pid if _start_time(pid) == text[1] else None


class _Locked:
    def __init__(self, path: str) -> None:
        self.path = path

    def __enter__(self) -> int:
        import fcntl

        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self.fd

    def __exit__(self, *exc) -> None:
        os.close(self.fd)


def _bind(address: str) -> tuple[socket.socket, socket.socket]:
    fam = socket.AF_INET6 if ":" in address else socket.AF_INET
    udp = socket.socket(fam, socket.SOCK_DGRAM)
    tcp = socket.socket(fam, socket.SOCK_STREAM)
    try:
        for s in (udp, tcp):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.setsockopt(socket.SOL_IP, 15, 1)        # IP_FREEBIND: the bridge's address may be new
            s.bind((address, PORT))
        tcp.listen(64)
    except OSError:
        udp.close()
        tcp.close()
        raise
    return udp, tcp


def ensure(store, net, domains: tuple[str, ...] = ()) -> int | None:
    """The network's DNS server runs (its pid); started here when it does not. None: the network has
    no DNS (the default bridge, --disable-dns, an --internal network is served too, as docker)."""
    if not getattr(net, "dns", False) or net.ipam is None:
        return None
    domains = domains or tuple(d for d in [(net.options or {}).get(DOMAIN_OPTION)] if d)
    with _Locked(_pidfile(store, net.id)) as fd:
        pid = _running(fd)
        if pid is not None:
            return pid
        from pallet.network.bridge import NetworkSetupError

        try:
            udp, tcp = _bind(str(net.ipam.gateway))
        except OSError as e:
            raise NetworkSetupError(f"cannot start the DNS server of network {net.name} on "
                                    f"{net.ipam.gateway}:{PORT}: {e.strerror or e}") from None
        try:
            pid = _spawn(str(store.db.path), net.id, udp, tcp, domains, _pidfile(store, net.id)[:-4] + ".log")
        finally:
            udp.close()
            tcp.close()
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{pid} {_start_time(pid)}\n".encode(), 0)
        return pid


def _spawn(db_path: str, network_id: str, udp: socket.socket, tcp: socket.socket, domains, log_path: str) -> int:
    """posix_spawn (no copy of the caller's memory; ~1 ms) of `python -m pallet.network.dns` in a session of
    its own, the sockets as fds 3 and 4, stderr to the network's log. When the caller (a monitor) exits,
    the server is reparented like any orphan; a caller that lives on reaps it if it ends first (a zombie
    does not count as running)."""
    import fcntl
    import sys

    import pallet

    # -I -S: no site (nor its .pth files) to import, the package's directory on the path instead (~5 ms)
    src = os.path.dirname(os.path.dirname(os.path.abspath(pallet.__file__)))
    boot = f"import sys; sys.path.insert(0, {src!r}); from pallet.network.dns import main; main(sys.argv[1:])"
    argv = [sys.executable, "-I", "-S", "-c", boot, "pallet.network.dns", db_path, network_id, "3", "4",
            ",".join(domains)]
    u = fcntl.fcntl(udp.fileno(), fcntl.F_DUPFD_CLOEXEC, 10)
    t = fcntl.fcntl(tcp.fileno(), fcntl.F_DUPFD_CLOEXEC, 10)
    try:
        return os.posix_spawn(sys.executable, argv, os.environ, setsid=True, file_actions=[
            (os.POSIX_SPAWN_DUP2, u, 3), (os.POSIX_SPAWN_DUP2, t, 4),
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
            (os.POSIX_SPAWN_OPEN, 2, log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)])
    finally:
        os.close(u)
        os.close(t)


def stop(store, network_id: str) -> None:
    """End the network's server (if it runs) and wait until its sockets are closed."""
    path = _pidfile(store, network_id)
    if not os.path.exists(path):
        return
    with _Locked(path) as fd:
        _stop_locked(fd)
    try:
        os.unlink(path)
    except OSError:
        pass


def _stop_locked(fd: int) -> None:
    import signal
    import time

    pid = _running(fd)
    if pid is not None:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        for _ in range(2000):
            if _start_time(pid) is None:
                break
            time.sleep(0.001)
    os.ftruncate(fd, 0)


def stop_if_unused(store, network_id: str) -> None:
    """After a lease was given back: the network's last container gone, its server goes too."""
    path = _pidfile(store, network_id)
    if not os.path.exists(path):
        return
    with _Locked(path) as fd:
        if store.db.query("SELECT 1 FROM network_leases WHERE network_id = ? LIMIT 1", (network_id,)):
            return
        _stop_locked(fd)


def main(argv: list[str]) -> None:
    _tag, db_path, network_id, udp_fd, tcp_fd, domains = argv      # (_tag: the name ps and tests see)
    os.closerange(max(int(udp_fd), int(tcp_fd)) + 1, 65536)     # whatever the spawner had without CLOEXEC
    import signal

    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    udp = socket.socket(fileno=int(udp_fd))
    tcp = socket.socket(fileno=int(tcp_fd))
    serve(db_path, network_id, udp, tcp, tuple(d for d in domains.split(",") if d))


if __name__ == "__main__":
    import sys

    main(["pallet.network.dns", *sys.argv[1:]])
