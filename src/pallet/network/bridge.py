"""The bridge driver: a Linux bridge per network with the gateway's address, a veth pair per container
(one end on the bridge, the other moved into the container's network namespace with its address, `lo`
up and a default route via the gateway), and the network's firewall transaction.

Every step that fails undoes the steps before it. The caller's own network namespace holds the bridge
and the rules (pallet's "host"); a container's is named by a path (/proc/PID/ns/net, /run/netns/NAME).
"""

from __future__ import annotations

import errno
import os
import time

from pallet.errors import PalletError
from pallet.linux import sysctl
from pallet.linux.netlink import Netlink, netns_fd
from pallet.linux.nftables import NftError
from pallet.network import firewall

LOOPBACK_IFINDEX = 1   # lo is interface 1 in every network namespace

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pallet.network.model import Lease, Network


class NetworkSetupError(PalletError):
    """The kernel refused a step of a network's or a container's network setup."""


def _fail(step: str, e: OSError) -> NetworkSetupError:
    return NetworkSetupError(f"{step}: {e.strerror or e}")


def check_bridge_name(name: str) -> None:
    """A name the kernel accepts for a new interface, not taken by an interface that is not a bridge."""
    if not name or len(name) > 15 or "/" in name or any(c.isspace() for c in name) or name in (".", ".."):
        raise NetworkSetupError(f"invalid bridge name {name!r}: 1 to 15 characters, no '/' or spaces")
    with Netlink() as nl:
        kind = nl.link_kind(name)
        if nl.index(name) is not None and kind != "bridge":
            raise NetworkSetupError(f"bridge name {name!r} is taken by an interface that is not a bridge")


def link_names() -> list[str]:
    """The names of this namespace's interfaces."""
    with Netlink() as nl:
        return nl.link_names()


def routed_subnets() -> list[tuple[str, int]]:
    """IPv4 destinations routed in this namespace (and its addresses' networks), the default route aside."""
    with Netlink() as nl:
        return nl.ipv4_routes() + nl.ipv4_addresses()


def network_up(net: Network, *, force: bool = False) -> bool:
    """The network's bridge (with the gateway address, up) and its rules; True when it had to be made.
    A bridge already there is taken as set up (its rules went in with it) unless `force`."""
    with Netlink() as nl:
        idx = nl.index(net.bridge)
        if idx is not None and not force:
            return False
        created = idx is None
        try:
            idx = nl.add_bridge(net.bridge, up=True)
            if not created:   # (one that was there, e.g. pallet.toml's default_bridge made by someone else)
                nl.up(idx)
            if created:    # a MAC of its own: else the bridge takes its lowest port's and changes it when that
                # port leaves, and the containers' ARP entries for the gateway point nowhere for a while
                nl.set_link(idx, mac="02:42:" + ":".join(f"{b:02x}" for b in os.urandom(4)))
            nl.add_address(idx, str(net.ipam.gateway), net.ipam.subnet.prefixlen)
            if net.ipam6 is not None:   # (no DAD: the gateway answers at once)
                sysctl.write(f"net.ipv6.conf.{net.bridge}.disable_ipv6", "0")
                nl.add_address(idx, str(net.ipam6.gateway), net.ipam6.subnet.prefixlen)
        except OSError as e:
            if created:
                nl.delete_link(net.bridge)
            raise _fail(f"cannot set up bridge {net.bridge} of network {net.name}", e) from None
        try:
            if not net.internal:
                sysctl.write("net.ipv4.ip_forward", "1")
                if net.ipam6 is not None:
                    sysctl.write("net.ipv6.conf.all.forwarding", "1")
            firewall.apply(firewall.network_up(net))
        except OSError as e:
            if created:
                nl.delete_link(net.bridge)
            if isinstance(e, NftError):
                raise NetworkSetupError(f"cannot set up the firewall of network {net.name}: {e}") from None
            raise _fail(f"cannot set up network {net.name}", e) from None
    return created


def network_down(net: Network) -> None:
    """Remove the network's rules and its bridge (whatever of them is there)."""
    try:
        firewall.apply(firewall.network_down(net))
    except NftError as e:
        raise NetworkSetupError(f"cannot remove the firewall of network {net.name}: {e}") from None
    with Netlink() as nl:
        try:
            nl.delete_link(net.bridge)
        except OSError as e:
            raise _fail(f"cannot delete bridge {net.bridge}", e) from None


def container_ifname(netns_path: str) -> str:
    """The first free ethN in the container's namespace (eth0 for its first network)."""
    try:
        with Netlink(netns_path) as nl:
            names = set(nl.link_names())
    except OSError as e:
        raise _fail(f"cannot open network namespace {netns_path}", e) from None
    n = 0
    while f"eth{n}" in names:
        n += 1
    return f"eth{n}"


