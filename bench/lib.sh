# Shared by the benchmark scripts (sourced).

# busybox_image_tar DIR: a busybox root filesystem in DIR/rootfs (every applet linked, /etc/passwd
# and /etc/group for root, /data/seed for the volume benchmarks) and its tarball DIR/rootfs.tar,
# which each benchmark imports into pallet and podman alike.
busybox_image_tar() {
    local dest=$1/rootfs p
    mkdir -p "$dest/bin"
    cp /bin/busybox "$dest/bin/busybox"
    for p in $("$dest/bin/busybox" --list-full); do
        mkdir -p "$dest/${p%/*}"
        [ -e "$dest/$p" ] || [ -L "$dest/$p" ] || ln -s /bin/busybox "$dest/$p"
    done
    mkdir -p "$dest"/{etc,proc,sys,dev,tmp,root,run,data}
    echo seed > "$dest/data/seed"
    echo 'root:x:0:0:root:/root:/bin/sh' > "$dest/etc/passwd"
    echo 'root:x:0:' > "$dest/etc/group"
    tar -C "$dest" -cf "$1/rootfs.tar" .
}
