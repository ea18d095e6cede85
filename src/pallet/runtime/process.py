"""The last steps before execve, shared by the container init and `exec`.

rlimits, the user (groups, gid, uid, umask), capabilities, no_new_privs,
seccomp, the working directory (checked to be inside the container root), the
terminal and the program lookup. Runs in the forked child only.
"""

from __future__ import annotations

import os

from pallet.linux import caps as C
from pallet.linux import creds, kernfs
from pallet.linux import prctl as P
from pallet.linux import trace as T

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class ProcessError(Exception):
    pass


def env_dict(proc: dict) -> dict[str, str]:
    env: dict[str, str] = {}
    for e in proc.get("env") or ():
        k, sep, v = e.partition("=")
        if sep:
            env[k] = v
    return env


def set_rlimits(proc: dict) -> None:
    T.stage("rlimits")
    for r in proc.get("rlimits") or ():
        name = r.get("type", "")
        res = P.RLIMITS.get(name)
        if res is None:
            raise ProcessError(f"unknown rlimit {name!r}")
        try:
            P.setrlimit(res, r.get("soft", 0), r.get("hard", 0))
        except OSError as e:
            raise ProcessError(f"cannot set {name} to {r.get('soft')}:{r.get('hard')}: {e.strerror}") from None


def apply_lsm(proc: dict, warn) -> None:
    profile = proc.get("apparmorProfile")
    if profile:
        if os.path.exists("/sys/module/apparmor/parameters/enabled"):
            for p in ("/proc/self/attr/apparmor/exec", "/proc/self/attr/exec"):
                if os.path.exists(p):
                    kernfs.write_file(p, f"exec {profile}")
                    break
        else:
            warn(f"apparmor is not enabled on this host; profile {profile} not applied")
    label = proc.get("selinuxLabel")
    if label:
        if os.path.exists("/sys/fs/selinux/enforce"):
            kernfs.write_file("/proc/self/attr/exec", label)
        else:
            warn(f"selinux is not enabled on this host; label {label} not applied")


def cap_masks(proc: dict) -> dict[str, int]:
    caps = proc.get("capabilities") or {}
    try:
        return {k: C.mask(caps.get(k)) for k in ("bounding", "effective", "permitted", "inheritable", "ambient")}
    except ValueError as e:
        raise ProcessError(str(e)) from None


def set_user_and_caps(proc: dict, masks: dict[str, int], *, setgroups_ok: bool = True) -> None:
    """Bounding set, then groups/gid/uid keeping permitted caps, then the other four sets."""
    last = C.last_cap()
    T.stage("capabilities")
    C.drop_bounding(masks["bounding"], last)
    user = proc.get("user") or {}
    uid, gid = user.get("uid", 0), user.get("gid", 0)
    P.set_keepcaps(True)
    T.stage("user")
    try:
        if setgroups_ok:
            creds.setgroups(user.get("additionalGids") or [])
        creds.setresgid(gid, gid, gid)
        creds.setresuid(uid, uid, uid)
    except OSError as e:
        raise ProcessError(f"cannot set user {uid}:{gid}: {e.strerror}") from None
    T.stage("capabilities")
    P.set_keepcaps(False)
    if T.recorder is not None:
        T.note("capability sets", **{k: C.names_of(v) for k, v in masks.items()})
    try:
        C.capset(masks["effective"], masks["permitted"], masks["inheritable"])
        C.set_ambient(masks["ambient"], last)
    except OSError as e:
        raise ProcessError(f"cannot apply capabilities: {e.strerror}") from None


def chdir_inside(cwd: str) -> None:
    """chdir, then prove the directory is reachable from our root (CVE-2024-21626 class)."""
    try:
        os.chdir(cwd)
    except OSError as e:
        raise ProcessError(f"cannot chdir to {cwd}: {e.strerror}") from None
    verify_cwd(cwd)


def verify_cwd(cwd: str) -> None:
    """getcwd() names a path only when the directory is below our root (glibc reports ENOENT for
    '(unreachable)/...'): a working directory reached through a leaked descriptor fails here."""
    try:
        here = os.getcwd()
    except OSError:
        here = ""
    if not here.startswith("/"):
        raise ProcessError(f"current working directory {cwd} is outside of the container root")


def find_program(arg0: str, env: dict[str, str]) -> str:
    if "/" in arg0:
        if not os.path.exists(arg0):
            raise ProcessError(f'exec: "{arg0}": stat {arg0}: no such file or directory')
        if os.path.isdir(arg0) or not os.access(arg0, os.X_OK):
            raise ProcessError(f'exec: "{arg0}": permission denied')
        return arg0
    for d in (env.get("PATH") or DEFAULT_PATH).split(":"):
        p = os.path.join(d or ".", arg0)
        if os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    raise ProcessError(f'exec: "{arg0}": executable file not found in $PATH')


def home_of(uid: int) -> str:
    try:
        with open("/etc/passwd") as f:
            for line in f:
                parts = line.split(":")
                if len(parts) > 5 and parts[2] == str(uid):
                    return parts[5]
    except OSError:
        pass
    return "/"


def setup_terminal(sock, console_size: dict | None) -> str:
    """Open a pty in the container's devpts, send the master to `sock`, make the slave our stdio."""
    import fcntl
    import termios

    try:
        master, slave = os.openpty()
        slave_path = os.ttyname(slave)
    except OSError as e:
        raise ProcessError(f"cannot allocate a terminal (is /dev/pts mounted?): {e.strerror}") from None
    if console_size:
        import struct

        fcntl.ioctl(slave, termios.TIOCSWINSZ,
                    struct.pack("HHHH", console_size.get("height", 0), console_size.get("width", 0), 0, 0))
    import socket

    socket.send_fds(sock, [b"/dev/ptmx"], [master])
    sock.close()
    os.close(master)
    os.setsid()
    fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
    for fd in (0, 1, 2):
        os.dup2(slave, fd)
    if slave > 2:
        os.close(slave)
    return slave_path


def reset_signals() -> None:
    """Python ignores SIGPIPE and SIGXFSZ; ignored signals survive execve, so restore them."""
    import _signal

    for s in (_signal.SIGPIPE, _signal.SIGXFSZ, _signal.SIGINT):
        _signal.signal(s, _signal.SIG_DFL)
    _signal.pthread_sigmask(_signal.SIG_SETMASK, [])
