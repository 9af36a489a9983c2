#!/usr/bin/env bash
# From a fresh Debian machine to a running container: installs what berth
# needs, builds it, builds a busybox image from a Dockerfile (no registry
# needed) and runs a container from it, as a Docker user would.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
export PATH=$PATH:/usr/local/go/bin
make build

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp /bin/busybox "$work/busybox"
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$work/passwd"
printf 'root:x:0:\n' >"$work/group"
cat >"$work/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
COPY passwd group /etc/
CMD ["/bin/sh"]
DOCKERFILE
bin/berth build -q -t quickstart/busybox:latest "$work" >/dev/null
bin/berth run --rm --network none quickstart/busybox sh -c 'echo hello from $(hostname); id'
