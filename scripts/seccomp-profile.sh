#!/usr/bin/env bash
# Puts moby's default seccomp profile into the package as data
# (src/pallet/engine/seccomp_default.json + LICENSE-moby-seccomp), taken from
# Debian's golang-github-docker-docker-dev package (moby's source, Apache-2.0).
# Only the .deb is fetched and unpacked into a temp dir; nothing is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=src/pallet/engine
[ -s "$dest/seccomp_default.json" ] && [ -s "$dest/LICENSE-moby-seccomp" ] && exit 0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
src=/usr/share/gocode/src/github.com/docker/docker
if [ ! -f "$src/profiles/seccomp/default.json" ]; then
  (cd "$tmp" && { apt-get download -q golang-github-docker-docker-dev >/dev/null 2>&1 ||
                  { apt-get update -qq && apt-get download -q golang-github-docker-docker-dev >/dev/null; }; })
  dpkg-deb -x "$tmp"/golang-github-docker-docker-dev_*.deb "$tmp/x"
  src=$tmp/x$src
  doc=$tmp/x/usr/share/doc/golang-github-docker-docker-dev/copyright
else
  doc=/usr/share/doc/golang-github-docker-docker-dev/copyright
fi
python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$src/profiles/seccomp/default.json"
cp "$src/profiles/seccomp/default.json" "$dest/seccomp_default.json.tmp"
{ echo "seccomp_default.json is moby's default seccomp profile (profiles/seccomp/default.json),"
  echo "taken at install time from Debian's golang-github-docker-docker-dev package."
  echo "Its copyright and license (Apache-2.0), as Debian records them:"
  echo
  cat "$doc"; } > "$dest/LICENSE-moby-seccomp.tmp"
mv "$dest/seccomp_default.json.tmp" "$dest/seccomp_default.json"
mv "$dest/LICENSE-moby-seccomp.tmp" "$dest/LICENSE-moby-seccomp"
echo "seccomp: moby's default profile installed into $dest"
