"""Credentials: setgroups(2), setresgid(2), setresuid(2) — the container's user, set last before execve."""

from __future__ import annotations

import os

from pallet.linux import trace as T


def setgroups(gids: list[int]) -> None:
    r = T.recorder
    if r is None:
        os.setgroups(gids)
        return
    t = T.now()
    try:
        os.setgroups(gids)
    except OSError as e:
        r.done("setgroups", t, {"groups": list(gids)}, e)
        raise
    r.done("setgroups", t, {"groups": list(gids)})


def setresgid(rgid: int, egid: int, sgid: int) -> None:
    r = T.recorder
    if r is None:
        os.setresgid(rgid, egid, sgid)
        return
    t = T.now()
    try:
        os.setresgid(rgid, egid, sgid)
    except OSError as e:
        r.done("setresgid", t, {"rgid": rgid, "egid": egid, "sgid": sgid}, e)
        raise
    r.done("setresgid", t, {"rgid": rgid, "egid": egid, "sgid": sgid})


def setresuid(ruid: int, euid: int, suid: int) -> None:
    r = T.recorder
    if r is None:
        os.setresuid(ruid, euid, suid)
        return
    t = T.now()
    try:
        os.setresuid(ruid, euid, suid)
    except OSError as e:
        r.done("setresuid", t, {"ruid": ruid, "euid": euid, "suid": suid}, e)
        raise
    r.done("setresuid", t, {"ruid": ruid, "euid": euid, "suid": suid})
