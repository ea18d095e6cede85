"""The OCI runtimes the engine can drive, behind one small interface.

`pallet` is pallet's own runtime (pallet.runtime), called in-process; `runc`,
`crun` or a path is any runc-compatible binary driven through its command line
(as conmon and podman do). Each keeps its state below `<runroot>/runtime-<name>`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from pallet import jsonfast
from pallet.errors import PalletError, RuntimeFailure, classify

TYPE_CHECKING = False  # typing is not imported at run time (start-up)
if TYPE_CHECKING:
    import subprocess


def available_pallet_runtime() -> bool:
    if "pallet.runtime.runtime" in sys.modules:
        return True
    try:   # (by the file, not importlib.util.find_spec: `pallet run` need not import importlib.util)
        import pallet.runtime

        return any(os.path.isfile(os.path.join(p, name)) for p in pallet.runtime.__path__
                   for name in ("runtime.py", "runtime.pyc"))
    except ImportError:
        return False


def default_runtime() -> str:
    env = os.environ.get("PALLET_RUNTIME")
    if env:
        return env
    return "pallet" if available_pallet_runtime() else "runc"


class ExternalRuntime:
    """runc, crun or another runc-compatible binary, through its CLI.

    The engine's one runtime interface, as PalletRuntime has it too: create, start, state, kill,
    pause, resume, update, exec_in, delete. A failure is a RuntimeFailure (or its 126/127 kind)
    with the runtime's own last line."""

    init_starttime = None   # (the in-process runtime knows its init's start time; a binary does not say)

    def __init__(self, name: str, state_root: Path) -> None:
        self.name = name
        if "/" in name:
            path = name
        else:
            import shutil

            path = shutil.which(name)
        if not path or not os.access(path, os.X_OK):
            raise PalletError(f"OCI runtime {name!r} not found (give runc, crun, pallet or a path to a binary)")
        self.binary = path
        self.state_root = state_root
        self.base = os.path.basename(path)

    def _argv(self, *args: str) -> list[str]:
        argv = [self.binary, "--root", str(self.state_root)]
        if self.base == "crun":
            argv.append("--cgroup-manager=cgroupfs")
        return argv + list(args)

    def _check(self, cp: subprocess.CompletedProcess, what: str, log: Path | None = None) -> None:
        if cp.returncode == 0:
            return
        msg = _runtime_message(cp.stderr, log) or f"{self.name} {what} exited {cp.returncode}"
        if "hybrid mode not supported" in msg:
            raise RuntimeFailure(
                f"{self.name} cannot run containers on this host: {msg.strip()} (crun refuses a cgroup v1 "
                "'hybrid' host whose cgroup2 hierarchy still has controllers, e.g. hugetlb; use --runtime "
                "runc or pallet here, or boot with a unified or pure-v1 cgroup hierarchy)")
        raise classify(msg)

    def create(self, cid: str, bundle: Path, *, pid_file: Path, console_socket: str | None = None,
               stdio: tuple[int, int, int] | None = None, log: Path | None = None, pass_fds=()) -> int:
        import subprocess

        args = ["create", "--bundle", str(bundle), "--pid-file", str(pid_file)]
        if console_socket:
            args += ["--console-socket", console_socket]
        if log is not None:
            argv = self._argv("--log", str(log), "--log-format", "json", *args, cid)
        else:
            argv = self._argv(*args, cid)
        stdin, stdout, stderr = stdio or (subprocess.DEVNULL, subprocess.DEVNULL, subprocess.DEVNULL)
        # runc's own complaints go to its log file; the container's stdio are the fds given
        t = _now()
        cp = subprocess.run(argv, stdin=stdin, stdout=stdout, stderr=stderr, pass_fds=pass_fds)
        _record(t, argv, cp.returncode)
        self._check(cp, "create", log)
        return int(pid_file.read_text().strip())

    def start(self, cid: str) -> None:
        import subprocess

        t = _now()
        cp = subprocess.run(argv := self._argv("start", cid), capture_output=True, text=True, stdin=subprocess.DEVNULL)
        _record(t, argv, cp.returncode)
        self._check(cp, "start")

    def kill(self, cid: str, sig: int, *, all: bool = False) -> None:
        import subprocess

        args = ["kill"] + (["--all"] if all else []) + [cid, str(sig)]
        cp = subprocess.run(self._argv(*args), capture_output=True, text=True, stdin=subprocess.DEVNULL)
        self._check(cp, "kill")

    def delete(self, cid: str, *, force: bool = False) -> None:
        import subprocess

        args = ["delete"] + (["--force"] if force else []) + [cid]
        t = _now()
        cp = subprocess.run(argv := self._argv(*args), capture_output=True, text=True, stdin=subprocess.DEVNULL)
        _record(t, argv, cp.returncode)
        if cp.returncode != 0 and "does not exist" not in (cp.stderr or "") and "not exist" not in (cp.stderr or ""):
            self._check(cp, "delete")

    def _simple(self, what: str, *args: str) -> None:
        import subprocess

        cp = subprocess.run(self._argv(what, *args), capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if cp.returncode != 0:
            raise RuntimeFailure(_runtime_message(cp.stderr, None) or f"{self.name} {what} exited {cp.returncode}")

    def pause(self, cid: str) -> None:
        self._simple("pause", cid)

    def resume(self, cid: str) -> None:
        self._simple("resume", cid)

    def update(self, cid: str, resources: dict) -> None:
        import tempfile

        with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
            f.write(jsonfast.dumps(resources))
            f.flush()
            self._simple("update", "--resources", f.name, cid)

    def exec_in(self, cid: str, process: dict, *, tty: bool, interactive: bool, detach: bool,
                scratch: Path) -> int:
        """`runtime exec` of `process` in the foreground of the caller (its stdio); its file goes in `scratch`."""
        import subprocess
        import tempfile

        scratch.mkdir(parents=True, exist_ok=True)
        fd, pf = tempfile.mkstemp(prefix="exec-", suffix=".json", dir=scratch)
        with os.fdopen(fd, "w") as f:
            f.write(jsonfast.dumps(process))
        log = Path(pf + ".log")
        try:
            args = ["exec", "--process", pf] + (["--tty"] if tty else []) + (["--detach"] if detach else [])
            argv = self._argv("--log", str(log), "--log-format", "json", *args, cid)
            stdin = None if (interactive or tty) else subprocess.DEVNULL
            cp = subprocess.run(argv, stdin=stdin, stderr=subprocess.PIPE)
            if cp.returncode != 0:
                msg = _runtime_message(cp.stderr, log)
                if msg and ("exec failed" in msg or "unable to start" in msg or "not found" in msg
                            or "permission denied" in msg or "no such file" in msg.lower()):
                    raise classify(msg)
                if cp.stderr:
                    os.write(2, cp.stderr)
            return cp.returncode
        finally:
            os.unlink(pf)
            log.unlink(missing_ok=True)

    def state(self, cid: str) -> dict | None:
        import subprocess

        cp = subprocess.run(self._argv("state", cid), capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if cp.returncode != 0:
            return None
        try:
            return jsonfast.loads(cp.stdout)
        except ValueError:
            return None



def _runtime_message(stderr: str | bytes | None, log: Path | None) -> str:
    msgs = []
    if log is not None:
        try:
            for line in log.read_text(errors="replace").splitlines():
                try:
                    rec = jsonfast.loads(line)
                except ValueError:
                    continue
                if rec.get("level") in ("error", "fatal"):
                    msgs.append(str(rec.get("msg", "")))
        except OSError:
            pass
    if not msgs and stderr:
        text = stderr.decode(errors="replace") if isinstance(stderr, bytes) else stderr
        msgs = [ln for ln in text.splitlines() if ln.strip()]
    return msgs[-1] if msgs else ""


def get_runtime(name: str, runroot: Path):
    if name == "pallet":
        from pallet.engine.palletrt import PalletRuntime

        return PalletRuntime(runroot / "runtime-pallet")
    label = name
    if "/" in name:
        import zlib  # (only here: not on the run path of the default runtime)

        label = f"custom-{zlib.crc32(name.encode()):08x}"
    return ExternalRuntime(name, runroot / f"runtime-{label}")


def _now() -> int:
    from pallet.linux import trace as T

    return T.now() if T.recorder is not None else 0


def _record(start: int, argv: list[str], code: int) -> None:
    """`pallet run --trace` with runc or crun: the runtime's command line, its exit status and time (what it
    does inside is its own: the trace says so)."""
    from pallet.linux import trace as T

    if T.recorder is not None:
        T.recorder.done("exec runtime", start, {"argv": [str(a) for a in argv], "exit": code},
                        None if code == 0 else f"exit status {code}")
