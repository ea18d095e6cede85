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
