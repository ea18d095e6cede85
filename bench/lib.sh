# Shared by the benchmark scripts (sourced).

# Bytecode as an installed tree has it, made again for what changed since `make`: the .pyc files and, in a
# tree that has one, the code bundle its launchers read (src/pallet/codebundle.py). TREE defaults to .
fresh_bytecode() {
    local tree=${1:-.}
    env -u PYTHONDONTWRITEBYTECODE "$tree/.venv/bin/python" -m compileall -q "$tree/src/pallet" >/dev/null
    if [ -f "$tree/src/pallet/codebundle.py" ]; then
        "$tree/.venv/bin/python" -m pallet.codebundle "$tree/.venv/lib/pallet-code.bundle" >/dev/null
    fi
}

# busybox_image_tar DIR: a busybox root filesystem in DIR/rootfs (every applet linked, /etc/passwd
# and /etc/group for root, /data/seed for the volume benchmarks) and its tarball DIR/rootfs.tar,
# which each benchmark imports into pallet and podman alike.
busybox_image_tar() {
    local dest=$1/rootfs p
    mkdir -p "$dest/bin"
    cp /bin/busybox "$dest/bin/busybox"
    for p in $("$dest/bin/busybox" --list-full); do
        mkdir -p "$dest/${p%/*}"
        [ -e "$dest/$p" ] || [ -L "$dest/$p" ] || ln -s /bin/busybox "$dest/$p"
    done
    mkdir -p "$dest"/{etc,proc,sys,dev,tmp,root,run,data}
    echo seed > "$dest/data/seed"
    echo 'root:x:0:0:root:/root:/bin/sh' > "$dest/etc/passwd"
    echo 'root:x:0:' > "$dest/etc/group"
    tar -C "$dest" -cf "$1/rootfs.tar" .
}

# crun_private_cgroups "$0" "$@": on a cgroup v1 "hybrid" host whose cgroup2 root still holds
# controllers, crun (podman's runtime) refuses every container. Then run the calling script again in
# a private mount namespace with a tmpfs of its own over /sys/fs/cgroup (the host's hierarchies bound
# into it) and the missing controllers mounted as v1 hierarchies — as tests/helpers/crun_ns.py does
# for the test suite — so the host's own mounts are never changed. While it runs, those controllers
# are off the cgroup2 root for the whole host; they go back when the namespace ends.
crun_private_cgroups() {
    local u=/sys/fs/cgroup/unified
    [ -n "${PALLET_BENCH_CGROUPS:-}" ] && return 0
    [ -n "$(cat "$u/cgroup.controllers" 2>/dev/null)" ] || return 0
    local ctrls
    ctrls=$( { cat "$u/cgroup.controllers"; awk '!/^#/ && $2 == 0 && $4 == 1 {print $1}' /proc/cgroups; } |
             tr ' ' '\n' | sed 's/^net_cls$/net_cls,net_prio/; s/^net_prio$/net_cls,net_prio/' | sort -u | tr '\n' ' ')
    echo "== crun refuses this hybrid cgroup host: running in a private mount namespace with v1 $ctrls"
    local old
    old=$(mktemp -d /tmp/pallet-bench-cg.XXXXXX)
    PALLET_BENCH_CGROUPS=1 exec unshare --mount --propagation private bash -c '
        set -e; old=$1; shift; ctrls=$1; shift
        mount --rbind /sys/fs/cgroup "$old"
        mount -t tmpfs -o mode=755 tmpfs /sys/fs/cgroup
        for d in "$old"/*; do n=${d##*/}
            if [ -L "$d" ]; then ln -s "$(readlink "$d")" "/sys/fs/cgroup/$n"
            else mkdir "/sys/fs/cgroup/$n"; mount --rbind "$d" "/sys/fs/cgroup/$n"; fi
        done
        umount -l "$old"; rmdir "$old" 2>/dev/null || true
        for c in $ctrls; do mkdir "/sys/fs/cgroup/$c"; mount -t cgroup -o "$c" cgroup "/sys/fs/cgroup/$c"; done
        [ -d /sys/fs/cgroup/net_cls,net_prio ] && ln -s net_cls,net_prio /sys/fs/cgroup/net_cls &&
            ln -s net_cls,net_prio /sys/fs/cgroup/net_prio
        rc=0; bash "$@" || rc=$?
        # an unmounted v1 hierarchy that still has cgroups (podman leaves libpod_parent/conmon) outlives
        # this namespace and keeps its controllers off cgroup2 for the host: empty them, then unmount
        for c in $ctrls; do
            find "/sys/fs/cgroup/$c" -mindepth 1 -depth -type d -exec rmdir {} + 2>/dev/null || true
            umount "/sys/fs/cgroup/$c" 2>/dev/null || true
        done
        exit $rc' bash "$old" "$ctrls" "$@"
}

# private_netns "$0" "$@": run the calling script again inside a network namespace of its own
# (pallet-bench-PID, `lo` up), deleted when it ends whatever happened: the default bridges, veths and
# nft rules pallet and podman make, and every packet the benchmark sends, stay in it; this machine's
# own network is never changed. Call it before crun_private_cgroups.
private_netns() {
    [ -n "${PALLET_BENCH_NETNS:-}" ] && return 0
    local name=pallet-bench-$$ rc=0
    ip netns add "$name"
    trap 'ip netns delete "$name" 2>/dev/null' EXIT
    trap 'exit 130' INT TERM
    nsenter --net="/run/netns/$name" ip link set lo up
    PALLET_BENCH_NETNS=$name nsenter --net="/run/netns/$name" bash "$@" || rc=$?
    exit $rc
}
