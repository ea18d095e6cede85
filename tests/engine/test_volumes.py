"""Volumes and mounts: named volumes persist and seed from the image, anonymous volumes for the image's
VOLUMEs (rm -v), bind mounts, --mount, --tmpfs, --read-only, `pallet volume`, bad specs."""

from __future__ import annotations

import json
import shutil

import pytest

from engine.engine_support import IMAGE, build_image
from helpers.cli import assert_no_traceback
from helpers.mounts import mounts_under

pytestmark = [pytest.mark.root]

VIMAGE = "localhost/bbvol:latest"


@pytest.fixture
def venv(pallet_env, image_rootfs, tmp_path):
    """pallet_env plus an image with VOLUME /data holding /data/seed.txt."""
    rootfs = tmp_path / "vrootfs"
    shutil.copytree(image_rootfs, rootfs, symlinks=True)
    (rootfs / "data").mkdir()
    (rootfs / "data" / "seed.txt").write_text("seeded\n")
    (rootfs / "data").chmod(0o750)
    build_image(pallet_env.root, rootfs, VIMAGE,
                {"Cmd": ["sh"], "Env": ["PATH=/bin:/sbin:/usr/bin"], "Volumes": {"/data": {}}})
    return pallet_env


def _volumes(env) -> list[str]:
    return env("volume", "ls", "-q", check=True).stdout.split()


def test_named_volume_persists_and_seeds(venv):
    cp = venv("run", "--rm", "-v", "vol1:/data", VIMAGE, "sh", "-c",
              "cat /data/seed.txt; stat -c %a /data; echo kept > /data/new", check=True)
    assert cp.stdout.split() == ["seeded", "750"]
    cp = venv("run", "--rm", "-v", "vol1:/data", IMAGE, "cat", "/data/new", "/data/seed.txt", check=True)
    assert cp.stdout == "kept\nseeded\n"
    assert _volumes(venv) == ["vol1"]
    info = json.loads(venv("volume", "inspect", "vol1", check=True).stdout)[0]
    assert info["Name"] == "vol1" and info["Driver"] == "local"
    assert open(info["Mountpoint"] + "/new").read() == "kept\n"
    # in use: refused without -f
    cid = venv("run", "-d", "--mount", "type=volume,src=vol1,dst=/v", IMAGE, "sleep", "100", check=True).stdout.strip()
    mounts = json.loads(venv("inspect", cid, check=True).stdout)[0]["Mounts"]
    assert mounts[0]["Type"] == "volume" and mounts[0]["Name"] == "vol1" and mounts[0]["Destination"] == "/v"
    assert venv("ps", "-q", "--no-trunc", "--filter", "volume=vol1", check=True).stdout.split() == [cid]
    cp = venv("volume", "rm", "vol1")
    assert cp.returncode == 125 and "in use" in cp.stderr and cp.stderr.count("\n") == 1
    venv("rm", "-f", cid, check=True)
    venv("volume", "rm", "vol1", check=True)
    assert _volumes(venv) == []
    venv("volume", "create", "--label", "a=b", "v2", check=True)
    assert venv("volume", "ls", "-q", "--filter", "label=a=b", check=True).stdout.split() == ["v2"]
    assert venv("volume", "prune", "-f", check=True).returncode == 0
    assert _volumes(venv) == ["v2"]             # prune keeps named volumes unless -a
    venv("volume", "prune", "-a", "-f", check=True)
    assert _volumes(venv) == []


def test_anonymous_volumes_and_rm_v(venv):
    cid = venv("run", "-d", VIMAGE, "sh", "-c", "cat /data/seed.txt; sleep 100", check=True).stdout.strip()
    mounts = json.loads(venv("inspect", cid, check=True).stdout)[0]["Mounts"]
    assert len(mounts) == 1 and mounts[0]["Destination"] == "/data" and len(mounts[0]["Name"]) == 64
    assert _volumes(venv) == [mounts[0]["Name"]]
    venv("rm", "-f", cid, check=True)
    assert _volumes(venv) == [mounts[0]["Name"]]          # rm without -v keeps it
    venv("volume", "prune", "-f", check=True)
    assert _volumes(venv) == []
    cid = venv("create", VIMAGE, "true", check=True).stdout.strip()
    assert len(_volumes(venv)) == 1
    venv("rm", "-v", cid, check=True)
    assert _volumes(venv) == []
    venv("run", "--rm", VIMAGE, "true", check=True)        # --rm removes anonymous volumes too
    assert _volumes(venv) == []


