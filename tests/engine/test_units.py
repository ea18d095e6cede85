"""Pure parts of the engine: user resolution confined to the rootfs, the spec's docker defaults, seccomp."""

from __future__ import annotations

import os

import pytest

from pallet.engine.spec import DEFAULT_CAPS, MASKED_PATHS, build_spec, etc_hosts, merge_env
from pallet.engine.users import ExecUser, resolve_user
from pallet.errors import PalletError


def test_resolve_user_by_name_number_and_group(busybox_rootfs):
    root = str(busybox_rootfs)
    assert resolve_user(root, "") == ExecUser(0, 0, [], "/root", "root")
    u = resolve_user(root, "app")
    assert (u.uid, u.gid, u.additional_gids, u.home) == (1000, 1000, [50], "/home/app")
    assert (resolve_user(root, "app:staff").gid, resolve_user(root, "app:staff").additional_gids) == (50, [])
    assert (resolve_user(root, "4242").uid, resolve_user(root, "4242").gid) == (4242, 0)
    assert resolve_user(root, "1000:4243").gid == 4243
    with pytest.raises(PalletError, match="unable to find user nosuch"):
        resolve_user(root, "nosuch")
    with pytest.raises(PalletError, match="unable to find group nogrp"):
        resolve_user(root, "app:nogrp")


def test_passwd_symlink_never_leaves_the_rootfs(tmp_path):
    root = tmp_path / "r"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").symlink_to("/../../../../etc/shadow-not-here")
    (tmp_path / "etc").mkdir()
    # an absolute link resolves inside the root: the host's /etc/passwd (which has root) is not read
    (root / "etc" / "group").symlink_to("/etc/passwd")
    with pytest.raises(PalletError):
        resolve_user(str(root), "daemon")   # exists on the host, not in the container
    (root / "etc" / "passwd").unlink()
    (root / "etc" / "passwd").symlink_to("../../../../../etc/passwd")
    with pytest.raises(PalletError):
        resolve_user(str(root), "daemon")


def test_spec_has_docker_defaults(tmp_path):
    cfg = {"Env": ["A=1"], "Cmd": ["sh"], "Tty": False, "Hostname": "abc"}
    spec = build_spec(cid="x" * 64, config=cfg, host_config={"NetworkMode": "none"}, rootfs="/r",
                      files_dir=str(tmp_path), user=ExecUser(0, 0), hostname="abc")
    p = spec["process"]
    assert p["capabilities"]["effective"] == DEFAULT_CAPS and len(DEFAULT_CAPS) == 14
    assert "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" in p["env"]
    assert "HOSTNAME=abc" in p["env"] and "A=1" in p["env"]
    ns = {n["type"] for n in spec["linux"]["namespaces"]}
    assert ns == {"pid", "ipc", "uts", "mount", "cgroup", "network"}
    assert spec["linux"]["maskedPaths"] == MASKED_PATHS
    dests = {m["destination"]: m for m in spec["mounts"]}
    assert "size=67108864" in dests["/dev/shm"]["options"]
    assert "ro" in dests["/sys/fs/cgroup"]["options"]
    assert {"/etc/hosts", "/etc/hostname", "/etc/resolv.conf", "/dev/mqueue", "/dev/pts"} <= set(dests)
    import resource

    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    for rl in p["rlimits"]:
        assert rl["hard"] <= hard or hard == resource.RLIM_INFINITY
    sc = spec["linux"]["seccomp"]
    assert sc["defaultAction"] == "SCMP_ACT_ERRNO"
    allowed = {n for r in sc["syscalls"] if r["action"] == "SCMP_ACT_ALLOW" and not r.get("args") for n in r["names"]}
    assert "read" in allowed and "mount" not in allowed and "ptrace" in allowed
    host = build_spec(cid="x" * 64, config=cfg, host_config={"NetworkMode": "host"}, rootfs="/r",
                      files_dir=str(tmp_path), user=ExecUser(0, 0), hostname="abc")
    assert "network" not in {n["type"] for n in host["linux"]["namespaces"]}


def test_env_merge_and_hosts():
    assert merge_env(["A=1", "B=2"], ["A=3"]) == ["B=2", "A=3"]
    h = etc_hosts("abc", "none", ["db:10.0.0.2"])
    assert "127.0.0.1\tlocalhost" in h and "10.0.0.2\tdb" in h and "abc" in h
    assert os.path.exists("/etc/hosts")
