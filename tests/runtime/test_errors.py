"""Every setup error: a clear message, exit status 1, and nothing left (state dir, cgroup, mount, process)."""

from __future__ import annotations

import os

import pytest

pytestmark = pytest.mark.root


def _procs_in(path: str) -> list[int]:
    out = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                if os.readlink(f"/proc/{p}/root").startswith(path) or path in os.readlink(f"/proc/{p}/cwd"):
                    out.append(int(p))
            except OSError:
                pass
    return out


def _add_mount(cfg):
    cfg["mounts"].append({"destination": "/data", "type": "bind", "source": "/nonexistent/dir",
                          "options": ["rbind"]})


def _bad_ns(cfg):
    cfg["linux"]["namespaces"].append({"type": "user", "path": "/proc/999999999/ns/user"})


def _bad_seccomp(cfg):
    cfg["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW",
                               "syscalls": [{"names": ["no_such_syscall"], "action": "SCMP_ACT_ERRNO"}]}


def _missing_binary(cfg):
    cfg["process"]["args"] = ["/bin/not-there"]


def _bad_cwd(cfg):
    cfg["process"]["cwd"] = "/does/not/exist"


def _bad_cap(cfg):
    cfg["process"]["capabilities"]["bounding"].append("CAP_BOGUS")


def _bad_rlimit(cfg):
    cfg["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 10, "hard": 10 ** 9}]


def _hostname_without_uts(cfg):
    cfg["linux"]["namespaces"] = [n for n in cfg["linux"]["namespaces"] if n["type"] != "uts"]


def _oom_out_of_range(cfg):
    cfg["process"]["oomScoreAdj"] = 5000     # the kernel takes -1000..1000 (EINVAL on every host)


def _bad_sysctl_value(cfg):
    cfg["linux"]["sysctl"] = {"kernel.shmmax": "notanumber"}


def _env_not_a_list(cfg):
    cfg["process"]["env"] = "PATH=/bin"


def _uid_a_string(cfg):
    cfg["process"]["user"]["uid"] = "0"


def _sysctl_a_list(cfg):
    cfg["linux"]["sysctl"] = ["kernel.shmmax=1"]


def _hooks_a_string(cfg):
    cfg["hooks"] = {"prestart": "/bin/true"}


def _bad_json(cfg):
    cfg["__corrupt__"] = True


CASES = {
    "bad-mount-source": (_add_mount, "mount source /nonexistent/dir for /data does not exist"),
    "unknown-namespace-path": (_bad_ns, "namespace user path /proc/999999999/ns/user does not exist"),
    "invalid-seccomp-syscall": (_bad_seccomp, "seccomp: unknown syscall 'no_such_syscall'"),
    "missing-binary": (_missing_binary, 'exec: "/bin/not-there": stat /bin/not-there: no such file or directory'),
    "bad-cwd": (_bad_cwd, "cannot chdir to /does/not/exist"),
    "unknown-capability": (_bad_cap, "unknown capability 'CAP_BOGUS'"),
    "rlimit-above-hard-limit": (_bad_rlimit, "cannot set RLIMIT_NOFILE to 10:1000000000"),
    "hostname-without-uts": (_hostname_without_uts, "unable to set hostname without a private UTS namespace"),
    # a field of the wrong JSON type is named (these were AttributeError/TypeError from inside the setup)
    "env-not-a-list": (_env_not_a_list, "config.json: process.env must be a list of strings (got a string)"),
    "uid-a-string": (_uid_a_string, "config.json: process.user.uid must be an integer 0-4294967295 (got a string)"),
    "sysctl-a-list": (_sysctl_a_list, "config.json: linux.sysctl must be an object of strings (got a list)"),
    "hooks-a-string": (_hooks_a_string, "config.json: hooks.prestart must be a list of objects (got a string)"),
    # a refused kernel write names the value and the file, in runc's words
    "oom-score-adj-out-of-range": (_oom_out_of_range,
                                   'failed to write "5000": write /proc/self/oom_score_adj: invalid argument'),
    "sysctl-refused": (_bad_sysctl_value, 'cannot set sysctl kernel.shmmax: failed to write "notanumber": '
                                          "write /proc/sys/kernel/shmmax: invalid argument"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_setup_error_leaves_nothing(case, prt, new_bundle, cid, rt_root, no_leftovers):
    edit, message = CASES[case]
    b = new_bundle(["true"], edit=edit)
    cp = prt("create", "--bundle", str(b), cid)
    assert cp.returncode == 1
    assert message in cp.stderr, cp.stderr
    assert cp.stderr.count("\n") == 1  # one line
    assert not (rt_root / cid).exists()
    # other test suites mount things concurrently: look only below this bundle
    assert str(b) not in open("/proc/self/mountinfo").read()
    assert _procs_in(str(b)) == []
    assert prt("list", "-q", check=True).stdout == ""


def test_missing_config_and_rootfs(prt, tmp_path, cid, rt_root):
    cp = prt("create", "--bundle", str(tmp_path), cid)
    assert cp.returncode == 1 and "config.json" in cp.stderr and "not found" in cp.stderr
    (tmp_path / "config.json").write_text("{not json")
    cp = prt("create", "--bundle", str(tmp_path), cid)
    assert cp.returncode == 1 and "not valid JSON" in cp.stderr
    import json

    from pallet.runtime.spec import default_spec

    (tmp_path / "config.json").write_text(json.dumps(default_spec()))
    cp = prt("create", "--bundle", str(tmp_path), cid)
    assert cp.returncode == 1 and "root filesystem" in cp.stderr and "does not exist" in cp.stderr
    assert not (rt_root / cid).exists()


def test_duplicate_id_and_unknown_container(prt, new_bundle, cid, no_leftovers):
    b = new_bundle(["sleep", "30"])
    prt("create", "--bundle", str(b), cid, check=True)
    cp = prt("create", "--bundle", str(b), cid)
    assert cp.returncode == 1 and cp.stderr.strip() == f"container with id exists: {cid}"
    assert prt("state", cid, check=True)  # the first one is untouched
    cp = prt("delete", cid)  # the spec: delete refuses anything not stopped, created included
    assert cp.returncode == 1 and "not stopped: created" in cp.stderr
    prt("delete", "--force", cid, check=True)
    for cmd in (["start"], ["state"], ["kill"], ["delete"], ["pause"], ["exec"]):
        cp = prt(*cmd, "nope", *(["true"] if cmd == ["exec"] else []))
        assert cp.returncode == 1 and "does not exist" in cp.stderr, (cmd, cp.stderr)
    assert prt("delete", "--force", "nope").returncode == 0  # like runc: -f on a missing id is fine
    cp = prt("create", "--bundle", str(b), "../escape")
    assert cp.returncode == 1 and "invalid container id" in cp.stderr


def test_failure_in_user_namespace_cleans_up(prt, new_bundle, cid, rt_root, no_leftovers):
    def edit(cfg):
        cfg["linux"]["namespaces"].append({"type": "user"})
        cfg["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 300000, "size": 1000}]
        cfg["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 300000, "size": 1000}]
        cfg["process"]["args"] = ["/missing"]
    b = new_bundle(edit=edit)
    cp = prt("create", "--bundle", str(b), cid)
    assert cp.returncode == 1 and cp.stderr.strip()
    assert not (rt_root / cid).exists()


@pytest.mark.parametrize("userns", [False, True], ids=["self-join", "moved-by-parent"])
def test_cgroup_failure_after_the_fork_cleans_up(userns, prt, new_bundle, cid, rt_root, no_leftovers):
    """The cgroup is created while the init unshares its namespaces: a failure there kills the init
    and leaves no state dir, cgroup, mount or process."""
    from pallet.linux.cgroups import is_v2

    if is_v2():
        pytest.skip("needs a cgroup v1 host (linux.resources.unified is valid on v2)")

    def edit(cfg):
        cfg["linux"].setdefault("resources", {})["unified"] = {"memory.high": "1"}
        if userns:
            cfg["linux"]["namespaces"].append({"type": "user"})
            cfg["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 300000, "size": 1000}]
            cfg["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 300000, "size": 1000}]
    b = new_bundle(["true"], edit=edit)
    cp = prt("run", "--bundle", str(b), cid)
    assert cp.returncode == 1
    assert cp.stderr.startswith("cgroup setup failed: ") and "needs cgroup v2" in cp.stderr, cp.stderr
    assert cp.stderr.count("\n") == 1
    assert not (rt_root / cid).exists()
    assert str(b) not in open("/proc/self/mountinfo").read()
    assert _procs_in(str(b)) == []


# -- refused kernel writes (pallet.linux.kernfs) ----------------------------------------

def test_a_refused_write_names_the_file_and_the_value(tmp_path):
    from pallet.linux import kernfs
    from pallet.linux.cgroups import CgroupError, _write

    with pytest.raises(OSError) as e:
        kernfs.write_file(str(tmp_path / "missing"), "1")
    assert str(e.value) == f"open {tmp_path / 'missing'}: no such file or directory"
    with pytest.raises(OSError) as e:
        kernfs.write_file(str(tmp_path), "1")
    assert str(e.value) == f"open {tmp_path}: is a directory"
    with pytest.raises(OSError) as e:      # the open works, the write is refused
        kernfs.write_file("/dev/full", "0 1000 1\n")
    assert str(e.value) == 'failed to write "0 1000 1\\n": write /dev/full: no space left on device'
    assert e.value.errno == 28
    with pytest.raises(OSError) as e:
        kernfs.write_file("/proc/self/oom_score_adj", "nonsense")
    assert str(e.value) == 'failed to write "nonsense": write /proc/self/oom_score_adj: invalid argument'
    with pytest.raises(CgroupError) as e:  # runc's cgroups.WriteFile, without the `[Errno N]` of OSError
        _write("/dev/full", "max")
    assert str(e.value) == 'failed to write "max": write /dev/full: no space left on device'


def _lowering_oom_score_adj_is_refused() -> bool:
    """Whether this process may not lower its oom_score_adj (tried in a child, which then exits)."""
    with open("/proc/self/oom_score_adj") as f:
        current = int(f.read())
    if current <= -1000:
        return False
    pid = os.fork()
    if pid == 0:
        try:
            fd = os.open("/proc/self/oom_score_adj", os.O_WRONLY)
            os.write(fd, str(current - 1).encode())
            os._exit(0)
        except OSError:
            os._exit(1)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 1


def test_a_refused_oom_score_adj_says_which_file(prt, new_bundle, cid, rt_root, no_leftovers):
    """A sandbox (no CAP_SYS_RESOURCE) refuses a lower oom_score_adj: not a bare `Permission denied`."""
    if not _lowering_oom_score_adj_is_refused():
        pytest.skip("this host lets root lower oom_score_adj (the refusal is tested where it is refused)")
    with open("/proc/self/oom_score_adj") as f:
        lower = int(f.read()) - 100
    b = new_bundle(["true"], edit=lambda cfg: cfg["process"].update(oomScoreAdj=max(lower, -1000)))
    cp = prt("run", "--bundle", str(b), cid)
    assert cp.returncode == 1
    assert cp.stderr == f'failed to write "{max(lower, -1000)}": write /proc/self/oom_score_adj: permission denied\n'
    assert not (rt_root / cid).exists()


@pytest.mark.parametrize(("args", "flag", "value"), [
    (["run", "--preserve-fds", "bogus", "--bundle", "/nonexistent", "x"], "--preserve-fds", "bogus"),
    (["update", "--memory", "lots", "x"], "--memory", "lots"),
    (["update", "--pids-limit", "many", "x"], "--pids-limit", "many"),
    (["exec", "--user", "root", "x", "true"], "--user", "root"),
])
def test_a_flag_value_that_does_not_parse_is_named(prt, args, flag, value):
    """urfave/cli's words (runc's), not Python's `invalid literal for int() with base 10`."""
    cp = prt(*args)
    assert (cp.returncode, cp.stderr) == (1, f'invalid value "{value}" for flag {flag}: parse error\n')
