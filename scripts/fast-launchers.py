"""Rewrite the venv's console scripts to start Python with -S (no `site`).

`site` costs ~5 ms of every start here (it scans site-packages, reads .pth files and, with
setuptools in the venv, imports _distutils_hack). pallet's commands are short-lived and
start-up is the hot path (`pallet run --rm IMAGE true`, `pallet-runtime run`), so the
launchers skip it and put on sys.path exactly what site would have put there, computed
once here at install time. Run by `make install`; a plain `pip install` keeps pip's
launchers, which work the same, just slower to start.

The launchers also read pallet's code from one bundle that this script writes to VENV/lib/pallet-code.bundle
(pallet/codebundle.py): ~60 fewer file lookups, opens and reads on each `pallet run`.

Usage: VENV/bin/python scripts/fast-launchers.py VENV/bin
"""

import json
import os
import subprocess
import sys

TEMPLATE = """#!{python} -S
# Written by scripts/fast-launchers.py (make install): -S skips `site`; these are the paths it adds.
import sys
sys.path[:] = {path!r}
from pallet.codebundle import install
install({bundle!r})  # pallet's modules from one file (pallet/codebundle.py says why)
from {module} import {attr}
sys.exit({attr}())
"""

# in the venv's interpreter (with site): its sys.path minus the script directory ('' for -c), and the
# console scripts of the installed pallet distribution (pyproject.toml's [project.scripts])
PROBE = """import json, sys
from importlib.metadata import distribution
eps = [(e.name, e.value) for e in distribution("pallet").entry_points if e.group == "console_scripts"]
print(json.dumps({"path": sys.path[1:], "scripts": eps}))
"""


def bundle_path(bindir: str) -> str:
    return os.path.join(os.path.dirname(bindir), "lib", "pallet-code.bundle")


def main() -> None:
    bindir = os.path.abspath(sys.argv[1])
    python = os.path.join(bindir, "python")
    out = json.loads(subprocess.run([python, "-c", PROBE], check=True, capture_output=True, text=True,
                                    cwd="/").stdout)
    path = [p for p in out["path"] if p and os.path.exists(p)]
    bundle = bundle_path(bindir)
    subprocess.run([python, "-m", "pallet.codebundle", bundle], check=True, cwd="/", stdout=subprocess.DEVNULL)
    for name, value in out["scripts"]:
        module, _, attr = value.partition(":")
        dest = os.path.join(bindir, name)
        tmp = dest + ".tmp"
        with open(tmp, "w") as f:
            f.write(TEMPLATE.format(python=python, path=path, bundle=bundle, module=module.strip(),
                                    attr=attr.strip()))
        os.chmod(tmp, 0o755)
        os.replace(tmp, dest)


if __name__ == "__main__":
    main()
