"""The guided tour (docs/tour.md), made from live runs of pallet on this machine.

    .venv/bin/python scripts/tour.py            # run every command, write docs/tour.md and its diagram
    .venv/bin/python scripts/tour.py --check    # run every command, fail if one fails (tests/test_tour.py)

Everything happens in a private storage root under a temporary directory: a busybox image made from
the host's busybox-static, a second image built on it, a container running. The outputs are the real
ones, with the temporary directory written as $TOUR so that the page does not change with it.

The tour runs in a network namespace of its own (`unshare --net`, loopback up): the containers' default
bridge, veths and firewall table live and die there, and the machine's network is not touched.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
MAX_LINES = 40
LONG_LINES = 400     # (the trace tree, the diagram as text, a comparison, explain container: whole)

SECTIONS: list[tuple[str, str, list[str]]] = [
    ("How do the kernel, pallet's processes and a container fit together?",
     "A container is an ordinary process that the kernel has put in its own namespaces (what it can see), "
     "cgroups (what it may use), a root filesystem of image layers stacked by overlayfs, and a seccomp "
     "filter with fewer capabilities (what it may ask). pallet's CLI sets this up, a small monitor process "
     "per container is its parent (logs, exit code, `--rm`), and the runtime makes the kernel calls. "
     "Networking is the kernel's too: a network is a Linux bridge, each container on it has one end of a "
     "veth pair (the other end is in its network namespace), a port is published by a DNAT rule in "
     "pallet's nftables table, and a user network has a small DNS server of pallet's that answers its "
     "containers' names. Here `web` serves a page on the network `tour-net`, published on the host's "
     "port 8080, and `worker` is on the default bridge. The picture below is drawn from this host as it is now.",
     ["pallet network create --subnet 10.89.0.0/24 tour-net",
      "pallet run -d --name web --network tour-net -p 8080:80 -v $TOUR/www:/www:ro localhost/busybox:latest "
      "httpd -f -p 80 -h /www",
      "pallet run -d --name worker localhost/busybox:latest sleep 600",
      "pallet ps",
      "busybox wget -qO- http://127.0.0.1:8080/",
      "pallet system diagram --format text",
      "pallet system diagram -o $DOCS/tour-diagram.svg"]),
    ("What does the runtime ask of the kernel for a container?",
     "`pallet run --trace` records every kernel call the CLI, the monitor, the runtime and the container's "
     "init make, in the process that made it, with its time offset and duration (the tree goes to stderr, "
     "as the container's output is on stdout; `--format json` and `--summary` read it again with `pallet "
     "trace`). `explain run` builds the same OCI runtime spec `pallet run` would, without creating "
     "anything, and says what it gives the process; `--compare` sets two flag sets side by side. "
     "`explain container` reads the same facts back from the running process.",
     ["pallet run --rm --trace localhost/busybox:latest true 2>&1",
      "pallet explain run localhost/busybox:latest",
      "pallet explain run --compare '--privileged' localhost/busybox:latest",
      "pallet explain container web"]),
    ("What are repositories, tags, digests and registries? What is an image's full URL?",
     "A reference names a registry, a repository in it and a tag or a digest; docker's rules fill in what "
     "is left out. The registry's API URL is what a client fetches.",
     ["pallet image ref explain busybox",
      "pallet image ref explain localhost:5000/team/app:1.0"]),
    ("What is inside an image? Base image versus layers built on it",
     "An image is a config (what runs) and a list of layers (tar files of changes). An image built FROM "
     "another shares its layers: the tree shows which image is built on which.",
     ["pallet images",
      "pallet images --tree",
      "pallet history localhost/tour/app:1",
      "pallet explain image localhost/tour/app:1",
      "pallet image tree localhost/tour/app:1"]),
    ("Using layers well",
     "A file written in one layer and removed or rewritten in a later one still takes space in the "
     "image: the efficiency report counts it.",
     ["pallet image efficiency localhost/tour/app:1"]),
    ("What do the OCI standards fix, and why does it matter?",
     "pallet's store is an OCI image layout and its archives follow the OCI image spec, so other tools "
     "read what pallet writes: skopeo inspects the archive, umoci unpacks it into an OCI runtime bundle "
     "(a root filesystem and a config.json of the runtime spec) that runc runs as it is (but for the "
     "terminal: there is none here), and podman loads the same archive into its own store and runs it. "
     "(podman's `--ulimit`: this host's hard limits are lower than podman's defaults; `--runtime runc`: "
     "podman's default runtime, crun, refuses this host's hybrid cgroup layout.)",
     ["pallet save --format oci-archive -o $TOUR/app.tar localhost/tour/app:1",
      "skopeo inspect oci-archive:$TOUR/app.tar",
      "mkdir -p $TOUR/layout && tar -C $TOUR/layout -xf $TOUR/app.tar && "
      "umoci unpack --image $TOUR/layout:localhost/tour/app:1 $TOUR/bundle && ls $TOUR/bundle",
      "jq '.process.terminal = false' $TOUR/bundle/config.json > $TOUR/config.json && "
      "mv $TOUR/config.json $TOUR/bundle/config.json && runc --root $TOUR/runc run -b $TOUR/bundle tour-runc",
      "podman --root $TOUR/podman --runroot $TOUR/podman-run --storage-driver vfs load -i $TOUR/app.tar",
      "podman --root $TOUR/podman --runroot $TOUR/podman-run --storage-driver vfs --runtime runc run --rm "
      "--network none "
      "--ulimit nofile=20000:20000 --ulimit nproc=32768:32768 localhost/tour/app:1"]),
]


def _busybox() -> str:
    for p in ("/bin/busybox", "/usr/bin/busybox"):
        if os.path.exists(p):
            return p
    sys.exit("tour: busybox-static is not installed (apt-get install busybox-static)")


def _setup(tour: Path, env: dict) -> None:
    rootfs = tour / "rootfs"
    (rootfs / "bin").mkdir(parents=True)
    shutil.copy2(_busybox(), rootfs / "bin" / "busybox")
    for applet in subprocess.run([str(rootfs / "bin" / "busybox"), "--list-full"], capture_output=True,
                                 text=True, check=True).stdout.split():
        target = rootfs / applet
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists() and not target.is_symlink():
            target.symlink_to("/bin/busybox")
    for d in ("etc", "proc", "sys", "dev", "tmp", "root", "var", "run"):
        (rootfs / d).mkdir(exist_ok=True)
    (rootfs / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (rootfs / "etc" / "group").write_text("root:x:0:\n")
    subprocess.run(["tar", "-C", str(rootfs), "-cf", str(tour / "rootfs.tar"), "."], check=True)
    (tour / "www").mkdir()
    (tour / "www" / "index.html").write_text("hello from web, through the published port\n")
    ctx = tour / "context"
    ctx.mkdir()
    (ctx / "app.sh").write_text("#!/bin/sh\necho hello from the tour\n")
    (ctx / "Dockerfile").write_text(
        "FROM localhost/busybox:latest\n"
        "COPY app.sh /app/app.sh\n"
        "RUN chmod 755 /app/app.sh && dd if=/dev/zero of=/app/scratch bs=1k count=64 2>/dev/null\n"
        "RUN rm /app/scratch\n"
        'CMD ["/app/app.sh"]\n')
    for argv in ([str(BIN / "pallet"), "import", "-c", 'CMD ["sh"]', str(tour / "rootfs.tar"),
                  "localhost/busybox:latest"],
                 [str(BIN / "pallet"), "build", "-q", "--network", "none", "-t", "localhost/tour/app:1", str(ctx)]):
        subprocess.run(argv, env=env, check=True, capture_output=True)


def _clean(text: str, tour: Path, limit: int = MAX_LINES) -> str:
    text = text.replace(str(tour), "$TOUR")
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)
    lines = text.rstrip("\n").splitlines()
    if len(lines) > limit:
        lines = lines[:limit] + [f"… ({len(lines) - limit} more lines)"]
    return "\n".join(lines)


def run_tour(docs: Path, check: bool) -> list[str]:
    """Run every command; returns the failures (command and output). Writes the page unless `check`."""
    failures = []
    with tempfile.TemporaryDirectory(prefix="pallet-tour-") as tmp:
        tour = Path(tmp)
        env = dict(os.environ, PALLET_ROOT=str(tour / "root"), PALLET_RUNROOT=str(tour / "run"),
                   PALLET_CONFIG_DIR=str(tour / "config"), TOUR=str(tour),
                   DOCS=str(tour / "docs" if check else docs), PATH=f"{BIN}:{os.environ.get('PATH', '')}",
                   COLUMNS="110", NO_COLOR="1")
        (tour / "docs").mkdir()
        _setup(tour, env)
        page = ["# A guided tour of a container host", "",
                "Each answer below is a pallet command run on a real host and its real output "
                "(`make tour` runs them again and rewrites this page; `tests/test_tour.py` fails when one of "
                "them stops working). The host: a busybox image made from Debian's busybox-static, an image "
                "built on it by `pallet build`, two containers running (one on a network of its own, with a published "
                "port).", ""]
        try:
            for title, prose, commands in SECTIONS:
                page += [f"## {title}", "", prose, ""]
                if "diagram" in " ".join(commands):
                    page += ["![the host](tour-diagram.svg)", ""]
                for cmd in commands:
                    cp = subprocess.run(["bash", "-c", cmd], env=env, capture_output=True, text=True, timeout=120)
                    out = cp.stdout + (cp.stderr if cp.returncode else "")
                    if cp.returncode != 0 or "Traceback (most recent call last)" in cp.stderr:
                        failures.append(f"$ {cmd}\n(exit {cp.returncode})\n{out}")
                    if "-o $DOCS" in cmd:
                        continue
                    limit = LONG_LINES if any(w in cmd for w in ("--trace", "--format text", "--compare", "explain container")) else MAX_LINES
                    page += ["```console", f"$ {cmd}", _clean(out, tour, limit), "```", ""]
            svg = Path(env["DOCS"]) / "tour-diagram.svg"
            if svg.exists():   # (the temporary directory's name, as on the page: $TOUR)
                svg.write_text(svg.read_text().replace(str(tour), "$TOUR"))
        finally:
            subprocess.run([str(BIN / "pallet"), "rm", "-f", "web", "worker"], env=env, capture_output=True)
            subprocess.run([str(BIN / "pallet"), "network", "rm", "tour-net"], env=env, capture_output=True)
            subprocess.run(["umount", "-R", "-l", str(tour / "root")], capture_output=True)
    if not check:
        (docs / "tour.md").write_text("\n".join(page) + "\n")
    return failures


def _own_netns() -> None:
    """Re-run this script in a new network namespace (once) and bring its loopback up."""
    if os.environ.get("PALLET_TOUR_NETNS") != "1":
        os.environ["PALLET_TOUR_NETNS"] = "1"
        os.execvp("unshare", ["unshare", "--net", "--", sys.executable, __file__, *sys.argv[1:]])
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="run the commands only; fail if one fails")
    args = ap.parse_args()
    _own_netns()
    failures = run_tour(REPO / "docs", args.check)
    for f in failures:
        print(f, file=sys.stderr)
    if failures:
        print(f"tour: {len(failures)} command(s) failed", file=sys.stderr)
        return 1
    if not args.check:
        print("wrote docs/tour.md and docs/tour-diagram.svg")
    return 0


if __name__ == "__main__":
    sys.exit(main())
