"""pallet save / load / image export-layout / import-layout: round trips, names, and hostile archives."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import zstandard

from cli.imagetools import rootfs_tar, sha, store_state, tar_of, text, untar
from helpers.cli import assert_fails, run_cli


def inspect(pallet, ref: str) -> dict:
    return json.loads(pallet("image", "inspect", ref, check=True).stdout)[0]


def save(pallet, tmp_path: Path, fmt: str, *refs: str) -> Path:
    out = tmp_path / f"{fmt}-{len(list(tmp_path.iterdir()))}.tar"
    pallet("save", "--format", fmt, "-o", str(out), *refs, check=True)
    return out


@pytest.fixture
def fresh(pallet_root: Path):
    """Empty the store (keeping the root) so a load starts from nothing."""
    def wipe():
        import shutil

        shutil.rmtree(pallet_root)
        pallet_root.mkdir()
    return wipe


# ---- round trips ------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["docker-archive", "oci-archive"])
def test_save_and_load_round_trip(pallet, tmp_path, tiny, fresh, fmt):
    pallet("tag", tiny, "busybox:2", check=True)
    before = inspect(pallet, tiny)
    archive = save(pallet, tmp_path, fmt, "localhost/tiny:1", "busybox:2")
    fresh()
    cp = pallet("load", "-i", str(archive), check=True)
    assert sorted(cp.stdout.splitlines()) == ["Loaded image: busybox:2", "Loaded image: localhost/tiny:1"]
    after = inspect(pallet, tiny)
    assert after["Id"] == before["Id"] and after["RootFS"] == before["RootFS"] and after["Config"] == before["Config"]
    assert sorted(after["RepoTags"]) == ["busybox:2", "localhost/tiny:1"]
    if fmt == "oci-archive":   # the manifest is carried over byte for byte
        assert after["Descriptor"] == before["Descriptor"]
        assert sorted(after["RepoDigests"]) == sorted(
            [f"busybox@{before['Descriptor']['digest']}", f"localhost/tiny@{before['Descriptor']['digest']}"])
    else:                      # docker-archive has no manifest: no registry digest, as with docker load
        assert after["RepoDigests"] == []


def test_docker_archive_layout(pallet, tmp_path, tiny):
    files = untar(save(pallet, tmp_path, "docker-archive", "localhost/tiny:1").read_bytes())
    manifest = json.loads(files["manifest.json"])
    cfg = inspect(pallet, tiny)
    assert manifest == [{"Config": tiny[7:] + ".json", "RepoTags": ["localhost/tiny:1"],
                         "Layers": [cfg["RootFS"]["Layers"][0][7:] + ".tar"]}]
    assert sha(files[manifest[0]["Config"]]) == tiny
    assert sha(files[manifest[0]["Layers"][0]]) == cfg["RootFS"]["Layers"][0]   # uncompressed layer
    # saved by ID: no names, like docker
    files = untar(save(pallet, tmp_path, "docker-archive", tiny[7:19]).read_bytes())
    assert json.loads(files["manifest.json"])[0]["RepoTags"] is None


def test_save_to_stdout_and_load_from_stdin_compressed(pallet, pallet_root, tmp_path, tiny, fresh):
    env = dict(os.environ, PALLET_ROOT=str(pallet_root))
    data = run_cli([str(Path(sys.executable).parent / "pallet"), "save", "--format", "oci-archive",
                    "localhost/tiny:1"], capture_output=True, env=env, check=True).stdout
    assert untar(data)["oci-layout"]
    fresh()
    for packed in (gzip.compress(data), zstandard.ZstdCompressor().compress(data)):
        cp = pallet("load", input=packed, check=True)
        assert text(cp.stdout) == "Loaded image: localhost/tiny:1\n"
    assert inspect(pallet, "localhost/tiny:1")["Id"] == tiny


def test_save_refuses_a_terminal_and_unknown_images(pallet, pallet_root, tiny, tmp_path):
    cp = pallet("save", "nosuch", "-o", str(tmp_path / "x.tar"))
    assert_fails(cp, "Error: No such image: nosuch")
    assert not (tmp_path / "x.tar").exists()
    cp = pallet("save", "-o", str(tmp_path / "no" / "dir" / "x.tar"), "localhost/tiny:1")   # docker makes no dirs
    assert_fails(cp, f'Error: failed to save image: invalid output path: directory "{tmp_path / "no" / "dir"}" '
                 "does not exist")
    assert not (tmp_path / "no").exists()
    cp = pallet("save", "--format", "tarball", "localhost/tiny:1", "-o", str(tmp_path / "x.tar"))
    assert_fails(cp, "Invalid value for '--format': 'tarball' is not one of 'docker-archive', 'oci-archive'")
    import pexpect

    child = pexpect.spawn(str(Path(sys.executable).parent / "pallet"), ["save", "localhost/tiny:1"],
                          env=dict(os.environ, PALLET_ROOT=str(pallet_root)), timeout=30)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 125 and b"Error: cowardly refusing to save to a terminal" in child.before


def test_layout_export_and_import(pallet, tmp_path, tiny, fresh):
    layout = tmp_path / "layout"
    pallet("image", "export-layout", str(layout), "localhost/tiny:1", check=True)
    pallet("tag", tiny, "localhost/tiny:2", check=True)
    pallet("image", "export-layout", str(layout), "localhost/tiny:2", check=True)   # adds to it
    index = json.loads((layout / "index.json").read_bytes())
    names = [m["annotations"]["org.opencontainers.image.ref.name"] for m in index["manifests"]]
    assert names == ["localhost/tiny:1", "localhost/tiny:2"]
    fresh()
    cp = pallet("image", "import-layout", str(layout), "localhost/tiny:2", check=True)
    assert cp.stdout == "Loaded image: localhost/tiny:2\n"
    assert inspect(pallet, tiny)["RepoTags"] == ["localhost/tiny:2"]
    cp = pallet("image", "import-layout", str(layout), check=True)
    assert sorted(cp.stdout.splitlines()) == ["Loaded image: localhost/tiny:1", "Loaded image: localhost/tiny:2"]
    cp = pallet("image", "import-layout", str(layout), "localhost/none:1")
    assert_fails(cp, f"Error: {layout} has no image named 'localhost/none:1'")
    cp = pallet("image", "import-layout", str(tmp_path))
    assert_fails(cp, f"Error: {tmp_path} is not an OCI image layout (it has no oci-layout file)")
    (tmp_path / "notlayout").mkdir()
    (tmp_path / "notlayout" / "precious").write_text("x")
    cp = pallet("image", "export-layout", str(tmp_path / "notlayout"), "localhost/tiny:1")
    assert_fails(cp, f"Error: {tmp_path / 'notlayout'} is not empty and is not an OCI image layout")
    assert os.listdir(tmp_path / "notlayout") == ["precious"]


def test_oci_names_follow_podman(pallet, tmp_path):
    """Full references are kept; short ref names go under localhost/ (podman's NormalizeName); none: untagged."""
    from helpers.oci_layout import Layout

    lay = Layout(tmp_path / "layout")
    descs = {}
    for seed, ref in [("a", "latest"), ("b", "app:1"), ("c", "quay.io/x/y:2"), ("d", "docker.io/busybox")]:
        descs[ref] = lay.image(seed, layers=1)
        lay._add_ref(descs[ref], ref)
    untagged = lay.image("e", layers=1)
    idx = json.loads((lay.root / "index.json").read_text())
    idx["manifests"].append(untagged)
    (lay.root / "index.json").write_text(json.dumps(idx))
    archive = tmp_path / "oci.tar"
    subprocess.run(["tar", "-C", str(lay.root), "-cf", str(archive), "."], check=True)
    out = pallet("load", "-i", str(archive), check=True).stdout.splitlines()
    assert out[:4] == ["Loaded image: localhost/latest:latest", "Loaded image: localhost/app:1",
                       "Loaded image: quay.io/x/y:2", "Loaded image: busybox:latest"]
    assert out[4].startswith("Loaded image ID: sha256:")
    assert inspect(pallet, "quay.io/x/y:2")["RepoDigests"] == ["quay.io/x/y@" + descs["quay.io/x/y:2"]["digest"]]
    assert inspect(pallet, "localhost/latest")["RepoDigests"] == ["localhost/latest@" + descs["latest"]["digest"]]


# ---- bad archives -----------------------------------------------------------------------------

def _oci_members(pallet, tmp_path, ref="localhost/tiny:1") -> dict[str, bytes]:
    return untar(save(pallet, tmp_path, "oci-archive", ref).read_bytes())


def _docker_members(pallet, tmp_path, ref="localhost/tiny:1") -> dict[str, bytes]:
    return untar(save(pallet, tmp_path, "docker-archive", ref).read_bytes())


def _layer_path(members: dict[str, bytes]) -> str:
    index = json.loads(members["index.json"])
    manifest = json.loads(members["blobs/sha256/" + index["manifests"][0]["digest"][7:]])
    return "blobs/sha256/" + manifest["layers"][0]["digest"][7:]


def _bad_archives(pallet, tmp_path) -> dict[str, tuple[bytes, str]]:
    """name -> (archive bytes, what the error must say)."""
    good_oci = save(pallet, tmp_path, "oci-archive", "localhost/tiny:1").read_bytes()
    oci = untar(good_oci)
    dock = _docker_members(pallet, tmp_path)
    layer = _layer_path(oci)
    dm = json.loads(dock["manifest.json"])
    cases = {}
    cases["not-a-tar"] = (b"MZ this is certainly not a tar archive\n" * 50, "not a tar archive")
    cases["empty"] = (b"", "not a tar archive")
    cases["gzip-not-a-tar"] = (gzip.compress(b"garbage " * 200), "not a tar archive")
    cases["truncated"] = (good_oci[: len(good_oci) // 2], "truncated")
    cases["truncated-gzip"] = (gzip.compress(good_oci)[:-200], "truncated")
    at = good_oci.index(oci[layer]) + len(oci[layer]) // 2
    cases["truncated-mid-blob"] = (good_oci[:at], "truncated")
    cases["no-index"] = (tar_of({"hello.txt": b"hi"}), "neither a docker-archive")
    cases["oci-missing-layer"] = (tar_of({k: v for k, v in oci.items() if k != layer}), "which is not in the archive")
    flipped = bytearray(oci[layer])
    flipped[len(flipped) // 2] ^= 0xFF
    cases["oci-blob-mismatch"] = (tar_of({**oci, layer: bytes(flipped)}), "does not match its digest")
    cases["oci-member-escapes"] = (tar_of({**oci, "../evil": b"x"}), "outside the archive")
    cases["oci-absolute-member"] = (tar_of({**oci, "/etc/evil": b"x"}), "outside the archive")
    cases["oci-bad-index"] = (tar_of({**oci, "index.json": b"{not json"}), "index.json")
    cases["docker-missing-layer"] = (tar_of({k: v for k, v in dock.items() if k != dm[0]["Layers"][0]}),
                                     "which is not in the archive")
    for label, path in [("dotdot-layer", "../../etc/passwd"), ("absolute-layer", "/etc/passwd")]:
        bad = json.dumps([{**dm[0], "Layers": [path]}]).encode()
        cases[f"docker-{label}"] = (tar_of({**dock, "manifest.json": bad}), "outside the archive")
    bad = json.dumps([{**dm[0], "Config": "../config.json"}]).encode()
    cases["docker-dotdot-config"] = (tar_of({**dock, "manifest.json": bad}), "outside the archive")
    # a layer that is not what the config's diff ids say
    other = rootfs_tar({"other": b"content"})
    cases["docker-diff-id-mismatch"] = (tar_of({**dock, dm[0]["Layers"][0]: other}), "diff id")
    bad = json.dumps([{**dm[0], "RepoTags": ["Bad:Tag"]}]).encode()
    cases["docker-bad-repotag"] = (tar_of({**dock, "manifest.json": bad}), "invalid RepoTag")
    cases["docker-manifest-not-json"] = (tar_of({**dock, "manifest.json": b"[{"}), "manifest.json")
    return cases


def test_bad_archives_fail_with_one_line_and_leave_the_store_unchanged(pallet, pallet_root, tmp_path, tiny):
    cases = _bad_archives(pallet, tmp_path)
    pallet("tag", tiny, "localhost/other:1", check=True)
    before = store_state(pallet_root)
    for name, (data, msg) in cases.items():
        path = tmp_path / f"{name}.tar"
        path.write_bytes(data)
        cp = pallet("load", "-i", str(path))
        assert cp.returncode == 125, (name, cp.stderr)
        lines = cp.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: "), (name, cp.stderr)
        assert msg in lines[0], (name, lines[0])
        assert store_state(pallet_root) == before, name


def test_bad_archive_into_an_empty_store_leaves_no_blobs(pallet, pallet_root, tmp_path, tiny, fresh):
    cases = _bad_archives(pallet, tmp_path)
    fresh()
    pallet("images", check=True)
    before = store_state(pallet_root)
    for name in ("oci-missing-layer", "oci-blob-mismatch", "docker-diff-id-mismatch", "truncated"):
        cp = pallet("load", input=cases[name][0])
        assert_fails(cp, cases[name][1])
        assert store_state(pallet_root) == before, name


# ---- other producers' docker-archive shapes ---------------------------------------------------

def test_docker_25_archive_with_oci_blobs_and_legacy_symlinked_layers(pallet, tmp_path, tiny, fresh):
    """Docker >= 25 writes blobs/sha256/… (here gzip layers) named from manifest.json; older docker wrote
    <id>/layer.tar, with symlinks for repeated layers. Both load, named by RepoTags."""
    import io
    import tarfile

    oci = _oci_members(pallet, tmp_path)
    index = json.loads(oci["index.json"])
    manifest = json.loads(oci["blobs/sha256/" + index["manifests"][0]["digest"][7:]])
    cfg_path = "blobs/sha256/" + manifest["config"]["digest"][7:]
    layer_path = "blobs/sha256/" + manifest["layers"][0]["digest"][7:]
    docker25 = {**oci, "manifest.json": json.dumps([{"Config": cfg_path, "RepoTags": ["example.com/d25:1"],
                                                     "Layers": [layer_path]}]).encode()}
    # legacy: a layer dir with layer.tar, and a second dir whose layer.tar is a symlink to the first
    dock = _docker_members(pallet, tmp_path)
    dm = json.loads(dock["manifest.json"])[0]

    def legacy(target: str) -> bytes:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tf:
            def add(name, data):
                ti = tarfile.TarInfo(name)
                ti.size = len(data)
                tf.addfile(ti, io.BytesIO(data))
            add(dm["Config"], dock[dm["Config"]])
            add("aaaa/layer.tar", dock[dm["Layers"][0]])
            add("aaaa/VERSION", b"1.0")
            add("aaaa/json", b"{}")
            link = tarfile.TarInfo("bbbb/layer.tar")
            link.type, link.linkname = tarfile.SYMTYPE, target
            tf.addfile(link)
            add("manifest.json", json.dumps([{"Config": dm["Config"], "RepoTags": ["legacy:1"],
                                              "Layers": ["bbbb/layer.tar"]}]).encode())
        return buf.getvalue()
    fresh()
    (tmp_path / "d25.tar").write_bytes(tar_of(docker25))
    (tmp_path / "legacy.tar").write_bytes(legacy("../aaaa/layer.tar"))
    assert pallet("load", "-i", str(tmp_path / "d25.tar"), check=True).stdout == "Loaded image: example.com/d25:1\n"
    assert pallet("load", "-i", str(tmp_path / "legacy.tar"), check=True).stdout == "Loaded image: legacy:1\n"
    assert sorted(inspect(pallet, tiny)["RepoTags"]) == ["example.com/d25:1", "legacy:1"]
    # a symlink that leaves the archive is refused
    for target in ("../../etc/passwd", "/etc/passwd"):
        cp = pallet("load", input=legacy(target))
        assert_fails(cp, "outside the archive")


def test_save_of_a_bare_repository_name_saves_all_its_tags(pallet, tmp_path, tiny):
    pallet("tag", tiny, "localhost/tiny:2", check=True)
    pallet("tag", tiny, "localhost/other:1", check=True)
    other = text(pallet("import", "-", "localhost/tiny:3", input=rootfs_tar({"x": b"3"}), check=True).stdout).strip()
    files = untar(save(pallet, tmp_path, "docker-archive", "localhost/tiny").read_bytes())
    entries = json.loads(files["manifest.json"])
    tags = sorted(t for e in entries for t in e["RepoTags"])
    assert tags == ["localhost/tiny:1", "localhost/tiny:2", "localhost/tiny:3"]
    assert sorted(e["Config"] for e in entries) == sorted([tiny[7:] + ".json", other[7:] + ".json"])
