"""Container state on disk: <root>/<id>/state.json plus the exec fifo, and the live status.

The status is derived, not stored (like runc): a dead or zombie init is
`stopped`; a live one whose exec fifo still exists is `created`; a frozen
cgroup is `paused`; otherwise `running`.
"""

from __future__ import annotations

import os
import time

from pallet.errors import RuntimeFailure
from pallet.jsonfast import dumps, loads

OCI_VERSION = "1.1.0"


class ContainerNotFound(RuntimeFailure):
    pass


class ContainerExists(RuntimeFailure):
    pass


class InvalidState(RuntimeFailure):
    pass


def valid_id(cid: str) -> bool:
    return bool(cid) and cid not in (".", "..") and all(c.isalnum() or c in "_+-." for c in cid)


def proc_stat(pid: int) -> tuple[str, int] | None:
    """(state letter, start time in clock ticks) of a process, or None if it does not exist."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    rest = data[data.rindex(b")") + 2:].split()
    return rest[0].decode(), int(rest[19])


def alive(pid: int, starttime: int | None) -> bool:
    st = proc_stat(pid) if pid > 0 else None
    if st is None or st[0] in ("Z", "X"):
        return False
    return starttime is None or st[1] == starttime


def now_rfc3339() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int((t % 1) * 1e9):09d}Z"


def encode(st: dict) -> bytes:
    """state.json's content."""
    return dumps(st).encode()


class Store:
    def __init__(self, root: str) -> None:
        self.root = root

    def dir(self, cid: str) -> str:
        return os.path.join(self.root, cid)

    def claim(self, cid: str) -> str:
        if not valid_id(cid):
            raise RuntimeFailure(f"invalid container id {cid!r}: use letters, digits, '_', '+', '-' and '.'")
        os.makedirs(self.root, mode=0o711, exist_ok=True)
        d = self.dir(cid)
        try:
            os.mkdir(d, 0o711)
        except FileExistsError:
            raise ContainerExists(f"container with id exists: {cid}") from None
        return d

    def load(self, cid: str) -> dict:
        if not valid_id(cid):
            raise ContainerNotFound(f"container {cid!r} does not exist")
        try:
            with open(os.path.join(self.dir(cid), "state.json"), "rb") as f:
                return loads(f.read())  # type: ignore[return-value]
        except FileNotFoundError:
            raise ContainerNotFound(f"container {cid} does not exist") from None
        except ValueError as e:
            raise RuntimeFailure(f"state of container {cid} is corrupt: {e}") from None

    def save(self, st: dict, data: bytes | None = None) -> None:
        """Write state.json atomically; `data`: st already serialized (`encode(st)`)."""
        d = self.dir(st["id"])
        tmp = os.path.join(d, ".state.json.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, data if data is not None else encode(st))
        finally:
            os.close(fd)
        os.replace(tmp, os.path.join(d, "state.json"))

    def ids(self) -> list[str]:
        try:
            return sorted(n for n in os.listdir(self.root)
                          if os.path.exists(os.path.join(self.root, n, "state.json")))
        except FileNotFoundError:
            return []

    def fifo(self, cid: str) -> str:
        return os.path.join(self.dir(cid), "exec.fifo")

    def status(self, st: dict) -> str:
        if not alive(st.get("pid", 0), st.get("starttime")):
            return "stopped"
        if os.path.exists(self.fifo(st["id"])):
            return "created"
        cg = st.get("cgroup")
        if cg:
            from pallet.linux.cgroups import Cgroup

            if Cgroup.from_json(cg).frozen():
                return "paused"
        return "running"


def oci_state(st: dict, status: str) -> dict:
    """The runtime-spec state document."""
    out = {"ociVersion": OCI_VERSION, "id": st["id"], "status": status, "bundle": st["bundle"]}
    if status != "stopped":
        out["pid"] = st.get("pid", 0)
    else:
        out["pid"] = 0
    out["rootfs"] = st.get("rootfs", "")
    out["created"] = st.get("created", "")
    out["owner"] = ""
    ann = (st.get("config") or {}).get("annotations")
    if ann:
        out["annotations"] = ann
    return out
