#!/usr/bin/env bash
# pallet's registry server vs docker-registry (distribution 2.8) on this machine, loopback only,
# alternating the two servers round by round:
#   1. blob GET of a 100 MB layer (MB/s, curl -o /dev/null, page cache warm)
#   2. manifest GET requests/s with 16 connections (wrk, bounded: $WRK_SECONDS s per round)
#   3. skopeo push and pull of the 4-layer fixture "real" from $ANCHORS/oci
# Targets (issue 8): blob GET >= 1.0x, manifest GET >= 0.7x, skopeo push/pull time <= 1.1x.
# Env: ROUNDS (3), WRK_SECONDS (5), WORKERS (pallet --workers, default: number of CPUs), ANCHORS.
set -euo pipefail
cd "$(dirname "$0")/.."
PALLET=$PWD/.venv/bin/pallet
PY=$PWD/.venv/bin/python
ROUNDS=${ROUNDS:-3}
WRK_SECONDS=${WRK_SECONDS:-5}
WORKERS=${WORKERS:-$(nproc)}
ANCHORS=${ANCHORS:-/tmp/anchors}
FIXTURE=$ANCHORS/oci

if ! [ -f "$FIXTURE/index.json" ] || ! jq -e '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"]=="real")' \
        "$FIXTURE/index.json" >/dev/null; then
    echo "== building the fixtures ($FIXTURE) with /work/shared/tools/fixtures/make-fixtures.sh"
    ANCHORS=$ANCHORS /work/shared/tools/fixtures/make-fixtures.sh
fi

W=$(mktemp -d /tmp/pallet-bench-registry.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$W"
}
trap cleanup EXIT

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_up() { for _ in $(seq 100); do curl -s -o /dev/null "http://$1/v2/" && return 0; sleep 0.1; done; echo "$1 did not start" >&2; exit 1; }

D_ADDR=127.0.0.1:$(free_port)
P_ADDR=127.0.0.1:$(free_port)
mkdir -p "$W/distribution" "$W/pallet"
cat > "$W/distribution.yml" <<YML
version: 0.1
log: {level: warn, accesslog: {disabled: true}}
storage:
  filesystem: {rootdirectory: $W/distribution}
  delete: {enabled: true}
  cache: {blobdescriptor: inmemory}
http: {addr: $D_ADDR}
YML
docker-registry serve "$W/distribution.yml" > "$W/distribution.log" 2>&1 & PIDS+=($!)
"$PALLET" registry serve --addr "$P_ADDR" --storage "$W/pallet" --workers "$WORKERS" > "$W/pallet.log" 2>&1 & PIDS+=($!)
wait_up "$D_ADDR"; wait_up "$P_ADDR"
echo "== distribution 2.8 on $D_ADDR, pallet (--workers $WORKERS) on $P_ADDR, $ROUNDS rounds, $(nproc) CPUs"

# ---- set-up: a 100 MB layer and the busybox image in both ----------------------------------
head -c 100000000 /dev/urandom > "$W/layer.bin"
LAYER=sha256:$(sha256sum "$W/layer.bin" | cut -d' ' -f1)
for a in "$D_ADDR" "$P_ADDR"; do
    loc=$(curl -s -D - -o /dev/null -X POST "http://$a/v2/bench/blob/blobs/uploads/" | tr -d '\r' | awk -F': ' 'tolower($1)=="location"{print $2}')
    case $loc in http*) ;; *) loc="http://$a$loc";; esac
    sep='?'; case $loc in *\?*) sep='&';; esac
    code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT -H 'Content-Type: application/octet-stream' \
        --data-binary "@$W/layer.bin" "$loc${sep}digest=$LAYER")
    [ "$code" = 201 ] || { echo "blob upload to $a failed: $code" >&2; exit 1; }
    skopeo copy -q --dest-tls-verify=false "oci:$FIXTURE:busybox" "docker://$a/bench/busybox:latest"
done
rm -f "$W/layer.bin"

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a/b}'; }

# ---- 1. blob GET -----------------------------------------------------------------------------
: > "$W/blob.d"; : > "$W/blob.p"
for a in "$D_ADDR" "$P_ADDR"; do curl -s -o /dev/null "http://$a/v2/bench/blob/blobs/$LAYER"; done  # warm
for r in $(seq "$ROUNDS"); do
    for who in d p; do
        a=$D_ADDR; [ $who = p ] && a=$P_ADDR
        curl -s -o /dev/null -w '%{speed_download}\n' "http://$a/v2/bench/blob/blobs/$LAYER" \
            | awk '{printf "%.1f\n", $1/1e6}' >> "$W/blob.$who"
    done
