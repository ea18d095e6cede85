#!/usr/bin/env bash
# pallet demo (run by `make demo` after installing): build localhost/busybox:latest offline from the
# host's busybox-static, then show it. Idempotent: a second run finds the image up to date.
# Uses the default storage root (/var/lib/pallet as root) unless PALLET_ROOT is set.
set -euo pipefail
cd "$(dirname "$0")/.."

PALLET=${PALLET:-.venv/bin/pallet}
IMAGE=localhost/busybox:latest

busybox=""
for p in /bin/busybox /usr/bin/busybox; do
    if [ -x "$p" ] && "$p" --list >/dev/null 2>&1; then busybox=$p; break; fi
done
if [ -z "$busybox" ]; then
    echo "demo: busybox-static is not installed (apt-get install busybox-static)" >&2
    exit 1
fi

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rootfs=$work/rootfs

# A minimal root filesystem: static busybox, one symlink per applet, /etc/passwd and /etc/group.
mkdir -p "$rootfs/bin"
cp "$busybox" "$rootfs/bin/busybox"
chmod 0755 "$rootfs/bin/busybox"
mkdir -p "$rootfs/sbin" "$rootfs/usr/bin" "$rootfs/usr/sbin"
for applet in $("$rootfs/bin/busybox" --list-full); do
    [ -d "$rootfs/${applet%/*}" ] || mkdir -p "$rootfs/${applet%/*}"
    [ -e "$rootfs/$applet" ] || [ -L "$rootfs/$applet" ] || ln -s /bin/busybox "$rootfs/$applet"
done
for d in etc proc sys dev tmp root var/tmp run home; do mkdir -p "$rootfs/$d"; done
chmod 1777 "$rootfs/tmp" "$rootfs/var/tmp"
chmod 0700 "$rootfs/root"
cat >"$rootfs/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat >"$rootfs/etc/group" <<'EOF'
root:x:0:
nogroup:x:65534:
EOF

# A reproducible tarball: same input, same bytes, same layer diff id.
find "$rootfs" -exec touch -h -d @0 {} +
tar --sort=name --format=gnu --numeric-owner --owner=0 --group=0 --mtime=@0 \
    -C "$rootfs" -cf "$work/rootfs.tar" .
diff_id="sha256:$(sha256sum "$work/rootfs.tar" | cut -d' ' -f1)"

current=$("$PALLET" image inspect -f '{{json .RootFS.Layers}}' "$IMAGE" 2>/dev/null || true)
if [ "$current" = "[\"$diff_id\"]" ]; then
    echo "demo: $IMAGE is up to date (layer $diff_id)"
else
    old_id=$("$PALLET" image inspect -f '{{.Id}}' "$IMAGE" 2>/dev/null || true)
    version=$("$busybox" | awk 'NR == 1 {print $1, $2}')  # awk reads it all: no SIGPIPE under pipefail
    step "pallet import --change 'CMD [\"sh\"]' rootfs.tar $IMAGE"
    "$PALLET" import --change 'CMD ["sh"]' -m "$version from the host's busybox-static" \
        "$work/rootfs.tar" "$IMAGE"
    # an earlier demo image that lost its only tag would just be clutter
    if [ -n "$old_id" ] && [ "$("$PALLET" image inspect -f '{{json .RepoTags}}' "$old_id" 2>/dev/null)" = "[]" ]; then
        "$PALLET" rmi "$old_id" >/dev/null
    fi
fi

step pallet images
"$PALLET" images
step pallet image inspect localhost/busybox
"$PALLET" image inspect localhost/busybox
step pallet history localhost/busybox
"$PALLET" history localhost/busybox

# containers (issue 6): a container that shows its own isolation
step "pallet run --rm $IMAGE sh -c 'hostname; id; ps; cat /proc/self/cgroup'"
"$PALLET" run --rm "$IMAGE" sh -c 'hostname; id; ps; cat /proc/self/cgroup'
