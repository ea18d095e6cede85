"""Linux capabilities (capabilities(7)), one line each on what holding it allows."""

from __future__ import annotations

MEANING: dict[str, str] = {
    "CAP_CHOWN": "change the owner and group of any file",
    "CAP_DAC_OVERRIDE": "bypass file read, write and execute permission checks",
    "CAP_DAC_READ_SEARCH": "bypass read and directory search checks; open_by_handle_at (escape a bind mount)",
    "CAP_FOWNER": "bypass checks that need the caller to own the file (chmod, utime, …)",
    "CAP_FSETID": "keep set-user-ID/set-group-ID bits when a file is modified",
    "CAP_KILL": "send signals to processes of other users",
    "CAP_SETGID": "change group IDs, set supplementary groups",
    "CAP_SETUID": "change user IDs (become any user)",
    "CAP_SETPCAP": "change capability sets (drop from the bounding set, grant inheritable)",
    "CAP_LINUX_IMMUTABLE": "set the immutable and append-only file attributes",
    "CAP_NET_BIND_SERVICE": "bind ports below 1024",
    "CAP_NET_BROADCAST": "broadcast and listen to multicast",
    "CAP_NET_ADMIN": "configure interfaces, routes, firewall rules of its network namespace",
    "CAP_NET_RAW": "use raw and packet sockets (ping, sniffing, spoofing)",
    "CAP_IPC_LOCK": "lock memory (mlock, huge pages)",
    "CAP_IPC_OWNER": "bypass permission checks on System V IPC objects",
    "CAP_SYS_MODULE": "load and unload kernel modules (code into the host kernel)",
    "CAP_SYS_RAWIO": "raw I/O ports, /dev/mem, /dev/kmem",
    "CAP_SYS_CHROOT": "use chroot",
    "CAP_SYS_PTRACE": "trace and inspect any process (ptrace, process_vm_readv)",
    "CAP_SYS_PACCT": "turn process accounting on and off",
    "CAP_SYS_ADMIN": "mount, unshare, setns, quotas, many admin operations: close to full root",
    "CAP_SYS_BOOT": "reboot, kexec_load a new kernel",
    "CAP_SYS_NICE": "raise priorities, set real-time scheduling, move pages between NUMA nodes",
    "CAP_SYS_RESOURCE": "exceed resource limits and quotas",
    "CAP_SYS_TIME": "set the system clock (not namespaced: the host's clock)",
    "CAP_SYS_TTY_CONFIG": "vhangup, configure terminals",
    "CAP_MKNOD": "create device nodes (mknod)",
    "CAP_LEASE": "take leases on files it does not own",
    "CAP_AUDIT_WRITE": "write records to the kernel audit log",
    "CAP_AUDIT_CONTROL": "configure kernel auditing",
    "CAP_SETFCAP": "set file capabilities",
    "CAP_MAC_OVERRIDE": "override mandatory access control (Smack)",
    "CAP_MAC_ADMIN": "configure mandatory access control",
    "CAP_SYSLOG": "read and clear the kernel log (syslog, dmesg)",
    "CAP_WAKE_ALARM": "set alarms that wake the system",
    "CAP_BLOCK_SUSPEND": "block system suspend",
    "CAP_AUDIT_READ": "read the audit log over netlink",
    "CAP_PERFMON": "use perf_event_open and other performance monitoring",
    "CAP_BPF": "load BPF programs and create maps",
    "CAP_CHECKPOINT_RESTORE": "checkpoint/restore operations (set PIDs of new processes)",
}

# capabilities whose holder can get out of the container or act on the host
DANGEROUS = ("CAP_SYS_ADMIN", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_PTRACE", "CAP_DAC_READ_SEARCH",
             "CAP_SYS_BOOT", "CAP_SYS_TIME", "CAP_BPF", "CAP_PERFMON", "CAP_NET_ADMIN", "CAP_MAC_ADMIN",
             "CAP_SYSLOG")


def meaning(cap: str) -> str:
    return MEANING.get(cap, "")


def all_caps() -> list[str]:
    """Every capability this kernel knows and pallet holds (what --privileged gives)."""
    from pallet.engine.hostconfig import host_caps

    return host_caps()
