"""Credentials: setgroups(2), setresgid(2), setresuid(2) — the container's user, set last before execve."""

from __future__ import annotations

import os

from pallet.linux import trace as T


def _traced(op: str, call, args: dict) -> None:
    """One credentials call with the trace on: its arguments and result go to the recorder."""
    r = T.recorder
    t = T.now()
    try:
        call(*args.values())
    except OSError as e:
        r.done(op, t, args, e)
        raise
    r.done(op, t, args)


def setgroups(gids: list[int]) -> None:
    if T.recorder is None:
        os.setgroups(gids)
    else:
        _traced("setgroups", os.setgroups, {"groups": list(gids)})


def setresgid(rgid: int, egid: int, sgid: int) -> None:
    if T.recorder is None:
        os.setresgid(rgid, egid, sgid)
    else:
        _traced("setresgid", os.setresgid, {"rgid": rgid, "egid": egid, "sgid": sgid})


def setresuid(ruid: int, euid: int, suid: int) -> None:
    if T.recorder is None:
        os.setresuid(ruid, euid, suid)
    else:
        _traced("setresuid", os.setresuid, {"ruid": ruid, "euid": euid, "suid": suid})
