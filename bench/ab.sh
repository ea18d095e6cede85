#!/usr/bin/env bash
# This tree against another (an earlier commit): is a change as fast as what it replaced?
#
#   bench/ab.sh OLD_TREE      OLD_TREE: a checkout with its own `make venv` (e.g. `git worktree add
#                             /tmp/pallet-old REV && make -C /tmp/pallet-old venv seccomp`)
#
# Alternated run by run (old, new, runc; A B A B), N runs each (default 25), each tree with its own store
# and the same busybox image:
#   1. `pallet run --rm --network none IMAGE true` (the hot path) of both trees, and `runc run` of a bundle;
#   2. `pallet-runtime run` of both trees and `runc run`, on one bundle.
# Prints medians and the ratios new/old and each against runc. Env: RUNS=25 KEEP=1 (keep the temp dir).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
OLD=$(cd "${1:?usage: bench/ab.sh OLD_TREE}" && pwd)
[ -x "$OLD/.venv/bin/pallet" ] || { echo "bench/ab.sh: $OLD/.venv/bin/pallet is missing (make -C $OLD venv)" >&2; exit 2; }
private_netns "$0" "$@"          # nothing either tree makes reaches this machine's network
RUNS=${RUNS:-25}
NEW=$PWD
work=$(mktemp -d /tmp/pallet-bench-ab.XXXXXX)
cleanup() {
    set +e
    [ -n "${KEEP:-}" ] && { echo "kept $work"; return; }
    grep -o "$work[^ ]*" /proc/self/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

for t in "$OLD" "$NEW"; do   # bytecode once, as an installed package has it
    fresh_bytecode "$t"
done
echo "== old: $OLD ($(git -C "$OLD" rev-parse --short HEAD)), new: $NEW ($(git rev-parse --short HEAD)$(git diff --quiet || echo +changes))"
busybox_image_tar "$work"
for t in old new; do
    tree=$OLD; [ $t = new ] && tree=$NEW
    PALLET_ROOT=$work/$t PALLET_RUNROOT=$work/$t-run "$tree/.venv/bin/pallet" import --change 'CMD ["sh"]' \
        "$work/rootfs.tar" localhost/busybox:latest >/dev/null
    PALLET_ROOT=$work/$t PALLET_RUNROOT=$work/$t-run "$tree/.venv/bin/pallet" run --rm --network none \
        localhost/busybox true   # warm-up
done
mkdir -p "$work/bundle" && cp -a "$work/rootfs" "$work/bundle/rootfs"
(cd "$work/bundle" && runc spec && sed -i 's/"terminal": true/"terminal": false/; s/"sh"$/"true"/' config.json)

"$NEW/.venv/bin/python" - "$work" "$RUNS" "$OLD" "$NEW" <<'EOF'
import os, statistics, subprocess, sys, time
work, runs, old, new = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]

def pallet(tree, t):
    env = {**os.environ, "PALLET_ROOT": f"{work}/{t}", "PALLET_RUNROOT": f"{work}/{t}-run"}
    return [f"{tree}/.venv/bin/pallet", "run", "--rm", "--network", "none", "localhost/busybox", "true"], env, None

def runtime(binary):
    return lambda i: ([binary, "run", f"ab-{os.getpid()}-{i}"], None, f"{work}/bundle")

suites = {
    "pallet run --rm": {"old": lambda i: pallet(old, "old"), "new": lambda i: pallet(new, "new"),
                        "runc": runtime("runc")},
    "pallet-runtime run": {"old": runtime(f"{old}/.venv/bin/pallet-runtime"),
                           "new": runtime(f"{new}/.venv/bin/pallet-runtime"), "runc": runtime("runc")},
}
for title, cmds in suites.items():
    times = {k: [] for k in cmds}
    for i in range(runs):
        for k, make in cmds.items():
            argv, env, cwd = make(i)
            t = time.perf_counter()
            cp = subprocess.run(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            times[k].append(time.perf_counter() - t)
            if cp.returncode:
                sys.exit(f"{title} ({k}) failed: {cp.stderr.decode()}")
    med = {k: statistics.median(v) * 1000 for k, v in times.items()}
    print(f"== {title}, {runs} runs each, alternated")
    for k, v in times.items():
        print(f"  {k:5s} median {med[k]:7.1f} ms   min {min(v) * 1000:7.1f}   max {max(v) * 1000:7.1f}")
    print(f"  new/old = {med['new'] / med['old']:.3f}   old/runc = {med['old'] / med['runc']:.2f}   "
          f"new/runc = {med['new'] / med['runc']:.2f}")
print(f"load average: {open('/proc/loadavg').read().split()[:3]}")
EOF
