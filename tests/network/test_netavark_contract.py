"""pallet-netavark's contract without the kernel: version, create, and netavark's errors
(`{"error": "..."}` on stdout, the message on stderr, exit code 1)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent / "pallet-netavark"


def netavark(*args: str, input: str = "") -> subprocess.CompletedProcess:
    cp = subprocess.run([str(BIN), *args], input=input, capture_output=True, text=True, timeout=30)
    assert "Traceback" not in cp.stderr, cp.stderr
    return cp


def test_version():
    cp = netavark("version")
    assert cp.returncode == 0
    doc = json.loads(cp.stdout)
    assert doc["version"].startswith("1.") and set(doc) == {"version", "commit", "build_time", "target"}
    assert netavark("--version").stdout.startswith("pallet-netavark 1.")


@pytest.mark.parametrize("args,stdin,message", [
    (["frobnicate"], "", "unknown command 'frobnicate'"),
    ([], "", "a command is needed"),
    (["--bogus", "setup", "/proc/self/ns/net"], "{}", "unknown option '--bogus'"),
    (["setup", "/proc/self/ns/net"], "{not json", "invalid JSON input"),
    (["setup", "/no/such/netns"], "{}", "failed to open the network namespace /no/such/netns"),
    (["setup"], "{}", "setup needs one argument"),
    (["setup", "/proc/self/ns/net"], "{}", "container_id is missing"),
    (["-f", "/no/such/file", "teardown", "/proc/self/ns/net"], "", "cannot read /no/such/file"),
])
def test_errors_are_netavarks(tmp_path, args, stdin, message):
    cp = netavark("--config", str(tmp_path), *args, input=stdin)
    assert cp.returncode == 1
    assert message in json.loads(cp.stdout)["error"]
    assert cp.stderr.startswith("Error: ") and message in cp.stderr


def test_setup_refuses_a_network_it_cannot_make(tmp_path):
    opts = {"container_id": "c" * 64, "container_name": "x",
            "networks": {"mv": {"interface_name": "eth0", "static_ips": ["10.1.0.2"]}},
            "network_info": {"mv": {"name": "mv", "id": "a" * 64, "driver": "macvlan", "dns_enabled": False,
                                    "internal": False, "ipv6_enabled": False,
                                    "subnets": [{"subnet": "10.1.0.0/24", "gateway": "10.1.0.1"}]}}}
    f = tmp_path / "opts.json"
    f.write_text(json.dumps(opts))
    cp = netavark("--config", str(tmp_path), "--rootless=false", "--aardvark-binary=/x/aardvark-dns", "-f", str(f),
                  "setup", "/proc/self/ns/net")
    assert cp.returncode == 1 and json.loads(cp.stdout) == {
        "error": "unsupported driver macvlan: pallet-netavark has the bridge driver"}


def test_create_completes_a_network(tmp_path):
    cp = netavark("--config", str(tmp_path), "create",
                  input=json.dumps({"name": "n1", "id": "b" * 64, "driver": "bridge", "dns_enabled": True}))
    assert cp.returncode == 0, cp.stdout
    doc = json.loads(cp.stdout)
    assert doc["name"] == "n1" and doc["id"] == "b" * 64 and doc["network_interface"] == "podman1"
    (sub,) = doc["subnets"]
    assert sub["subnet"].endswith("/16") and sub["gateway"].endswith(".1") and doc["dns_enabled"] is True
    given = netavark("--config", str(tmp_path), "create", input=json.dumps(
        {"name": "n2", "id": "c" * 64, "driver": "bridge", "subnets": [{"subnet": "10.44.0.0/24"}]}))
    assert json.loads(given.stdout)["subnets"] == [{"subnet": "10.44.0.0/24", "gateway": "10.44.0.1"}]
    bad = netavark("--config", str(tmp_path), "create", input=json.dumps(
        {"name": "n3", "id": "d" * 64, "driver": "bridge", "subnets": [{"subnet": "10.44.0.0/33"}]}))
    assert bad.returncode == 1 and "10.44.0.0/33" in json.loads(bad.stdout)["error"]