done
BD=$(median < "$W/blob.d"); BP=$(median < "$W/blob.p")

# ---- 2. manifest GET -------------------------------------------------------------------------
ACCEPT='Accept: application/vnd.oci.image.manifest.v1+json'
: > "$W/man.d"; : > "$W/man.p"
for r in $(seq "$ROUNDS"); do
    for who in d p; do
        a=$D_ADDR; [ $who = p ] && a=$P_ADDR
        wrk -t2 -c16 -d"${WRK_SECONDS}s" --timeout 5s -H "$ACCEPT" "http://$a/v2/bench/busybox/manifests/latest" \
            | awk '/^Requests\/sec/ {print $2}' >> "$W/man.$who"
    done
done
MD=$(median < "$W/man.d"); MP=$(median < "$W/man.p")

# ---- 3. skopeo push / pull of the 4-layer fixture ----------------------------------------
# The same repository every round, emptied (manifest and blobs deleted) after each round: skopeo's
# blob-info cache would otherwise turn later pushes into cross-repository mounts.
REAL=$(jq -r '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"]=="real") | .digest' \
    "$FIXTURE/index.json")
REAL_BLOBS=$(jq -r '.config.digest, .layers[].digest' "$FIXTURE/blobs/sha256/${REAL#sha256:}")
empty_repo() {
    curl -s -o /dev/null -X DELETE "http://$1/v2/bench/real/manifests/$REAL"
    for b in $REAL_BLOBS; do curl -s -o /dev/null -X DELETE "http://$1/v2/bench/real/blobs/$b"; done
}
now() { date +%s.%N; }
: > "$W/push.d"; : > "$W/push.p"; : > "$W/pull.d"; : > "$W/pull.p"
for r in $(seq "$ROUNDS"); do
    for who in d p; do
        a=$D_ADDR; [ $who = p ] && a=$P_ADDR
        t0=$(now)
        skopeo copy -q --dest-tls-verify=false "oci:$FIXTURE:real" "docker://$a/bench/real:latest"
        t1=$(now)
        rm -rf "$W/pulled"
        skopeo copy -q --src-tls-verify=false "docker://$a/bench/real:latest" "oci:$W/pulled:real"
        t2=$(now)
        empty_repo "$a"
        awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f\n", b-a}' >> "$W/push.$who"
        awk -v a="$t1" -v b="$t2" 'BEGIN {printf "%.3f\n", b-a}' >> "$W/pull.$who"
    done
done
rm -rf "$W/pulled"
SD=$(median < "$W/push.d"); SP=$(median < "$W/push.p")
LD=$(median < "$W/pull.d"); LP=$(median < "$W/pull.p")

echo
printf '%-34s %14s %14s %8s %s\n' metric distribution pallet ratio target
printf '%-34s %14s %14s %8s %s\n' "blob GET 100 MB (MB/s, median)" "$BD" "$BP" "$(ratio "$BP" "$BD")x" ">= 1.0x"
printf '%-34s %14s %14s %8s %s\n' "manifest GET, 16 conns (req/s)" "$MD" "$MP" "$(ratio "$MP" "$MD")x" ">= 0.7x"
printf '%-34s %14s %14s %8s %s\n' "skopeo push real (s, median)" "$SD" "$SP" "$(ratio "$SP" "$SD")x" "<= 1.1x"
printf '%-34s %14s %14s %8s %s\n' "skopeo pull real (s, median)" "$LD" "$LP" "$(ratio "$LP" "$LD")x" "<= 1.1x"
echo "(raw rounds: blob d=[$(paste -sd' ' "$W/blob.d")] p=[$(paste -sd' ' "$W/blob.p")];" \
     "manifest d=[$(paste -sd' ' "$W/man.d")] p=[$(paste -sd' ' "$W/man.p")];" \
     "push d=[$(paste -sd' ' "$W/push.d")] p=[$(paste -sd' ' "$W/push.p")];" \
     "pull d=[$(paste -sd' ' "$W/pull.d")] p=[$(paste -sd' ' "$W/pull.p")])"
