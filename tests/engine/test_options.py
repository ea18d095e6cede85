"""The engine's typed options: Resources by docker's field names, checked by the engine, errors naming the
field; the CLI gives the same sentences with its flags."""

from __future__ import annotations

import pytest

from pallet.cli.hostflags import RESOURCE_FLAGS, checked_resources, resources
from pallet.engine.defaults import build_config
from pallet.engine.hostconfig import check_resources, host_cpus
from pallet.engine.options import CreateOptions, Resources
from pallet.errors import InvalidField, PalletError
from pallet.records import fields


def test_fields_are_docker_hostconfig_names():
    # the Engine API's HostConfig names (v1.50 swagger), and the CLI has a flag for each
    assert set(fields(Resources)) == {"Memory", "MemorySwap", "MemoryReservation", "NanoCpus", "CpuShares",
                                      "CpuPeriod", "CpuQuota", "CpusetCpus", "CpusetMems", "PidsLimit",
                                      "BlkioWeight"}
    assert set(RESOURCE_FLAGS) == set(fields(Resources))


@pytest.mark.parametrize("given, field, message", [
    (dict(Memory=1024), "Memory", "Minimum memory limit allowed is 6MB"),
    (dict(MemorySwap=1 << 30), "MemorySwap", "you should always set the memory limit when using the memory swap limit"),
    (dict(NanoCpus=1), "NanoCpus", None),
    (dict(CpuShares=300000), "CpuShares", "invalid CpuShares 300000: must be between 0 and 262144"),
    (dict(CpusetCpus="x"), "CpusetCpus", "invalid value 'x' for CpusetCpus: give CPUs like 0-1 or 0,2"),
    (dict(CpusetMems="3-1"), "CpusetMems", "invalid value '3-1' for CpusetMems: 3-1 is an empty range"),
    (dict(BlkioWeight=5), "BlkioWeight", "invalid BlkioWeight: the range is from 10 to 1000"),
])
def test_engine_errors_name_the_field(given, field, message):
    with pytest.raises(InvalidField) as e:
        check_resources(Resources(**given))
    assert e.value.field == field and e.value.exit_code == 125
    if message:
        assert str(e.value) == message


@pytest.mark.parametrize("kw, message", [
    ({"cpu_shares": "300000"}, "invalid --cpu-shares 300000: must be between 0 and 262144"),
    ({"cpuset_cpus": "x"}, "invalid value 'x' for --cpuset-cpus: give CPUs like 0-1 or 0,2"),
    ({"blkio_weight": "5"}, "invalid --blkio-weight: the range is from 10 to 1000"),
    ({"pids_limit": "many"}, "invalid --pids-limit 'many': a whole number"),
    ({"cpus": "x"}, "invalid --cpus 'x': a number such as 1.5"),
    ({"memory": "1k"}, "Minimum memory limit allowed is 6MB"),
])
def test_cli_names_its_flags(kw, message):
    with pytest.raises(PalletError) as e:
        checked_resources(kw)
    assert str(e.value) == message and not isinstance(e.value, InvalidField)


def test_flags_to_fields_and_into_hostconfig():
    n = len(host_cpus())
    kw = {"memory": "64m", "memory_swap": "-1", "cpus": "0.5", "pids_limit": "20", "cpuset_cpus": "0",
          "cpu_quota": None, "blkio_weight": ""}
    r = resources(kw)
    assert r == Resources(Memory=64 << 20, MemorySwap=-1, NanoCpus=500_000_000, PidsLimit=20, CpusetCpus="0")
    assert r.given() == {"Memory": 64 << 20, "MemorySwap": -1, "NanoCpus": 500_000_000, "PidsLimit": 20,
                         "CpusetCpus": "0"}
    assert n >= 1

    class ImageConfig:
        config = {"Cmd": ["sh"]}

    _, host = build_config(CreateOptions(image="x", resources=r), ImageConfig())
    assert host["Memory"] == 64 << 20 and host["NanoCpus"] == 500_000_000 and host["PidsLimit"] == 20
    _, host = build_config(CreateOptions(image="x"), ImageConfig())
    assert "Memory" not in host
    with pytest.raises(InvalidField, match="^Minimum memory limit allowed is 6MB$"):
        build_config(CreateOptions(image="x", resources=Resources(Memory=1)), ImageConfig())


def test_host_options_by_field_names_and_the_cli_flags():
    from pallet.cli.hostflags import HOST_FLAGS, checked_host_fields
    from pallet.engine.hostconfig import check_host_options
    from pallet.engine.options import HostOptions

    assert set(fields(HostOptions)) == set(HOST_FLAGS) == {"ShmSize", "OomScoreAdj", "OomKillDisable",
                                                           "ReadonlyRootfs", "Privileged", "CapAdd", "CapDrop"}
    assert check_host_options(HostOptions(CapAdd=["net_admin"], Privileged=True, ShmSize=1 << 20)) == {
        "CapAdd": ["CAP_NET_ADMIN"], "Privileged": True, "ShmSize": 1 << 20}
    assert check_host_options(HostOptions()) == {}
    with pytest.raises(InvalidField) as e:
        check_host_options(HostOptions(OomScoreAdj=5000))
    assert e.value.field == "OomScoreAdj" and str(e.value) == "invalid OomScoreAdj 5000: must be between -1000 and 1000"
    with pytest.raises(PalletError, match="^invalid --oom-score-adj 5000: must be between -1000 and 1000$"):
        checked_host_fields({"oom_score_adj": "5000"})
    with pytest.raises(PalletError, match="^invalid --shm-size: must be greater than 0$"):
        checked_host_fields({"shm_size": "0"})
    with pytest.raises(PalletError, match="^unknown capability: 'NOPE'$"):
        checked_host_fields({"cap_add": ("NOPE",)})

    class ImageConfig:
        config = {"Cmd": ["sh"]}

    _, host = build_config(CreateOptions(image="x", host_options=HostOptions(ReadonlyRootfs=True)), ImageConfig())
    assert host["ReadonlyRootfs"] is True and host["ShmSize"] == 64 << 20 and host["Privileged"] is False
