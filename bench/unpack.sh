#!/bin/bash
# Unpack benchmark: `pallet load` + `pallet image mount` of the 4-layer fixture (as an oci-archive)
# into a fresh root, against `umoci raw unpack` of the same image from its OCI layout.
# Runs alternate (pallet, umoci, pallet, umoci, ...) into fresh directories; nothing is deleted
# until all timed runs are done (writing right after deleting a big tree is much slower here).
# Prints per-run times, medians, the ratio, and the machine's raw `gzip -d` / `sha256sum` speed
# on the same layer blobs (the floor for any unpacker that must decompress and hash).
#
#   bench/unpack.sh [RUNS]        (default 5; fixture: ../shared/tools/fixtures/make-fixtures.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-5}
A=${ANCHORS:-/tmp/anchors}
L=$A/oci
PALLET=${PALLET:-$PWD/.venv/bin/pallet}
[ -f "$L/index.json" ] || { echo "no fixture at $L: run ../shared/tools/fixtures/make-fixtures.sh" >&2; exit 1; }

W=$(mktemp -d "$A/bench-unpack.XXXXXX")
ARCHIVE=$A/bench-unpack-real-oci.tar
[ -f "$ARCHIVE" ] || skopeo copy -q "oci:$L:real" "oci-archive:$ARCHIVE:real"

cleanup() {
    for r in "$W"/p*; do
        [ -d "$r" ] && "$PALLET" --root "$r" image unmount localhost/real:latest >/dev/null 2>&1 || true
    done
    rm -rf "$W"
}
trap cleanup EXIT

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
median() { sort -n | awk '{ v[NR] = $1 } END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.3f", m }'; }

# CPU seconds (user + sys) of a command, into file $1
cpu() {
    local out=$1; shift
    if ! /usr/bin/time -f "%U %S" -o "$out" "$@" >"$out.log" 2>&1; then
        echo "failed: $*" >&2; cat "$out.log" >&2; exit 1
    fi
    awk '{ printf "%.2f", $1 + $2 }' "$out"
}

sync
P=(); U=(); PC=(); UC=()
for i in $(seq "$RUNS"); do
    t0=$(now)
    c1=$(cpu "$W/t.p1" "$PALLET" --root "$W/p$i" load -q -i "$ARCHIVE")
    c2=$(cpu "$W/t.p2" "$PALLET" --root "$W/p$i" image mount localhost/real:latest)
    t1=$(now)
    c3=$(cpu "$W/t.u" umoci raw unpack --image "$L:real" "$W/u$i")
    t2=$(now)
    P+=("$(secs "$t0" "$t1")"); U+=("$(secs "$t1" "$t2")")
    PC+=("$(awk -v a="$c1" -v b="$c2" 'BEGIN { printf "%.2f", a + b }')"); UC+=("$c3")
    printf "run %d: pallet load+mount %ss (cpu %ss = load %s + mount %s)   umoci raw unpack %ss (cpu %ss)\n" \
        "$i" "${P[-1]}" "${PC[-1]}" "$c1" "$c2" "${U[-1]}" "${UC[-1]}"
done
pm=$(printf "%s\n" "${P[@]}" | median); um=$(printf "%s\n" "${U[@]}" | median)
pc=$(printf "%s\n" "${PC[@]}" | median); uc=$(printf "%s\n" "${UC[@]}" | median)
ratio() { awk -v p="$1" -v u="$2" 'BEGIN { printf "%.2f", p / u }'; }
echo "median wall: pallet $pm s, umoci $um s, ratio pallet/umoci $(ratio "$pm" "$um") (target <= 0.70)"
echo "median cpu:  pallet $pc s, umoci $uc s, ratio pallet/umoci $(ratio "$pc" "$uc")"

# the floor: raw decompression and hashing of the same layer blobs
layers=$(python3 -c "
import json, sys
L = sys.argv[1]
idx = json.load(open(L + '/index.json'))
m = [x for x in idx['manifests'] if x.get('annotations', {}).get('org.opencontainers.image.ref.name') == 'real'][0]
man = json.load(open(L + '/blobs/sha256/' + m['digest'][7:]))
print(' '.join(L + '/blobs/sha256/' + x['digest'][7:] for x in man['layers']))" "$L")
csize=$(cat $layers | wc -c)
usize=$(for f in $layers; do gzip -dc "$f"; done | wc -c)
t0=$(now); for f in $layers; do gzip -dc "$f" >/dev/null; done; t1=$(now)
sha256sum $layers >/dev/null; t2=$(now)
awk -v c="$csize" -v u="$usize" -v g="$(secs "$t0" "$t1")" -v s="$(secs "$t1" "$t2")" 'BEGIN {
    printf "raw: gzip -d %.0f MB/s (%.1f MB out in %.2fs), sha256sum %.0f MB/s (%.1f MB in %.2fs)\n",
        u / 1e6 / g, u / 1e6, g, c / 1e6 / s, c / 1e6, s }'
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
