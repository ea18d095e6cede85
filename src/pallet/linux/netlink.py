"""rtnetlink over an AF_NETLINK socket: links, addresses and routes, in this or another network namespace.

The messages pallet needs are packed here with `struct` (no pyroute2: its import alone cost ~95 ms of
`pallet run`): link create (bridge, veth with its peer made directly in another namespace, master,
up and MAC in the same message), link set, link delete, address add, route add, and dumps of links,
IPv4 addresses and routes. Every request asks for an acknowledgement (NLM_F_ACK); a refusal is an
`OSError(errno, "CALL: strerror")`. `batch()` sends several requests in one sendmsg and reads their
acknowledgements together.

A socket for another namespace is opened by the calling thread between a setns(2) into it and one
back (setns changes only the calling thread), so nothing forks and the caller's namespace is its own
again before the call returns: a netlink socket stays bound to the namespace it was opened in.
"""

from __future__ import annotations

import errno
import os
import socket
import struct

from pallet.linux import trace as T
from pallet.linux.ns import CLONE_NEWNET, setns

AF_INET, AF_INET6 = socket.AF_INET, socket.AF_INET6
NETLINK_ROUTE = 0

# message types and flags (linux/netlink.h, linux/rtnetlink.h)
NLMSG_ERROR, NLMSG_DONE = 2, 3
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK, RTM_SETLINK = 16, 17, 18, 19
RTM_NEWADDR, RTM_GETADDR = 20, 22
RTM_NEWROUTE, RTM_GETROUTE = 24, 26
NLM_F_REQUEST, NLM_F_MULTI, NLM_F_ACK = 0x1, 0x2, 0x4
NLM_F_DUMP = 0x300
NLM_F_EXCL, NLM_F_CREATE = 0x200, 0x400

IFF_UP = 0x1
IFLA_ADDRESS, IFLA_IFNAME, IFLA_MASTER, IFLA_LINKINFO, IFLA_NET_NS_FD = 1, 3, 10, 18, 28
IFLA_INFO_KIND, IFLA_INFO_DATA = 1, 2
VETH_INFO_PEER = 1
IFA_ADDRESS, IFA_LOCAL = 1, 2
IFA_F_NODAD = 0x02
RTA_DST, RTA_GATEWAY, RTA_TABLE = 1, 5, 15
RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_UNIVERSE, RT_SCOPE_LINK, RTN_UNICAST = 254, 3, 0, 253, 1

_NLMSGHDR = struct.Struct("=IHHII")       # len, type, flags, seq, pid
_IFINFOMSG = struct.Struct("=BxHiII")     # family, (pad), type, index, flags, change
_IFADDRMSG = struct.Struct("=BBBBI")      # family, prefixlen, flags, scope, index
_RTMSG = struct.Struct("=BBBBBBBBI")      # family, dst_len, src_len, tos, table, protocol, scope, type, flags
_RTATTR = struct.Struct("=HH")            # len, type
_ERR = struct.Struct("=i")


def _attr(kind: int, payload: bytes) -> bytes:
    n = _RTATTR.size + len(payload)
    return _RTATTR.pack(n, kind) + payload + b"\0" * (-n & 3)


def _str(kind: int, text: str) -> bytes:
    return _attr(kind, text.encode() + b"\0")


def _u32(kind: int, value: int) -> bytes:
    return _attr(kind, struct.pack("=I", value))


def _mac(text: str) -> bytes:
    return bytes(int(x, 16) for x in text.split(":"))


def _attrs(data: bytes, offset: int = 0) -> dict[int, bytes]:
    """{type: payload} of the attributes in data[offset:] (the nested flag masked off)."""
    out: dict[int, bytes] = {}
    end = len(data)
    while offset + _RTATTR.size <= end:
        n, kind = _RTATTR.unpack_from(data, offset)
        if n < _RTATTR.size:
            break
        out[kind & 0x3FFF] = data[offset + _RTATTR.size:offset + n]
        offset += (n + 3) & ~3
    return out


def _cstr(payload: bytes) -> str:
    return payload.split(b"\0", 1)[0].decode(errors="replace")