def test_binds_mounts_tmpfs_read_only(pallet_env, tmp_path):
    host = tmp_path / "hostdir"
    host.mkdir()
    (host / "h").write_text("from host\n")
    cp = pallet_env("run", "--rm", "-v", f"{host}:/h:ro", IMAGE, "sh", "-c", "cat /h/h; touch /h/x")
    assert cp.stdout == "from host\n" and cp.returncode == 1 and "Read-only" in cp.stderr
    pallet_env("run", "--rm", "--mount", f"type=bind,src={host},dst=/h", IMAGE, "sh", "-c", "echo w > /h/w",
               check=True)
    assert (host / "w").read_text() == "w\n"
    cp = pallet_env("run", "--rm", "--read-only", IMAGE, "touch", "/x")
    assert cp.returncode == 1 and "Read-only file system" in cp.stderr
    cp = pallet_env("run", "--rm", "--read-only", "--tmpfs", "/tmp:size=1m,mode=1777",
                    "--mount", "type=tmpfs,dst=/scratch,tmpfs-size=2m", IMAGE, "sh", "-c",
                    "touch /tmp/a /scratch/b && df -k /tmp /scratch | tail -2 | awk '{print $2}'; stat -c %a /tmp",
                    check=True)
    assert cp.stdout.split() == ["1024", "2048", "1777"]
    missing = tmp_path / "made-by-v"
    pallet_env("run", "--rm", "-v", f"{missing}:/m", IMAGE, "true", check=True)
    assert missing.is_dir()


@pytest.mark.parametrize("args", [
    ["-v", ":/x"], ["-v", "a:b:c:d"], ["-v", "vol:relative"], ["-v", "/host:/x:bogus"], ["-v", "/"],
    ["--mount", "type=bind,dst=/x"], ["--mount", "type=nfs,dst=/x"], ["--mount", "src=v"],
    ["--mount", "type=bind,src=/no/such/dir,dst=/x"], ["--tmpfs", "relative"], ["--tmpfs", "/t:bogus=1"],
    ["-v", "v1:/x", "-v", "v2:/x"],
    ["-v", "newvol:/data", "-v", "/proc/pallet-no-such/dir:/x"],   # fails after the row exists: undone
])
def test_bad_volume_specs(pallet_env, args):
    cp = pallet_env("run", "--rm", *args, IMAGE, "true")
    assert cp.returncode == 125, cp.stderr
    assert cp.stderr.count("\n") == 1 and cp.stderr.startswith("Error: ")
    assert pallet_env.ids() == []
    assert _volumes(pallet_env) == []
    assert not list((pallet_env.root / "containers").glob("*"))          # nothing half-created
    assert not list((pallet_env.root / "layers" / "containers").glob("*"))
    assert mounts_under(pallet_env.root) == []


def test_concurrent_first_use_seeds_once(venv):
    import subprocess

    from engine.engine_support import BIN

    procs = [subprocess.Popen([str(BIN / "pallet"), "run", "--rm", "-v", "shared:/data", VIMAGE, "cat",
                               "/data/seed.txt"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=venv.env) for _ in range(6)]
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert_no_traceback(err, p.args)
    assert [p.returncode for p in procs] == [0] * 6, outs
    assert all(o == "seeded\n" for o, _ in outs)
    assert _volumes(venv) == ["shared"]
    assert venv.ids() == []


def test_volumes_from(venv, tmp_path):
    host = tmp_path / "h"
    host.mkdir()
    (host / "f").write_text("hostfile\n")
    venv("create", "--name", "src", "-v", "vf:/data", "-v", f"{host}:/h", VIMAGE, "true", check=True)
    cp = venv("run", "--rm", "--volumes-from", "src:ro", IMAGE, "sh", "-c", "cat /data/seed.txt /h/f; touch /data/x")
    assert cp.stdout == "seeded\nhostfile\n" and cp.returncode == 1 and "Read-only" in cp.stderr
    venv("run", "--rm", "--volumes-from", "src", IMAGE, "touch", "/data/x", check=True)
    cp = venv("run", "--rm", "--volumes-from", "nosuch", IMAGE, "true")
    assert cp.returncode == 125 and cp.stderr.count("\n") == 1
    assert venv.ids() == [venv("inspect", "-f", "{{.Id}}", "src", check=True).stdout.strip()]
