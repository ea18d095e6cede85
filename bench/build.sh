#!/usr/bin/env bash
# Build benchmark (issue 17): `pallet build` vs `podman build --layers --format docker`, alternated ROUNDS
# times, medians and ratios.
#
#   3-stage   build stage WORKDIR/COPY/RUN, test stage COPY --from/RUN, final two COPY --from + CMD:
#             cold (--no-cache), fully cached, one source file changed
#             (targets: cold <= 0.7x, cached <= 0.15x, one file changed <= 0.5x of podman's)
#   transfer  a context of FILES small files plus SIZES MB files; `COPY . .` + `RUN du`: cold and cached
#             (target: cached <= 0.25x)
#   parallel  4 independent stages (each RUN sleep 1 and some work) + a final stage: pallet's wall time
#             against the sum of its stages (target <= 0.6)
#
# Private temp dir; pallet and podman get their own --root/--runroot; busybox imported offline into
# both from the same rootfs. podman needs --runtime runc (crun refuses this hybrid cgroup host) and
# --ulimit nofile=20000:20000 --ulimit nproc=32768:32768 here. Run as root.
# Env: ROUNDS=3 FILES=5000 SIZES="1 10 50 100" KEEP=1 (keep the temp dir).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
private_netns "$0" "$@"          # pallet's and podman's networks in a namespace of their own
crun_private_cgroups "$0" "$@"   # podman's crun on a hybrid cgroup host
ROUNDS=${ROUNDS:-3}
FILES=${FILES:-5000}
SIZES=${SIZES:-"1 10 50 100"}
PY=.venv/bin/python
PALLET=$PWD/.venv/bin/pallet
work=$(mktemp -d /tmp/pbb.XXXXXX)   # short: podman wants a runroot under 50 characters
podman_() {
    podman --root "$work/podman" --runroot "$work/prun" --runtime runc --cgroup-manager=cgroupfs \
        --events-backend=none --tmpdir "$work/podman-tmp" "$@"
}
PODMAN_BUILD=(build --layers --format docker --network none --ulimit nofile=20000:20000 --ulimit nproc=32768:32768)
cleanup() {
    set +e
    [ -n "${KEEP:-}" ] && { echo "kept $work"; return; }
    podman_ rmi -af >/dev/null 2>&1
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
podman_ import -q "$work/rootfs.tar" localhost/busybox:latest >/dev/null

# ---- contexts ----------------------------------------------------------------------------------------
ms=$work/ctx-3stage
mkdir -p "$ms/src"
for i in $(seq 20); do echo "echo part $i" > "$ms/src/part$i.sh"; done
cat > "$ms/Containerfile" <<'EOF'
FROM localhost/busybox AS build
WORKDIR /src
COPY src/ ./
RUN cat *.sh > /src/all.sh && chmod +x /src/all.sh
FROM localhost/busybox AS test
COPY --from=build /src/all.sh /all.sh
RUN sh /all.sh > /test.log
FROM localhost/busybox
COPY --from=build /src/all.sh /app/all.sh
COPY --from=test /test.log /app/test.log
CMD ["sh", "/app/all.sh"]
EOF
ft=$work/ctx-transfer
mkdir -p "$ft/small"
"$PY" - "$ft/small" "$FILES" <<'EOF'
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    sub = os.path.join(d, f"d{i % 50}")
    os.makedirs(sub, exist_ok=True)
    with open(os.path.join(sub, f"f{i}.txt"), "w") as f:
        f.write(f"file {i}\n" * 8)
EOF
for s in $SIZES; do head -c "$((s * 1024 * 1024))" /dev/urandom > "$ft/big-$s.bin"; done
printf 'FROM localhost/busybox\nWORKDIR /ctx\nCOPY . .\nRUN du -s /ctx\n' > "$ft/Containerfile"
pa=$work/ctx-parallel
mkdir -p "$pa"
{
    for s in a b c d; do
        printf 'FROM localhost/busybox AS %s\nRUN sleep 1 && seq 1 20000 > /%s.txt && md5sum /%s.txt > /%s.sum\n' \
            "$s" "$s" "$s" "$s"
    done
    printf 'FROM localhost/busybox\n'
    for s in a b c d; do printf 'COPY --from=%s /%s.sum /\n' "$s" "$s"; done
} > "$pa/Containerfile"

now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
declare -A T
timed() {   # timed KEY CMD... : append the wall time of CMD to T[KEY]
    local key=$1 t0 t1; shift
    t0=$(now); "$@" >/dev/null 2>&1 || { echo "FAILED: $*" >&2; exit 1; }; t1=$(now)
    T[$key]="${T[$key]:-} $(echo "$t1 - $t0" | bc)"
}
pb() { "$PALLET" build -q --network none -f "$1/Containerfile" "${@:2}" "$1"; }
qb() { podman_ "${PODMAN_BUILD[@]}" -q -f "$1/Containerfile" "${@:2}" "$1"; }

scenario_3stage() {   # scenario_3stage pallet|podman
    local b=pb; [ "$1" = podman ] && b=qb
    timed "$1 cold" $b "$ms" --no-cache -t localhost/ms
    timed "$1 cached" $b "$ms" -t localhost/ms
    echo "echo changed $(now)" > "$ms/src/part7.sh"
    timed "$1 changed" $b "$ms" -t localhost/ms
}
scenario_transfer() {
    local b=pb; [ "$1" = podman ] && b=qb
    timed "$1 transfer-cold" $b "$ft" --no-cache -t localhost/ft
    timed "$1 transfer-cached" $b "$ft" -t localhost/ft
}

echo "== warm-up (layer unpack, page cache)"
pb "$ms" -t localhost/ms >/dev/null; qb "$ms" -t localhost/ms >/dev/null
pb "$ft" -t localhost/ft >/dev/null; qb "$ft" -t localhost/ft >/dev/null

echo "== 3-stage and transfer, $ROUNDS rounds alternated"
for r in $(seq "$ROUNDS"); do
    if [ $((r % 2)) = 1 ]; then order="pallet podman"; else order="podman pallet"; fi
    for w in $order; do scenario_3stage "$w"; scenario_transfer "$w"; done
    echo "round $r done"
done

echo "== parallel stages (pallet), $ROUNDS rounds"
for r in $(seq "$ROUNDS"); do
    timed "pallet parallel" pb "$pa" --no-cache -t localhost/pa
    # the sum of its stages: each stage built alone as the target
    t=0
    for s in a b c d; do
        t0=$(now); pb "$pa" --no-cache --target "$s" >/dev/null 2>&1; t1=$(now)
        t=$(echo "$t + $t1 - $t0" | bc)
    done
    T[stages-sum]="${T[stages-sum]:-} $t"
done

med() { echo "${T[$1]}" | tr ' ' '\n' | grep . | median; }
report() {   # report NAME TARGET
    local p q
    p=$(med "pallet $1"); q=$(med "podman $1")
    printf '%-16s pallet %6.2f s   podman %6.2f s   pallet/podman = %.2f  (target <= %s)\n' "$1" "$p" "$q" \
        "$(echo "$p / $q" | bc -l)" "$2"
}
echo "== medians"
report cold 0.7
report cached 0.15
report changed 0.5
report transfer-cold -
report transfer-cached 0.25
p=$(med "pallet parallel"); s=$(med stages-sum)
printf '%-16s pallet %6.2f s   sum of its stages %6.2f s   ratio = %.2f  (target <= 0.6)\n' parallel "$p" "$s" \
    "$(echo "$p / $s" | bc -l)"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
