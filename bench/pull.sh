#!/usr/bin/env bash
# Cold pull of the 4-layer 248 MB fixture image ("real" in /tmp/anchors/oci, built by
# ../shared/tools/fixtures/make-fixtures.sh) from a docker-registry on 127.0.0.1:
#   A: pallet pull            (download + verify digests and diff ids + store [+ unpack once layers land])
#   B: skopeo copy docker://… oci:DIR
#   C: podman pull            (private --root/--runroot)
# alternated A B C A B C ... in fresh directories (nothing is deleted between timed runs),
# medians and ratios printed. Target: pallet pull <= 0.8x podman pull.
#   RUNS=5 bench/pull.sh
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

W=$(mktemp -d /tmp/pallet-bench-pull.XXXXXX)
REG_PID=
cleanup() {
    [ -n "$REG_PID" ] && kill "$REG_PID" 2>/dev/null && wait "$REG_PID" 2>/dev/null || true
    for d in "$W"/podman-*/root/overlay; do [ -d "$d" ] && umount -R "$d" 2>/dev/null || true; done
    rm -rf "$W" /tmp/pbp-$$-*
}
trap cleanup EXIT

PORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
REG=127.0.0.1:$PORT
cat > "$W/registry.yml" <<EOF
version: 0.1
log: {level: warn, accesslog: {disabled: true}}
storage:
  filesystem: {rootdirectory: $W/registry}
  cache: {blobdescriptor: inmemory}
http: {addr: $REG}
EOF
docker-registry serve "$W/registry.yml" > "$W/registry.log" 2>&1 &
REG_PID=$!
for _ in $(seq 100); do curl -sf -o /dev/null "http://$REG/v2/" && break; sleep 0.1; done
skopeo copy -q --dest-tls-verify=false "oci:$LAYOUT:real" "docker://$REG/bench/real:latest"
REF=$REG/bench/real:latest
echo "registry $REG (pid $REG_PID), image $REF, $RUNS runs each"

now() { date +%s.%N; }
declare -a A B C
for i in $(seq "$RUNS"); do
    t0=$(now); PALLET_ROOT=$W/pallet-$i "$PALLET" pull -q "$REF" > /dev/null; t1=$(now)
    A+=("$(echo "$t1 - $t0" | bc)")
    t0=$(now); skopeo copy -q --src-tls-verify=false "docker://$REF" "oci:$W/skopeo-$i:real" > /dev/null; t1=$(now)
    B+=("$(echo "$t1 - $t0" | bc)")
    P="podman --root $W/podman-$i/root --runroot /tmp/pbp-$$-$i --tmpdir $W/podman-$i/tmp"
    P="$P --cgroup-manager=cgroupfs --events-backend=file"
    t0=$(now); $P pull -q --tls-verify=false "$REF" > /dev/null; t1=$(now)
    C+=("$(echo "$t1 - $t0" | bc)")
    printf 'run %d: pallet %.2fs  skopeo %.2fs  podman %.2fs\n' "$i" "${A[-1]}" "${B[-1]}" "${C[-1]}"
done

"$PY" - "${A[*]}" "${B[*]}" "${C[*]}" <<'EOF'
import statistics, sys
a, b, c = ([float(x) for x in s.split()] for s in sys.argv[1:4])
ma, mb, mc = map(statistics.median, (a, b, c))
print(f"median  pallet pull {ma:.2f}s   skopeo copy {mb:.2f}s   podman pull {mc:.2f}s")
print(f"ratio   pallet/podman {ma / mc:.2f}   pallet/skopeo {ma / mb:.2f}")
print("target  pallet pull <= 0.8x podman pull: " + ("OK" if ma <= 0.8 * mc else "MISSED"))
EOF
