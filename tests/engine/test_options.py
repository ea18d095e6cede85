"""The engine's typed options: Resources by docker's field names, checked by the engine, errors naming the
field; the CLI gives the same sentences with its flags."""

from __future__ import annotations

import json

import pytest

from pallet.cli.hostflags import RESOURCE_FLAGS, checked_resources, resources
from pallet.engine.defaults import build_config
from pallet.engine.hostconfig import check_resources, host_cpus
from pallet.engine.options import Config, CreateOptions, EndpointSettings, Networking, Resources
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

    _, host = build_config(CreateOptions(Config(Image="x"), resources=r), ImageConfig())
    assert host["Memory"] == 64 << 20 and host["NanoCpus"] == 500_000_000 and host["PidsLimit"] == 20
    _, host = build_config(CreateOptions(Config(Image="x")), ImageConfig())
    assert "Memory" not in host
    with pytest.raises(InvalidField, match="^Minimum memory limit allowed is 6MB$"):
        build_config(CreateOptions(Config(Image="x"), resources=Resources(Memory=1)), ImageConfig())


def test_host_options_by_field_names_and_the_cli_flags():
    from pallet.cli.hostflags import HOST_FLAGS, checked_host_fields
    from pallet.engine.hostconfig import check_host_options
    from pallet.engine.options import HostOptions

    assert set(fields(HostOptions)) == set(HOST_FLAGS) == {"Init", "Runtime", "AutoRemove", "ShmSize", "OomScoreAdj",
                                                           "OomKillDisable", "ReadonlyRootfs", "Privileged", "CapAdd",
                                                           "CapDrop"}
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

    _, host = build_config(CreateOptions(Config(Image="x"), host_options=HostOptions(ReadonlyRootfs=True)), ImageConfig())
    assert host["ReadonlyRootfs"] is True and host["ShmSize"] == 64 << 20 and host["Privileged"] is False


# ---- the rest of HostConfig (HostSettings) and Config.Healthcheck ------------------------------------
def test_host_settings_and_healthcheck_are_docker_names_and_the_cli_has_a_flag_for_each():
    from pallet.cli.hostflags import HEALTH_FLAGS, SETTINGS_FLAGS
    from pallet.engine.options import Healthcheck, HostSettings

    assert set(fields(HostSettings)) == {"Binds", "Mounts", "Tmpfs", "VolumesFrom", "Ulimits", "Devices", "PidMode",
                                         "IpcMode", "SecurityOpt", "Sysctls", "Dns", "DnsSearch", "DnsOptions",
                                         "RestartPolicy"}
    assert set(fields(HostSettings)) <= set(SETTINGS_FLAGS)
    assert set(fields(Healthcheck)) == set(HEALTH_FLAGS) == {"Test", "Interval", "Timeout", "StartPeriod",
                                                             "StartInterval", "Retries"}


