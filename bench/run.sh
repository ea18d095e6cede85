#!/usr/bin/env bash
# Container start-up benchmark (issue 6).
#
#  1. start-to-exit of `pallet run --rm --network none IMAGE true`
#     vs `podman run --rm --network=none IMAGE true` vs `runc run` on a prepared bundle (the floor),
#     alternated run by run, N runs each (default 25), medians and ratios;
#  2. `run -d` of 50 containers then `rm -f` of all of them, pallet vs podman (wall time).
#
# Everything lives in a private temp dir: pallet and podman get their own --root/--runroot, the busybox
# image is imported offline into both from the same rootfs. Run as root.
# Env: RUNS=25 BATCH=50 PALLET_RUNTIME=pallet|runc (pallet's OCI runtime) KEEP=1 (keep the temp dir).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
private_netns "$0" "$@"          # pallet's and podman's networks in a namespace of their own
crun_private_cgroups "$0" "$@"   # podman's crun on a hybrid cgroup host
RUNS=${RUNS:-25}
BATCH=${BATCH:-50}
PY=.venv/bin/python
PALLET=$PWD/.venv/bin/pallet
work=$(mktemp -d /tmp/pallet-bench.XXXXXX)
cleanup() {
    set +e
    [ -n "${KEEP:-}" ] && { echo "kept $work"; return; }
    PALLET_ROOT=$work/pallet PALLET_RUNROOT=$work/pallet-run "$PALLET" rm -f $(PALLET_ROOT=$work/pallet PALLET_RUNROOT=$work/pallet-run "$PALLET" ps -aq) >/dev/null 2>&1
    podman_ rm -af >/dev/null 2>&1
    grep -o "$work[^ ]*" /proc/self/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null
    rm -rf "$work"
}
podman_() {
    podman --root "$work/podman" --runroot "$work/podman-run" --cgroup-manager=cgroupfs --events-backend=file \
        --tmpdir "$work/podman-tmp" "$@"
}
trap cleanup EXIT

# bytecode once, as an installed package has it (the dev env may set PYTHONDONTWRITEBYTECODE)
fresh_bytecode

echo "== preparing a busybox rootfs, the image (pallet, podman) and a runc bundle in $work"
busybox_image_tar "$work"
export PALLET_ROOT=$work/pallet PALLET_RUNROOT=$work/pallet-run
"$PALLET" import --change 'CMD ["sh"]' "$work/rootfs.tar" localhost/busybox:latest >/dev/null
mkdir -p "$work/podman-tmp"
podman_ import "$work/rootfs.tar" localhost/busybox:latest >/dev/null
mkdir -p "$work/bundle" && cp -a "$work/rootfs" "$work/bundle/rootfs"
(cd "$work/bundle" && runc spec && sed -i 's/"terminal": true/"terminal": false/; s/"sh"$/"true"/' config.json)
# warm-up (layer unpack, page cache)
"$PALLET" run --rm --network none localhost/busybox true
podman_ run --rm --network=none --ulimit nofile=20000:20000 --ulimit nproc=32768:32768 localhost/busybox true

echo "== start-to-exit, $RUNS runs each, alternated"
"$PY" - "$work" "$RUNS" <<'EOF'
import os, statistics, subprocess, sys, time
work, runs = sys.argv[1], int(sys.argv[2])
pallet = [os.path.abspath(".venv/bin/pallet"), "run", "--rm", "--network", "none", "localhost/busybox", "true"]
podman = ["podman", "--root", f"{work}/podman", "--runroot", f"{work}/podman-run", "--cgroup-manager=cgroupfs",
          "--events-backend=file", "--tmpdir", f"{work}/podman-tmp", "run", "--rm", "--network=none",
          "--ulimit", "nofile=20000:20000", "--ulimit", "nproc=32768:32768", "localhost/busybox", "true"]
times = {"pallet": [], "podman": [], "runc": []}
for i in range(runs):
    for name, argv, cwd in (("pallet", pallet, None), ("podman", podman, None),
                            ("runc", ["runc", "run", f"bench-{os.getpid()}-{i}"], f"{work}/bundle")):
        t = time.perf_counter()
        cp = subprocess.run(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        times[name].append(time.perf_counter() - t)
        if cp.returncode:
            sys.exit(f"{name} failed: {cp.stderr.decode()}")
med = {k: statistics.median(v) * 1000 for k, v in times.items()}
for k, v in times.items():
    print(f"{k:7s} median {med[k]:7.1f} ms   min {min(v) * 1000:7.1f}   max {max(v) * 1000:7.1f}")
print(f"pallet/podman = {med['pallet'] / med['podman']:.2f}  (target <= 0.5)")
print(f"pallet/runc   = {med['pallet'] / med['runc']:.2f}  (target <= 3)")
print(f"load average: {open('/proc/loadavg').read().split()[:3]}")
EOF

echo "== run -d + rm -f of $BATCH containers"
batch() {
    local what=$1 t0 t1 t2 ids
    t0=$(date +%s.%N)
    if [ "$what" = pallet ]; then
        for i in $(seq "$BATCH"); do "$PALLET" run -d --network none localhost/busybox sleep 1000 >/dev/null; done
        t1=$(date +%s.%N)
        "$PALLET" rm -f $("$PALLET" ps -aq) >/dev/null
    else
        for i in $(seq "$BATCH"); do
            podman_ run -d --network=none --ulimit nofile=20000:20000 --ulimit nproc=32768:32768 \
                localhost/busybox sleep 1000 >/dev/null
        done
        t1=$(date +%s.%N)
        podman_ rm -f -t 0 $(podman_ ps -aq) >/dev/null
    fi
    t2=$(date +%s.%N)
    printf '%-7s run -d x%d: %6.2f s   rm -f: %6.2f s   total %6.2f s\n' "$what" "$BATCH" \
        "$(echo "$t1 - $t0" | bc)" "$(echo "$t2 - $t1" | bc)" "$(echo "$t2 - $t0" | bc)"
}
batch pallet
batch podman
