"""pallet.codebundle: modules served from one file, never stale, and the launchers that use it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pallet import codebundle

REPO = Path(__file__).resolve().parents[1]

# run in a fresh interpreter: import what the bundle holds and say where each module came from
PROBE = textwrap.dedent("""
    import importlib, json, os, sys
    sys.path.insert(0, {root!r})
    from pallet.codebundle import install
    installed = install({bundle!r})
    {before}
    out = {{"installed": installed}}
    for name in {names!r}:
        try:
            m = importlib.import_module(name)
        except ImportError as e:
            out[name] = {{"error": type(e).__name__}}
            continue
        out[name] = {{"loader": type(m.__spec__.loader).__name__, "file": m.__file__,
                     "value": getattr(m, "VALUE", None), "path": list(getattr(m, "__path__", []))}}
    print(json.dumps(out))
""")


def probe(tmp_path: Path, bundle: Path, names: list[str], before: str = "") -> dict:
    code = PROBE.format(root=str(tmp_path), bundle=str(bundle), names=names, before=before)
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    res = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, env=env, check=True)
    return json.loads(res.stdout)


@pytest.fixture
def package(tmp_path: Path) -> Path:
    pkg = tmp_path / "pkgx"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("VALUE = 'init'\n")
    (pkg / "a.py").write_text("import os\nVALUE = os.path.basename(__file__)\n")
    (pkg / "sub" / "__init__.py").write_text("VALUE = 'sub'\n")
    (pkg / "sub" / "b.py").write_text("from pkgx.a import VALUE as A\nVALUE = 'b+' + A\n")
    (pkg / "notes").mkdir()
    (pkg / "notes" / "c.py").write_text("VALUE = 'not a package'\n")
    return pkg


def write(tmp_path: Path, package: Path) -> Path:
    bundle = tmp_path / "code.bundle"
    assert codebundle.write(str(bundle), str(package), "pkgx") == 4   # notes/ has no __init__.py
    return bundle


def test_modules_come_from_the_bundle(tmp_path, package):
    bundle = write(tmp_path, package)
    out = probe(tmp_path, bundle, ["pkgx", "pkgx.a", "pkgx.sub", "pkgx.sub.b"])
    assert out["installed"] is True
    assert {out[n]["loader"] for n in ("pkgx", "pkgx.a", "pkgx.sub", "pkgx.sub.b")} == {"BundleFinder"}
    assert out["pkgx.a"]["file"] == str(package / "a.py")
    assert out["pkgx.a"]["value"] == "a.py"
    assert out["pkgx.sub.b"]["value"] == "b+a.py"
    assert out["pkgx.sub"]["path"] == [str(package / "sub")]


def test_a_changed_removed_or_new_source_is_imported_the_ordinary_way(tmp_path, package):
    bundle = write(tmp_path, package)
    (package / "a.py").write_text("VALUE = 'edited after the bundle'\n")
    (package / "sub" / "b.py").unlink()
    (package / "new.py").write_text("VALUE = 'new'\n")
    out = probe(tmp_path, bundle, ["pkgx", "pkgx.a", "pkgx.sub.b", "pkgx.new"])
    assert out["pkgx"]["loader"] == "BundleFinder"
    assert out["pkgx.a"] == {**out["pkgx.a"], "loader": "SourceFileLoader", "value": "edited after the bundle"}
    assert out["pkgx.sub.b"] == {"error": "ModuleNotFoundError"}     # not the bundle's stale copy
    assert out["pkgx.new"]["loader"] == "SourceFileLoader"


def test_same_size_edit_is_seen_by_its_mtime(tmp_path, package):
    bundle = write(tmp_path, package)
    path = package / "__init__.py"
    st = path.stat()
    path.write_text("VALUE = 'INIT'\n")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    out = probe(tmp_path, bundle, ["pkgx"])
    assert out["pkgx"]["loader"] == "SourceFileLoader" and out["pkgx"]["value"] == "INIT"


@pytest.mark.parametrize("content", [b"", b"pallet-code\0\0\0\0\0", codebundle.HEADER + b"\xff" * 8,
                                     codebundle.HEADER + (5).to_bytes(8, "little") + b"\x00bad"])
def test_a_bundle_that_is_not_one_is_not_installed(tmp_path, package, content):
    bundle = tmp_path / "code.bundle"
    bundle.write_bytes(content)
    out = probe(tmp_path, bundle, ["pkgx"], before="assert not any(type(f).__name__ == 'BundleFinder' "
                                                   "for f in sys.meta_path)")
    assert out["installed"] is False
    assert out["pkgx"]["loader"] == "SourceFileLoader"


def test_missing_bundle(tmp_path, package):
    out = probe(tmp_path, tmp_path / "absent.bundle", ["pkgx"])
    assert out["installed"] is False and out["pkgx"]["loader"] == "SourceFileLoader"


def test_closed_descriptor_is_opened_again_not_read_under_its_number(tmp_path, package):
    """A monitor closes every descriptor after its fork; the number may then name another file."""
    bundle = write(tmp_path, package)
    other = tmp_path / "other"
    other.write_bytes(b"\x00" * 100_000)
    before = (f"os.closerange(3, 1024); fd = os.open({str(other)!r}, os.O_RDONLY)")
    out = probe(tmp_path, bundle, ["pkgx", "pkgx.a", "pkgx.sub.b"], before=before)
    assert [out[n]["loader"] for n in ("pkgx", "pkgx.a", "pkgx.sub.b")] == ["BundleFinder"] * 3
    assert out["pkgx.sub.b"]["value"] == "b+a.py"


def test_a_bundle_written_again_after_install_is_not_mixed_with_the_old_index(tmp_path, package):
    bundle = write(tmp_path, package)
    before = (f"import os; from pallet import codebundle; os.closerange(3, 1024); "
              f"codebundle.write({str(bundle)!r}, {str(package)!r}, 'pkgx')")
    out = probe(tmp_path, bundle, ["pkgx", "pkgx.a"], before=before)
    assert out["pkgx"]["loader"] == "SourceFileLoader" and out["pkgx.a"]["value"] == "a.py"


def test_the_installed_launcher_serves_pallet_from_the_bundle():
    """The launcher `make install` wrote: each pallet module it imports comes from the bundle, unless
    its source changed since (then the ordinary way, as the tests above show)."""
    launcher = REPO / ".venv" / "bin" / "pallet-runtime"
    if "pallet.codebundle" not in launcher.read_text():
        pytest.fail(f"{launcher} does not install the code bundle: run `make venv`")
    code = launcher.read_text().replace("sys.exit(main())", textwrap.dedent("""
        import json, marshal
        finder = next(f for f in sys.meta_path if type(f).__name__ == "BundleFinder")
        print(json.dumps({n: [type(m.__spec__.loader).__name__, m.__file__, finder.index.get(n)]
                          for n, m in sys.modules.items() if n.startswith("pallet.")}))
    """))
    res = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, check=True)
    modules = json.loads(res.stdout)
    served = {n for n, (loader, _, _) in modules.items() if loader == "BundleFinder"}
    assert "pallet.runtime.cli" in modules and served
    for name, (loader, file, entry) in modules.items():
        if name == "pallet.codebundle":
            continue   # the one module imported before the bundle is
        st = os.stat(file)
        fresh = entry is not None and [entry[2], entry[3]] == [st.st_mtime_ns, st.st_size]
        assert (name in served) == fresh, (name, loader)
