"""Files in and out: cp both ways (tar streams, owners and modes, symlinks resolved inside the container),
diff, commit + run round trip, export | import gives the same tree."""

from __future__ import annotations

import io
import tarfile

import pytest

from engine.engine_support import BIN, IMAGE
from helpers.cli import run_cli
from helpers.mounts import mounts_under

pytestmark = [pytest.mark.root]

SETUP = ("echo container-secret > /etc/shadow; ln -s /etc/shadow /tmp/sh; ln -s /etc /tmp/etclink; "
         "mkdir -p /d/sub; echo a > /d/sub/f; chown 1000:50 /d/sub/f; chmod 640 /d/sub/f; rm /bin/ls; "
         "touch /ready; sleep 300")


@pytest.fixture
def ctr(pallet_env):
    cid = pallet_env("run", "-d", IMAGE, "sh", "-c", SETUP, check=True).stdout.strip()
    for _ in range(200):
        if pallet_env("exec", cid, "test", "-e", "/ready").returncode == 0:
            break
    return cid


def test_cp_out_resolves_symlinks_inside_the_container(pallet_env, ctr, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    pallet_env("cp", "-L", f"{ctr}:/tmp/sh", str(out / "shadow"), check=True)
    assert (out / "shadow").read_text() == "container-secret\n"
    pallet_env("cp", f"{ctr}:/tmp/etclink/shadow", str(out / "shadow2"), check=True)   # link in the middle
    assert (out / "shadow2").read_text() == "container-secret\n"
    pallet_env("cp", f"{ctr}:/tmp/sh", str(out / "link"), check=True)                 # without -L: the link
    assert (out / "link").is_symlink() and str((out / "link").readlink()) == "/etc/shadow"
    pallet_env("cp", f"{ctr}:/d", str(out), check=True)
    st = (out / "d" / "sub" / "f").stat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (1000, 50, 0o640)
    pallet_env("cp", f"{ctr}:/d/.", str(out / "content"), check=True)
    assert (out / "content" / "sub" / "f").read_text() == "a\n"
    cp = run_cli([str(BIN / "pallet"), "cp", f"{ctr}:/d/sub", "-"], capture_output=True, env=pallet_env.env)
    assert cp.returncode == 0
    with tarfile.open(fileobj=io.BytesIO(cp.stdout)) as tf:
        names = {m.name: m for m in tf}
    assert set(names) == {"sub", "sub/f"} and names["sub/f"].uid == 1000
    cp = pallet_env("cp", f"{ctr}:/no/such", str(out / "x"))
    assert cp.returncode == 125 and cp.stderr.count("\n") == 1


def test_cp_in_and_hostile_links(pallet_env, ctr, tmp_path):
    src = tmp_path / "hf"
    src.write_text("host file\n")
    src.chmod(0o604)
    pallet_env("cp", str(src), f"{ctr}:/tmp/", check=True)
    pallet_env("cp", str(src), f"{ctr}:/tmp/renamed", check=True)
    pallet_env("cp", str(src), f"{ctr}:/tmp/etclink/", check=True)   # the container's /etc, not the host's
    cp = pallet_env("exec", ctr, "sh", "-c", "cat /tmp/hf /tmp/renamed /etc/hf; stat -c %a /tmp/hf", check=True)
    assert cp.stdout.split("\n")[:4] == ["host file", "host file", "host file", "604"]
    # a tar stream on stdin whose symlink points at the host's /etc: it lands inside the container
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        ti = tarfile.TarInfo("esc")
        ti.type, ti.linkname = tarfile.SYMTYPE, "/etc"
        tf.addfile(ti)
        data = b"pwned\n"
        ti = tarfile.TarInfo("esc/pallet-test-escape")
        ti.size = len(data)
        tf.addfile(ti, io.BytesIO(data))
    run_cli([str(BIN / "pallet"), "cp", "-", f"{ctr}:/tmp"], input=buf.getvalue(), capture_output=True,
            env=pallet_env.env)
    import os

    assert not os.path.exists("/etc/pallet-test-escape")


def test_cp_in_of_what_is_not_a_tar_stream(pallet_env, ctr):
    """`cp - CTR:DIR` with no input copies nothing (as docker); input that is not tar is one line, 125
    (was `Error: ReadError: empty file`, the name of a Python exception)."""
    cp = pallet_env("cp", "-", f"{ctr}:/tmp", input="")
    assert (cp.returncode, cp.stderr) == (0, "")
    cp = pallet_env("cp", "-", f"{ctr}:/tmp", input="not a tar stream at all " * 40)
    assert (cp.returncode, cp.stderr) == (125, "Error: the input is not a tar archive (invalid header)\n")


def test_diff_commit_run_round_trip(pallet_env, ctr):
    lines = pallet_env("diff", ctr, check=True).stdout.splitlines()
    for want in ("C /bin", "D /bin/ls", "A /d", "A /d/sub/f", "C /etc", "A /etc/shadow", "A /tmp/sh"):
        assert want in lines, lines
    assert not any(x.endswith("/etc/hostname") for x in lines)
    cp = pallet_env("commit", "-c", 'CMD ["cat", "/d/sub/f", "/etc/shadow"]', "-m", "my change", ctr,
                    "localhost/committed:1", check=True)
    assert cp.stdout.startswith("sha256:")
    cp = pallet_env("run", "--rm", "localhost/committed:1", check=True)
    assert cp.stdout == "a\ncontainer-secret\n"
    assert pallet_env("run", "--rm", "localhost/committed:1", "ls").returncode == 127
    hist = pallet_env("history", "--no-trunc", "localhost/committed:1", check=True).stdout
    assert "my change" in hist
    assert pallet_env("commit", "-c", "BOGUS x", ctr).returncode == 125


def test_export_import_same_tree(pallet_env, ctr, tmp_path):
    e1 = tmp_path / "e1.tar"
    pallet_env("export", "-o", str(e1), ctr, check=True)
    cp = pallet_env("export", "-o", str(tmp_path / "no" / "x.tar"), ctr)
    assert (cp.returncode, cp.stderr) == (125, f'Error: failed to export container: invalid output path: directory '
                                               f'"{tmp_path / "no"}" does not exist\n')
    pallet_env("import", str(e1), "localhost/imported", check=True)
    c2 = pallet_env("create", "localhost/imported", "true", check=True).stdout.strip()
    e2 = run_cli([str(BIN / "pallet"), "export", c2], capture_output=True, env=pallet_env.env, check=True)

    def tree(f):
        with tarfile.open(fileobj=f) as tf:
            return sorted((m.name, m.type, m.mode, m.uid, m.gid, m.size, m.linkname) for m in tf)

    with open(e1, "rb") as f:
        t1 = tree(f)
    assert t1 == tree(io.BytesIO(e2.stdout))
    assert ("d/sub/f", tarfile.REGTYPE, 0o640, 1000, 50, 2, "") in t1
    assert not any(n == "bin/ls" for n, *_ in t1)


def test_cp_stopped_container_sees_its_volumes(pallet_env, tmp_path):
    pallet_env("run", "--name", "stopped", "-v", "cpvol:/data", IMAGE, "sh", "-c", "echo involume > /data/v",
               check=True)
    pallet_env("cp", "stopped:/data/v", str(tmp_path / "v"), check=True)
    assert (tmp_path / "v").read_text() == "involume\n"
    (tmp_path / "n").write_text("new\n")
    pallet_env("cp", str(tmp_path / "n"), "stopped:/data/", check=True)
    mp = pallet_env("volume", "inspect", "-f", "{{.Mountpoint}}", "cpvol", check=True).stdout.strip()
    assert open(mp + "/n").read() == "new\n"
    assert mounts_under(pallet_env.root / "layers") == []   # the snapshot is unmounted again
