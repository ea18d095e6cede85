"""pallet images / image inspect / tag / rmi / image prune / history / import, through the console script."""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import re

import pytest
import zstandard

from cli.imagetools import rootfs_tar, store_state, text
from helpers.cli import assert_fails


def images_json(pallet) -> list[dict]:
    return json.loads(pallet("images", "--format", "json", check=True).stdout)


def inspect(pallet, ref: str) -> dict:
    docs = json.loads(pallet("image", "inspect", ref, check=True).stdout)
    assert isinstance(docs, list) and len(docs) == 1
    return docs[0]


# ---- import -----------------------------------------------------------------------------------

def test_import_makes_a_one_layer_image_with_changes(pallet, tiny_tar):
    cp = pallet("import", "-m", "first import",
                "-c", 'CMD ["/bin/tool", "x"]', "-c", "ENTRYPOINT /bin/sh -x",
                "-c", 'ENV A=1 B="two words"', "-c", "ENV LEGACY value with spaces",
                "-c", "WORKDIR /srv", "-c", "WORKDIR app", "-c", "USER 1000:1000",
                "-c", "EXPOSE 80 53/udp", "-c", "LABEL org.example.a=1 'b c'=d", "-c", "CMD=/bin/true",
                str(tiny_tar), "example.com/team/tiny:v1", check=True)
    image_id = cp.stdout.strip()
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", image_id)
    doc = inspect(pallet, "example.com/team/tiny:v1")
    assert doc["Id"] == image_id
    assert doc["RepoTags"] == ["example.com/team/tiny:v1"]
    assert doc["RepoDigests"] == []
    cfg = doc["Config"]
    assert cfg["Cmd"] == ["/bin/sh", "-c", "/bin/true"]          # the last CMD wins; shell form
    assert cfg["Entrypoint"] == ["/bin/sh", "-c", "/bin/sh -x"]
    assert cfg["Env"] == ["A=1", "B=two words", "LEGACY=value with spaces"]
    assert cfg["WorkingDir"] == "/srv/app"
    assert cfg["User"] == "1000:1000"
    assert cfg["ExposedPorts"] == {"80/tcp": {}, "53/udp": {}}
    assert cfg["Labels"] == {"org.example.a": "1", "b c": "d"}
    assert doc["Os"] == "linux" and doc["Architecture"]
    assert doc["Comment"] == "first import"
    assert doc["RootFS"]["Type"] == "layers" and len(doc["RootFS"]["Layers"]) == 1
    # the diff id is the sha256 of the tar we gave
    import hashlib
    assert doc["RootFS"]["Layers"][0] == "sha256:" + hashlib.sha256(tiny_tar.read_bytes()).hexdigest()
    assert doc["Size"] == tiny_tar.stat().st_size
    assert doc["History"][0]["comment"] == "first import"
    assert doc["Descriptor"]["mediaType"] == "application/vnd.oci.image.manifest.v1+json"


@pytest.mark.parametrize("compress", [gzip.compress, bz2.compress, lzma.compress,
                                      lambda b: zstandard.ZstdCompressor().compress(b)],
                         ids=["gzip", "bzip2", "xz", "zstd"])
def test_import_compressed_tarballs_from_stdin_give_the_same_layer(pallet, tiny_tar, compress):
    plain = tiny_tar.read_bytes()
    a = pallet("import", str(tiny_tar), "localhost/plain", check=True).stdout.strip()
    b = text(pallet("import", "-", "localhost/packed", input=compress(plain), check=True).stdout).strip()
    assert inspect(pallet, a)["RootFS"] == inspect(pallet, b)["RootFS"]


def test_import_without_a_name_gives_an_untagged_image(pallet, tiny_tar):
    image_id = pallet("import", str(tiny_tar), check=True).stdout.strip()
    rows = images_json(pallet)
    assert [r["Id"] for r in rows] == [image_id] and rows[0]["RepoTags"] == [] and rows[0]["Dangling"]
    table = pallet("images", check=True).stdout.splitlines()
    assert re.match(r"<none>\s+<none>\s+" + image_id[7:19], table[1])


