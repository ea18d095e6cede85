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

echo "== top import-time offenders for 'pallet --version' (cumulative us)"
"$PY" -X importtime -c 'import sys; sys.argv=["pallet","--version"]; from pallet.cli.main import main; main()' 2>&1 >/dev/null \
  | awk -F'|' 'NR>1 {gsub(/ /,"",$2); print $2, $3}' | sort -rn | head -12

bare=$(median_ms "$PY" -S -c pass)
ver=$(median_ms "$PALLET" --version)
imgs=$(median_ms "$PALLET" images)
echo
printf '%-32s %8s ms\n' "python -S -c pass (floor)" "$bare" "pallet --version" "$ver" "pallet images (empty root)" "$imgs"
"$PY" -c "import sys; v=float('$ver'); print(f'pallet --version: {v:.1f} ms, target < 80 ms: ' + ('OK' if v < 80 else 'MISSED'))"
