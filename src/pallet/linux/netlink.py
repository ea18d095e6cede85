"""rtnetlink by pyroute2: links, addresses and routes, in this or another network namespace.

A socket for another namespace is opened by a short-lived thread that setns(2)s into it, opens the
socket and returns (setns changes only the calling thread), so nothing forks and the caller's own
namespace never changes. Every call raises `OSError` (pyroute2's `NetlinkError` is one) on failure.
"""

from __future__ import annotations

import errno
import os
import socket
import threading

from pallet.linux.ns import CLONE_NEWNET, setns

AF_INET = socket.AF_INET
NETLINK_ROUTE = 0


def _socket_in(netns_path: str) -> socket.socket:
    out: dict = {}

    def enter() -> None:
        try:
            own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
            try:
                target = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
                try:
                    setns(target, CLONE_NEWNET)
                    try:
                        out["sock"] = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_ROUTE)
                    finally:
                        setns(own, CLONE_NEWNET)
                finally:
                    os.close(target)
            finally:
                os.close(own)
        except OSError as e:
            out["error"] = e

    t = threading.Thread(target=enter, name="netns-socket")
    t.start()
    t.join()
    if "error" in out:
        raise out["error"]
    return out["sock"]


def netns_fd(netns_path: str) -> int:
    return os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)


class _OSErrors:
    """An IPRoute whose calls raise OSError(errno) for the kernel's refusals (pyroute2 0.9's
    NetlinkError is not an OSError)."""

    def __init__(self, ipr) -> None:
        from pyroute2.netlink.exceptions import NetlinkError

        self._ipr, self._error = ipr, NetlinkError

    def __getattr__(self, name: str):
        attr = getattr(self._ipr, name)
        if not callable(attr):
            return attr

        def call(*args, **kw):
            try:
                return attr(*args, **kw)
            except self._error as e:
                code = getattr(e, "code", 0) or 0
                raise OSError(code, os.strerror(code) if code > 0 else str(e)) from None

        return call


class Netlink:
    """One rtnetlink socket in one network namespace (the caller's own when `netns` is None)."""

    def __init__(self, netns: str | None = None) -> None:
        from pyroute2 import IPRoute

        self.netns = netns
        self.ipr = _OSErrors(IPRoute(fileno=_socket_in(netns).detach()) if netns else IPRoute())

    def close(self) -> None:
        self.ipr.close()

    def __enter__(self) -> Netlink:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- links ---------------------------------------------------------------------------
    def index(self, name: str) -> int | None:
        found = self.ipr.link_lookup(ifname=name)
        return found[0] if found else None

    def link_names(self) -> list[str]:
        return [link.get("ifname") for link in self.ipr.get_links()]

    def link_kind(self, name: str) -> str | None:
        idx = self.index(name)
        if idx is None:
            return None
        (link,) = self.ipr.get_links(idx)
        info = link.get("IFLA_LINKINFO")
        return info.get("IFLA_INFO_KIND") if info else None

    def add_bridge(self, name: str) -> int:
        """A bridge named `name` (the existing one if there is one), its index."""
        try:
            self.ipr.link("add", ifname=name, kind="bridge")
        except OSError as e:
            if e.errno != errno.EEXIST:
                raise
        idx = self.index(name)
        if idx is None:
            raise OSError(errno.ENODEV, f"bridge {name} vanished after it was created")
        return idx

    def add_veth(self, name: str, peer: str, peer_netns_fd: int, *, master: int, mac: str | None = None) -> int:
        """A veth pair: `name` here (enslaved to `master`), `peer` created directly in the namespace of
        `peer_netns_fd` (so its name may exist here too)."""
        peer_spec: dict = {"ifname": peer, "net_ns_fd": peer_netns_fd}
        if mac:
            peer_spec["address"] = mac
        self.ipr.link("add", ifname=name, kind="veth", peer=peer_spec)
        idx = self.index(name)
        if idx is None:
            raise OSError(errno.ENODEV, f"veth {name} vanished after it was created")
        self.ipr.link("set", index=idx, master=master, state="up")
        return idx

    def up(self, idx: int) -> None:
        self.ipr.link("set", index=idx, state="up")

    def delete_link(self, name: str) -> bool:
        """Delete a link; False when there was none."""
        idx = self.index(name)
        if idx is None:
            return False
        try:
            self.ipr.link("del", index=idx)
        except OSError as e:
            if e.errno == errno.ENODEV:
                return False
            raise
        return True

    # ---- addresses and routes ------------------------------------------------------------
    def add_address(self, idx: int, address: str, prefixlen: int) -> None:
        try:
            self.ipr.addr("add", index=idx, address=address, prefixlen=prefixlen)
        except OSError as e:
            if e.errno != errno.EEXIST:
                raise

    def add_default_route(self, gateway: str) -> None:
        try:
            self.ipr.route("add", dst="0.0.0.0/0", gateway=gateway)
        except OSError as e:
            if e.errno != errno.EEXIST:
                raise

    def ipv4_routes(self) -> list[tuple[str, int]]:
        """(destination, prefix length) of every IPv4 route in every table but the default route."""
        out = []
        for r in self.ipr.get_routes(family=AF_INET):
            dst, plen = r.get("RTA_DST"), r["dst_len"]
            if dst and plen:
                out.append((dst, plen))
        return out

    def ipv4_addresses(self) -> list[tuple[str, int]]:
        return [(a.get("IFA_ADDRESS"), a["prefixlen"]) for a in self.ipr.get_addr(family=AF_INET)]
