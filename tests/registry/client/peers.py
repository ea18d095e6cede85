"""skopeo and podman as peers of the tests, and the environment guard for pallet runs."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

GUARD_ENV = {"HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9",
             "NO_PROXY": "127.0.0.1,localhost,::1", "https_proxy": "http://127.0.0.1:9",
             "http_proxy": "http://127.0.0.1:9", "no_proxy": "127.0.0.1,localhost,::1"}


def skopeo_copy(src: str, dest: str, *extra: str) -> None:
    cp = subprocess.run(["skopeo", "copy", "-q", "--all", *extra, src, dest], capture_output=True, text=True,
                        timeout=120)
    if cp.returncode != 0:
        raise AssertionError(f"skopeo copy {src} {dest} failed: {cp.stderr}")


def skopeo_inspect(ref: str, *extra: str, raw: bool = False) -> dict | bytes:
    cp = subprocess.run(["skopeo", "inspect", *(["--raw"] if raw else []), *extra, f"docker://{ref}"],
                        capture_output=True, timeout=60)
    if cp.returncode != 0:
        raise AssertionError(f"skopeo inspect {ref} failed: {cp.stderr.decode()}")
    return cp.stdout if raw else json.loads(cp.stdout)



def podman_cmd(tmp: Path, runroot: Path) -> list[str]:
    """podman with private storage (`runroot` must be short: podman refuses more than 50 characters)."""
    return ["podman", "--root", str(tmp / "podman-root"), "--runroot", str(runroot),
            "--tmpdir", str(tmp / "podman-tmp"), "--cgroup-manager=cgroupfs", "--events-backend=file",
            "--network-config-dir", str(tmp / "podman-net")]
