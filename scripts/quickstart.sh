#!/usr/bin/env bash
# From a fresh Debian machine to a running container: installs what berth
# needs, builds it, makes a busybox image locally (no registry needed) and
# runs a container from it, as a Docker user would.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
export PATH=$PATH:/usr/local/go/bin
make build

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/rootfs/bin" "$work/rootfs/etc"
cp /bin/busybox "$work/rootfs/bin/busybox"
for a in sh echo cat ls hostname id; do ln -s busybox "$work/rootfs/bin/$a"; done
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$work/rootfs/etc/passwd"
printf 'root:x:0:\n' >"$work/rootfs/etc/group"
tar -C "$work/rootfs" -cf "$work/rootfs.tar" .
bin/berth import --change 'CMD ["/bin/sh"]' "$work/rootfs.tar" quickstart/busybox:latest >/dev/null
bin/berth run --rm --network none quickstart/busybox sh -c 'echo hello from $(hostname); id'
