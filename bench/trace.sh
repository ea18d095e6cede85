#!/usr/bin/env bash
# The cost of `pallet run --trace` (issue 16): start-to-exit of `pallet run --rm --network none IMAGE true`
#
#   before  pallet without the trace recorder (HEAD with the trace commits reverted: BEFORE=...)
#   off     HEAD, tracing off (the kernel layer's `recorder is None` checks only)
#   on      HEAD, `--trace=FILE` (every record made, sent over the channels, the file written 3 times)
#
# alternated run by run (before off on before off on ...), N runs each (RUNS, default 30): medians and ratios.
# Everything lives in a private temp dir (its own --root/--runroot). Run as root.
# Env: RUNS=30 KEEP=1 (keep the temp dir) BEFORE="..." (the trace commits to revert for "before", newest first;
# BEFORE=none: off and on only — the reverted tree no longer runs once later work has built on the trace hooks).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
RUNS=${RUNS:-30}
BEFORE=${BEFORE:-"afe14a8 db628cb 0c77d46 0f527b4 538eaca 9665471 83ff35e e71c766 c7e128a f043af0 e8b7f24 7d624fa 85a312e"}
PY=$PWD/.venv/bin/python
work=$(mktemp -d /tmp/pallet-trace-bench.XXXXXX)
export PALLET_ROOT=$work/root PALLET_RUNROOT=$work/run
cleanup() {
    set +e
    [ -n "${KEEP:-}" ] && { echo "kept $work"; return; }
    "$PY" -m pallet.cli rm -f $("$PY" -c 'import sys; from pallet.cli import main; sys.argv[0]="pallet"; sys.exit(main())' ps -aq) >/dev/null 2>&1
    grep -o "$work[^ ]*" /proc/self/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

echo "== HEAD's src in $work/now, and the same with the trace commits ($BEFORE) reverted in $work/before"
mkdir -p "$work/before" "$work/now"
git archive HEAD src | tar -x -C "$work/before"
git archive HEAD src | tar -x -C "$work/now"
cp src/pallet/engine/seccomp_default.json "$work/now/src/pallet/engine/"
# A hunk that no longer applies (a later change touched the same lines) is left as it is now; the before
# tree must still hold no trace hook (checked below) and run (the warm-up run checks that)
[ "$BEFORE" = none ] && BEFORE=""
if [ -z "$BEFORE" ]; then export NO_BEFORE=1; else export NO_BEFORE=0; fi
for c in $BEFORE; do
    git show "$c" -- src | (cd "$work/before" && git apply -R --reject 2>/dev/null) || true
done
rejected=$(cd "$work/before" && find src -name '*.rej' | sort | tr '\n' ' ')
[ -z "$rejected" ] || echo "   (hunks left as they are now: $rejected)"
find "$work/before" -name '*.rej' -delete
# (netlink.py and nftables.py may keep theirs: changed since, and not on this path: --network none)
hooks=$(grep -rl "pallet.linux import trace\|T.recorder" "$work/before/src/pallet" --include=*.py \
        --exclude=netlink.py --exclude=nftables.py || true)
[ -z "$hooks" ] || [ -z "$BEFORE" ] || { echo "the before tree still traces: $hooks"; exit 1; }
cp src/pallet/engine/seccomp_default.json "$work/before/src/pallet/engine/"   # (made by make install, untracked)
env -u PYTHONDONTWRITEBYTECODE "$PY" -m compileall -q "$work/now/src/pallet" "$work/before/src/pallet" >/dev/null

busybox_image_tar "$work" >/dev/null
"$PY" -c 'import sys; from pallet.cli import main; sys.argv[0]="pallet"; sys.exit(main())' \
    import --change 'CMD ["sh"]' "$work/rootfs.tar" localhost/busybox:latest >/dev/null

"$PY" - "$work" "$RUNS" <<'PYEOF'
import os, statistics, subprocess, sys, time
work, runs = sys.argv[1], int(sys.argv[2])
main = "import sys; from pallet.cli import main; sys.argv[0] = 'pallet'; sys.exit(main())"
run = ["run", "--rm", "--network", "none", "localhost/busybox", "true"]
py = os.path.abspath(".venv/bin/python")
variants = {
    "before": ([py, "-c", main, *run], dict(os.environ, PYTHONPATH=f"{work}/before/src")),
    "off": ([py, "-c", main, *run], dict(os.environ, PYTHONPATH=f"{work}/now/src")),
    "on": ([py, "-c", main, "run", f"--trace={work}/t.json", *run[1:]], dict(os.environ, PYTHONPATH=f"{work}/now/src")),
}
if os.environ.get("NO_BEFORE") == "1":
    del variants["before"]
for name, (argv, env) in variants.items():   # warm-up (page cache, the seccomp BPF cache)
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
times = {k: [] for k in variants}
for i in range(runs):
    for name, (argv, env) in variants.items():
        t = time.perf_counter()
        cp = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        times[name].append(time.perf_counter() - t)
        if cp.returncode:
            sys.exit(f"{name} failed: {cp.stderr.decode()}")
med = {k: statistics.median(v) * 1000 for k, v in times.items()}
for k, v in times.items():
    print(f"{k:7s} median {med[k]:7.1f} ms   min {min(v) * 1000:7.1f}   max {max(v) * 1000:7.1f}")
if "before" in med:
    print(f"off/before = {med['off'] / med['before']:.3f}  (target: within noise)")
print(f"on/off     = {med['on'] / med['off']:.3f}  (target <= 1.20)")
print(f"load average: {open('/proc/loadavg').read().split()[:3]}")
PYEOF