@pytest.mark.parametrize("args,msg", [
    (["-c", "RUN echo hi"], "not a supported --change instruction"),
    (["-c", "EXPOSE http"], "invalid port"),
    (["-c", "ENV"], "INSTRUCTION VALUE"),
    (["-c", "LABEL novalue"], "is not KEY=VALUE"),
    (["-c", "ENV A=\"unterminated"], "unterminated"),
])
def test_import_rejects_bad_changes(pallet, pallet_root, tiny_tar, args, msg):
    before = store_state(pallet_root)
    cp = pallet("import", *args, str(tiny_tar), "localhost/x")
    assert cp.returncode == 125 and msg in cp.stderr and len(cp.stderr.strip().splitlines()) == 1, cp.stderr
    assert store_state(pallet_root) == before


def test_import_rejects_what_is_not_a_tarball(pallet, pallet_root, tiny, tmp_path):
    before = store_state(pallet_root)
    for data in (b"", b"this is not a tar archive at all" * 40, gzip.compress(b"not a tar either" * 100)):
        cp = pallet("import", "-", "localhost/x", input=data)
        err = text(cp.stderr)
        assert cp.returncode == 125, cp
        assert err.startswith("Error: - is ") and len(err.strip().splitlines()) == 1
        assert "not a tar archive" in err
        assert store_state(pallet_root) == before
    cp = pallet("import", str(tmp_path / "missing.tar"), "localhost/x")
    assert_fails(cp, f"cannot read {tmp_path / 'missing.tar'}: No such file or directory")
    cp = pallet("import", "-", "Bad/Name", input=rootfs_tar({"a": b"b"}))
    assert cp.returncode == 125 and "must be lowercase" in text(cp.stderr)
    assert store_state(pallet_root) == before


# ---- images -----------------------------------------------------------------------------------

def test_images_table_lines_up_and_shows_familiar_names(pallet, tiny):
    pallet("tag", "localhost/tiny:1", "busybox", check=True)
    pallet("tag", tiny[7:15], "quay.io/org/tiny:2", check=True)
    out = pallet("images", check=True).stdout.splitlines()
    header = out[0]
    assert re.match(r"REPOSITORY\s+TAG\s+IMAGE ID\s+CREATED\s+SIZE$", header)
    cols = [header.index(h) for h in ("TAG", "IMAGE ID", "CREATED", "SIZE")]
    rows = {}
    for line in out[1:]:
        for c in cols:  # every column starts where its header does
            assert line[c - 1] == " " and line[c] != " ", (line, c)
        rows[line.split()[0]] = line.split()[1]
    assert rows == {"busybox": "latest", "localhost/tiny": "1", "quay.io/org/tiny": "2"}
    assert all(tiny[7:19] in line for line in out[1:])
    assert pallet("images", "-q", check=True).stdout.split() == [tiny[7:19]]
    assert pallet("images", "-q", "--no-trunc", check=True).stdout.split() == [tiny]
    assert pallet("images", "-q", "busybox", check=True).stdout.split() == [tiny[7:19]]
    assert pallet("images", "-q", "nothing-here", check=True).stdout.split() == []
    rows = images_json(pallet)
    assert sorted(rows[0]["RepoTags"]) == ["busybox:latest", "localhost/tiny:1", "quay.io/org/tiny:2"]
    assert rows[0]["Names"][0] == "docker.io/library/busybox:latest"
    assert pallet("images", "--format", "{{.Repository}}:{{.Tag}}", "busybox", check=True).stdout == "busybox:latest\n"
    assert pallet("images", "-q", "--filter", "reference=quay.io/*/*", check=True).stdout.split() == [tiny[7:19]]
    assert pallet("images", "-q", "--filter", "dangling=true", check=True).stdout.split() == []
    assert_fails(pallet("images", "--filter", "nonsense=1"), "Error: invalid filter 'nonsense=1' (dangling=true")


def test_images_digests_column(pallet, tiny, tmp_path):
    archive = tmp_path / "t.tar"
    pallet("save", "--format", "oci-archive", "-o", str(archive), "localhost/tiny:1", check=True)
    pallet("rmi", "localhost/tiny:1", check=True)
    pallet("load", "-i", str(archive), check=True)
    doc = inspect(pallet, "localhost/tiny:1")
    digest = doc["Descriptor"]["digest"]
    assert doc["RepoDigests"] == [f"localhost/tiny@{digest}"]
    out = pallet("images", "--digests", check=True).stdout.splitlines()
    assert out[0].split()[:3] == ["REPOSITORY", "TAG", "DIGEST"]
    assert out[1].split()[:3] == ["localhost/tiny", "1", digest]


# ---- inspect ----------------------------------------------------------------------------------

