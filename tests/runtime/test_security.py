"""Security properties, each proved inside a real container."""

from __future__ import annotations

import json
import os
import threading
import time

import pytest
from tests.runtime.conftest import getpriority_filter_in_child

from helpers.cli import assert_no_traceback
from pallet.linux.caps import mask

pytestmark = pytest.mark.root


def status_fields(text: str) -> dict[str, str]:
    return {k.strip(): v.strip() for k, _, v in (ln.partition(":") for ln in text.splitlines()) if v}


def run_out(prt, new_bundle, cid, args, edit=None) -> str:
    b = new_bundle(args, edit=edit)
    cp = prt("run", "--bundle", str(b), cid)
    assert cp.returncode == 0, cp.stderr
    return cp.stdout


CAPS5 = ("bounding", "effective", "permitted", "inheritable", "ambient")
FIELD = {"bounding": "CapBnd", "effective": "CapEff", "permitted": "CapPrm", "inheritable": "CapInh",
         "ambient": "CapAmb"}


def test_capabilities_root_exactly_as_configured(prt, new_bundle, cid, no_leftovers):
    wanted = ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SETUID"]

    def edit(cfg):
        cfg["process"]["capabilities"] = {k: list(wanted) for k in CAPS5}
    st = status_fields(run_out(prt, new_bundle, cid, ["cat", "/proc/self/status"], edit))
    for k in CAPS5:
        assert int(st[FIELD[k]], 16) == mask(wanted), (k, st[FIELD[k]])


def test_capabilities_non_root_with_ambient(prt, new_bundle, cid, no_leftovers):
    sets = {"bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
            **{k: ["CAP_KILL", "CAP_NET_BIND_SERVICE"] for k in ("effective", "permitted", "inheritable",
                                                                  "ambient")}}

    def edit(cfg):
        cfg["process"]["user"] = {"uid": 1000, "gid": 1000, "additionalGids": [50]}
        cfg["process"]["capabilities"] = sets
    st = status_fields(run_out(prt, new_bundle, cid, ["cat", "/proc/self/status"], edit))
    for k in CAPS5:
        assert int(st[FIELD[k]], 16) == mask(sets[k]), (k, st[FIELD[k]])
    assert st["Uid"].split() == ["1000"] * 4 and st["Gid"].split() == ["1000"] * 4
    assert st["Groups"].split() == ["50"]


def test_no_new_privs_and_seccomp_errno(prt, new_bundle, cid, no_leftovers):
    def edit(cfg):
        cfg["process"]["noNewPrivileges"] = True
        cfg["linux"]["seccomp"] = {
            "defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
            "syscalls": [{"names": ["unshare", "keyctl"], "action": "SCMP_ACT_ERRNO", "errnoRet": 112}]}
    b = new_bundle(["sh", "-c", "grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status; unshare -U true"], edit=edit)
    cp = prt("run", "--bundle", str(b), cid)
    st = status_fields(cp.stdout)
    assert st["NoNewPrivs"] == "1" and st["Seccomp"] == "2"
    # the container's own exit code (busybox unshare: 1); errno 112 = EHOSTDOWN, as configured
    assert cp.returncode == 1 and "unshare(0x10000000): Host is down" in cp.stderr, cp.stderr


def test_no_new_privs_off_by_config(prt, new_bundle, cid, no_leftovers):
    def edit(cfg):
        cfg["process"]["noNewPrivileges"] = False
        # libseccomp would set no_new_privs by itself unless told not to
        cfg["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW",
                                   "syscalls": [{"names": ["keyctl"], "action": "SCMP_ACT_ERRNO"}]}
    st = status_fields(run_out(prt, new_bundle, cid, ["cat", "/proc/self/status"], edit))
    assert st["NoNewPrivs"] == "0" and st["Seccomp"] == "2"


