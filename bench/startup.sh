#!/usr/bin/env bash
# Start-up cost of the pallet CLI: median of N runs of `pallet --version` (and
# `pallet images` on an empty root), plus the top import-time offenders.
# Target (issue 2): `pallet --version` under 80 ms.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
PALLET=.venv/bin/pallet
N=${N:-20}
export PALLET_ROOT=${PALLET_ROOT:-$(mktemp -d /tmp/pallet-bench-startup.XXXXXX)}

median_ms() {  # median wall time in ms of N runs of "$@"
  "$PY" - "$N" "$@" <<'PYEOF'
import statistics, subprocess, sys, time
n, cmd = int(sys.argv[1]), sys.argv[2:]
ts = []
for _ in range(n):
    t = time.perf_counter(); subprocess.run(cmd, stdout=subprocess.DEVNULL, check=True); ts.append(time.perf_counter() - t)
print(f"{statistics.median(ts) * 1000:.1f}")
PYEOF
}

# the console script (pallet.cli:main) answers --version before importing click, and runs
# `pallet run` through pallet.cli.fastrun without click: profile those paths, not the click group
echo "== top import-time offenders for 'pallet --version' (cumulative us)"
"$PY" -X importtime -c 'import sys; from pallet.cli import main; main(["--version"])' 2>&1 >/dev/null \
  | awk -F'|' 'NR>1 {gsub(/ /,"",$2); print $2, $3}' | sort -rn | head -8
echo "== top import-time offenders for 'pallet run --rm IMAGE true' up to the engine call (cumulative us)"
"$PY" -X importtime -c '
from pallet.cli import containerrun, fastrun
def run(st, *a, **k):   # the imports a real run makes before it forks the monitor, without running anything
    import pallet.engine.core, pallet.engine.monitor, pallet.engine.attach, pallet.engine.snapshots
    import pallet.engine.spec, pallet.engine.users, pallet.engine.runtimes, pallet.layers.images
    st.store()
    return 0
containerrun.run = run
def leave(code):
    raise SystemExit(code)
fastrun._exit = leave
from pallet.cli import main
try:
    main(["run", "--rm", "--network", "none", "localhost/busybox", "true"])
except SystemExit:
    pass' 2>&1 >/dev/null | awk -F'|' 'NR>1 {gsub(/ /,"",$2); print $2, $3}' | sort -rn | head -15

bare=$(median_ms "$PY" -S -c pass)
ver=$(median_ms "$PALLET" --version)
imgs=$(median_ms "$PALLET" images)
echo
printf '%-32s %8s ms\n' "python -S -c pass (floor)" "$bare" "pallet --version" "$ver" "pallet images (empty root)" "$imgs"
"$PY" -c "import sys; v=float('$ver'); print(f'pallet --version: {v:.1f} ms, target < 80 ms: ' + ('OK' if v < 80 else 'MISSED'))"
