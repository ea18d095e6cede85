"""Choosing one manifest from an index by platform, with containerd's matching rules.

Architectures and variants are normalized first (`x86_64`→`amd64`, `aarch64`→`arm64`,
`armhf`→`arm/v7`, `arm64/v8`→`arm64`, a bare `arm`→`arm/v7`). A host or a requested
platform then accepts, best first: the exact platform; for arm64 the arm64 entry
without a variant or with `v8`; for `arm/vN` the lower arm variants down to v5
(an arm v7 host runs v6 images); for amd64 also 386.
"""

from __future__ import annotations

import platform as _platform

from pallet.errors import NotFound
from pallet.oci.documents import Descriptor, Platform

_ARCH = {"x86_64": "amd64", "x86-64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64",
         "i386": "386", "i686": "386", "386": "386", "armhf": "arm", "armel": "arm", "armv7l": "arm",
         "armv6l": "arm", "armv8l": "arm", "arm": "arm", "ppc64le": "ppc64le", "s390x": "s390x",
         "riscv64": "riscv64", "mips64le": "mips64le", "loong64": "loong64"}
_ARCH_VARIANT = {"armhf": "v7", "armel": "v6", "armv7l": "v7", "armv6l": "v6", "armv8l": "v8"}


def normalize(p: Platform) -> Platform:
    os_ = (p.os or "linux").lower()
    arch_in = p.architecture.lower()
    arch = _ARCH.get(arch_in, arch_in)
    variant = (p.variant or _ARCH_VARIANT.get(arch_in, "")).lower()
    if arch == "arm64" and variant in ("v8", "8"):
        variant = ""
    elif arch == "arm":
        variant = variant or "v7"
        if variant.isdigit():
            variant = "v" + variant
    elif arch == "amd64" and variant == "v1":
        variant = ""
    return Platform(os_, arch, variant, p.os_version, p.os_features)


def host_platform() -> Platform:
    machine = _platform.machine()
    return normalize(Platform("linux", machine, _ARCH_VARIANT.get(machine.lower(), "")))


def _acceptable(want: Platform) -> list[Platform]:
    """Platforms `want` can run, best first (all normalized)."""
    w = normalize(want)
    out = [w]
    if w.architecture == "arm64":
        out += [Platform(w.os, "arm", v) for v in ("v8", "v7", "v6", "v5")]
    elif w.architecture == "arm" and w.variant[1:].isdigit():
        n = int(w.variant[1:])
        out += [Platform(w.os, "arm", f"v{i}") for i in range(n - 1, 4, -1)]
    elif w.architecture == "amd64":
        if w.variant:
            out += [Platform(w.os, "amd64", v) for v in ("v3", "v2", "") if v < w.variant]
        out.append(Platform(w.os, "386", ""))
    return out


def _key(p: Platform) -> tuple[str, str, str]:
    n = normalize(p)
    return (n.os, n.architecture, n.variant)


def select(manifests: tuple[Descriptor, ...] | list[Descriptor], want: Platform | None = None,
           *, what: str = "the image") -> Descriptor:
    """The best manifest of an index for `want` (default: this host), or NotFound listing the choices."""
    want = want or host_platform()
    candidates = [d for d in manifests if d.platform is not None]
    for ok in _acceptable(want):
        for d in candidates:
            if _key(d.platform) == (ok.os, ok.architecture, ok.variant):  # type: ignore[arg-type]
                return d
    available = ", ".join(sorted({str(d.platform) for d in candidates})) or "none declared"
    raise NotFound(f"{what} has no manifest for platform {want} (available: {available}); "
                   f"choose one with --platform")


def matches(p: Platform, want: Platform) -> bool:
    return _key(p) in {(x.os, x.architecture, x.variant) for x in _acceptable(want)}
