#!/usr/bin/env bash
# Installs what building and testing berth needs on a Debian machine:
# a C toolchain and libseccomp for the static binary, busybox-static for
# test images, nft and iptables for the firewall tests, and the peers the
# tests and benchmarks compare against.
# Safe to run again; does nothing that is already done.
set -euo pipefail

need=(gcc make libc6-dev libseccomp-dev pkg-config busybox-static iproute2 procps nftables iptables
	runc crun podman hyperfine wrk jq time bc curl
	docker.io docker-registry skopeo umoci)
missing=()
for p in "${need[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "deps: need root to install: ${missing[*]}" >&2
		exit 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q
	apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if ! command -v go >/dev/null; then
	if [ -x /usr/local/go/bin/go ]; then
		export PATH=$PATH:/usr/local/go/bin
	else
		echo "deps: Go 1.24 or newer is required (https://go.dev/doc/install)" >&2
		exit 1
	fi
fi
