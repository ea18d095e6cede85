"""The mounts a test left below a directory (read from /proc/self/mountinfo, deepest last)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path


def mounts_under(path: Path) -> list[str]:
    out = []
    prefix = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4].replace("\\040", " ")
            if mp == prefix or mp.startswith(prefix + "/"):
                out.append(mp)
    return out


def unmount_all_under(path: Path) -> None:
    for mp in sorted(mounts_under(path), key=len, reverse=True):
        subprocess.run(["umount", "-l", mp], capture_output=True)