def test_seccomp_argument_conditions_in_process():
    """A rule with an argument condition blocks getpriority(PRIO_PGRP) but not getpriority(PRIO_PROCESS)."""
    from pallet.linux.seccomp import compile_filter

    f = compile_filter({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["getpriority"], "action": "SCMP_ACT_ERRNO", "errnoRet": 33,
         "args": [{"index": 0, "value": os.PRIO_PGRP, "op": "SCMP_CMP_EQ"}]}]})
    assert getpriority_filter_in_child(f) == 0


def test_masked_readonly_sysrq_and_no_host_mounts(prt, new_bundle, cid, no_leftovers):
    script = r"""
    echo kcore=$(cat /proc/kcore 2>/dev/null | wc -c)
    echo keys=$(cat /proc/keys | wc -c)
    echo timer=$(cat /proc/timer_list 2>&1 | wc -c)
    ls /sys/firmware | wc -l | sed 's/^/firmware=/'
    (echo h > /proc/sysrq-trigger) 2>/dev/null && echo sysrq=writable || echo sysrq=denied
    (echo 1 > /proc/sys/kernel/ns_last_pid) 2>/dev/null && echo sys=writable || echo sys=denied
    echo mounts; cut -d' ' -f5 /proc/self/mountinfo
    """
    out = run_out(prt, new_bundle, cid, ["sh", "-c", script])
    kv = dict(ln.split("=", 1) for ln in out.split("mounts")[0].split())
    assert kv == {"kcore": "0", "keys": "0", "timer": "0", "firmware": "0", "sysrq": "denied", "sys": "denied"}
    points = set(out.split("mounts", 1)[1].split())
    allowed = {"/", "/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/sys/fs/cgroup"}
    from pallet.runtime.spec import MASKED, READONLY

    allowed |= set(MASKED) | set(READONLY)
    extra = {p for p in points if p not in allowed and not p.startswith("/sys/fs/cgroup/")}
    assert not extra, f"host mounts visible in the container: {extra}"
    assert not any(p.startswith(("/work", "/tmp/pytest", "/run")) for p in points)


def test_readonly_root_and_bind_options(prt, new_bundle, cid, tmp_path, no_leftovers):
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "f").write_text("host\n")

    def edit(cfg):
        cfg["root"]["readonly"] = True
        cfg["mounts"].append({"destination": "/data", "type": "bind", "source": str(shared),
                              "options": ["rbind", "ro", "nosuid", "nodev"]})
        cfg["mounts"].append({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
                              "options": ["size=1m"]})
    out = run_out(prt, new_bundle, cid, ["sh", "-c",
                  "cat /data/f; touch /data/x 2>/dev/null || echo data-ro; touch /x 2>/dev/null || echo root-ro;"
                  "touch /scratch/ok && echo scratch-rw; grep ' /data ' /proc/self/mountinfo"], edit)
    lines = out.splitlines()
    assert lines[:4] == ["host", "data-ro", "root-ro", "scratch-rw"]
    opts = lines[4].split()[5].split(",")
    assert {"ro", "nosuid", "nodev"} <= set(opts)
    assert not (shared / "x").exists()


def test_no_fd_leak_and_preserve_fds(prt, new_bundle, cid, rt_root, tmp_path, no_leftovers):
    from tests.runtime.conftest import RUNTIME

    b = new_bundle(["sleep", "60"])
    # the runtime's caller holds extra descriptors (3, 4, 7): only 3 is passed on
    cmd = (f"exec 3</etc/hostname 4</etc/passwd 7</etc/group; exec {RUNTIME} --root {rt_root} run -d "
           f"--preserve-fds 1 --bundle {b} {cid} >/dev/null 2>&1")
    assert os.system(cmd) == 0
    pid1 = prt("exec", cid, "ls", "/proc/1/fd", check=True).stdout.split()
    assert sorted(pid1, key=int) == ["0", "1", "2", "3"]
    exe = prt("exec", cid, "sh", "-c", "ls /proc/$$/fd; true", check=True).stdout.split()
    assert set(exe) <= {"0", "1", "2", "10"}  # busybox sh keeps its script fd at 10
    assert {"0", "1", "2"} <= set(exe)
    prt("delete", "-f", cid, check=True)


