"""docker's network events (create, connect, disconnect, destroy), with pallet's "host" inside a
namespace the test made (helpers.netns), as tests/engine/test_networking.py runs it."""

from __future__ import annotations

import json
import time

import pytest

from engine.engine_support import IMAGE
from helpers.netns import host_ns_fixture, make_ns_fixture  # noqa: F401 (fixtures host_ns, make_ns)

pytestmark = [pytest.mark.root, pytest.mark.network]


@pytest.fixture
def net(host_ns, pallet_env):
    pallet_env.prefix = ["nsenter", f"--net={host_ns.path}", "--"]
    return pallet_env


def test_network_events(net):
    t0 = f"{time.time():.9f}"
    nid = net("network", "create", "evnet", check=True).stdout.strip()
    cid = net("run", "-d", "--network", "evnet", "--name", "evc", IMAGE, "sleep", "60", check=True).stdout.strip()
    net("rm", "-f", "evc", check=True)
    net("network", "rm", "evnet", check=True)
    cp = net("events", "--since", t0, "--until", f"{time.time():.9f}", "--format", "json", check=True)
    evs = [json.loads(x) for x in cp.stdout.splitlines()]
    nets = [e for e in evs if e["Type"] == "network"]
    assert [(e["Action"], e["Actor"]["ID"]) for e in nets] == [
        ("create", nid), ("connect", nid), ("disconnect", nid), ("destroy", nid)]
    assert all(e["Actor"]["Attributes"]["name"] == "evnet" and e["Actor"]["Attributes"]["type"] == "bridge"
               for e in nets)
    assert nets[1]["Actor"]["Attributes"]["container"] == cid == nets[2]["Actor"]["Attributes"]["container"]
    order = [(e["Type"], e["Action"]) for e in evs]
    assert order.index(("network", "connect")) < order.index(("container", "start"))
    cp = net("events", "--since", t0, "--until", f"{time.time():.9f}", "--filter", "network=evnet",
             "--format", "{{.Action}}", check=True)
    assert cp.stdout.split() == ["create", "connect", "disconnect", "destroy"]