@pytest.mark.parametrize("given, field, message", [
    (dict(Ulimits=[{"Name": "nofile", "Soft": 10, "Hard": 5}]), "Ulimits",
     "invalid Ulimits 'nofile=10:5': the soft limit 10 is above the hard limit 5"),
    (dict(Ulimits=[{"Name": "bogus", "Soft": 1, "Hard": 1}]), "Ulimits", None),
    (dict(Devices=[{"PathOnHost": "/etc/passwd"}]), "Devices", "Devices /etc/passwd: not a character or block device"),
    (dict(Devices=[{"PathOnHost": "/dev/null", "CgroupPermissions": "x"}]), "Devices", None),
    (dict(PidMode="container:x"), "PidMode",
     "invalid PidMode 'container:x': host or private (container:NAME is not supported)"),
    (dict(IpcMode="nope"), "IpcMode", "invalid IpcMode 'nope': host or private or shareable"),
    (dict(SecurityOpt=["foo=bar"]), "SecurityOpt", None),
    (dict(Sysctls={"kernel.hostname": "x"}), "Sysctls", None),
    (dict(Dns=["not-an-ip"]), "Dns", "invalid Dns 'not-an-ip': a name server is an IP address"),
    (dict(Tmpfs={"rel": ""}), "Tmpfs", "invalid Tmpfs 'rel': the path must be absolute"),
    (dict(Tmpfs={"/t": "bogus=1"}), "Tmpfs", "invalid Tmpfs '/t:bogus=1': unknown option 'bogus'"),
    (dict(VolumesFrom=[":ro"]), "VolumesFrom", None),
    (dict(Mounts=[{"Type": "bind", "Source": "/nonexistent", "Target": "/a"}]), "Mounts",
     "invalid Mounts 'type=bind,src=/nonexistent,dst=/a': bind source path does not exist: /nonexistent"),
    (dict(Mounts=[{"Type": "volume", "Target": "rel"}]), "Mounts", None),
    (dict(Mounts=[{"Type": "nfs", "Target": "/a"}]), "Mounts", None),
    (dict(Mounts=[{"Type": "tmpfs", "Target": "/a"}], Tmpfs={"/a/": ""}), None, "Duplicate mount point: /a"),
    (dict(RestartPolicy={"Name": "sometimes"}), "RestartPolicy", None),
    (dict(RestartPolicy={"Name": "always", "MaximumRetryCount": 3}), "RestartPolicy",
     "invalid restart policy 'always:3': only on-failure takes a maximum retry count"),
])
def test_host_settings_errors_name_the_field(given, field, message):
    from pallet.engine.hostconfig import check_host_settings
    from pallet.engine.options import HostSettings

    with pytest.raises(InvalidField if field else PalletError) as e:
        check_host_settings(HostSettings(**given))
    assert getattr(e.value, "field", None) == field and e.value.exit_code == 125 and "--" not in str(e.value)
    if message:
        assert str(e.value) == message


def test_engine_checks_that_need_other_fields_name_them():
    from pallet.engine.hostconfig import check_healthcheck, check_host_settings
    from pallet.engine.options import Healthcheck, HostSettings

    with pytest.raises(InvalidField, match="^sysctl 'net.ipv4.ip_forward' is not allowed with NetworkMode host "):
        check_host_settings(HostSettings(Sysctls={"net.ipv4.ip_forward": "1"}), network="host")
    assert check_host_settings(HostSettings(Sysctls={"net.ipv4.ip_forward": "1"}), network="bridge") == {
        "Sysctls": {"net.ipv4.ip_forward": "1"}}
    with pytest.raises(InvalidField, match="^Conflicting options: RestartPolicy and AutoRemove$"):
        check_host_settings(HostSettings(RestartPolicy={"Name": "always"}), auto_remove=True)
    with pytest.raises(InvalidField, match="^Interval cannot be less than 1ms$"):
        check_healthcheck(Healthcheck(Interval=1000))
    with pytest.raises(InvalidField) as e:
        check_healthcheck(Healthcheck(Retries=-1))
    assert e.value.field == "Retries"
    assert check_healthcheck(Healthcheck(Test=["CMD", "true"], Interval=0, Retries=2)) == {
        "Test": ["CMD", "true"], "Interval": 0, "Retries": 2}