def test_cwd_resolved_inside_container(prt, new_bundle, cid, rt_root, tmp_path, no_leftovers):
    """A leaked host directory descriptor must not become the working directory (CVE-2024-21626)."""
    from tests.runtime.conftest import RUNTIME

    b = new_bundle(["pwd"], edit=lambda c: c["process"].update(cwd="/proc/self/fd/3"))
    rc = os.system(f"exec 3<{tmp_path}; exec {RUNTIME} --root {rt_root} create --preserve-fds 1 --bundle {b} "
                   f"{cid} >{tmp_path}/out 2>{tmp_path}/err")
    err = (tmp_path / "err").read_text()
    assert_no_traceback(err, ["pallet-runtime", "create"])
    assert os.waitstatus_to_exitcode(rc) == 1, err
    assert "outside of the container root" in err
    assert not (rt_root / cid).exists()
    # a symlink that climbs out of the rootfs resolves inside it
    b2 = new_bundle(["pwd"], edit=lambda c: c["process"].update(cwd="/escape"))
    os.symlink("../../../../../../", b2 / "rootfs" / "escape")
    cp = prt("run", "--bundle", str(b2), cid + "2")
    assert cp.returncode == 0 and cp.stdout.strip() == "/"  # physically the container root
    # exec --cwd through the exec process's own descriptors fails cleanly
    b3 = new_bundle(["sleep", "60"])
    prt("run", "-d", "--bundle", str(b3), cid + "3", check=True)
    for fd in range(3, 8):
        cp = prt("exec", "--cwd", f"/proc/self/fd/{fd}", cid + "3", "pwd")
        assert cp.returncode != 0 or not cp.stdout.startswith("(unreachable)")
        assert tmp_path.name not in cp.stdout
    prt("delete", "-f", cid + "3", check=True)


def test_exec_runtime_process_is_not_dumpable(prt, new_bundle, cid, rt_root, no_leftovers):
    """While `exec` sets up inside the container, a container process cannot reach the runtime's
    /proc/PID/exe (the CVE-2019-5736 class): the runtime is non-dumpable until execve."""
    from pallet.runtime import Runtime

    b = new_bundle(["sleep", "60"])
    prt("run", "-d", "--bundle", str(b), cid, check=True)
    rt = Runtime(str(rt_root))
    r, w = os.pipe()

    def pre_exec():  # runs in the exec'd child after setns/credentials, just before execve
        os.write(w, str(os.getpid()).encode())
        time.sleep(3)

    t = threading.Thread(target=rt.exec, args=(cid, {"args": ["true"], "cwd": "/", "env": ["PATH=/bin"]}),
                         kwargs={"detach": True, "_pre_exec": pre_exec})
    t.start()
    try:
        inner = int(os.read(r, 32))
        probe = f"readlink /proc/{inner}/exe || echo denied; readlink /proc/1/exe"
        cp = prt("exec", cid, "sh", "-c", probe)
        lines = cp.stdout.split()
        assert lines[0] == "denied", cp.stdout  # the runtime process (python) is unreachable
        assert lines[1] == "/bin/busybox"  # control: an ordinary container process is reachable
        cp = prt("exec", cid, "sh", "-c", f"cat /proc/{inner}/exe > /dev/null")
        assert cp.returncode == 1 and "Permission denied" in cp.stderr, cp.stderr  # cat's own exit code
    finally:
        t.join()
        os.close(r)
        os.close(w)
    prt("delete", "-f", cid, check=True)