def attach(net: Network, lease: Lease, netns_path: str) -> None:
    """Plug the container whose namespace is `netns_path` into `net` with `lease`'s address."""
    network_up(net)
    try:
        fd = netns_fd(netns_path)
    except OSError as e:
        raise _fail(f"cannot open network namespace {netns_path}", e) from None
    try:
        with Netlink() as host:
            br = host.index(net.bridge)
            if br is None:
                raise NetworkSetupError(f"bridge {net.bridge} of network {net.name} vanished")
            try:   # one message: the host end on the bridge and up, the peer in the container with its MAC
                try:
                    host.add_veth(lease.host_ifname, lease.ifname, fd, master=br, mac=lease.mac, lookup=False)
                except FileExistsError:
                    # the same container's pair from its last run, which its old namespace's
                    # destruction has not taken yet (a restart right after the exit): delete, again;
                    # a link of that name that is no veth is not pallet's: left alone, refused
                    kind = host.link_kind(lease.host_ifname)
                    if kind != "veth":
                        raise NetworkSetupError(f"cannot create the veth pair {lease.host_ifname}/{lease.ifname}: "
                                                f"a link of that name exists and is {'a ' + kind if kind else 'no veth'}"
                                                ) from None
                    host.delete_link(lease.host_ifname)
                    host.add_veth(lease.host_ifname, lease.ifname, fd, master=br, mac=lease.mac, lookup=False)
            except OSError as e:
                host.delete_link(lease.host_ifname)
                if e.errno == errno.EOPNOTSUPP and host.link_kind(net.bridge) != "bridge":
                    raise NetworkSetupError(f"cannot plug into network {net.name}: link {net.bridge} is not a "
                                            "bridge (another program made a link of that name)") from None
                raise _fail(f"cannot create the veth pair {lease.host_ifname}/{lease.ifname}", e) from None
            try:
                with Netlink(netns_path) as ct:
                    idx = ct.index(lease.ifname)
                    if idx is None:
                        raise OSError(errno.ENODEV, f"{lease.ifname} did not appear in the container")
                    with ct.batch():   # one send: address, up, lo up, default route (applied in this order)
                        ct.add_address(idx, lease.address, net.ipam.subnet.prefixlen)
                        if lease.address6:   # (IFA_F_NODAD: usable at once, no "tentative" second)
                            ct.add_address(idx, lease.address6, lease.prefixlen6)
                        ct.up(idx)     # (not in the create message: a veth end cannot go up before its peer exists)
                        ct.up(LOOPBACK_IFINDEX)
                        if not net.internal:
                            ct.add_default_route(str(net.ipam.gateway))
                            if lease.address6:
                                ct.add_default_route(lease.gateway6)
            except OSError as e:
                host.delete_link(lease.host_ifname)
                raise _fail(f"cannot configure {lease.ifname} in the container", e) from None
    finally:
        os.close(fd)


def detach(lease: Lease, *, exited: bool = False) -> None:
    """Delete the container's veth pair (both ends go with the host end).

    `exited`: the container's init is gone, and with it (unless something else holds it) its network
    namespace, whose destruction by the kernel (asynchronous, 10-40 ms later) takes the pair: deleting
    it ourselves would cost as much (16-40 ms, waiting for RCU), on the caller's time. So a thread
    (`settle()` joins it) waits for the pair to go by itself and deletes it only if it is still there
    after `REAP_GRACE` seconds (the namespace is held elsewhere): none is ever left behind."""
    if exited:
        import threading  # (only now: 1.3 ms of the monitor's start otherwise)

        t = threading.Thread(target=_reap, args=(lease.host_ifname,), name="veth-reap")
        t.start()
        _reaping.append(t)
        return
    with Netlink() as nl:
        try:
            nl.delete_link(lease.host_ifname)
        except OSError as e:
            raise _fail(f"cannot delete veth {lease.host_ifname}", e) from None


REAP_GRACE = 2.0
_reaping: list = []   # threads


def _reap(name: str) -> None:
    try:
        with Netlink() as nl:
            deadline = time.monotonic() + REAP_GRACE
            while nl.index(name) is not None:
                if time.monotonic() > deadline:
                    nl.delete_link(name)
                    return
                time.sleep(0.002)
    except OSError:
        pass


def reap_later(leases) -> None:
    """After a container's init is gone (`rm -f`, a failed start), its veth pairs without waiting: those
    its namespace's destruction has not taken yet are left to a detached process (double fork: not a
    child of the caller, no fd of the caller's kept open, no thread the caller's exit waits for) that
    deletes any still there after `REAP_GRACE` seconds (the namespace held elsewhere): none is ever left
    behind, and the caller does not pay the 16-40 ms of a veth's deletion."""
    with Netlink() as nl:   # (name, index): a pair of that name made since, by a restart, is not this one
        left = [(le.host_ifname, i) for le in leases if (i := nl.index(le.host_ifname)) is not None]
    if not left:
        return
    pid = os.fork()
    if pid == 0:   # (only os calls and a netlink socket here, then _exit: safe after fork)
        try:
            if os.fork() == 0:
                os.setsid()
                os.closerange(0, 1 << 20)     # (locks, the database, the caller's pipes: not held by us)
                fd = os.open(os.devnull, os.O_RDWR)
                for n in (0, 1, 2):
                    if fd != n:
                        os.dup2(fd, n)
                _reap_all(left)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)


def _reap_all(links: list[tuple[str, int]]) -> None:
    try:
        with Netlink() as nl:
            deadline = time.monotonic() + REAP_GRACE
            while links:
                links = [(n, i) for n, i in links if nl.index(n) == i]
                if links and time.monotonic() > deadline:
                    for n, i in links:
                        try:
                            if nl.index(n) == i:
                                nl.delete_link(n)
                        except OSError:
                            pass
                    return
                time.sleep(0.005)
    except OSError:
        pass


def settle() -> None:
    """Wait for the veth pairs `detach(exited=True)` left to the kernel to be gone."""
    while _reaping:
        _reaping.pop().join()
