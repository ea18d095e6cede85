"""pallet.runtime — an OCI runtime (runtime-spec 1.x) as a library, with a runc-compatible CLI.

The engine calls it in-process; `pallet-runtime` (and `pallet runtime`) speaks
runc's command line for conmon, podman and the OCI validation suite.

    from pallet.runtime import Runtime

    rt = Runtime("/run/pallet-runtime")          # state root (runc --root)
    rt.create("web", "/path/to/bundle",          # -> state dict, status "created"
              console_socket=None, pid_file=None,
              stdio=None,                         # (stdin, stdout, stderr) fds for the container
              preserve_fds=0, no_pivot=False)
    rt.start("web")                               # the process execs; poststart hooks run
    rt.state("web")                               # -> runtime-spec state document
    rt.kill("web", 15, all=False)
    rt.delete("web", force=False)                 # cgroup, state dir, poststop hooks
    rt.run("web", bundle, detach=False)           # create+start+wait+delete -> exit code
    rt.exec("web", process_dict, detach=False)    # -> exit code, or the pid when detached
    rt.list(); rt.ps("web"); rt.pause("web"); rt.resume("web")
    rt.update("web", {"memory": {"limit": 1 << 28}})

Errors raise `pallet.errors.RuntimeFailure` (subclasses: `ContainerNotFound`,
`ContainerExists`, `InvalidState`, `InvalidConfig`) with one sentence. The
container init is a forked child (no re-exec) that builds namespaces, mounts,
pivot_root, credentials and seccomp, then execve's the program; only
`pallet.linux` talks to the kernel through ctypes.
"""

from __future__ import annotations

__all__ = ["Runtime", "default_spec", "features"]


def __getattr__(name: str):
    # imported lazily: `import pallet.runtime` stays cheap for the CLI's hot path
    if name == "Runtime":
        from pallet.runtime.runtime import Runtime

        return Runtime
    if name == "default_spec":
        from pallet.runtime.spec import default_spec

        return default_spec
    if name == "features":
        from pallet.runtime.features import features

        return features
    raise AttributeError(name)
