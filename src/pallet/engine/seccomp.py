"""Moby's default seccomp profile (seccomp_default.json, Apache-2.0, see LICENSE-moby-seccomp;
put into the package at install time by scripts/seccomp-profile.sh from Debian's packaged moby source)
turned into the OCI runtime-spec `linux.seccomp` for one architecture and capability set,
the way moby's profiles/seccomp setupSeccomp does: rules are kept or dropped by their
`includes`/`excludes` (caps, arches, minKernel)."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pallet import jsonfast

_GOARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386", "ppc64le": "ppc64le",
           "s390x": "s390x", "riscv64": "riscv64", "mips64": "mips64"}
_NATIVE = {"amd64": "SCMP_ARCH_X86_64", "arm64": "SCMP_ARCH_AARCH64", "arm": "SCMP_ARCH_ARM",
           "386": "SCMP_ARCH_X86", "ppc64le": "SCMP_ARCH_PPC64LE", "s390x": "SCMP_ARCH_S390X",
           "riscv64": "SCMP_ARCH_RISCV64", "mips64": "SCMP_ARCH_MIPS64"}


@lru_cache(maxsize=1)
def _profile() -> dict:
    path = Path(__file__).parent / "seccomp_default.json"
    try:
        return jsonfast.loads(path.read_text())
    except FileNotFoundError:
        from pallet.errors import PalletError

        raise PalletError(f"docker's default seccomp profile is not installed ({path}): run `make install` "
                          "(scripts/seccomp-profile.sh) or pass --security-opt seccomp=unconfined") from None


def _kernel() -> tuple[int, int]:
    rel = os.uname().release.split("-")[0].split(".")
    try:
        return int(rel[0]), int(rel[1])
    except (IndexError, ValueError):
        return 0, 0


def _kv(text: str) -> tuple[int, int]:
    a, _, b = text.partition(".")
    return int(a), int(b or 0)


def default_seccomp(capabilities: list[str], machine: str | None = None) -> dict:
    return to_oci(_profile(), capabilities, machine)


def to_oci(prof: dict, capabilities: list[str], machine: str | None = None) -> dict:
    """A docker-format seccomp profile -> OCI `linux.seccomp` for this architecture and capability set,
    as moby's setupSeccomp does: rules kept or dropped by their `includes`/`excludes`."""
    goarch = _GOARCH.get(machine or os.uname().machine, "amd64")
    native = _NATIVE.get(goarch, "SCMP_ARCH_X86_64")
    arches: list[str] = list(prof.get("architectures") or [])
    for m in prof.get("archMap") or ():
        if m["architecture"] == native:
            arches = [m["architecture"], *(m.get("subArchitectures") or [])]
    caps = set(capabilities)
    kernel = _kernel()
    out = []
    for rule in prof.get("syscalls") or ():
        inc, exc = rule.get("includes") or {}, rule.get("excludes") or {}
        if exc.get("arches") and goarch in exc["arches"]:
            continue
        if exc.get("caps") and any(c in caps for c in exc["caps"]):
            continue
        if exc.get("minKernel") and kernel >= _kv(exc["minKernel"]):
            continue
        if inc.get("arches") and goarch not in inc["arches"]:
            continue
        if inc.get("caps") and not all(c in caps for c in inc["caps"]):
            continue
        if inc.get("minKernel") and kernel < _kv(inc["minKernel"]):
            continue
        names = list(rule.get("names") or ([rule["name"]] if rule.get("name") else []))
        r = {"names": names, "action": rule["action"]}
        if rule.get("args"):
            r["args"] = [dict(a) for a in rule["args"]]
        if "errnoRet" in rule:
            r["errnoRet"] = rule["errnoRet"]
        out.append(r)
    doc = {"defaultAction": prof["defaultAction"], "architectures": arches, "syscalls": out}
    if "defaultErrnoRet" in prof:
        doc["defaultErrnoRet"] = prof["defaultErrnoRet"]
    return doc
