#!/usr/bin/env bash
# Push of the 4-layer 248 MB fixture image ("real" in /tmp/anchors/oci, built by
# ../shared/tools/fixtures/make-fixtures.sh) to a docker-registry on 127.0.0.1:
#   A: pallet push SRC DEST     (from pallet's store, filled once beforehand by pallet pull)
#   B: skopeo copy oci:DIR docker://…
# alternated A B A B ..., each run into a fresh, empty registry (its own data dir; nothing is
# deleted between timed runs), medians and ratio printed. Target: pallet push <= 1.0x skopeo.
#   RUNS=5 bench/push.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
PALLET=$PWD/.venv/bin/pallet
PY=$PWD/.venv/bin/python
ANCHORS=${ANCHORS:-/tmp/anchors}
LAYOUT=$ANCHORS/oci

if ! grep -q '"real"' "$LAYOUT/index.json" 2>/dev/null; then
    echo "fixture $LAYOUT:real is missing; building it with make-fixtures.sh" >&2
    bash ../shared/tools/fixtures/make-fixtures.sh >&2
fi

W=$(mktemp -d /tmp/pallet-bench-push.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null || true; done
    rm -rf "$W"
}
trap cleanup EXIT

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# start_registry NAME -> prints host:port; the registry's data lives in $W/NAME
start_registry() {
    local name=$1 port; port=$(free_port)
    cat > "$W/$name.yml" <<EOF
version: 0.1
log: {level: warn, accesslog: {disabled: true}}
storage:
  filesystem: {rootdirectory: $W/$name}
  cache: {blobdescriptor: inmemory}
http: {addr: 127.0.0.1:$port}
EOF
    docker-registry serve "$W/$name.yml" > "$W/$name.log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$port/v2/" && break; sleep 0.1; done
    REG=127.0.0.1:$port
}

# source: pallet's store gets the image once (not timed)
start_registry source
SRC=$REG/bench/real:latest
skopeo copy -q --dest-tls-verify=false "oci:$LAYOUT:real" "docker://$SRC"
export PALLET_ROOT=$W/pallet-root
"$PALLET" pull -q "$SRC" > /dev/null
echo "image $SRC in $PALLET_ROOT; $RUNS runs each, every run into a new empty registry"

now() { date +%s.%N; }
declare -a A B
for i in $(seq "$RUNS"); do
    start_registry "target-pallet-$i"
    t0=$(now); "$PALLET" push -q "$SRC" "$REG/bench/real:latest" > /dev/null; t1=$(now)
    A+=("$(echo "$t1 - $t0" | bc)")
    start_registry "target-skopeo-$i"
    t0=$(now); skopeo copy -q --dest-tls-verify=false "oci:$LAYOUT:real" "docker://$REG/bench/real:latest" > /dev/null
    t1=$(now)
    B+=("$(echo "$t1 - $t0" | bc)")
    printf 'run %d: pallet push %.2fs  skopeo copy %.2fs\n' "$i" "${A[-1]}" "${B[-1]}"
done

"$PY" - "${A[*]}" "${B[*]}" <<'EOF'
import statistics, sys
a, b = ([float(x) for x in s.split()] for s in sys.argv[1:3])
ma, mb = statistics.median(a), statistics.median(b)
print(f"median  pallet push {ma:.2f}s   skopeo copy oci:→docker:// {mb:.2f}s")
print(f"ratio   pallet/skopeo {ma / mb:.2f}")
print("target  pallet push <= 1.0x skopeo: " + ("OK" if ma <= 1.0 * mb else "MISSED"))
EOF
