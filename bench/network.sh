#!/usr/bin/env bash
# Container networking benchmark (issue 15). Everything runs inside a network namespace this script
# makes and deletes (bench/lib.sh private_netns): pallet's default bridge, podman's, their veths and
# rules, and every packet stay in it.
#
#  a. start-to-exit of `pallet run --rm IMAGE true` on the default network (bridge) vs
#     `podman run --rm IMAGE true` on podman's default network, and vs pallet's `--network none`
#     (the cost of networking); alternated run by run, RUNS each, medians, ratios (target <= 0.3x podman);
#  b. setup + teardown of one container's networking inside pallet (the network layer's attach, then
#     what a container's exit does: release the lease, leave the veth to the namespace's destruction),
#     median of SETUPS (target <= 10 ms); also the time until the veth pair is gone;
#  c. MANY containers (`run -d -p P1:80 -p P2:81 … sleep`) on the default network: the last ones' network
#     setup (the monitor's own timeline: lease, veth, addresses, route, hosts, the ports' transaction) vs
#     the first ones' (target <= 1.5x), and their `run -d` wall time; the network layer's setup at that scale;
#  d. iperf3 TCP throughput container -> container (by address) and this namespace -> a published port
#     (127.0.0.1:PORT), pallet vs podman, alternated, ROUNDS each (target >= 0.9x).
#
# Env: RUNS=25 SETUPS=50 MANY=200 ROUNDS=3 SECS=3 KEEP=1 (keep the temp dir). Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
private_netns "$0" "$@"          # a network namespace of its own
crun_private_cgroups "$0" "$@"   # podman's crun on a hybrid cgroup host
RUNS=${RUNS:-25}
SETUPS=${SETUPS:-50}
MANY=${MANY:-200}
ROUNDS=${ROUNDS:-3}
SECS=${SECS:-3}
PY=.venv/bin/python
PALLET=$PWD/.venv/bin/pallet
ULIMITS=(--ulimit nofile=20000:20000 --ulimit nproc=32768:32768)
work=$(mktemp -d /tmp/pallet-bench-net.XXXXXX)
export PALLET_ROOT=$work/pallet PALLET_RUNROOT=$work/pallet-run
podman_() {
    podman --root "$work/podman" --runroot "$work/podman-run" --cgroup-manager=cgroupfs --events-backend=file \
        --tmpdir "$work/podman-tmp" "$@"
}
cleanup() {
    set +e
    local ids
    ids=$("$PALLET" ps -aq 2>/dev/null)
    [ -n "$ids" ] && "$PALLET" rm -f $ids >/dev/null 2>&1
    podman_ rm -af -t 0 >/dev/null 2>&1
    [ -n "${KEEP:-}" ] && { echo "kept $work"; return; }
    grep -o "$work[^ ]*" /proc/self/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
echo "== in network namespace $PALLET_BENCH_NETNS; work dir $work"

fresh_bytecode

echo "== a busybox image with iperf3 (the host's binary and its libraries), in pallet and podman"
busybox_image_tar "$work"
ipf=$(command -v iperf3) || { echo "iperf3 is not installed (make install)"; exit 1; }
for f in "$ipf" $(ldd "$ipf" | grep -o '/[^ ]*'); do
    mkdir -p "$work/rootfs$(dirname "$f")"
    cp -L "$f" "$work/rootfs$f"
done
tar -C "$work/rootfs" -cf "$work/rootfs.tar" .
"$PALLET" import --change 'CMD ["sh"]' "$work/rootfs.tar" localhost/busybox:latest >/dev/null
mkdir -p "$work/podman-tmp"
podman_ import "$work/rootfs.tar" localhost/busybox:latest >/dev/null
"$PALLET" run --rm localhost/busybox true                    # warm-up; makes the default bridge
"$PALLET" run --rm --network none localhost/busybox true
podman_ run --rm "${ULIMITS[@]}" localhost/busybox true

echo
echo "== a. start-to-exit of run --rm IMAGE true, $RUNS runs each, alternated"
"$PY" - "$work" "$RUNS" <<'EOF'
import os, statistics, subprocess, sys, time
work, runs = sys.argv[1], int(sys.argv[2])
pallet = [os.path.abspath(".venv/bin/pallet"), "run", "--rm"]
podman = ["podman", "--root", f"{work}/podman", "--runroot", f"{work}/podman-run", "--cgroup-manager=cgroupfs",
          "--events-backend=file", "--tmpdir", f"{work}/podman-tmp", "run", "--rm",
          "--ulimit", "nofile=20000:20000", "--ulimit", "nproc=32768:32768"]
cases = {"pallet bridge": pallet + ["localhost/busybox", "true"],
         "podman default": podman + ["localhost/busybox", "true"],
         "pallet none": pallet + ["--network", "none", "localhost/busybox", "true"]}
times = {k: [] for k in cases}
for _ in range(runs):
    for name, argv in cases.items():
        t = time.perf_counter()
        cp = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        times[name].append(time.perf_counter() - t)
        if cp.returncode:
            sys.exit(f"{name} failed: {cp.stderr.decode()}")
med = {k: statistics.median(v) * 1000 for k, v in times.items()}
for k, v in times.items():
    print(f"  {k:15s} median {med[k]:7.1f} ms   min {min(v) * 1000:7.1f}   max {max(v) * 1000:7.1f}")
print(f"  pallet bridge / podman default = {med['pallet bridge'] / med['podman default']:.2f}  (target <= 0.3)")
print(f"  pallet bridge / pallet none    = {med['pallet bridge'] / med['pallet none']:.2f}  "
      f"(networking costs {med['pallet bridge'] - med['pallet none']:.1f} ms)")
EOF

echo
echo "== b. setup + teardown of one container's networking inside pallet, median of $SETUPS"
"$PY" - "$work" "$SETUPS" <<'EOF'
import os, statistics, subprocess, sys, time
from pallet.store import Store
from pallet.network import bridge
from pallet.network.networks import Networks

work, n = sys.argv[1], int(sys.argv[2])
nets = Networks(Store(os.environ["PALLET_ROOT"]))
own = os.readlink("/proc/self/ns/net")
setup, teardown, gone = [], [], []
for i in range(n + 1):
    p = subprocess.Popen(["unshare", "--net", "sleep", "60"])      # a container's namespace holder
    while os.readlink(f"/proc/{p.pid}/ns/net") == own:
        time.sleep(0.0002)
    cid = f"{i:064x}"
    t0 = time.perf_counter()
    lease = nets.attach(f"/proc/{p.pid}/ns/net", "bridge", cid, f"bench{i}", ifname="eth0")
    t1 = time.perf_counter()
    p.kill()
    p.wait()                                                         # the container exits
    t2 = time.perf_counter()
    nets.release(lease)                                              # what the engine does then
    bridge.detach(lease, exited=True)
    t3 = time.perf_counter()
    bridge.settle()
    t4 = time.perf_counter()
    if i:                                                            # (the first one warms up)
        setup.append(t1 - t0)
        teardown.append(t3 - t2)
        gone.append(t4 - t2)
med = lambda v: statistics.median(v) * 1000  # noqa: E731
print(f"  setup      median {med(setup):6.2f} ms   min {min(setup) * 1000:6.2f}   max {max(setup) * 1000:6.2f}")
print(f"  teardown   median {med(teardown):6.2f} ms   (lease back; the veth left to the namespace's destruction)")
print(f"  setup + teardown median {statistics.median(a + b for a, b in zip(setup, teardown)) * 1000:6.2f} ms"
      "  (target <= 10)")
print(f"  (until the veth pair is gone after the exit: median {med(gone):6.1f} ms, off the path)")
EOF

echo
echo "== c. $MANY containers on the default network, each with 2 published ports (run -d ... sleep)"
"$PY" - "$MANY" <<'EOF'
import os, re, statistics, subprocess, sys, time
many = int(sys.argv[1])
pallet = os.path.abspath(".venv/bin/pallet")
walls, setups = [], []
env = dict(os.environ, PALLET_TRACE_MONITOR="1")     # the monitor's own timeline, in monitor.log
for i in range(many):
    argv = [pallet, "run", "-d", "-p", f"{20000 + 2 * i}:80", "-p", f"{20001 + 2 * i}:81",
            "localhost/busybox", "sleep", "3600"]
    t = time.perf_counter()
    cp = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    walls.append(time.perf_counter() - t)
    if cp.returncode:
        sys.exit(f"container {i + 1} failed: {cp.stderr}")
    log = open(f"{os.environ['PALLET_RUNROOT']}/containers/{cp.stdout.strip()}/monitor.log").read()
    at = {m[1]: float(m[0]) for m in re.findall(r"([0-9.]+) ms (created|network)", log)}
    setups.append(at["network"] - at["created"])    # lease, veth, addresses, route, hosts, 2 ports (nft)
k = min(5, many // 2) or 1
for what, v, unit in (("run -d wall time", walls, 1000), ("network setup in the monitor", setups, 1)):
    first, last = statistics.median(v[:k]) * unit, statistics.median(v[-k:]) * unit
    print(f"  {what:29s} first {k}: median {first:6.1f} ms, last {k} (up to #{many}): median {last:6.1f} ms"
          f"   last/first = {last / first:.2f}  (target <= 1.5)")
EOF
"$PY" - "$work" <<'EOF'
import os, statistics, subprocess, sys, time
from pallet.store import Store
from pallet.network import bridge
from pallet.network.networks import Networks
from pallet.engine import networking

nets = Networks(Store(os.environ["PALLET_ROOT"]))
n = len(nets.leases())
own = os.readlink("/proc/self/ns/net")
times = []
for i in range(5):
    p = subprocess.Popen(["unshare", "--net", "sleep", "60"])
    while os.readlink(f"/proc/{p.pid}/ns/net") == own:
        time.sleep(0.0002)
    from pallet.network import firewall
    cid = f"f{i:063x}"
    t = time.perf_counter()
    lease = nets.attach(f"/proc/{p.pid}/ns/net", "bridge", cid, f"scale{i}", ifname="eth0")
    firewall.apply(firewall.publish(cid, lease.address, [("tcp", "", 40000 + 2 * i, 80), ("tcp", "", 40001 + 2 * i, 81)]))
    times.append(time.perf_counter() - t)
    firewall.apply(firewall.unpublish(cid))
    p.kill(); p.wait()
    nets.release(lease); bridge.detach(lease, exited=True)
bridge.settle()
print(f"  inside pallet with {n} containers on the network: setup + 2 published ports median "
      f"{statistics.median(times) * 1000:.2f} ms")
EOF
t0=$(date +%s.%N)
"$PALLET" rm -f $("$PALLET" ps -aq) >/dev/null
printf '  rm -f of all %d: %.2f s\n' "$MANY" "$(echo "$(date +%s.%N) - $t0" | bc)"

echo
echo "== d. iperf3 TCP throughput, ${SECS} s each, $ROUNDS rounds, alternated"
iperf_json() { "$PY" -c 'import json,sys; print(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"] / 1e9)'; }
ip_of() {  # engine name
    if [ "$1" = pallet ]; then "$PALLET" inspect "$2" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)[0]["NetworkSettings"]["IPAddress"])'
    else podman_ inspect -f '{{.NetworkSettings.IPAddress}}' "$2"; fi
}
"$PALLET" run -d --name ipf-srv -p 15201:5201 localhost/busybox iperf3 -s >/dev/null
podman_ run -d --name ipf-srv -p 25201:5201 "${ULIMITS[@]}" localhost/busybox iperf3 -s >/dev/null
sleep 1
psrv=$(ip_of pallet ipf-srv); qsrv=$(ip_of podman ipf-srv)
echo "  servers: pallet $psrv (published 127.0.0.1:15201), podman $qsrv (published 127.0.0.1:25201)"
declare -A res
for r in $(seq "$ROUNDS"); do
    res[pc2c]+="$("$PALLET" run --rm localhost/busybox iperf3 -c "$psrv" -t "$SECS" -J | iperf_json) "
    res[qc2c]+="$(podman_ run --rm "${ULIMITS[@]}" localhost/busybox iperf3 -c "$qsrv" -t "$SECS" -J | iperf_json) "
    res[ppub]+="$(iperf3 -c 127.0.0.1 -p 15201 -t "$SECS" -J | iperf_json) "
    res[qpub]+="$(iperf3 -c 127.0.0.1 -p 25201 -t "$SECS" -J | iperf_json) "
done
"$PY" - "${res[pc2c]}" "${res[qc2c]}" "${res[ppub]}" "${res[qpub]}" <<'EOF'
import statistics, sys
pc, qc, pp, qp = ([float(x) for x in a.split()] for a in sys.argv[1:])
for what, p, q in (("container -> container", pc, qc), ("namespace -> published port", pp, qp)):
    mp, mq = statistics.median(p), statistics.median(q)
    print(f"  {what:28s} pallet {mp:6.2f} Gbit/s   podman {mq:6.2f} Gbit/s   pallet/podman = {mp / mq:.2f}"
          "  (target >= 0.9)")
EOF
"$PALLET" rm -f ipf-srv >/dev/null
podman_ rm -f -t 0 ipf-srv >/dev/null
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
