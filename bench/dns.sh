#!/usr/bin/env bash
# A network's DNS server (issue 15): pallet's (src/pallet/network/dns.py) vs podman's aardvark-dns,
# inside a network namespace this script makes and deletes (bench/lib.sh private_netns).
#
#  a. answer latency: a client in a container's namespace asks the container's name (A), BATCH queries in
#     a row to one server then to the other, alternated ROUNDS times; median of each round, then median;
#  b. start: from nothing to the first answer — pallet's dns.ensure (sockets bound by the caller, the
#     server posix_spawned) vs `aardvark-dns run` (it binds, then daemonizes), alternated STARTS times.
#
# aardvark-dns is not in `make install` (Debian's package depends on netavark, whose presence switches
# podman's default network backend for everyone on the host): give its binary with AARDVARK=PATH, e.g.
#   apt-get download aardvark-dns && dpkg-deb -x aardvark-dns_*.deb /tmp/ad  # AARDVARK=/tmp/ad/usr/lib/podman/aardvark-dns
# Without it only pallet's numbers are printed.
# Env: ROUNDS=10 BATCH=200 STARTS=10 AARDVARK=/usr/lib/podman/aardvark-dns. Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
private_netns "$0" "$@"
export ROUNDS=${ROUNDS:-10} BATCH=${BATCH:-200} STARTS=${STARTS:-10}
export AARDVARK=${AARDVARK:-/usr/lib/podman/aardvark-dns}
exec .venv/bin/python - <<'EOF'
import json, os, shutil, signal, socket, statistics, struct, subprocess, sys, tempfile, time
from pathlib import Path

from pallet.network import dns
from pallet.network.networks import Networks
from pallet.store import Store

ROUNDS, BATCH, STARTS = int(os.environ["ROUNDS"]), int(os.environ["BATCH"]), int(os.environ["STARTS"])
AARDVARK = os.environ["AARDVARK"] if os.access(os.environ["AARDVARK"], os.X_OK) else None
GW, APORT = "10.99.0.1", 5533
tmp = Path(tempfile.mkdtemp(prefix="pallet-bench-dns-"))
procs = []


def query(name: str, qid: int) -> bytes:
    q = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    return struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + q + struct.pack("!HH", 1, 1)


def answers(port: int, timeout: float = 5.0) -> bool:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(0.05)
    end = time.monotonic() + timeout
    try:
        while time.monotonic() < end:
            s.sendto(query("web", 7), (GW, port))
            try:
                if s.recv(512)[-4:] == socket.inet_aton("10.99.0.2"):
                    return True
            except OSError:
                pass
        return False
    finally:
        s.close()


def aardvark_start() -> None:
    conf = tmp / "aardvark"
    conf.mkdir(exist_ok=True)
    (conf / "bench").write_text(f"{GW}\n{'c' * 64} 10.99.0.2  web\n")
    subprocess.run([AARDVARK, "--config", str(conf), "-p", str(APORT), "run"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def aardvark_stop() -> None:
    pidf = tmp / "aardvark" / "aardvark.pid"
    if pidf.exists():
        pid = int(pidf.read_text())
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        while Path(f"/proc/{pid}").exists() and "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]:
            time.sleep(0.001)
        pidf.unlink()


try:
    store = Store(tmp / "root")
    nets = Networks(store)
    net = nets.create("bench", subnet="10.99.0.0/24")
    ctr = subprocess.Popen(["unshare", "--net", "sleep", "600"])
    procs.append(ctr)
    while not open(f"/proc/{ctr.pid}/cmdline", "rb").read().startswith(b"sleep"):
        time.sleep(0.01)
    nets.attach(f"/proc/{ctr.pid}/ns/net", "bench", "c" * 64, "web", dns_names=["web"])
    assert answers(53), "pallet's server does not answer"

    # b. start to first answer, alternated
    starts = {"pallet": [], "aardvark": []}
    for _ in range(STARTS):
        dns.stop(store, net.id)
        t = time.perf_counter()
        dns.ensure(store, net)
        assert answers(53)
        starts["pallet"].append((time.perf_counter() - t) * 1000)
        if AARDVARK:
            t = time.perf_counter()
            aardvark_start()
            assert answers(APORT), "aardvark-dns does not answer"
            starts["aardvark"].append((time.perf_counter() - t) * 1000)
            aardvark_stop()
    if AARDVARK:
        aardvark_start()
        assert answers(APORT)

    # a. answer latency, from inside the container's namespace, alternated by rounds
    client = f"""
import socket, statistics, struct, sys, time, json
def q(i):
    return struct.pack("!HHHHHH", i, 0x0100, 1, 0, 0, 0) + b"\\x03web\\x00" + struct.pack("!HH", 1, 1)
ports = [53] + ([{APORT}] if {bool(AARDVARK)} else [])
out = {{p: [] for p in ports}}
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(5)
for r in range({ROUNDS}):
    for p in ports:
        lat = []
        for i in range({BATCH}):
            t = time.perf_counter(); s.sendto(q(i), ("{GW}", p)); s.recv(512); lat.append((time.perf_counter() - t) * 1e6)
        out[p].append(statistics.median(lat))
print(json.dumps(out))
"""
    cp = subprocess.run(["nsenter", f"--net=/proc/{ctr.pid}/ns/net", sys.executable, "-c", client],
                        capture_output=True, text=True, check=True, timeout=600)
    lat = {int(k): v for k, v in json.loads(cp.stdout).items()}
    med = lambda xs: statistics.median(xs) if xs else float("nan")  # noqa: E731
    print(f"answer latency (A, median of {ROUNDS} rounds x {BATCH} queries, microseconds):")
    print(f"  pallet    {med(lat[53]):8.1f}")
    if AARDVARK:
        print(f"  aardvark  {med(lat[APORT]):8.1f}   ratio pallet/aardvark {med(lat[53]) / med(lat[APORT]):.2f}")
    print(f"start to first answer (median of {STARTS}, ms):")
    print(f"  pallet    {med(starts['pallet']):8.2f}")
    if AARDVARK:
        print(f"  aardvark  {med(starts['aardvark']):8.2f}   ratio pallet/aardvark "
              f"{med(starts['pallet']) / med(starts['aardvark']):.2f}")
    else:
        print("  (aardvark-dns not found: AARDVARK=PATH to compare)")
    nets.detach("bench", "c" * 64)
    nets.remove("bench")
finally:
    if AARDVARK:
        aardvark_stop()
    for p in procs:
        p.kill()
        p.wait()
    shutil.rmtree(tmp, ignore_errors=True)
EOF