def test_user_namespace_id_maps(prt, new_bundle, cid, no_leftovers, tmp_path):
    def edit(cfg):
        cfg["linux"]["namespaces"].append({"type": "user"})
        cfg["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 200000, "size": 65536}]
        cfg["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 200000, "size": 65536}]
    b = new_bundle(["sh", "-c", "id -u; cat /proc/self/uid_map; sleep 30"], edit=edit)
    os.system(f"chown -R 200000:200000 {b}/rootfs")
    # the namespace's root (host uid 200000) must be able to reach the bundle: pytest's tmp dirs are 0700
    for p in [tmp_path, *tmp_path.parents]:
        if str(p).startswith("/tmp/"):
            p.chmod(p.stat().st_mode | 0o055)
    prt("run", "-d", "--bundle", str(b), cid, check=True)
    st = json.loads(prt("state", cid, check=True).stdout)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        with open(f"/proc/{st['pid']}/status") as f:
            host_uid = status_fields(f.read())["Uid"].split()[0]
        if host_uid == "200000":
            break
        time.sleep(0.05)
    assert host_uid == "200000"
    out = prt("exec", cid, "sh", "-c", "id -u; cat /proc/self/uid_map", check=True).stdout.split()
    assert out == ["0", "0", "200000", "65536"]
    prt("delete", "-f", cid, check=True)


def test_namespaces_joined_by_path(prt, new_bundle, cid, no_leftovers):
    b = new_bundle(["sleep", "60"], edit=lambda c: c.update(hostname="first"))
    prt("run", "-d", "--bundle", str(b), cid, check=True)
    pid = json.loads(prt("state", cid, check=True).stdout)["pid"]

    def edit(cfg):
        cfg.pop("hostname")
        cfg["linux"]["namespaces"] = [
            {"type": "uts", "path": f"/proc/{pid}/ns/uts"}, {"type": "network", "path": f"/proc/{pid}/ns/net"},
            {"type": "ipc", "path": f"/proc/{pid}/ns/ipc"}, {"type": "pid", "path": f"/proc/{pid}/ns/pid"},
            {"type": "mount"}]
    out = run_out(prt, new_bundle, cid + "b", ["sh", "-c", "hostname; readlink /proc/self/ns/net"], edit)
    assert out.split()[0] == "first"
    assert out.split()[1] == os.readlink(f"/proc/{pid}/ns/net")
    prt("delete", "-f", cid, check=True)


def test_rlimits_oom_score_hostname_sysctl(prt, new_bundle, cid, no_leftovers):
    def edit(cfg):
        cfg["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 512, "hard": 1000}]
        cfg["process"]["oomScoreAdj"] = 500
        cfg["hostname"] = "box"
        cfg["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1"}
    out = run_out(prt, new_bundle, cid, ["sh", "-c", "ulimit -n; ulimit -Hn; cat /proc/self/oom_score_adj;"
                                                   "hostname; cat /proc/sys/net/ipv4/ip_forward"], edit)
    assert out.split() == ["512", "1000", "500", "box", "1"]


def test_no_pivot_time_namespace_personality_domainname(prt, new_bundle, cid, no_leftovers):
    def edit(cfg):
        cfg["linux"]["namespaces"].append({"type": "time"})
        cfg["linux"]["timeOffsets"] = {"boottime": {"secs": 86400 * 365, "nanosecs": 0}}
        cfg["linux"]["personality"] = {"domain": "LINUX32"}
        cfg["domainname"] = "example.test"
    b = new_bundle(["sh", "-c", "cut -d. -f1 /proc/uptime; uname -m; cat /proc/sys/kernel/domainname; cut -d' ' -f5 /proc/self/mountinfo "
                                "| head -1"], edit=edit)
    cp = prt("run", "--no-pivot", "--bundle", str(b), cid)
    assert cp.returncode == 0, cp.stderr
    uptime, machine, domain, root = cp.stdout.split()
    assert int(uptime) >= 86400 * 365  # the boot clock moved by the configured offset
    assert machine in ("i686", "i386", "armv8l", "armv7l") and domain == "example.test"
    assert root == "/"  # MS_MOVE + chroot: the rootfs is the root mount