def test_inspect_by_name_id_and_prefix_and_unknown(pallet, tiny):
    by_name = inspect(pallet, "localhost/tiny:1")
    assert inspect(pallet, tiny) == by_name
    assert inspect(pallet, tiny[7:19]) == by_name
    assert inspect(pallet, tiny[:14]) == by_name
    digest = by_name["Descriptor"]["digest"]
    assert inspect(pallet, f"localhost/tiny@{digest}")["Id"] == tiny
    assert pallet("image", "inspect", "-f", "{{.Id}} {{json .Config.Cmd}}", "localhost/tiny:1",
                  check=True).stdout == f'{tiny} ["/bin/tool"]\n'
    cp = pallet("image", "inspect", "localhost/tiny:1", "nosuch")
    assert cp.returncode == 1 and "No such image: nosuch" in cp.stderr
    assert len(json.loads(cp.stdout)) == 1
    cp = pallet("image", "inspect", "Not/Valid")
    assert cp.returncode == 1 and "must be lowercase" in cp.stderr
    assert cp.stderr.count("\n") == 1


# ---- tag --------------------------------------------------------------------------------------

def test_tag(pallet, pallet_root, tiny):
    pallet("tag", "localhost/tiny:1", "localhost/tiny:2", check=True)
    pallet("tag", tiny, "other", check=True)
    assert sorted(inspect(pallet, "other:latest")["RepoTags"]) == ["localhost/tiny:1", "localhost/tiny:2",
                                                                   "other:latest"]
    before = store_state(pallet_root)
    for args, msg in [(("nosuch", "x"), "No such image: nosuch"),
                      (("localhost/tiny:1", "UPPER"), "must be lowercase"),
                      (("localhost/tiny:1", "x@sha256:" + "a" * 64), "digest"),
                      (("localhost/tiny:1", "bad::tag"), "invalid reference format")]:
        cp = pallet("tag", *args)
        assert cp.returncode == 125 and msg in cp.stderr, (args, cp.stderr)
        assert len(cp.stderr.strip().splitlines()) == 1
    assert store_state(pallet_root) == before
    # tags move
    other = text(pallet("import", "-", "localhost/tiny:2", input=rootfs_tar({"x": b"other"}), check=True).stdout).strip()
    assert inspect(pallet, "localhost/tiny:2")["Id"] == other


def test_index_json_of_the_store_lists_tagged_images(pallet, pallet_root, tiny):
    pallet("tag", tiny, "localhost/second", check=True)
    index = json.loads((pallet_root / "index.json").read_bytes())
    names = sorted(m["annotations"]["org.opencontainers.image.ref.name"] for m in index["manifests"])
    assert names == ["localhost/second:latest", "localhost/tiny:1"]


# ---- rmi --------------------------------------------------------------------------------------

def test_rmi_by_tag_untags_until_the_last_name(pallet, pallet_root, tiny):
    pallet("tag", tiny, "localhost/tiny:2", check=True)
    cp = pallet("rmi", "localhost/tiny:1", check=True)
    assert cp.stdout == "Untagged: localhost/tiny:1\n"
    cp = pallet("rmi", "localhost/tiny:2", check=True)
    assert cp.stdout == f"Untagged: localhost/tiny:2\nDeleted: {tiny}\n"
    assert images_json(pallet) == []
    assert list((pallet_root / "blobs" / "sha256").iterdir()) == []


def test_rmi_by_id_of_an_image_with_several_tags_needs_force(pallet, pallet_root, tiny):
    pallet("tag", tiny, "localhost/other:1", check=True)
    before = store_state(pallet_root)
    cp = pallet("rmi", tiny[7:19])   # docker rmi exits 1 when an image cannot be removed
    assert_fails(cp, f"Error: unable to delete {tiny[7:19]} (must be forced) - image is referenced in multiple "
                 "repositories", code=1)
    assert store_state(pallet_root) == before
    # two tags of one repository: still more than one tag
    pallet("rmi", "localhost/other:1", check=True)
    pallet("tag", tiny, "localhost/tiny:2", check=True)
    assert_fails(pallet("rmi", tiny), f"unable to delete {tiny[7:19]} (must be forced)", code=1)
    cp = pallet("rmi", "-f", tiny[7:19], check=True)
    assert sorted(cp.stdout.splitlines()) == [f"Deleted: {tiny}", "Untagged: localhost/tiny:1",
                                              "Untagged: localhost/tiny:2"]
    assert images_json(pallet) == []


