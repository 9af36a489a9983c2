#!/usr/bin/env bash
# From a fresh Debian machine to a running container: installs what berth
# needs, builds it, makes a busybox root filesystem and runs a container
# from it with berth's OCI runtime.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
export PATH=$PATH:/usr/local/go/bin
make build

bundle=$(mktemp -d)
trap 'rm -rf "$bundle"' EXIT
mkdir -p "$bundle/rootfs/bin"
cp /bin/busybox "$bundle/rootfs/bin/busybox"
for a in sh echo cat ls hostname id; do ln -s busybox "$bundle/rootfs/bin/$a"; done
(cd "$bundle" && "$OLDPWD/bin/berth" runtime spec)
sed -i 's/"terminal": true/"terminal": false/; s/"sh"$/"sh", "-c", "echo hello from $(hostname); id"/' "$bundle/config.json"
bin/berth runtime run --bundle "$bundle" "quickstart-$$"
