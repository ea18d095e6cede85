"""Short names as podman resolves them (containers-registries.conf(5)), with docker's rule as the default."""

from __future__ import annotations

import json

import pytest

from pallet.errors import PalletError
from pallet.registry.client import shortnames as S


def conf(tmp_path, text: str) -> dict:
    p = tmp_path / "registries.conf"
    p.write_text(text)
    return {"CONTAINERS_REGISTRIES_CONF": str(p), "HOME": str(tmp_path)}


def test_no_search_registries_keeps_dockers_rule(tmp_path):
    cfg = S.load(conf(tmp_path, ""))
    r = S.resolve("busybox", cfg)
    assert r.candidates == ["busybox"] and "docker's default" in r.rule
    assert S.resolve("quay.io/a/b:1", cfg).rule.startswith("fully qualified")


def test_aliases_search_order_and_modes(tmp_path):
    env = conf(tmp_path, '''
unqualified-search-registries = ["registry.example.com", "docker.io"]
short-name-mode = "permissive"
[aliases]
"rhel7" = "registry.access.redhat.com/rhel7"
"rhel7/rhel" = "registry.access.redhat.com/rhel7/rhel"
''')
    cfg = S.load(env)
    r = S.resolve("rhel7:7.9", cfg)
    assert r.candidates == ["registry.access.redhat.com/rhel7:7.9"]
    assert r.rule == "alias 'rhel7' = 'registry.access.redhat.com/rhel7'" and r.source == env["CONTAINERS_REGISTRIES_CONF"]
    assert S.resolve("rhel7/rhel", cfg).candidates == ["registry.access.redhat.com/rhel7/rhel:latest"]
    r = S.resolve("busybox", cfg)
    assert r.candidates == ["registry.example.com/busybox:latest", "docker.io/library/busybox:latest"]
    assert not r.enforcing and S.choose(r, tty=False) == r.candidates
    assert S.resolve("team/app@sha256:" + "a" * 64, cfg).candidates[0] == "registry.example.com/team/app@sha256:" + "a" * 64


def test_enforcing_with_several_candidates_needs_a_terminal(tmp_path):
    cfg = S.load(conf(tmp_path, 'unqualified-search-registries = ["a.example", "b.example"]\n'))
    r = S.resolve("tool", cfg)
    assert r.enforcing      # enforcing is the default mode
    with pytest.raises(PalletError, match="cannot prompt without a TTY.*a.example/tool:latest, b.example/tool:latest"):
        S.choose(r, tty=False)
    assert S.choose(r, tty=True, ask=lambda res: res.candidates[1]) == ["b.example/tool:latest"]
    one = S.load(conf(tmp_path, 'unqualified-search-registries = ["a.example"]\n'))
    assert S.choose(S.resolve("tool", one), tty=False) == ["a.example/tool:latest"]


def test_registry_tables_v1_and_dropins(tmp_path):
    home = tmp_path / "home"
    d = home / ".config" / "containers" / "registries.conf.d"
    d.mkdir(parents=True)
    (home / ".config" / "containers" / "registries.conf").write_text(
        '[registries.search]\nregistries = ["old.example"]\n[registries.insecure]\nregistries = ["old.example"]\n')
    (d / "50-more.conf").write_text('''
[[registry]]
location = "127.0.0.1:5999"
insecure = true
[[registry.mirror]]
location = "127.0.0.1:6000"
[aliases]
"x" = "127.0.0.1:5999/x"
''')
    cfg = S.load({"HOME": str(home)})
    assert cfg.search == ["old.example"] and cfg.registry_for("old.example/a").insecure is True
    assert cfg.aliases["x"] == "127.0.0.1:5999/x"
    from pallet.registry.client.settings import Settings, add_registries_conf

    st = Settings()
    add_registries_conf(st, cfg)
    assert st.for_host("127.0.0.1:5999").insecure is True and st.for_host("127.0.0.1:5999").mirrors == ["127.0.0.1:6000"]


@pytest.mark.parametrize("text, message", [
    ('short-name-mode = "sometimes"\n', "short-name-mode 'sometimes' is not one of"),
    ("unqualified-search-registries = 3\n", "must be a list of strings"),
    ("[aliases\n", "cannot be read"),
])
def test_bad_files_are_one_sentence(tmp_path, text, message):
    with pytest.raises(PalletError, match=message):
        S.load(conf(tmp_path, text))


@pytest.mark.network
def test_pull_and_run_resolve_a_short_name_through_a_search_registry(pallet, registry, tmp_path):
    env = conf(tmp_path, f'unqualified-search-registries = ["{registry.host}"]\n'
                         f'[[registry]]\nlocation = "{registry.host}"\ninsecure = true\n')
    cp = pallet("pull", "-q", "test/single:v1", env=env, check=True)
    image_id = cp.stdout.strip()
    assert image_id.startswith("sha256:")
    names = pallet("images", "--format", "{{.Repository}}:{{.Tag}}", env=env, check=True).stdout.split()
    assert f"{registry.host}/test/single:v1" in names
    # the store is looked in first: a short name finds what the search registry gave
    cp = pallet("image", "inspect", "-f", "{{.Id}}", f"{registry.host}/test/single:v1", env=env, check=True)
    assert cp.stdout.strip() == image_id
    # ... and the short name itself: in the store already, it is found there first — even where two search
    # registries would make it ambiguous (enforcing, no terminal: an error listing the candidates, as podman)
    two = conf(tmp_path, f'unqualified-search-registries = ["{registry.host}", "docker.io"]\n'
                         'short-name-mode = "enforcing"\n')
    cp = pallet("explain", "run", "--format", "json", "test/single:v1", "true", env=two)
    assert cp.returncode == 0, cp.stderr
    assert json.loads(cp.stdout)["image_id"] == image_id
    assert pallet("pull", "test/other:v1", env=two).returncode == 125    # (not in the store: ambiguous)


@pytest.mark.network
def test_enforcing_pull_without_a_terminal_lists_the_candidates(pallet, registry, tmp_path):
    env = conf(tmp_path, f'unqualified-search-registries = ["{registry.host}", "docker.io"]\n')
    cp = pallet("pull", "test/single:v1", env=env)
    assert cp.returncode == 125
    assert "cannot prompt without a TTY" in cp.stderr and f"{registry.host}/test/single:v1" in cp.stderr
    assert cp.stderr.count("\n") == 1
