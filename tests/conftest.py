"""Fixtures shared by the whole suite.

Everything a test creates lives under pytest's tmp dirs; servers listen on
127.0.0.1 only; processes, mounts and cgroups a test makes are removed by the
test's own fixture, also on failure.

Network: the whole session runs in a network namespace of its own, `pallet-session-PID` (made and
entered at configure time, before any thread; deleted at the end, also on failure), so every
pallet, podman and server the tests start is in it and the machine's network is never touched. Each
test's store makes its own default bridge (`pallet0`, as docker makes docker0) there; after each test
`remove_default_bridges` deletes it and pallet's nft table, so the next store finds no bridge of
that name and a free default subnet (helpers.netns).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import settings

# Property tests explore at random on a developer's machine (the example database in .hypothesis/,
# which git ignores, replays what failed); under CI they are derandomized, with no database and no
# deadline, so a loaded CI machine or an unlucky draw cannot make a run flaky.
settings.register_profile("ci", derandomize=True, database=None, deadline=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

REPO = Path(__file__).resolve().parent.parent
VENDOR = REPO.parent / "shared" / "vendor-data"
# Data from other projects is read in place, never copied into the repository: a plain clone has none,
# and its tests skip with this one reason (.ci/run fails when any of them skips in the CI layout).
VENDOR_SKIP_REASON = "needs ../shared/vendor-data (present in CI)"
BIN = Path(sys.executable).parent


def pytest_configure(config) -> None:
    from helpers.netns import enter_session_netns

    enter_session_netns()


def pytest_unconfigure(config) -> None:
    from helpers.netns import leave_session_netns

    leave_session_netns()


@pytest.fixture(autouse=True)
def _not_a_subreaper():
    """A test that runs the runtime in-process (`Runtime.run` waits as a child subreaper) must not leave
    pytest adopting every orphan of later tests: their killed processes would stay zombies under it."""
    yield
    from pallet.linux.prctl import is_child_subreaper, set_child_subreaper

    if is_child_subreaper():
        set_child_subreaper(False)


@pytest.fixture(autouse=True)
def _default_bridges_removed():
    yield
    from helpers.netns import remove_default_bridges

    remove_default_bridges()


def busybox_binary() -> str:
    for p in ("/bin/busybox", "/usr/bin/busybox"):
        if os.path.exists(p):
            return p
    pytest.fail("busybox-static is not installed (make install installs it)")


def make_busybox_rootfs(dest: Path) -> Path:
    """A minimal root filesystem: static busybox plus one symlink per applet."""
    (dest / "bin").mkdir(parents=True, exist_ok=True)
    bb = dest / "bin" / "busybox"
    shutil.copy2(busybox_binary(), bb)
    applets = subprocess.run([str(bb), "--list-full"], check=True, capture_output=True, text=True).stdout.split()
    for applet in applets:
        target = dest / applet
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists() and not target.is_symlink():
            target.symlink_to("/bin/busybox")
    for d in ("etc", "proc", "sys", "dev", "tmp", "root", "var", "run"):
        (dest / d).mkdir(exist_ok=True)
    (dest / "tmp").chmod(0o1777)
    (dest / "etc" / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
        "app:x:1000:1000:app:/home/app:/bin/sh\n")
    (dest / "etc" / "group").write_text("root:x:0:\nnogroup:x:65534:\napp:x:1000:\nstaff:x:50:app\n")
    return dest


@pytest.fixture(scope="session")
def busybox_rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A shared read-only busybox rootfs; copy it before changing it."""
    return make_busybox_rootfs(tmp_path_factory.mktemp("busybox") / "rootfs")


def require_vendor_data(*parts: str) -> Path:
    """The vendored data folder (or a path below it); skips the calling test when it is absent."""
    path = VENDOR.joinpath(*parts)
    if not path.exists():
        pytest.skip(VENDOR_SKIP_REASON)
    return path


@pytest.fixture(scope="session")
def vendor_data() -> Path:
    return require_vendor_data()


@pytest.fixture
def pallet_root(tmp_path: Path) -> Path:
    root = tmp_path / "pallet-root"
    root.mkdir()
    return root


@pytest.fixture
def pallet(pallet_root: Path, tmp_path: Path):
    """Run the installed `pallet` console script against a private root; returns CompletedProcess."""

    from helpers.cli import run_pallet

    def run(*args: str, input: str | bytes | None = None, check: bool = False, env: dict | None = None,
            timeout: float = 120, allow_traceback: bool = False) -> subprocess.CompletedProcess:
        """A Python traceback on stderr fails the test (helpers.cli); `allow_traceback` is for a test
        that has a real reason to expect one (none does)."""
        e = dict(os.environ, PALLET_ROOT=str(pallet_root), PALLET_RUNROOT=str(tmp_path / "run"),
                 PALLET_CONFIG_DIR=str(tmp_path / "config"))
        if env:
            e.update(env)
        return run_pallet([str(BIN / "pallet"), *args], input=input, check=check, env=e, timeout=timeout,
                          allow_traceback=allow_traceback)

    return run