@pytest.mark.parametrize("kw, message", [
    ({"ulimit": ("nofile=10:5",)}, "invalid --ulimit 'nofile=10:5': the soft limit 10 is above the hard limit 5"),
    ({"ulimit": ("NOFILE=-1",)}, None),   # (the host's hard limit, if any: see the shell comparison in the report)
    ({"device": ("/etc/passwd",)}, "--device /etc/passwd: not a character or block device"),
    ({"device": ("rel",)}, "invalid --device 'rel': paths must be absolute"),
    ({"pid": "container:x"}, "invalid --pid 'container:x': host or private (container:NAME is not supported)"),
    ({"security_opt": ("seccomp",)}, "invalid --security-opt 'seccomp': seccomp=unconfined or seccomp=PROFILE.json"),
    ({"sysctl": ("net.ipv4.ip_forward=1",), "network": "host"},
     "sysctl 'net.ipv4.ip_forward' is not allowed with --network host (it would change the host)"),
    ({"dns": ("x",)}, "invalid --dns 'x': a name server is an IP address"),
    ({"tmpfs": ("/t:size",)}, "invalid --tmpfs '/t:size': size needs a value"),
    ({"mount": ("type=bind,dst=/a",)}, "invalid --mount 'type=bind,dst=/a': a bind mount needs a source (src=)"),
    ({"mount": ("dst=/a,ro=maybe",)}, "invalid --mount 'dst=/a,ro=maybe': 'maybe' is not true or false"),
    ({"volumes_from": ("x:zz",)}, "invalid --volumes-from 'x:zz': expected CONTAINER[:ro|rw]"),
    ({"restart": "on-failure:x"}, "invalid restart policy 'on-failure:x': the retry count must be a number >= 0"),
    ({"restart": "always", "auto_remove": True}, "Conflicting options: --restart and --rm"),
    ({"health_interval": "1us"}, "--health-interval cannot be less than 1ms"),
    ({"health_retries": "-1"}, "invalid --health-retries -1: must be between 0 and None"),
    ({"no_healthcheck": True, "health_cmd": "true"}, "--no-healthcheck conflicts with --health-* options"),
])
def test_cli_says_the_engine_sentences_with_its_flags(kw, message):
    from pallet.cli.containerrun import build_opts

    try:
        build_opts("x", (), {"pull": "missing", **kw}, detach=True)
    except PalletError as e:
        assert not isinstance(e, InvalidField)
        assert message is None or str(e) == message
        assert "Ulimits" not in str(e) and "NetworkMode" not in str(e)
    else:
        assert message is None


def test_flags_become_the_records():
    from pallet.cli.containerrun import build_opts
    from pallet.engine.options import Healthcheck

    opts = build_opts("x", ("sh",), {"pull": "missing", "tmpfs": ("/t/:size=1m",), "ulimit": ("nproc=10:20",),
                                     "device": ("/dev/null:/dev/x:r",), "dns": ("1.1.1.1",), "restart": "on-failure:2",
                                     "sysctl": ("kernel.shmmax=1",), "health_cmd": "true", "health_interval": "2s"},
                      detach=True)
    s = opts.host_settings
    assert s.Tmpfs == {"/t": "size=1m"} and s.Ulimits == [{"Name": "nproc", "Soft": 10, "Hard": 20}]
    assert s.Devices == [{"PathOnHost": "/dev/null", "PathInContainer": "/dev/x", "CgroupPermissions": "r"}]
    assert s.Dns == ["1.1.1.1"] and s.RestartPolicy == {"Name": "on-failure", "MaximumRetryCount": 2}
    assert s.Sysctls == {"kernel.shmmax": "1"}
    assert opts.config.Healthcheck == Healthcheck(Test=["CMD-SHELL", "true"], Interval=2_000_000_000)
    assert build_opts("x", ("sh",), {"pull": "missing"}, detach=True).host_settings is None


