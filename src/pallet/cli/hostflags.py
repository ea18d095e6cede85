"""run/create flags for storage, limits, security, restart policy and health (docker's names).

Kept for callers of `host_options`/`limit_options`: the rows are in `pallet.cli.runflags`, the one
table from which click's options and the fast parser of `pallet run` are both made.
"""

from __future__ import annotations

from pallet.errors import PalletError


def limit_options() -> list:
    from pallet.cli.runflags import LIMITS, click_options

    return click_options(LIMITS)


def host_options(f):
    from pallet.cli.runflags import HOST, apply

    return apply(f, HOST)


# ---- the resource limits: flags <-> engine.options.Resources (docker's field names) ----------
HOST_FLAGS = {"ShmSize": "--shm-size", "OomScoreAdj": "--oom-score-adj", "OomKillDisable": "--oom-kill-disable",
              "ReadonlyRootfs": "--read-only", "Privileged": "--privileged", "CapAdd": "--cap-add",
              "CapDrop": "--cap-drop"}
RESOURCE_FLAGS = {"Memory": "--memory", "MemorySwap": "--memory-swap", "MemoryReservation": "--memory-reservation",
                  "NanoCpus": "--cpus", "CpuShares": "--cpu-shares", "CpuPeriod": "--cpu-period",
                  "CpuQuota": "--cpu-quota", "CpusetCpus": "--cpuset-cpus", "CpusetMems": "--cpuset-mems",
                  "PidsLimit": "--pids-limit", "BlkioWeight": "--blkio-weight"}


def resources(kw: dict):
    """The limit flags of run/create/update (click's keyword names) -> `engine.options.Resources`: sizes,
    CPUs and numbers parsed as docker's CLI does before it calls the API; a bad one is a line naming
    the flag. The checks of the values are the engine's (`check_resources`, see `checked_resources`)."""
    from pallet.engine.options import Resources
    from pallet.engine.units import parse_bytes

    def given(k: str) -> bool:
        return kw.get(k) not in (None, "")

    def whole(k: str) -> int:
        try:
            return int(kw[k])
        except (TypeError, ValueError):
            raise PalletError(f"invalid --{k.replace('_', '-')} {kw[k]!r}: a whole number") from None

    r = Resources()
    if given("memory"):
        r.Memory = parse_bytes(kw["memory"], "--memory")
    if given("memory_swap"):
        r.MemorySwap = -1 if str(kw["memory_swap"]) == "-1" else parse_bytes(kw["memory_swap"], "--memory-swap")
    if given("memory_reservation"):
        r.MemoryReservation = parse_bytes(kw["memory_reservation"], "--memory-reservation")
    if given("cpus"):
        try:
            r.NanoCpus = int(round(float(kw["cpus"]) * 1e9))
        except ValueError:
            raise PalletError(f"invalid --cpus {kw['cpus']!r}: a number such as 1.5") from None
    for k, f in (("cpu_shares", "CpuShares"), ("cpu_period", "CpuPeriod"), ("cpu_quota", "CpuQuota"),
                 ("pids_limit", "PidsLimit"), ("blkio_weight", "BlkioWeight")):
        if given(k):
            setattr(r, f, whole(k))
    if given("cpuset_cpus"):
        r.CpusetCpus = kw["cpuset_cpus"]
    if given("cpuset_mems"):
        r.CpusetMems = kw["cpuset_mems"]
    return r


def checked_resources(kw: dict):
    """`resources(kw)` checked by the engine -> (Resources, the HostConfig fields given); the engine's
    message names the flag instead of the field."""
    from pallet.engine.hostconfig import check_resources
    from pallet.errors import InvalidField

    r = resources(kw)
    try:
        return r, check_resources(r)
    except InvalidField as e:
        raise PalletError(e.named(RESOURCE_FLAGS.get(e.field, e.field))) from None


def host_fields(kw: dict):
    """The process and privilege flags (click's keyword names) -> `engine.options.HostOptions`, sizes and
    numbers parsed (a bad one: a line naming the flag)."""
    from pallet.engine.options import HostOptions
    from pallet.engine.units import parse_bytes

    h = HostOptions(OomKillDisable=bool(kw.get("oom_kill_disable")), ReadonlyRootfs=bool(kw.get("read_only")),
                    Privileged=bool(kw.get("privileged")), CapAdd=list(kw.get("cap_add") or ()),
                    CapDrop=list(kw.get("cap_drop") or ()))
    if kw.get("shm_size") not in (None, ""):
        h.ShmSize = parse_bytes(kw["shm_size"], "--shm-size")
    if kw.get("oom_score_adj") not in (None, ""):
        try:
            h.OomScoreAdj = int(kw["oom_score_adj"])
        except (TypeError, ValueError):
            raise PalletError(f"invalid --oom-score-adj {kw['oom_score_adj']!r}: a whole number") from None
    return h


def checked_host_fields(kw: dict):
    """`host_fields(kw)` checked by the engine -> (HostOptions, the HostConfig fields given); the
    engine's message names the flag instead of the field."""
    from pallet.engine.hostconfig import check_host_options
    from pallet.errors import InvalidField

    h = host_fields(kw)
    try:
        return h, check_host_options(h)
    except InvalidField as e:
        raise PalletError(e.named(HOST_FLAGS.get(e.field, e.field))) from None
