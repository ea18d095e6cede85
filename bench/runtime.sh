#!/usr/bin/env bash
# pallet-runtime run vs runc run vs crun run: the same busybox bundle running /bin/true,
# N rounds (default 30), runtimes alternated within each round; prints the median wall time,
# the ratio to runc, and the peak RSS (max over the runs, GNU time %M of the whole process tree).
#
# Usage: bash bench/runtime.sh [ROUNDS]     (as root)
# Env:   BUNDLE  bundle dir (default /tmp/anchors/busybox-bundle; built here if missing)
#        PALLET_RUNTIME  (default: .venv/bin/pallet-runtime next to this script's repo)
#
# crun refuses cgroup v1 "hybrid" hosts whose cgroup2 root still owns controllers
# ("cgroups in hybrid mode not supported"). FIX_HYBRID_CGROUPS=1 mounts those controllers
# as v1 hierarchies first (what ../shared/tools/runtime-validation.sh does); otherwise crun
# is reported as unavailable.
set -euo pipefail
ROUNDS=${1:-30}
HERE=$(cd "$(dirname "$0")/.." && pwd)
PALLET_RUNTIME=${PALLET_RUNTIME:-$HERE/.venv/bin/pallet-runtime}
BUNDLE=${BUNDLE:-/tmp/anchors/busybox-bundle}
WORK=$(mktemp -d /tmp/bench-runtime.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 2; }

if [ ! -f "$BUNDLE/config.json" ]; then
    echo "building $BUNDLE" >&2
    mkdir -p "$BUNDLE/rootfs/bin"
    cp "$(command -v busybox)" "$BUNDLE/rootfs/bin/busybox"
    for p in $("$BUNDLE/rootfs/bin/busybox" --list-full); do
        mkdir -p "$(dirname "$BUNDLE/rootfs/$p")"; [ -e "$BUNDLE/rootfs/$p" ] || ln -s /bin/busybox "$BUNDLE/rootfs/$p"
    done
    (cd "$BUNDLE" && runc spec && python3 - <<'PY'
import json
c = json.load(open("config.json"))
c["process"]["args"] = ["/bin/true"]
c["process"]["terminal"] = False
json.dump(c, open("config.json", "w"), indent=1)
PY
    )
fi

if [ "${FIX_HYBRID_CGROUPS:-0}" = 1 ] && [ -f /sys/fs/cgroup/unified/cgroup.controllers ]; then
    for c in $(cat /sys/fs/cgroup/unified/cgroup.controllers); do
        d=$c; case $c in net_cls|net_prio) d=net_cls,net_prio ;; esac
        mountpoint -q "/sys/fs/cgroup/$d" || { mkdir -p "/sys/fs/cgroup/$d"; mount -t cgroup -o "$d" cgroup "/sys/fs/cgroup/$d"; }
    done
fi

declare -A CMD=([pallet]="$PALLET_RUNTIME" [runc]="$(command -v runc || true)" [crun]="$(command -v crun || true)")
RUNTIMES=()
for rt in pallet runc crun; do
    [ -n "${CMD[$rt]}" ] || { echo "$rt: not installed" >&2; continue; }
    if ! "${CMD[$rt]}" --root "$WORK/$rt" run -b "$BUNDLE" "probe-$rt" >"$WORK/probe.out" 2>&1; then
        echo "$rt: unavailable here: $(tail -1 "$WORK/probe.out")" >&2
        "${CMD[$rt]}" --root "$WORK/$rt" delete -f "probe-$rt" >/dev/null 2>&1 || true
        continue
    fi
    RUNTIMES+=("$rt")
done

# floors, for reading the numbers: the interpreter alone, and pallet-runtime's CLI without a container
# (the launcher's shebang may carry flags, e.g. "python -S": keep them as separate words)
read -r -a PY <<< "$(head -1 "$PALLET_RUNTIME" | sed 's/^#!//')"
CMD[python-startup]="${PY[*]}"
CMD[pallet-version]="$PALLET_RUNTIME"
for i in $(seq 1 "$ROUNDS"); do
    for floor in python-startup pallet-version; do
        t0=$(date +%s%N)
        if [ $floor = python-startup ]; then "${PY[@]}" -c pass; else "$PALLET_RUNTIME" --version >/dev/null; fi
        t1=$(date +%s%N)
        echo "$(( (t1 - t0) / 1000 )) 0" >> "$WORK/$floor.times"
    done
    for rt in "${RUNTIMES[@]}"; do
        t0=$(date +%s%N)
        /usr/bin/time -f "%M" -o "$WORK/rss" "${CMD[$rt]}" --root "$WORK/$rt" run -b "$BUNDLE" "b$i" >/dev/null
        t1=$(date +%s%N)
        echo "$(( (t1 - t0) / 1000 )) $(cat "$WORK/rss")" >> "$WORK/$rt.times"
    done
done

python3 - "$WORK" "${RUNTIMES[@]}" python-startup pallet-version <<'PY'
import statistics, sys
work, rts = sys.argv[1], sys.argv[2:]
res = {}
for rt in rts:
    rows = [tuple(map(int, l.split())) for l in open(f"{work}/{rt}.times")]
    res[rt] = (statistics.median(r[0] for r in rows) / 1000, round(max(r[1] for r in rows) / 1024, 1), len(rows))
base = res.get("runc", (None,))[0]
print(f"{'runtime':<15} {'runs':>4} {'median ms':>10} {'vs runc':>8} {'peak RSS MiB':>13}")
for rt, (med, rss, n) in res.items():
    ratio = f"{med / base:.2f}x" if base else "-"
    print(f"{rt:<15} {n:>4} {med:>10.1f} {ratio:>8} {rss if rss else '':>13}")
PY
