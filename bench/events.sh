#!/usr/bin/env bash
# What recording events costs `run`: `pallet run --rm --network none IMAGE true` from two commits of
# pallet (BEFORE, default: the one before the event log; AFTER, default: HEAD), alternated run by run,
# RUNS runs each (default 30), on one private store; medians and the ratio. Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
RUNS=${RUNS:-30}
BEFORE=${BEFORE:-$(git rev-parse 'cd9ef8c^')}
AFTER=${AFTER:-HEAD}
PY=$PWD/.venv/bin/python
work=$(mktemp -d /tmp/pallet-bench-events.XXXXXX)
cleanup() {
    set +e
    git worktree remove --force "$work/before" >/dev/null 2>&1
    git worktree remove --force "$work/after" >/dev/null 2>&1
    grep -o "$work[^ ]*" /proc/self/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
git worktree add -q --detach "$work/before" "$BEFORE"
git worktree add -q --detach "$work/after" "$AFTER"
for t in before after; do   # (the generated seccomp profile is not in git)
    cp src/pallet/engine/seccomp_default.json "$work/$t/src/pallet/engine/"
    env -u PYTHONDONTWRITEBYTECODE "$PY" -m compileall -q "$work/$t/src/pallet" >/dev/null
done
busybox_image_tar "$work"
export PALLET_ROOT=$work/pallet PALLET_RUNROOT=$work/pallet-run
PYTHONPATH=$work/after/src "$PWD/.venv/bin/pallet" import "$work/rootfs.tar" localhost/busybox:latest >/dev/null
"$PY" - "$work" "$RUNS" "$PWD/.venv/bin/pallet" <<'PYEOF'
import os, statistics, subprocess, sys, time
work, runs, pallet = sys.argv[1], int(sys.argv[2]), sys.argv[3]
argv = [pallet, "run", "--rm", "--network", "none", "localhost/busybox", "true"]
times = {"before": [], "after": []}
for t in times:   # warm-up
    subprocess.run(argv, env=dict(os.environ, PYTHONPATH=f"{work}/{t}/src"), check=True)
for i in range(runs):
    for t in (("before", "after") if i % 2 == 0 else ("after", "before")):
        start = time.perf_counter()
        subprocess.run(argv, env=dict(os.environ, PYTHONPATH=f"{work}/{t}/src"), check=True)
        times[t].append(time.perf_counter() - start)
med = {k: statistics.median(v) * 1000 for k, v in times.items()}
for k, v in times.items():
    print(f"{k:7s} median {med[k]:7.1f} ms   min {min(v) * 1000:7.1f}   max {max(v) * 1000:7.1f}")
print(f"after/before = {med['after'] / med['before']:.3f}")
n = sum(1 for _ in open(f"{work}/pallet/events/events.jsonl"))
print(f"events recorded by the after runs: {n} ({n / (runs + 1):.0f} a run)")
print(f"load average: {open('/proc/loadavg').read().split()[:3]}")
PYEOF
