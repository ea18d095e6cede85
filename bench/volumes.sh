#!/usr/bin/env bash
# Volumes + limits benchmark (issue 7): `run -d` of BATCH containers, each with the same named volume
# (-v benchvol:/data) and a memory limit (--memory 64m), then `rm -f` of all of them; pallet vs podman,
# alternated ROUNDS times, wall times and the ratio (target: pallet <= 0.5x podman).
#
# Everything lives in a private temp dir: pallet and podman get their own --root/--runroot; the busybox
# image is imported offline into both from the same rootfs. podman needs
# --ulimit nofile=20000:20000 --ulimit nproc=32768:32768 here (the host's hard limits). Run as root.
# Env: BATCH=50 ROUNDS=2 KEEP=1 (keep the temp dir).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
private_netns "$0" "$@"          # pallet's and podman's networks in a namespace of their own
crun_private_cgroups "$0" "$@"   # podman's crun on a hybrid cgroup host
BATCH=${BATCH:-50}
ROUNDS=${ROUNDS:-2}
PY=.venv/bin/python
PALLET=$PWD/.venv/bin/pallet
work=$(mktemp -d /tmp/pallet-bench-vol.XXXXXX)
podman_() {
    podman --root "$work/podman" --runroot "$work/podman-run" --cgroup-manager=cgroupfs --events-backend=file \
        --tmpdir "$work/podman-tmp" "$@"
}
cleanup() {
    set +e
    [ -n "${KEEP:-}" ] && { echo "kept $work"; return; }
    ids=$("$PALLET" ps -aq 2>/dev/null); [ -n "$ids" ] && "$PALLET" rm -f $ids >/dev/null 2>&1
    podman_ rm -af -t 0 >/dev/null 2>&1
    podman_ volume rm -af >/dev/null 2>&1
    grep -o "$work[^ ]*" /proc/self/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
export PALLET_ROOT=$work/pallet PALLET_RUNROOT=$work/pallet-run

fresh_bytecode

echo "== preparing a busybox rootfs and the image (pallet, podman) in $work"
busybox_image_tar "$work"
"$PALLET" import --change 'CMD ["sh"]' "$work/rootfs.tar" localhost/busybox:latest >/dev/null
mkdir -p "$work/podman-tmp"
podman_ import "$work/rootfs.tar" localhost/busybox:latest >/dev/null
PODMAN_RUN=(run -d --network=none --ulimit nofile=20000:20000 --ulimit nproc=32768:32768)
# warm-up (layer unpack, page cache); both create their named volume here
"$PALLET" run --rm --network none -v benchvol:/data --memory 64m localhost/busybox cat /data/seed >/dev/null
podman_ run --rm --network=none --ulimit nofile=20000:20000 --ulimit nproc=32768:32768 \
    -v benchvol:/data --memory 64m localhost/busybox cat /data/seed >/dev/null

declare -A RUN RM
batch() {
    local what=$1 round=$2 t0 t1 t2
    t0=$(date +%s.%N)
    if [ "$what" = pallet ]; then
        for i in $(seq "$BATCH"); do
            "$PALLET" run -d --network none -v benchvol:/data --memory 64m localhost/busybox sleep 1000 >/dev/null
        done
        t1=$(date +%s.%N)
        "$PALLET" rm -f $("$PALLET" ps -aq) >/dev/null
    else
        for i in $(seq "$BATCH"); do
            podman_ "${PODMAN_RUN[@]}" -v benchvol:/data --memory 64m localhost/busybox sleep 1000 >/dev/null
        done
        t1=$(date +%s.%N)
        podman_ rm -f -t 0 $(podman_ ps -aq) >/dev/null
    fi
    t2=$(date +%s.%N)
    RUN[$what]=$(echo "${RUN[$what]:-0} + $t1 - $t0" | bc)
    RM[$what]=$(echo "${RM[$what]:-0} + $t2 - $t1" | bc)
    printf 'round %d %-7s run -d x%d: %6.2f s   rm -f: %6.2f s   total %6.2f s\n' "$round" "$what" "$BATCH" \
        "$(echo "$t1 - $t0" | bc)" "$(echo "$t2 - $t1" | bc)" "$(echo "$t2 - $t0" | bc)"
}
echo "== run -d (named volume, --memory 64m) + rm -f of $BATCH containers, $ROUNDS rounds alternated"
for r in $(seq "$ROUNDS"); do
    if [ $((r % 2)) = 1 ]; then batch pallet "$r"; batch podman "$r"; else batch podman "$r"; batch pallet "$r"; fi
done
tp=$(echo "${RUN[pallet]} + ${RM[pallet]}" | bc)
tq=$(echo "${RUN[podman]} + ${RM[podman]}" | bc)
printf 'pallet total %6.2f s (run %6.2f, rm %6.2f)\n' "$tp" "${RUN[pallet]}" "${RM[pallet]}"
printf 'podman total %6.2f s (run %6.2f, rm %6.2f)\n' "$tq" "${RUN[podman]}" "${RM[podman]}"
printf 'pallet/podman = %.2f  (target <= 0.5)\n' "$(echo "$tp / $tq" | bc -l)"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
