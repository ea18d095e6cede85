"""The kernel layer: one thin module per kernel interface, at the bottom of the package map.

This package is the only place in pallet that calls ctypes. Every function here is a thin wrapper
over one system call (or one cgroupfs/procfs/sysctl file, or one netlink or nftables exchange) that
raises `OSError` with the call's name on failure; policy lives above it (`pallet.runtime`,
`pallet.engine`, `pallet.network`, `pallet.layers`).

- `libc`: the C library handle, syscall numbers, `check`.
- `ns`: unshare/setns/clone flags.  `mount`: mount, umount2, pivot_root, mount_setattr.
- `caps`: capability sets.  `prctl`: prctl and no_new_privs, subreaper, keep-caps.
- `seccomp`: BPF filter compilation and loading.  `devices`: device nodes.
- `cgroups`: cgroup v1/v2/hybrid paths and files.  `kernfs`: every procfs/sysfs/cgroupfs write.
- `netlink`: links, addresses, routes in any network namespace.  `nftables`: one transaction per
  call.  `sysctl`: /proc/sys.
- `creds`: setgroups, setresgid, setresuid.  `proc`: fork and execve.
- `trace`: the recorder each wrapper reports its call to when `pallet run --trace` set one up
  (`recorder is None` otherwise: nothing allocated); the trace document (docs/trace.md).
"""
