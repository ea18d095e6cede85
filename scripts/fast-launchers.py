"""Rewrite the venv's console scripts to start Python with -S (no `site`).

`site` costs ~5 ms of every start here (it scans site-packages, reads .pth files and, with
setuptools in the venv, imports _distutils_hack). pallet's commands are short-lived and
start-up is the hot path (`pallet run --rm IMAGE true`, `pallet-runtime run`), so the
launchers skip it and put on sys.path exactly what site would have put there, computed
once here at install time. Run by `make install`; a plain `pip install` keeps pip's
launchers, which work the same, just slower to start.

Usage: VENV/bin/python scripts/fast-launchers.py VENV/bin
"""

import json
import os
import subprocess
import sys

SCRIPTS = {"pallet": "pallet.cli", "pallet-runtime": "pallet.runtime.cli"}

TEMPLATE = """#!{python} -S
# Written by scripts/fast-launchers.py (make install): -S skips `site`; these are the paths it adds.
import sys
sys.path[:] = {path!r}
from {module} import main
sys.exit(main())
"""


def main() -> None:
    bindir = os.path.abspath(sys.argv[1])
    python = os.path.join(bindir, "python")
    # the interpreter's own sys.path with site, minus the script directory ('' for -c)
    out = subprocess.run([python, "-c", "import json, sys; print(json.dumps(sys.path[1:]))"],
                         check=True, capture_output=True, text=True, cwd="/").stdout
    path = [p for p in json.loads(out) if p and os.path.exists(p)]
    for name, module in SCRIPTS.items():
        dest = os.path.join(bindir, name)
        tmp = dest + ".tmp"
        with open(tmp, "w") as f:
            f.write(TEMPLATE.format(python=python, path=path, module=module))
        os.chmod(tmp, 0o755)
        os.replace(tmp, dest)


if __name__ == "__main__":
    main()
