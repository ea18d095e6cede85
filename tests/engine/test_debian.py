"""Containers from a debootstrap image (Debian minbase, built here from this machine's apt mirror):
a real distribution's /etc/passwd and /etc/group, bash, dpkg — with the default runtime and runc."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from engine.engine_support import Env, build_image
from helpers.mounts import mounts_under
from helpers.netns import machine_netns_prefix  # (the session runs in its own network namespace)

pytestmark = [pytest.mark.root, pytest.mark.slow]

IMAGE = "localhost/debian:minbase"
DOCKER_DEFAULT_CAPEFF = "00000000a80425fb"


def _apt_source() -> tuple[str, str]:
    """(suite, mirror URI) of this machine's main Debian source (deb822 .sources or sources.list)."""
    suite = ""
    for line in open("/etc/os-release"):
        if line.startswith("VERSION_CODENAME="):
            suite = line.split("=", 1)[1].strip().strip('"')
    for f in sorted(Path("/etc/apt/sources.list.d").glob("*.sources")):
        for stanza in f.read_text().split("\n\n"):
            fields = dict(re.findall(r"^([A-Za-z-]+):[ \t]*(.*)$", stanza, re.M))
            if suite in fields.get("Suites", "").split() and "deb" in fields.get("Types", "").split():
                return suite, fields["URIs"].split()[0]
    for f in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*.list"))]:
        if f.exists():
            for line in f.read_text().splitlines():
                words = [w for w in line.split() if not w.startswith("[")]
                if len(words) >= 3 and words[0] == "deb" and words[2] == suite:
                    return suite, words[1]
    pytest.fail(f"no apt source for {suite!r} on this machine")


@pytest.fixture(scope="module")
def debian_rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not shutil.which("debootstrap"):
        pytest.fail("debootstrap is not installed (make install installs it)")
    suite, mirror = _apt_source()
    dest = tmp_path_factory.mktemp("debian") / "rootfs"
    for _ in range(3):   # a transient mirror error is retried; a real failure fails the tests
        cp = subprocess.run([*machine_netns_prefix(), "debootstrap", "--variant=minbase", suite, str(dest), mirror],
                            capture_output=True, text=True, timeout=1200)
        if cp.returncode == 0:
            break
        shutil.rmtree(dest, ignore_errors=True)
    assert cp.returncode == 0, (cp.stdout + cp.stderr)[-3000:]
    for sub in ("dev", "var/cache/apt/archives", "var/lib/apt/lists"):
        for p in (dest / sub).iterdir():
            if p.is_file() or p.is_symlink() or p.is_char_device() or p.is_block_device():
                p.unlink()
    return dest


@pytest.fixture
def deb(tmp_path: Path, debian_rootfs: Path):
    root, run = tmp_path / "root", tmp_path / "run"
    build_image(root, debian_rootfs, name=IMAGE,
                config={"Cmd": ["bash"], "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]})
    env = Env(root, run, tmp_path)
    try:
        yield env
    finally:
        env.cleanup()


@pytest.mark.parametrize("runtime", ["pallet", "runc"])
def test_debian_image_runs_like_docker(deb, debian_rootfs, runtime):
    r = ["run", "--rm", "--runtime", runtime, IMAGE]
    cp = deb(*r, "cat", "/etc/debian_version", check=True)
    assert cp.stdout == (debian_rootfs / "etc" / "debian_version").read_text()
    # users and groups by name, from the image's own /etc/passwd and /etc/group
    assert deb("run", "--rm", "--runtime", runtime, "-u", "nobody", IMAGE, "id", check=True).stdout.strip() == \
        "uid=65534(nobody) gid=65534(nogroup) groups=65534(nogroup)"
    assert deb("run", "--rm", "--runtime", runtime, "-u", "daemon:staff", IMAGE, "id", "-un", check=True).stdout \
        == "daemon\n"
    cp = deb("run", "--rm", "--runtime", runtime, "-w", "/srv/new", "-e", "GREETING=hej", IMAGE,
             "bash", "-c", 'echo "$PWD $HOME $GREETING"; grep CapEff /proc/self/status', check=True)
    assert cp.stdout.splitlines() == ["/srv/new /root hej", f"CapEff:\t{DOCKER_DEFAULT_CAPEFF}"]
    assert deb(*r, "bash", "-c", "exit 5").returncode == 5
    cp = deb(*r, "no-such-command")
    assert cp.returncode == 127 and cp.stderr.count("\n") == 1


def test_debian_exec_and_package_database(deb):
    cid = deb("run", "-d", IMAGE, "sleep", "100", check=True).stdout.strip()
    try:
        cp = deb("exec", cid, "dpkg-query", "-W", "-f", "${Package} ${Status}\\n", "bash", "dpkg", check=True)
        assert cp.stdout.splitlines() == ["bash install ok installed", "dpkg install ok installed"]
        assert deb("exec", "-u", "nobody", cid, "id", "-u", check=True).stdout == "65534\n"
        assert deb("exec", cid, "bash", "-c", "echo $$; readlink /proc/1/exe", check=True).stdout.split()[1] \
            == "/usr/bin/sleep"
        deb("exec", cid, "bash", "-c", "echo from-exec > /tmp/mark", check=True)
        assert deb("exec", cid, "cat", "/tmp/mark", check=True).stdout == "from-exec\n"
    finally:
        deb("rm", "-f", cid, check=True)
    assert deb.ids() == []
    assert mounts_under(deb.root) == []
    assert os.path.exists(deb.root / "pallet.db")
