"""`pallet exec`: another process in a running container's namespaces, through its runtime."""

from __future__ import annotations

import json
import os

from pallet.engine.events import container_event
from pallet.errors import PalletError


def container_pids(c) -> list[int]:
    """Host pids of every process in the container's cgroup (the init alone if that cannot be read)."""
    from pallet.linux import cgroups  # (at the package boundary: not on run's path)

    cg = cgroups.of_pid(c.pid) if c.pid else None
    try:
        return (cg.pids() or [c.pid]) if cg else ([c.pid] if c.pid else [])
    except OSError:
        return [c.pid]


def top(engine, c, ps_args: tuple[str, ...] | list[str] = ()) -> dict:
    """docker's ContainerTop: the host's `ps` (default columns, or `ps_args`) over the container's
    processes, as {"Titles": [...], "Processes": [[...], ...]} (the last column keeps its spaces)."""
    import subprocess

    if c.status != "running":
        raise PalletError(f"container {c.name} is not running")
    args = list(ps_args) or ["-o", "user,pid,ppid,c,stime,tty,time,cmd"]
    pids = container_pids(c)
    try:
        cp = subprocess.run(["ps", *args, "-p", ",".join(map(str, pids))], capture_output=True, text=True)
    except OSError as e:
        raise PalletError(f"cannot run ps: {e.strerror}") from None
    lines = cp.stdout.splitlines()
    if cp.returncode not in (0, 1) or not lines:
        raise PalletError(f"ps {' '.join(args)} failed: {(cp.stderr.strip().splitlines() or ['no output'])[-1]}")
    titles = lines[0].split()
    rows = [ln.split(None, len(titles) - 1) for ln in lines[1:] if ln.strip()]
    if "PID" in titles:   # as moby does: BSD-style arguments (aux) list every process, -p or not
        i, mine = titles.index("PID"), set(map(str, pids))
        rows = [r for r in rows if len(r) > i and r[i] in mine]
    return {"Titles": titles, "Processes": [r + [""] * (len(titles) - len(r)) for r in rows]}


def exec_process(engine, c, command: list[str], *, env: list[str], user: str | None, workdir: str | None,
                 tty: bool) -> dict:
    """The OCI `process` for an exec: the container's own (caps, rlimits, env) with the overrides."""
    spec = json.loads((engine.dir(c.id) / "config.json").read_text())
    proc = dict(spec["process"])
    from pallet.engine.spec import merge_env

    proc["args"] = list(command)
    proc["terminal"] = tty
    if user:
        from pallet.engine.users import resolve_user

        u = resolve_user(spec["root"]["path"], user)
        proc["user"] = {"uid": u.uid, "gid": u.gid, **({"additionalGids": u.additional_gids}
                                                        if u.additional_gids else {})}
        proc["env"] = merge_env(proc["env"], [f"HOME={u.home}"])
    proc["env"] = merge_env(proc["env"], env)
    if tty and not any(e.startswith("TERM=") for e in proc["env"]):
        proc["env"].append("TERM=xterm")
    if workdir:
        proc["cwd"] = workdir
    return proc


def exec_in(engine, c, command: list[str], *, env: list[str], user: str | None, workdir: str | None,
            tty: bool, interactive: bool, detach: bool) -> int:
    if c.status != "running":
        raise PalletError(f"container {c.name} is not running")
    proc = exec_process(engine, c, command, env=env, user=user, workdir=workdir, tty=tty)
    exec_id = os.urandom(32).hex()
    what = " ".join(command)
    container_event(engine, c, f"exec_create: {what}", execID=exec_id)
    container_event(engine, c, f"exec_start: {what}", execID=exec_id)
    code = engine.runtime(c.runtime).exec_in(c.id, proc, tty=tty, interactive=interactive, detach=detach,
                                             scratch=engine.run_dir(c.id))
    if not detach:
        container_event(engine, c, "exec_die", execID=exec_id, exitCode=code)
    return code