def test_rmi_by_id_of_a_single_name_image_deletes_it(pallet, tiny):
    cp = pallet("rmi", tiny, check=True)
    assert cp.stdout.splitlines() == ["Untagged: localhost/tiny:1", f"Deleted: {tiny}"]


def test_rmi_errors_and_continues(pallet, pallet_root, tiny):
    cp = pallet("rmi", "nosuch", "localhost/tiny:1")
    assert cp.returncode == 1
    assert "No such image: nosuch" in cp.stderr
    assert f"Deleted: {tiny}" in cp.stdout
    cp = pallet("rmi", "UPPER")
    assert_fails(cp, 'Error: "UPPER" is not a valid repository/tag: invalid reference format: repository name '
                 "(library/UPPER) must be lowercase", code=1)


def test_rmi_of_a_tag_drops_same_repository_digests(pallet, tiny, tmp_path):
    archive = tmp_path / "t.tar"
    pallet("save", "--format", "oci-archive", "-o", str(archive), "localhost/tiny:1", check=True)
    pallet("rmi", "localhost/tiny:1", check=True)
    pallet("load", "-i", str(archive), check=True)                  # now with a repo digest
    pallet("tag", "localhost/tiny:1", "localhost/keep:1", check=True)
    digest = inspect(pallet, tiny)["Descriptor"]["digest"]
    cp = pallet("rmi", "localhost/tiny:1", check=True)
    assert cp.stdout.splitlines() == ["Untagged: localhost/tiny:1", f"Untagged: localhost/tiny@{digest}"]
    assert inspect(pallet, tiny)["RepoTags"] == ["localhost/keep:1"]


# ---- prune ------------------------------------------------------------------------------------

def test_prune_removes_dangling_images_and_says_what_was_freed(pallet, pallet_root, tiny):
    pallet("import", "-", "localhost/tiny:1", input=rootfs_tar({"new": b"x" * 5000}), check=True)
    # the first image lost its tag: dangling
    assert pallet("images", "-q", "--filter", "dangling=true", check=True).stdout.split() == [tiny[7:19]]
    cp = pallet("image", "prune")       # no -f and no "y" on stdin: nothing happens
    assert cp.returncode == 0 and len(images_json(pallet)) == 2
    cp = pallet("image", "prune", "-f", check=True)
    assert cp.stdout.startswith("Deleted Images:\n")
    assert f"deleted: {tiny}" in cp.stdout
    assert re.search(r"Total reclaimed space: \d+(\.\d+)?kB\n$", cp.stdout)
    assert len(images_json(pallet)) == 1
    assert pallet("image", "prune", "-f", check=True).stdout == "Total reclaimed space: 0B\n"
    cp = pallet("image", "prune", "-a", "-f", check=True)
    assert "untagged: localhost/tiny:1" in cp.stdout
    assert images_json(pallet) == []
    assert list((pallet_root / "blobs" / "sha256").iterdir()) == []


# ---- history ----------------------------------------------------------------------------------

def test_history(pallet, tiny):
    out = pallet("history", "localhost/tiny:1", check=True).stdout.splitlines()
    assert re.match(r"IMAGE\s+CREATED\s+CREATED BY\s+SIZE\s+COMMENT$", out[0])
    assert out[1].startswith(tiny[7:19]) and "pallet import" in out[1] and "Imported from" in out[1]
    rows = json.loads(pallet("history", "--format", "json", tiny[7:19], check=True).stdout)
    assert rows[0]["id"] == tiny and rows[0]["size"] > 0 and rows[0]["tags"] == ["localhost/tiny:1"]
    assert pallet("history", "-q", "localhost/tiny:1", check=True).stdout.split() == [tiny[7:19]]
    assert_fails(pallet("history", "nosuch"), "Error: No such image: nosuch")


def test_history_of_a_multi_layer_image_marks_missing_and_truncates(pallet, tmp_path):
    from helpers.oci_layout import Layout

    lay = Layout(tmp_path / "layout")
    desc = lay.image("seed", layers=3)
    lay._add_ref(desc, "example.com/multi:1")
    pallet("image", "import-layout", str(lay.root), check=True)
    out = pallet("history", "example.com/multi:1", check=True).stdout.splitlines()
    assert len(out) == 4
    assert [line.split()[0] for line in out[2:]] == ["<missing>", "<missing>"]
    assert "seed layer 2" in out[1]
    long = pallet("history", "--no-trunc", "example.com/multi:1", check=True).stdout.splitlines()
    assert long[1].split()[0].startswith("sha256:")
