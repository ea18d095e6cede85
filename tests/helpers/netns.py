"""Network namespaces for network tests: every bridge, veth, route and nft rule a test makes lives in
a namespace the test made, and the namespace is deleted afterwards, also on failure.

`nsenter --net=/run/netns/NAME` (not `ip netns exec`, which remounts /sys) runs a command in one.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
from collections.abc import Iterator

NETNS_DIR = "/run/netns"


def nsenter(name: str) -> list[str]:
    return ["nsenter", f"--net={NETNS_DIR}/{name}"]


class Netns:
    def __init__(self, name: str) -> None:
        self.name = name
        self.path = f"{NETNS_DIR}/{name}"

    def prefix(self) -> list[str]:
        return nsenter(self.name)

    def run(self, *argv: str, check: bool = True, timeout: float = 30, **kw) -> subprocess.CompletedProcess:
        cp = subprocess.run([*self.prefix(), *argv], capture_output=True, text=True, timeout=timeout, **kw)
        if check and cp.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} in {self.name} exited {cp.returncode}: {cp.stderr}")
        return cp

    def links(self) -> list[str]:
        out = self.run("ip", "-o", "link", "show").stdout
        return [ln.split(": ")[1].split("@")[0] for ln in out.splitlines() if ": " in ln]

    def __repr__(self) -> str:
        return f"Netns({self.name!r})"


@contextlib.contextmanager
def netns(tag: str = "") -> Iterator[Netns]:
    """A fresh network namespace with `lo` up, deleted on exit whatever happened."""
    name = f"pallet-test-{tag}{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)
    try:
        ns = Netns(name)
        ns.run("ip", "link", "set", "lo", "up")
        yield ns
    finally:
        subprocess.run(["ip", "netns", "delete", name], capture_output=True)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{NETNS_DIR}/{name}")


def host_state() -> tuple[list[str], str]:
    """The links and nft tables of this process's own namespace (compared before and after a test)."""
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=True).stdout
    names = sorted(ln.split(": ")[1].split("@")[0] for ln in links.splitlines() if ": " in ln)
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    return names, tables


# ---- fixtures (import them into a test module: `from helpers.netns import host_ns_fixture, make_ns_fixture`)
import pytest  # noqa: E402


@pytest.fixture(name="make_ns")
def make_ns_fixture():
    """A factory of namespaces (a container's), all deleted at the end of the test."""
    with contextlib.ExitStack() as stack:
        yield lambda tag="c": stack.enter_context(netns(tag))


@pytest.fixture(name="host_ns")
def host_ns_fixture():
    """pallet's "host" for the test: a namespace holding the bridges and rules; afterwards this
    machine's own namespace must have the same links and nft tables as before."""
    before = host_state()
    with netns("h") as ns:
        yield ns
    assert host_state() == before, "a network test changed this machine's own network namespace"


# ---- the session's namespace (tests/conftest.py) ------------------------------------------------
# The whole pytest session runs in a network namespace of its own (every pallet, podman, registry and
# server a test starts is in it; 127.0.0.1 works: its `lo` is up), so no test ever changes this
# machine's network, even now that every `pallet run` on the default network makes a veth and the
# default bridge. The machine's own namespace stays reachable for the one test that needs a mirror
# (debootstrap): `machine_netns_prefix()`.
SESSION_PREFIX = "pallet-session-"
_session: dict = {}


def enter_session_netns() -> str | None:
    """Make and enter `pallet-session-PID` (call before any thread exists); None when not root."""
    if os.geteuid() != 0 or _session:
        return None
    from pallet.linux.netlink import Netlink
    from pallet.linux.ns import CLONE_NEWNET, setns

    name = f"{SESSION_PREFIX}{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)
    _session["machine_fd"] = os.open("/proc/self/ns/net", os.O_RDONLY)     # (inheritable: for nsenter)
    fd = os.open(f"{NETNS_DIR}/{name}", os.O_RDONLY | os.O_CLOEXEC)
    try:
        setns(fd, CLONE_NEWNET)
    finally:
        os.close(fd)
    _session["name"] = name
    with Netlink() as nl:
        nl.up(1)   # lo
    return name


def leave_session_netns() -> None:
    name = _session.pop("name", None)
    fd = _session.pop("machine_fd", None)
    if name is None:
        return
    from pallet.linux.ns import CLONE_NEWNET, setns

    with contextlib.suppress(OSError):
        setns(fd, CLONE_NEWNET)
    subprocess.run(["ip", "netns", "delete", name], capture_output=True)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(f"{NETNS_DIR}/{name}")
    os.close(fd)


def machine_netns_prefix() -> list[str]:
    """`nsenter` into this machine's own network namespace (for a download from the apt mirror only)."""
    fd = _session.get("machine_fd")
    return [] if fd is None else ["nsenter", f"--net=/proc/{os.getpid()}/fd/{fd}"]


def remove_default_bridges() -> None:
    """After each test: the default bridges (`pallet*`, docker0's analogue, which outlive their
    containers by design) that a test's store left in the session's namespace go, and pallet's nft
    table with them, so the next test's store starts from a clean namespace: no bridge name or subnet
    clash, and the default pool never runs out over a thousand tests. A bridge that still has ports
    (containers a module-scoped fixture keeps running) stays, and so does the table then (the next
    store's default bridge is the next free palletN: `networks.default_bridge_name`)."""
    if "name" not in _session:
        return
    from pallet.linux.netlink import Netlink

    with Netlink() as nl:
        masters = nl.link_masters()
        bridges = [name for name in masters if name.startswith("pallet")]
        busy = {m for m in masters.values() if m}
        for name in bridges:
            if name not in busy:
                nl.delete_link(name)
    if bridges and not busy & set(bridges):
        subprocess.run(["nft", "delete", "table", "inet", "pallet"], capture_output=True)
