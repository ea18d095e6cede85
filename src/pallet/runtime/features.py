"""The runtime-spec features document (`pallet-runtime features`)."""

from __future__ import annotations

from pallet.runtime.state import OCI_VERSION


def features() -> dict:
    from pallet.linux import caps, mount, ns, seccomp
    from pallet.linux.cgroups import is_v2

    sc: dict = {"enabled": False}
    try:
        version = seccomp.version()
        sc = {
            "enabled": True,
            "actions": sorted(seccomp.ACTIONS),
            "operators": sorted(seccomp.OPS),
            "archs": list(seccomp.ARCHES),
            "knownFlags": sorted(seccomp.FLAGS),
            "supportedFlags": sorted(seccomp.FLAGS),
        }
    except OSError:
        version = ""
    v2 = is_v2()
    doc = {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": OCI_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": sorted(set(mount.FLAGS) | set(mount.PROPAGATION)),
        "linux": {
            "namespaces": ns.supported(),
            "capabilities": caps.NAMES[: caps.last_cap() + 1],
            "cgroup": {"v1": not v2, "v2": v2, "systemd": False, "systemdUser": False},
            "seccomp": sc,
            "apparmor": {"enabled": False},
            "selinux": {"enabled": False},
        },
        "annotations": {"io.github.pallet.runtime.version": "0.1.0"},
    }
    if version:
        doc["annotations"]["io.github.seccomp.libseccomp.version"] = version
    return doc
