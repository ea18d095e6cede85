"""OCI hooks: run each hook with the container state on stdin, with its timeout."""

from __future__ import annotations

import os
import time

from pallet.jsonfast import dumps


class HookError(Exception):
    pass


def run_hooks(kind: str, hooks: list[dict] | None, state: dict) -> None:
    """Run the hooks of one lifecycle point in order; the first failure raises HookError."""
    if not hooks:
        return
    data = dumps(state).encode()
    for i, h in enumerate(hooks):
        run_hook(h, data, f"{kind} hook #{i}")


def run_hooks_warn(kind: str, hooks: list[dict] | None, state: dict, warn) -> None:
    """poststart/poststop: a failing hook is a warning and the remaining hooks still run (the spec)."""
    if not hooks:
        return
    data = dumps(state).encode()
    for i, h in enumerate(hooks):
        try:
            run_hook(h, data, f"{kind} hook #{i}")
        except HookError as e:
            warn(str(e))


def _env(entries: list[str] | None) -> dict[str, str]:
    env = {}
    for e in entries or ():
        k, _, v = e.partition("=")
        env[k] = v
    return env


def run_hook(h: dict, data: bytes, label: str) -> None:
    path = h.get("path") or ""
    args = h.get("args") or [path]
    r, w = os.pipe()
    try:
        pid = os.posix_spawn(path, args, _env(h.get("env")), file_actions=[(os.POSIX_SPAWN_DUP2, r, 0)])
    except OSError as e:
        os.close(r)
        os.close(w)
        raise HookError(f"{label} ({path}): {e.strerror}") from None
    os.close(r)
    try:
        os.write(w, data)
    except OSError:
        pass  # the hook does not read its stdin
    os.close(w)
    timeout = h.get("timeout")
    deadline = time.monotonic() + timeout if timeout else None
    delay = 0.0005
    while True:
        wpid, status = os.waitpid(pid, os.WNOHANG)
        if wpid:
            break
        if deadline and time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            raise HookError(f"{label} ({path}) did not finish within its timeout of {timeout}s")
        time.sleep(delay)
        delay = min(delay * 2, 0.05)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise HookError(f"{label} ({path}) failed with exit status {code}")