def _socket_in(netns_path: str) -> socket.socket:
    """A netlink socket in the namespace at `netns_path`: this thread setns(2)s into it, opens the socket
    and setns(2)s back (setns changes only the calling thread; a thread of its own for it cost up to a
    GIL switch interval, 5 ms, in the monitor)."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        target = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            setns(target, CLONE_NEWNET)
            try:
                return socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_ROUTE)
            finally:
                setns(own, CLONE_NEWNET)
        finally:
            os.close(target)
    finally:
        os.close(own)


def netns_fd(netns_path: str) -> int:
    return os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)


class Netlink:
    """One rtnetlink socket in one network namespace (the caller's own when `netns` is None)."""

    def __init__(self, netns: str | None = None) -> None:
        self.netns = netns
        self.sock = _socket_in(netns) if netns else socket.socket(
            socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_ROUTE)
        self.sock.bind((0, 0))
        self._seq = 0
        self._batch: list[tuple[int, bytes, str, tuple[int, ...]]] | None = None

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Netlink:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- the exchange ---------------------------------------------------------------------------
    def _msg(self, kind: int, flags: int, body: bytes) -> tuple[int, bytes]:
        self._seq += 1
        return self._seq, _NLMSGHDR.pack(_NLMSGHDR.size + len(body), kind, flags | NLM_F_REQUEST, self._seq, 0) + body

    def _recv(self) -> bytes:
        return self.sock.recv(65536)

    def _acks(self, pending: dict[int, tuple[str, tuple[int, ...]]]) -> None:
        """Read the acknowledgements of `pending` ({seq: (call, errnos to ignore)}); the first refusal
        (after all are read) is raised."""
        first: OSError | None = None
        while pending:
            data = self._recv()
            off = 0
            while off + _NLMSGHDR.size <= len(data):
                n, kind, _flags, seq, _pid = _NLMSGHDR.unpack_from(data, off)
                if kind == NLMSG_ERROR and seq in pending:
                    code = -_ERR.unpack_from(data, off + _NLMSGHDR.size)[0]
                    call, ok = pending.pop(seq)
                    if code and code not in ok and first is None:
                        first = OSError(code, f"{call}: {os.strerror(code)}")
                off += (n + 3) & ~3
                if n == 0:
                    break
        if first is not None:
            raise first

    def _request(self, kind: int, flags: int, body: bytes, call: str, ok: tuple[int, ...] = ()) -> None:
        seq, msg = self._msg(kind, flags | NLM_F_ACK, body)
        r = T.recorder
        if self._batch is not None:
            if r:   # (its acknowledgement is read with the batch's: a refusal is raised there)
                r.done("netlink", T.now(), {"call": call, "netns": self.netns, "batched": True})
            self._batch.append((seq, msg, call, ok))
            return
        t = T.now() if r else 0
        self.sock.send(msg)
        try:
            self._acks({seq: (call, ok)})
        except OSError as e:
            if r:
                r.done("netlink", t, {"call": call, "netns": self.netns}, e)
            raise
        if r:
            r.done("netlink", t, {"call": call, "netns": self.netns})

    def batch(self) -> _Batch:
        """`with nl.batch(): ...`: the requests made inside go out in one send, their acks read at the
        end (each is still applied or refused on its own: the first refusal is raised)."""
        return _Batch(self)

    def _dump(self, kind: int, body: bytes, call: str) -> list[tuple[int, bytes]]:
        """(type, message body) of each answer to a dump request."""
        seq, msg = self._msg(kind, NLM_F_DUMP, body)
        self.sock.send(msg)
        out = []
        while True:
            data = self._recv()
            off = 0
            while off + _NLMSGHDR.size <= len(data):
                n, mtype, _flags, mseq, _pid = _NLMSGHDR.unpack_from(data, off)
                if n < _NLMSGHDR.size:
                    return out
                if mseq == seq:
                    if mtype == NLMSG_DONE:
                        return out
                    if mtype == NLMSG_ERROR:
                        code = -_ERR.unpack_from(data, off + _NLMSGHDR.size)[0]
                        if code:
                            raise OSError(code, f"{call}: {os.strerror(code)}")
                        return out
                    out.append((mtype, data[off + _NLMSGHDR.size:off + n]))
                off += (n + 3) & ~3

    def _get_link(self, name: str) -> bytes | None:
        """The RTM_NEWLINK answer (body) for the link named `name`, None when there is none."""
        seq, msg = self._msg(RTM_GETLINK, 0, _IFINFOMSG.pack(0, 0, 0, 0, 0) + _str(IFLA_IFNAME, name))
        self.sock.send(msg)
        while True:
            data = self._recv()
            off = 0
            while off + _NLMSGHDR.size <= len(data):
                n, mtype, _flags, mseq, _pid = _NLMSGHDR.unpack_from(data, off)
                if n < _NLMSGHDR.size:
                    break
                if mseq == seq:      # (no NLM_F_ACK: the answer is the link or an error, alone)
                    if mtype == RTM_NEWLINK:
                        return data[off + _NLMSGHDR.size:off + n]
                    if mtype == NLMSG_ERROR:
                        code = -_ERR.unpack_from(data, off + _NLMSGHDR.size)[0]
                        if code in (errno.ENODEV, errno.ENOENT) or not code:
                            return None
                        raise OSError(code, f"get link {name}: {os.strerror(code)}")
                off += (n + 3) & ~3

    # ---- links ------------------------------------------------------------------------------
    def index(self, name: str) -> int | None:
        body = self._get_link(name)
        return None if body is None else _IFINFOMSG.unpack_from(body)[2]

    def links(self) -> list[tuple[int, str]]:
        """(index, name) of every link."""
        out = []
        for mtype, body in self._dump(RTM_GETLINK, _IFINFOMSG.pack(0, 0, 0, 0, 0), "dump links"):
            if mtype == RTM_NEWLINK:
                a = _attrs(body, _IFINFOMSG.size)
                out.append((_IFINFOMSG.unpack_from(body)[2], _cstr(a.get(IFLA_IFNAME, b""))))
        return out

    def link_names(self) -> list[str]:
        return [name for _, name in self.links()]

    def link_masters(self) -> dict[str, str | None]:
        """{name: its master's name (the bridge it is a port of) or None} of every link."""
        names, masters = {}, {}
        for mtype, body in self._dump(RTM_GETLINK, _IFINFOMSG.pack(0, 0, 0, 0, 0), "dump links"):
            if mtype == RTM_NEWLINK:
                a = _attrs(body, _IFINFOMSG.size)
                idx = _IFINFOMSG.unpack_from(body)[2]
                names[idx] = _cstr(a.get(IFLA_IFNAME, b""))
                if IFLA_MASTER in a:
                    masters[idx] = struct.unpack("=I", a[IFLA_MASTER][:4])[0]
        return {name: names.get(masters[idx]) if idx in masters else None for idx, name in names.items()}

    def link_kind(self, name: str) -> str | None:
        body = self._get_link(name)
        if body is None:
            return None
        info = _attrs(body, _IFINFOMSG.size).get(IFLA_LINKINFO)
        if info is None:
            return None
        kind = _attrs(info).get(IFLA_INFO_KIND)
        return _cstr(kind) if kind is not None else None

    def add_bridge(self, name: str, *, up: bool = False) -> int:
        """A bridge named `name` (the existing one if there is one), its index."""
        body = (_IFINFOMSG.pack(0, 0, 0, IFF_UP if up else 0, IFF_UP if up else 0) + _str(IFLA_IFNAME, name)
                + _attr(IFLA_LINKINFO, _str(IFLA_INFO_KIND, "bridge")))
        self._request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, body, f"create bridge {name}", (errno.EEXIST,))
        idx = self.index(name)
        if idx is None:
            raise OSError(errno.ENODEV, f"bridge {name} vanished after it was created")
        return idx

    def add_veth(self, name: str, peer: str, peer_netns_fd: int, *, master: int, mac: str | None = None,
                 lookup: bool = True) -> int | None:
        """A veth pair in one message: `name` here (enslaved to `master`, up), `peer` created directly
        in the namespace of `peer_netns_fd` (so its name may exist here too) with `mac`. Its index,
        unless `lookup` is False or inside a batch (None then). The peer is left down: the kernel refuses to bring a
        veth end up in the message that creates it (ENOTCONN: its peer does not exist yet)."""
        peer_msg = (_IFINFOMSG.pack(0, 0, 0, 0, 0)
                    + _str(IFLA_IFNAME, peer) + _u32(IFLA_NET_NS_FD, peer_netns_fd)
                    + (_attr(IFLA_ADDRESS, _mac(mac)) if mac else b""))
        linkinfo = _str(IFLA_INFO_KIND, "veth") + _attr(IFLA_INFO_DATA, _attr(VETH_INFO_PEER, peer_msg))
        body = (_IFINFOMSG.pack(0, 0, 0, IFF_UP, IFF_UP) + _str(IFLA_IFNAME, name) + _u32(IFLA_MASTER, master)
                + _attr(IFLA_LINKINFO, linkinfo))
        self._request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, body, f"create veth {name}/{peer}")
        if self._batch is not None or not lookup:
            return None
        idx = self.index(name)
        if idx is None:
            raise OSError(errno.ENODEV, f"veth {name} vanished after it was created")
        return idx

    def up(self, idx: int) -> None:
        self._request(RTM_NEWLINK, 0, _IFINFOMSG.pack(0, 0, idx, IFF_UP, IFF_UP), f"set link {idx} up")

    def set_link(self, idx: int, *, name: str | None = None, mac: str | None = None, master: int | None = None,
                 netns_fd: int | None = None, up: bool | None = None) -> None:
        """Change a link: its name, MAC, master, namespace, up/down (one message)."""
        flags = IFF_UP if up else 0
        change = IFF_UP if up is not None else 0
        body = _IFINFOMSG.pack(0, 0, idx, flags, change)
        if name is not None:
            body += _str(IFLA_IFNAME, name)
        if mac is not None:
            body += _attr(IFLA_ADDRESS, _mac(mac))
        if master is not None:
            body += _u32(IFLA_MASTER, master)
        if netns_fd is not None:
            body += _u32(IFLA_NET_NS_FD, netns_fd)
        self._request(RTM_NEWLINK, 0, body, f"set link {idx}")

    def delete_link(self, name: str) -> bool:
        """Delete a link by name; False when there was none."""
        try:
            self._request(RTM_DELLINK, 0, _IFINFOMSG.pack(0, 0, 0, 0, 0) + _str(IFLA_IFNAME, name),
                          f"delete link {name}")
        except OSError as e:
            if e.errno in (errno.ENODEV, errno.ENOENT):
                return False
            raise
        return True

    # ---- addresses and routes ---------------------------------------------------------------
    def add_address(self, idx: int, address: str, prefixlen: int) -> None:
        """An IPv4 or IPv6 address; an IPv6 one without duplicate address detection (IFA_F_NODAD: usable
        at once instead of "tentative" for a second or more, as docker's and netavark's)."""
        if ":" in address:
            raw = socket.inet_pton(AF_INET6, address)
            body = _IFADDRMSG.pack(AF_INET6, prefixlen, IFA_F_NODAD, RT_SCOPE_UNIVERSE, idx) + _attr(IFA_ADDRESS, raw)
        else:
            raw = socket.inet_aton(address)
            body = (_IFADDRMSG.pack(AF_INET, prefixlen, 0, RT_SCOPE_UNIVERSE, idx)
                    + _attr(IFA_LOCAL, raw) + _attr(IFA_ADDRESS, raw))
        self._request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, body, f"add address {address}/{prefixlen}",
                      (errno.EEXIST,))

    def add_default_route(self, gateway: str) -> None:
        """The IPv4 or IPv6 (by the gateway's family) default route via `gateway`."""
        family = AF_INET6 if ":" in gateway else AF_INET
        body = (_RTMSG.pack(family, 0, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_UNIVERSE, RTN_UNICAST, 0)
                + _attr(RTA_GATEWAY, socket.inet_pton(family, gateway)))
        self._request(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, body, f"add default route via {gateway}",
                      (errno.EEXIST,))

    def ipv4_routes(self) -> list[tuple[str, int]]:
        """(destination, prefix length) of every IPv4 route in every table but the default route."""
        out = []
        body = _RTMSG.pack(AF_INET, 0, 0, 0, 0, 0, 0, 0, 0)
        for mtype, msg in self._dump(RTM_GETROUTE, body, "dump routes"):
            if mtype != RTM_NEWROUTE:
                continue
            plen = msg[1]
            dst = _attrs(msg, _RTMSG.size).get(RTA_DST)
            if dst and plen and len(dst) == 4:
                out.append((socket.inet_ntoa(dst), plen))
        return out

    def ipv4_addresses(self) -> list[tuple[str, int]]:
        out = []
        for mtype, msg in self._dump(RTM_GETADDR, _IFADDRMSG.pack(AF_INET, 0, 0, 0, 0), "dump addresses"):
            if mtype != RTM_NEWADDR:
                continue
            a = _attrs(msg, _IFADDRMSG.size)
            raw = a.get(IFA_ADDRESS) or a.get(IFA_LOCAL)
            if raw and len(raw) == 4:
                out.append((socket.inet_ntoa(raw), msg[1]))
        return out


class _Batch:
    def __init__(self, nl: Netlink) -> None:
        self.nl = nl

    def __enter__(self) -> Netlink:
        self.nl._batch = []
        return self.nl

    def __exit__(self, exc_type, *exc) -> None:
        items, self.nl._batch = self.nl._batch, None
        if exc_type is not None or not items:
            return
        self.nl.sock.sendall(b"".join(msg for _, msg, _, _ in items))
        self.nl._acks({seq: (call, ok) for seq, _, call, ok in items})
