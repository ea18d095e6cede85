"""Differential: the same Containerfile built by `pallet build` and by Debian's `podman build --layers
--format docker` (buildah 1.28) gives the same image config and the same filesystem.

Both build on the same busybox rootfs (pallet's in a private store, podman's imported into a private
podman storage under the test's tmp dir). Compared: Env, Cmd, Entrypoint, WorkingDir, User, Labels
(without buildah's io.buildah.version), ExposedPorts, Volumes, StopSignal, Healthcheck, OnBuild,
Shell; and every filesystem entry's path, type, mode, uid/gid, size, link target and content
digest (mtimes ignored). podman runs RUN only with runc and raised ulimits on this host.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from engine.engine_support import Env, build_image
from helpers.mounts import unmount_all_under

pytestmark = [pytest.mark.root, pytest.mark.slow]

BASE_ENV = "PATH=/usr/sbin:/usr/bin:/sbin:/bin"

FILES = {"a.txt": "alpha\n", "b.txt": "beta\n", "notes.md": "# notes\n", "src/main.sh": "echo main\n",
         "src/lib/util.sh": "echo util\n", "script.sh": "#!/bin/sh\necho script \"$@\"\n"}

CORPUS: dict[str, str] = {
    "basic": "FROM localhost/busybox\nENV A=1\nWORKDIR /app\nCOPY a.txt .\nRUN cat a.txt > copy.txt\n"
             "CMD [\"cat\", \"/app/copy.txt\"]\n",
    "entrypoint-shell": "FROM localhost/busybox\nENTRYPOINT echo hi\n",
    "entrypoint-cmd": "FROM localhost/busybox\nENTRYPOINT [\"/bin/echo\"]\nCMD [\"x\", \"y\"]\n",
    "cmd-shell": "FROM localhost/busybox\nCMD echo $HOME\n",
    "user-chown": "FROM localhost/busybox\nCOPY --chown=app:app a.txt /home/a.txt\n"
                  "COPY --chown=1000 b.txt /home/b.txt\nUSER app\n",
    "chmod": "FROM localhost/busybox\nCOPY --chmod=0750 script.sh /usr/local/bin/script\n",
    "metadata": "FROM localhost/busybox\nLABEL a=1 b=\"two words\"\nEXPOSE 80 443/tcp 53/udp\n"
                "VOLUME /data /cache\nSTOPSIGNAL SIGQUIT\n",
    "healthcheck": "FROM localhost/busybox\nHEALTHCHECK --interval=10s --timeout=3s --retries=2 CMD true\n",
    "healthcheck-none": "FROM localhost/busybox\nHEALTHCHECK NONE\n",
    "onbuild": "FROM localhost/busybox\nONBUILD RUN echo child\nONBUILD COPY a.txt /\n",
    "shell": "FROM localhost/busybox\nSHELL [\"/bin/sh\", \"-ec\"]\nRUN echo shell > /s.txt\nCMD cat /s.txt\n",
    "multi-stage": "FROM localhost/busybox AS b\nWORKDIR /w\nCOPY src/ ./\nRUN ls -R > tree.txt\n"
                   "FROM localhost/busybox\nCOPY --from=b /w/tree.txt /tree.txt\nCOPY --from=b /w/lib /lib2\n",
    "args": "FROM localhost/busybox\nARG NAME=world\nARG OTHER\nENV GREETING=\"hello $NAME\" O=${OTHER:-none}\n"
            "RUN echo $GREETING > /g.txt\n",
    "workdir-chain": "FROM localhost/busybox\nWORKDIR /a\nWORKDIR b\nWORKDIR ../c\nRUN pwd > here.txt\n",
    "glob": "FROM localhost/busybox\nCOPY *.txt /texts/\nCOPY src /srccopy\n",
    "delete": "FROM localhost/busybox\nRUN rm -f /etc/group && mkdir -p /opt/x && echo x > /opt/x/f\n"
              "RUN rm -rf /opt/x\n",
    "env-expand": "FROM localhost/busybox\nENV DIR=/srv\nENV FILE=${DIR}/f.txt PREFIX=${NOPE:-x}${DIR:+y}\n"
                  "COPY a.txt $FILE\nWORKDIR $DIR\n",
    "copy-dir-to-file": "FROM localhost/busybox\nCOPY a.txt /new/dir/\nCOPY b.txt /renamed.txt\n",
    "env-legacy": "FROM localhost/busybox\nENV ONE two words here\nENV A=1 B=\"x y\" C=${A}z\n",
    "label-multiline": "FROM localhost/busybox\nLABEL one=1 \\\n      two=2 \\\n      \"three four\"=5\n",
    "expose-many": "FROM localhost/busybox\nEXPOSE 80\nEXPOSE 81/udp 82/tcp\nEXPOSE 80/tcp\n",
    "arg-workdir": "FROM localhost/busybox\nARG DIR=/opt/app\nWORKDIR $DIR\nRUN touch made\n",
    "copy-multi": "FROM localhost/busybox\nCOPY a.txt b.txt notes.md /multi/\n",
    "copy-into-existing": "FROM localhost/busybox\nCOPY a.txt /etc\nCOPY src/ /etc/\n",
    "context-symlink": "FROM localhost/busybox\nCOPY linkdir/ /ld/\n",
    "user-uid-gid": "FROM localhost/busybox\nUSER 1000:50\n",
    "user-name": "FROM localhost/busybox\nUSER app\nRUN (id -u; id -g; id -G | tr ' ' '\\n' | sort) > /tmp/id.txt\n",
    "entrypoint-json-cmd-shell": "FROM localhost/busybox\nENTRYPOINT [\"/bin/sh\", \"-c\"]\nCMD echo $PATH\n",
    "cmd-then-entrypoint": "FROM localhost/busybox\nCMD [\"a\"]\nENTRYPOINT [\"/bin/echo\"]\n",
    "workdir-env": "FROM localhost/busybox\nENV BASE=/srv\nWORKDIR ${BASE}/app\nCOPY a.txt .\n",
    "chown-numeric": "FROM localhost/busybox\nCOPY --chown=1000:50 src /owned\n",
    "run-symlink-mode": "FROM localhost/busybox\nRUN ln -s /etc/passwd /pw && mkdir /m && chmod 0700 /m "
                        "&& echo x > /m/f && chmod 0600 /m/f\n",
    "run-hardlink-chown": "FROM localhost/busybox\nRUN echo h > /h1 && ln /h1 /h2 && chown 1000:1000 /h1\n",
    "volume-json": "FROM localhost/busybox\nVOLUME [\"/v1\", \"/v2\"]\n",
    "stopsignal-number": "FROM localhost/busybox\nSTOPSIGNAL 9\n",
    "healthcheck-json": "FROM localhost/busybox\nHEALTHCHECK --start-period=2s CMD [\"/bin/true\", \"x\"]\n",
    "global-arg-from": "ARG BASE=localhost/busybox\nFROM $BASE\nARG BASE\nENV B=$BASE\n",
    "stage-chain": "FROM localhost/busybox AS one\nENV ONE=1\nRUN echo 1 > /one\nFROM one AS two\nENV TWO=2\n"
                   "RUN echo 2 > /two\nFROM two\nRUN cat /one /two > /both\n",
    "copy-from-glob": "FROM localhost/busybox AS b\nRUN mkdir /out && echo 1 > /out/a.txt && echo 2 > /out/b.log\n"
                      "FROM localhost/busybox\nCOPY --from=b /out/*.txt /got/\n",
    "run-true": "FROM localhost/busybox\nRUN true\nENV X=1\n",
    "dockerignore": "FROM localhost/busybox\nCOPY . /all/\n",
}
# extra context files per case
EXTRA = {"dockerignore": {".dockerignore": "*.md\nsrc/lib\n!src/lib/util.sh\n"}}

# Where buildah 1.28 departs from the Dockerfile reference, the expected result is the reference's:
# SHELL applies to the shell form of CMD and ENTRYPOINT too; every WORKDIR is created, used or not.
EXPECTED_CONFIG = {"shell": {"Cmd": ["/bin/sh", "-ec", "cat /s.txt"]}}
EXPECTED_ONLY_OURS = {"workdir-chain": {"a/b"}}
# buildah leaves the /etc/hostname it bind-mounts for RUN in the image (an empty 0755 file)
BUILDAH_LEFTOVERS = {"etc/hostname"}

COMPARED = ("Env", "Cmd", "Entrypoint", "WorkingDir", "User", "Labels", "ExposedPorts", "Volumes", "StopSignal",
            "Healthcheck", "OnBuild", "Shell")


@pytest.fixture(scope="module")
def peers(tmp_path_factory: pytest.TempPathFactory, busybox_rootfs: Path):
    if os.geteuid() != 0 or shutil.which("podman") is None or shutil.which("runc") is None:
        pytest.skip("needs root, podman and runc")
    import tempfile

    base = tmp_path_factory.mktemp("podman-diff")
    runroot = tempfile.mkdtemp(prefix="pallet-pd-", dir="/tmp")   # podman wants a runroot under 50 characters
    pod = ["podman", "--root", str(base / "pod-root"), "--runroot", runroot, "--storage-driver",
           "overlay", "--runtime", "runc", "--cgroup-manager", "cgroupfs", "--events-backend", "none"]
    tar = base / "busybox.tar"
    subprocess.run(["tar", "-C", str(busybox_rootfs), "-cf", str(tar), "."], check=True)
    cp = subprocess.run([*pod, "import", "-q", "--change", f"ENV {BASE_ENV}", "--change", 'CMD ["sh"]', str(tar),
                         "localhost/busybox:latest"], capture_output=True, text=True)
    assert cp.returncode == 0, cp.stderr
    build_image(base / "root", busybox_rootfs)
    env = Env(base / "root", base / "run", base)
    try:
        yield pod, env, base
    finally:
        subprocess.run([*pod, "image", "unmount", "--all"], capture_output=True)
        unmount_all_under(base)
        unmount_all_under(Path(runroot))
        env.cleanup()
        shutil.rmtree(runroot, ignore_errors=True)


def _norm(cfg: dict) -> dict:
    out = {}
    for k in COMPARED:
        v = cfg.get(k)
        if k == "Labels" and v:
            v = {a: b for a, b in v.items() if a != "io.buildah.version"}
        if v:
            out[k] = v
    return out


def _tree(root: Path) -> dict[str, tuple]:
    out = {}
    for d, dirs, files in os.walk(root):
        for n in dirs + files:
            p = os.path.join(d, n)
            st = os.lstat(p)
            rel = os.path.relpath(p, root)
            kind = stat.S_IFMT(st.st_mode)
            extra: object = None
            if stat.S_ISREG(st.st_mode):
                extra = (st.st_size, hashlib.sha256(Path(p).read_bytes()).hexdigest())
            elif stat.S_ISLNK(st.st_mode):
                extra = os.readlink(p)
            out[rel] = (kind, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, extra)
    return out


def _podman_config(pod: list[str], base: Path, tag: str) -> dict:
    out = base / f"save-{tag.replace('/', '_').replace(':', '_')}"
    shutil.rmtree(out, ignore_errors=True)
    subprocess.run([*pod, "save", "--format", "docker-dir", "-o", str(out), tag], check=True, capture_output=True)
    man = json.loads((out / "manifest.json").read_text())
    cfg = json.loads((out / man["config"]["digest"].split(":")[1]).read_text())
    shutil.rmtree(out, ignore_errors=True)
    return cfg["config"]


def _pallet_config(env: Env, tag: str) -> dict:
    from pallet.store import Store

    store = Store(env.root)
    try:
        return json.loads(store.config(store.resolve_image(tag)).raw)["config"]
    finally:
        store.db.close()


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_same_config_and_filesystem_as_podman(peers, tmp_path: Path, name: str) -> None:
    pod, env, base = peers
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    for rel, data in FILES.items():
        p = ctx / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(data)
        os.utime(p, (1_600_000_000, 1_600_000_000))
    (ctx / "script.sh").chmod(0o755)
    for rel, data in EXTRA.get(name, {}).items():
        (ctx / rel).write_text(data)
    (ctx / "linkdir").mkdir()
    (ctx / "linkdir" / "target.txt").write_text("t\n")
    os.symlink("target.txt", ctx / "linkdir" / "rel-link")
    os.symlink("/etc/passwd", ctx / "linkdir" / "abs-link")
    (ctx / "Containerfile").write_text(CORPUS[name])
    tag = f"localhost/diff-{name}:latest"
    cp = subprocess.run([*pod, "build", "--layers", "--format", "docker", "--network", "none",
                         "--ulimit", "nofile=20000:20000", "--ulimit", "nproc=32768:32768", "-t", tag,
                         "-f", str(ctx / "Containerfile"), str(ctx)], capture_output=True, text=True, timeout=120)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    mine = env("build", "--network", "none", "-t", tag, "-f", str(ctx / "Containerfile"), str(ctx), timeout=120)
    assert mine.returncode == 0, mine.stderr
    expected = _norm(_podman_config(pod, base, tag))
    expected.update(EXPECTED_CONFIG.get(name, {}))
    assert _norm(_pallet_config(env, tag)) == expected

    pm = subprocess.run([*pod, "image", "mount", tag], check=True, capture_output=True, text=True).stdout.strip()
    try:
        mp = env("image", "mount", tag, check=True).stdout.strip()
        try:
            theirs, ours = _tree(Path(pm)), _tree(Path(mp))
        finally:
            env("image", "unmount", tag)
    finally:
        subprocess.run([*pod, "image", "unmount", tag], capture_output=True)
    for k in BUILDAH_LEFTOVERS:
        if k not in ours and theirs.get(k, (0,))[0] == stat.S_IFREG and theirs[k][4][0] == 0:
            theirs.pop(k)
    for k in EXPECTED_ONLY_OURS.get(name, ()):
        assert k in ours and k not in theirs
        ours.pop(k)
    diff = {k: (ours.get(k), theirs.get(k)) for k in set(ours) | set(theirs) if ours.get(k) != theirs.get(k)}
    assert diff == {}