def test_config_and_networking_flags_become_docker_fields():
    """run's own flags land in Config and in Networking (HostConfig's network fields with NetworkingConfig)
    by docker's names and shapes: -p as PortBindings, --expose as ExposedPorts, the first network's
    --ip/--network-alias/--mac-address as its EndpointSettings, a second --network as one more endpoint."""
    from pallet.cli.containerrun import build_opts

    opts = build_opts("x", ("sh", "-c", "true"), {
        "pull": "missing", "entrypoint": "", "env": ("A=1",), "workdir": "/w", "user": "1:2", "hostname": "h",
        "label": ("k=v",), "stop_signal": "SIGINT", "stop_timeout": "3", "tty": True, "interactive": True,
        "expose": ("90-91/udp",), "publish": ("127.0.0.1:8080:80", "53/udp"), "network": ("net1", "net2"),
        "ip": "10.9.0.5", "network_alias": ("db",), "mac_address": "02:42:ac:11:00:09", "add_host": ("h:1.2.3.4",),
        "publish_all": True, "init": True, "auto_remove": True, "runtime": "runc"}, detach=False)
    assert opts.config == Config(Image="x", Cmd=["sh", "-c", "true"], Entrypoint=[""], Env=["A=1"], WorkingDir="/w",
                                 User="1:2", Hostname="h", Labels={"k": "v"}, StopSignal="SIGINT", StopTimeout=3,
                                 Tty=True, OpenStdin=True, AttachStdin=True,
                                 ExposedPorts={"90/udp": {}, "91/udp": {}})
    assert opts.networking == Networking(
        NetworkMode="net1", EndpointsConfig={"net1": EndpointSettings(IPv4Address="10.9.0.5", Aliases=["db"],
                                                                      MacAddress="02:42:ac:11:00:09"),
                                             "net2": EndpointSettings()},
        PortBindings={"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}], "53/udp": [{"HostIp": "", "HostPort": ""}]},
        PublishAllPorts=True, ExtraHosts=["h:1.2.3.4"])
    assert opts.networking.more() == ["net2"]
    h = opts.host_options
    assert (h.Init, h.AutoRemove, h.Runtime) == (True, True, "runc") and not opts.detach


API_BODY = {
    "Image": "localhost/busybox", "Cmd": ["sleep", "60"], "Env": ["A=1"], "WorkingDir": "/tmp", "Labels": {"k": "v"},
    "StopSignal": "SIGINT", "StopTimeout": 3, "Hostname": "api",
    "Healthcheck": {"Test": ["CMD-SHELL", "true"], "Interval": 2_000_000_000, "Retries": 2},
    "HostConfig": {"NetworkMode": "none", "Memory": 64 << 20, "PidsLimit": 30, "CapAdd": ["NET_ADMIN"],
                   "ReadonlyRootfs": True, "Tmpfs": {"/scratch": "size=1m"},
                   "Ulimits": [{"Name": "nofile", "Soft": 100, "Hard": 200}], "Dns": ["192.0.2.1"],
                   "DnsSearch": ["example.org"], "Sysctls": {"kernel.shmmax": "4096"},
                   "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 2},
                   "SecurityOpt": ["no-new-privileges"], "Init": False},
}


def test_a_container_from_an_engine_api_body(pallet_env, engine):
    """What a daemon does with `POST /containers/create`: the records from the JSON, no flags anywhere;
    the container is docker's Config and HostConfig of the body, and it starts."""
    from pallet.engine.options import from_api

    c = engine.create(from_api(API_BODY))
    doc = json.loads(pallet_env("inspect", c.id, check=True).stdout)[0]
    hc, cfg = doc["HostConfig"], doc["Config"]
    assert hc["Memory"] == 64 << 20 and hc["PidsLimit"] == 30 and hc["CapAdd"] == ["CAP_NET_ADMIN"]
    assert hc["ReadonlyRootfs"] is True and hc["Tmpfs"] == {"/scratch": "size=1m"}
    assert hc["Ulimits"] == [{"Name": "nofile", "Soft": 100, "Hard": 200}]
    assert hc["Dns"] == ["192.0.2.1"] and hc["DnsSearch"] == ["example.org"]
    assert hc["Sysctls"] == {"kernel.shmmax": "4096"} and hc["SecurityOpt"] == ["no-new-privileges"]
    assert hc["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 2}
    assert cfg["Cmd"] == ["sleep", "60"] and "A=1" in cfg["Env"] and cfg["WorkingDir"] == "/tmp"
    assert cfg["Labels"]["k"] == "v" and cfg["StopSignal"] == "SIGINT" and cfg["StopTimeout"] == 3
    assert cfg["Healthcheck"] == {"Test": ["CMD-SHELL", "true"], "Interval": 2_000_000_000, "Retries": 2}
    engine.start(c)
    assert pallet_env("exec", c.id, "sh", "-c", "ulimit -n; cat /etc/resolv.conf", check=True).stdout.split("\n")[0] \
        == "100"
    engine.remove(engine.get(c.id), force=True)


def test_an_api_body_maps_to_the_records_by_field():
    """Config's fields at the top of the body, HostConfig's network fields and NetworkingConfig's endpoints
    into Networking; an endpoint's IPAMConfig addresses flattened; a list Entrypoint kept whole."""
    from pallet.engine.options import from_api

    o = from_api({"Image": "img", "Entrypoint": ["sh", "-c"], "Cmd": ["echo hi"], "ExposedPorts": {"90/udp": {}},
                  "AttachStdout": True, "HostConfig": {
                      "NetworkMode": "n1", "PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]},
                      "PublishAllPorts": True, "ExtraHosts": ["a:1.2.3.4"], "AutoRemove": True, "Init": True},
                  "NetworkingConfig": {"EndpointsConfig": {
                      "n1": {"IPAMConfig": {"IPv4Address": "10.1.0.9"}, "Aliases": ["db"], "MacAddress": "02:00:00:00:00:01"},
                      "n2": {}}}})
    assert o.config == Config(Image="img", Entrypoint=["sh", "-c"], Cmd=["echo hi"], ExposedPorts={"90/udp": {}})
    assert o.networking == Networking(
        NetworkMode="n1", EndpointsConfig={"n1": EndpointSettings(IPv4Address="10.1.0.9", Aliases=["db"],
                                                                  MacAddress="02:00:00:00:00:01"),
                                           "n2": EndpointSettings()},
        PortBindings={"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}, PublishAllPorts=True, ExtraHosts=["a:1.2.3.4"])
    assert o.host_options.AutoRemove and o.host_options.Init and not o.detach

    class ImageConfig:
        config = {"Entrypoint": ["/init"], "Cmd": ["serve"]}

    from pallet.engine.defaults import build_config

    cfg, _ = build_config(o, ImageConfig())
    assert cfg["Entrypoint"] == ["sh", "-c"] and cfg["Cmd"] == ["echo hi"]
    cfg, _ = build_config(CreateOptions(Config(Image="img")), ImageConfig())
    assert cfg["Entrypoint"] == ["/init"] and cfg["Cmd"] == ["serve"]
    cfg, _ = build_config(CreateOptions(Config(Image="img", Entrypoint=[""])), ImageConfig())   # --entrypoint ""
    assert cfg["Entrypoint"] is None and cfg["Cmd"] == []
    cfg, _ = build_config(CreateOptions(Config(Image="img", Entrypoint=["/bin/x"])), ImageConfig())
    assert cfg["Entrypoint"] == ["/bin/x"] and cfg["Cmd"] == []   # (docker: an entrypoint drops the image's Cmd)


@pytest.mark.parametrize("body, field", [
    ({}, "Image"),
    ({"Image": "img", "NetworkingConfig": {"EndpointsConfig": {"n1": 5}}}, "EndpointsConfig"),
])
def test_a_malformed_api_body_is_one_sentence_naming_the_field(body, field):
    from pallet.engine.options import from_api

    with pytest.raises(InvalidField) as e:
        from_api(body)
    assert e.value.field == field and "\n" not in str(e.value)
    from pallet.engine import ports

    with pytest.raises(InvalidField) as e:
        ports.check(["80/tcp"])
    assert e.value.field == "PortBindings"
    assert from_api({"Image": "img", "Cmd": "echo hi"}).config.Cmd == ["echo hi"]   # docker's strslice


@pytest.mark.parametrize("host, field", [
    ({"Ulimits": [{"Name": "nofile", "Soft": 9, "Hard": 1}]}, "Ulimits"),
    ({"Devices": [{"PathOnHost": "/nonexistent"}]}, "Devices"),
    ({"Memory": 1}, "Memory"),
    ({"RestartPolicy": {"Name": "always"}, "AutoRemove": True}, "RestartPolicy"),
])
def test_a_bad_api_body_names_the_field_and_creates_nothing(pallet_env, engine, host, field):
    from pallet.engine.options import from_api

    before = pallet_env.ids()
    with pytest.raises(InvalidField) as e:
        engine.create(from_api({**API_BODY, "HostConfig": {**API_BODY["HostConfig"], **host}}))
    assert e.value.field == field
    assert pallet_env.ids() == before == []


def test_what_create_checks_itself_names_the_field_and_the_cli_its_flag(pallet_env, engine):
    """-p, --expose and --init are checked by Engine.create (after the image is found): InvalidField names
    docker's field there; the CLI's create (containerrun.create) says run's flag; nothing is created."""
    from pallet.cli.containerrun import create

    bad = CreateOptions(Config(Image="localhost/busybox", Cmd=["true"], ExposedPorts={"80/foo": {}}))
    with pytest.raises(InvalidField) as e:
        engine.create(bad)
    assert e.value.field == "ExposedPorts"
    assert str(e.value) == "invalid ExposedPorts '80/foo': protocol 'foo' is not supported (tcp, udp or sctp)"
    with pytest.raises(PalletError) as e:
        create(engine, bad)
    assert str(e.value) == "invalid --expose '80/foo': protocol 'foo' is not supported (tcp, udp or sctp)"
    assert not isinstance(e.value, InvalidField) and e.value.exit_code == 125
    assert pallet_env.ids() == []
    from pallet.engine import ports

    with pytest.raises(InvalidField) as e:
        ports.parse(["1:2:3:4"])
    assert e.value.field == "PortBindings" and str(e.value).startswith("invalid PortBindings '1:2:3:4': too many")


def test_update_takes_the_restart_policy_record(pallet_env, engine):
    from pallet.engine import limits

    c = engine.create(CreateOptions(Config(Image="localhost/busybox", Cmd=["true"])))
    with pytest.raises(InvalidField) as e:
        limits.update(engine, c, Resources(), {"Name": "always", "MaximumRetryCount": 2})
    assert e.value.field == "RestartPolicy"
    assert engine.get(c.id).HostConfig["RestartPolicy"] == {"Name": "no", "MaximumRetryCount": 0}
    limits.update(engine, c, Resources(), {"Name": "on-failure", "MaximumRetryCount": 2})
    assert engine.get(c.id).HostConfig["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 2}
    cp = pallet_env("update", "--restart", "always:2", c.id)
    assert cp.returncode == 125 and cp.stderr == ("Error: invalid restart policy 'always:2': only on-failure takes a "
                                                  "maximum retry count\n")
    engine.remove(engine.get(c.id), force=True)


@pytest.mark.parametrize("opts, field, engine_says, cli_says", [
    (Networking(EndpointsConfig={"none": EndpointSettings(IPv4Address="10.0.0.1")}), "IPv4Address",
     "IPv4Address needs a network (NetworkMode bridge or a user network), not NetworkMode none",
     "--ip needs a network (--network bridge or a user network), not --network none"),
    (Networking(PortBindings={"80/tcp": [{"HostIp": "", "HostPort": ""}]}), "PortBindings",
     "published ports (PortBindings) need a network: the container has NetworkMode none",
     "published ports (-p) need a network: the container has --network none"),
    (Networking(ExtraHosts=["x:y"]), "ExtraHosts",
     "invalid ExtraHosts 'x:y': 'y' is not an IP address (or host-gateway)",
     "invalid --add-host 'x:y': 'y' is not an IP address (or host-gateway)"),
    (Networking(EndpointsConfig={"none": EndpointSettings(MacAddress="zz")}), "MacAddress", None, "invalid --mac-address 'zz': expected six hex bytes"),
    (Networking(NetworkMode="container:"), "NetworkMode", None, "invalid --network container: it needs a container name or id"),
])
def test_the_network_checks_name_fields_and_the_cli_its_flags(pallet_env, engine, opts, field, engine_says, cli_says):
    from pallet.cli.containerrun import create

    o = CreateOptions(Config(Image="localhost/busybox", Cmd=["true"]), networking=opts)
    with pytest.raises(InvalidField) as e:
        engine.create(o)
    assert e.value.field == field and "--" not in str(e.value)
    assert engine_says is None or str(e.value) == engine_says
    with pytest.raises(PalletError) as e:
        create(engine, o)
    assert str(e.value).startswith(cli_says)
    assert pallet_env.ids() == []


def test_connect_names_the_field_and_network_connect_its_flag(pallet_env, engine):
    from pallet.engine import networking

    c = engine.create(CreateOptions(Config(Image="localhost/busybox", Cmd=["true"]), name="alone"))
    with pytest.raises(InvalidField) as e:
        networking.connect(engine, c, "bridge", ip="172.17.0.9")
    assert e.value.field == "NetworkMode"
    assert str(e.value) == "container alone uses NetworkMode none: it cannot be connected to a network"
    cp = pallet_env("network", "connect", "--ip", "172.17.0.9", "bridge", "alone")
    assert cp.returncode == 125
    assert cp.stderr == "Error: container alone uses --network none: it cannot be connected to a network\n"
    engine.remove(engine.get(c.id), force=True)


# the engine's sentences that still say a CLI flag: hints, not a field's error (a daemon's caller gets them
# as they are); anything new here is a flag in the engine's API, which the CLI should map instead
FLAG_HINTS = {
    ("containers.py", "could not find a free container name; give one with --name"),
    ("images.py", " (and --pull=never)"),
    ("events.py", "--since time is after --until time"),
    ("networking.py", " has no IPv6 address (its first network was not created with --ipv6)"),
    ("seccomp.py", "): run `make install` (scripts/seccomp-profile.sh) or pass --security-opt seccomp=unconfined"),
}


def test_no_engine_error_names_a_run_flag():
    import ast
    import re
    from pathlib import Path

    import pallet.engine

    found = set()
    for p in sorted(Path(pallet.engine.__file__).parent.glob("*.py")):
        for n in ast.walk(ast.parse(p.read_text())):
            if isinstance(n, ast.Raise) and n.exc is not None:
                for s in ast.walk(n.exc):
                    if isinstance(s, ast.Constant) and isinstance(s.value, str) and \
                            re.search(r"(^|[\s(])(--[a-z]|-[a-zA-Z]\b)", s.value) and "--runtime runc" not in s.value:
                        found.add((p.name, s.value))
    assert found <= FLAG_HINTS, found - FLAG_HINTS


@pytest.mark.parametrize("host, field", [
    ({"UTSMode": "host"}, "UTSMode"), ({"UsernsMode": "host"}, "UsernsMode"), ({"CgroupnsMode": "host"}, "CgroupnsMode"),
    ({"LogConfig": {"Type": "syslog", "Config": {}}}, "LogConfig"), ({"DeviceCgroupRules": ["c 1:3 rwm"]}, "DeviceCgroupRules"),
])
def test_an_api_body_with_what_pallet_cannot_honour_is_refused_by_field(host, field):
    from pallet.engine.options import from_api

    with pytest.raises(InvalidField) as e:
        from_api({**API_BODY, "HostConfig": {**API_BODY["HostConfig"], **host}})
    assert e.value.field == field and "not supported by pallet" in str(e.value)
    ok = from_api({**API_BODY, "HostConfig": {**API_BODY["HostConfig"], "UTSMode": "", "CgroupnsMode": "",
                                              "LogConfig": {"Type": "json-file", "Config": {}}, "Links": None}})
    assert ok.config.Image == "localhost/busybox"
