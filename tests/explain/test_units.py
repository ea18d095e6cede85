"""pallet.explain pieces that need no store: the capability table, explain's own options, package counts,
the parent rule of the image tree, and the spec explanation of build_spec's real output."""

from __future__ import annotations

from types import SimpleNamespace

from pallet.cli.explain import split_own
from pallet.engine.hostconfig import ALL_CAPS
from pallet.engine.spec import DEFAULT_CAPS
from pallet.explain import capabilities, image, runspec, tree


def test_every_capability_has_a_meaning():
    assert set(capabilities.MEANING) == set(ALL_CAPS)
    assert all(capabilities.meaning(c) for c in ALL_CAPS)


def test_split_own_takes_only_explain_options_before_the_image():
    own = ("--compare", "--format")
    mine, rest = split_own(["--compare", "--privileged", "-it", "-e", "A=1", "--format=json",
                                    "busybox", "sh", "--format", "x"], own)
    assert mine == {"--compare": "--privileged", "--format": "json"}
    assert rest == ["-it", "-e", "A=1", "busybox", "sh", "--format", "x"]
    # a value of a run option that looks like ours is left alone
    mine, rest = split_own(["--name", "--compare", "busybox"], own)
    assert mine == {} and rest == ["--name", "--compare", "busybox"]
    mine, rest = split_own(["-v", "/a:/b", "--compare=--cap-add SYS_ADMIN", "img"], own)
    assert mine == {"--compare": "--cap-add SYS_ADMIN"} and rest == ["-v", "/a:/b", "img"]


def test_package_counts():
    status = b"Package: a\nStatus: install ok installed\n\nPackage: b\nStatus: deinstall ok config-files\n\n" \
             b"Package: c\nStatus: install ok installed\n"
    assert image.count_packages("dpkg", status) == 2
    assert image.count_packages("apk", b"C:x\nP:musl\nV:1\n\nC:y\nP:busybox\n") == 2
    assert image.count_packages("rpm", b"\0\1") is None


def _item(i, chain, history=1):
    return {"rec": SimpleNamespace(id=f"sha256:{i}", created="", tags=[]), "chain": chain, "history": history,
            "sizes": [1] * len(chain)}


def test_parent_is_the_longest_prefix_chain():
    base, child, grand, other = _item("a", ["l1"]), _item("b", ["l1", "l2"]), _item("c", ["l1", "l2", "l3"]), \
        _item("d", ["x1"])
    env_only = _item("e", ["l1", "l2"], history=5)     # same layers as child, more build steps
    items = [base, child, grand, other, env_only]
    assert tree.parent_of(base, items) is None
    assert tree.parent_of(child, items) is base
    assert tree.parent_of(env_only, items) is child
    assert tree.parent_of(grand, items) is env_only
    assert tree.parent_of(other, items) is None


def test_roots_sharing_layers_get_a_shared_node():
    a, b = _item("a", ["l1", "l2"]), _item("b", ["l1", "l3"])
    na = {"id": "sha256:a", "tags": ["a"], "children": []}
    nb = {"id": "sha256:b", "tags": ["b"], "children": []}
    forest = tree._group_roots([(a, na), (b, nb)])
    assert len(forest) == 1 and forest[0]["id"] is None and forest[0]["layers"] == 1
    assert [c["id"] for c in forest[0]["children"]] == ["sha256:a", "sha256:b"]
    assert na["added_layers"] == 1


def _built(host: dict) -> dict:
    """A spec from the engine's real build_spec + apply_host_config, explained."""
    from pallet.engine.limits import apply_host_config
    from pallet.engine.model import Container
    from pallet.engine.spec import build_spec
    from pallet.engine.users import ExecUser

    config = {"Cmd": ["sh"], "Env": []}
    host = {"NetworkMode": "none", **host}
    spec = build_spec(cid="0" * 64, config=config, host_config=host, rootfs="/x", files_dir="/files",
                      user=ExecUser(0, 0, [], "/root", "root"), hostname="h")
    c = Container("0" * 64, "", "sha256:1", "img", 0.0, "pallet", {"Config": config, "HostConfig": host,
                                                                  "Mounts": []}, "created")
    apply_host_config(spec, c)
    return runspec.explain({"argv": [], "image": "img", "image_id": "sha256:1", "command": [], "spec": spec,
                            "host_config": host, "config": config, "user": ExecUser(0, 0, [], "/root", "root"),
                            "files_dir": "/files"})


def test_default_spec_explained():
    e = _built({})
    assert [c["name"] for c in e["capabilities"]["kept"]] == DEFAULT_CAPS
    assert e["seccomp"]["enabled"] and e["seccomp"]["blocked_count"] > 20
    for name in ("mount", "unshare", "keyctl", "bpf", "kexec_load"):
        assert name in e["seccomp"]["blocked_notable"]
    assert "/proc/kcore" in e["masked_paths"] and "/proc/sys" in e["readonly_paths"]
    assert e["warnings"] == []


def test_privileged_spec_explained_and_compared():
    a, b = _built({}), _built({"Privileged": True})
    assert b["capabilities"]["kept_count"] == b["capabilities"]["full_count"]
    d = runspec.compare(a, b)
    assert {"CAP_SYS_ADMIN", "CAP_SYS_MODULE"} <= {c["name"] for c in d["capabilities"]["added"]}
    assert d["seccomp"]["changed"] and "mount" in d["seccomp"]["now_allowed"]
    assert "/proc/kcore" in d["masked_paths"]["removed"]
    assert any("--privileged" in w for w in d["warnings"]["added"])
