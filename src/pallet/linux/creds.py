"""Credentials: setgroups(2), setresgid(2), setresuid(2) — the container's user, set last before execve."""

from __future__ import annotations

import os

from pallet.linux import trace as T


def _call(op: str, fn, args: tuple, shown: dict) -> None:
    r = T.recorder
    if r is None:
        fn(*args)
        return
    t = T.now()
    try:
        fn(*args)
    except OSError as e:
        r.done(op, t, shown, e)
        raise
    r.done(op, t, shown)


def setgroups(gids: list[int]) -> None:
    _call("setgroups", os.setgroups, (list(gids),), {"groups": list(gids)})


def setresgid(rgid: int, egid: int, sgid: int) -> None:
    _call("setresgid", os.setresgid, (rgid, egid, sgid), {"rgid": rgid, "egid": egid, "sgid": sgid})


def setresuid(ruid: int, euid: int, suid: int) -> None:
    _call("setresuid", os.setresuid, (ruid, euid, suid), {"ruid": ruid, "euid": euid, "suid": suid})
