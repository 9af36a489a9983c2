#!/usr/bin/env bash
# bench/containers.sh BERTH_BINARY — berth's container commands against
# podman and docker in one run, on the same busybox image imported into
# each, with no network:
#   - `run --rm IMAGE /bin/true`, the whole life of a short container;
#   - 50 detached `sleep` containers started one after another;
#   - resident memory of the per-container supervisor (berth's monitor,
#     podman's conmon, docker's containerd-shim) with 10 containers up.
# Writes medians and ratios (berth / peer) to docs/BENCHMARKS.md.
#
#   RUNS=10 SERIES=3 bench/containers.sh bin/berth
#
# Needs root, a running dockerd, podman, hyperfine, jq and busybox.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
BERTH=$(readlink -f "${1:?usage: bench/containers.sh BERTH_BINARY}")
RUNS=${RUNS:-10}     # hyperfine runs of run --rm
SERIES=${SERIES:-3}  # repetitions of the 50-container series
N=${N:-50}
OUT=${OUT:-docs/BENCHMARKS.md}
[ "$(id -u)" = 0 ] || { echo "bench: must run as root" >&2; exit 1; }
for t in hyperfine jq docker podman busybox bc; do
	command -v $t >/dev/null || { echo "bench: missing $t" >&2; exit 1; }
done
docker info >/dev/null 2>&1 || { echo "bench: dockerd is not running" >&2; exit 1; }

# podman's default crun refuses this hybrid cgroup layout, and podman's
# default rlimits need CAP_SYS_RESOURCE, which root lacks here: runc and
# limits within the host's.
PODMAN="podman --runtime runc"
PODMAN_RUN="--ulimit nofile=1024:1024 --ulimit nproc=1024:1024"

T=$(mktemp -d /tmp/berth-bench-ctr.XXXXXX)
BR=$T/berth-root
IMG=berth-bench/bb:1
B() { "$BERTH" --root "$BR" "$@"; }
cleanup() {
	B rm -f $(B ps -aq) >/dev/null 2>&1 || true
	docker rm -f $(docker ps -aq --filter label=berth-bench) >/dev/null 2>&1 || true
	podman rm -f $(podman ps -aq --filter label=berth-bench) >/dev/null 2>&1 || true
	docker rmi -f "$IMG" >/dev/null 2>&1 || true
	podman rmi -f "$IMG" >/dev/null 2>&1 || true
	rm -rf "$T"
}
trap cleanup EXIT

mkdir -p "$T/rootfs/bin"
cp "$(command -v busybox)" "$T/rootfs/bin/busybox"
for a in sh true sleep; do ln -s busybox "$T/rootfs/bin/$a"; done
tar -C "$T/rootfs" -cf "$T/rootfs.tar" .
B import "$T/rootfs.tar" "$IMG" >/dev/null
docker import "$T/rootfs.tar" "$IMG" >/dev/null
podman import "$T/rootfs.tar" "$IMG" >/dev/null

# 1. run --rm /bin/true
hyperfine -N --warmup 2 --runs "$RUNS" --export-json "$T/true.json" \
	-n berth "$BERTH --root $BR run --rm --network none $IMG /bin/true" \
	-n podman "$PODMAN run --rm --network none $PODMAN_RUN $IMG /bin/true" \
	-n docker "docker run --rm --network none $IMG /bin/true" >"$T/true.log" 2>&1 ||
	{ cat "$T/true.log" >&2; exit 1; }
med_true() { jq --arg n "$1" '.results[] | select(.command == $n) | .median * 1000' "$T/true.json"; }

# 2. N detached containers, one after another.
series() { # tool -> seconds for N runs
	local tool=$1 start end
	start=$(date +%s%N)
	for _ in $(seq "$N"); do
		case $tool in
		berth) B run -d --network none -l berth-bench=1 "$IMG" sleep 600 >/dev/null ;;
		podman) $PODMAN run -d --network none $PODMAN_RUN -l berth-bench=1 "$IMG" sleep 600 >/dev/null ;;
		*) $tool run -d --network none -l berth-bench=1 "$IMG" sleep 600 >/dev/null ;;
		esac
	done
	end=$(date +%s%N)
	echo "($end - $start) / 1000000" | bc
}
clear_tool() {
	case $1 in
	berth) B rm -f $(B ps -aq) >/dev/null 2>&1 || true ;;
	*) $1 rm -f $($1 ps -aq --filter label=berth-bench) >/dev/null 2>&1 || true ;;
	esac
}
declare -A series_ms
for tool in berth podman docker; do
	vals=()
	for _ in $(seq "$SERIES"); do
		vals+=("$(series $tool)")
		clear_tool $tool
	done
	series_ms[$tool]=$(printf '%s\n' "${vals[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
done

# 3. supervisor memory with 10 containers running.
rss_of() { # pgrep pattern -> median VmRSS in kB
	local pids
	pids=$(pgrep -f "$1" || true)
	for p in $pids; do awk '/VmRSS/ {print $2}' "/proc/$p/status" 2>/dev/null; done |
		sort -n | awk '{a[NR]=$1} END {if (NR) print a[int((NR+1)/2)]; else print 0}'
}
for _ in $(seq 10); do
	B run -d --network none "$IMG" sleep 600 >/dev/null
	$PODMAN run -d --network none $PODMAN_RUN -l berth-bench=1 "$IMG" sleep 600 >/dev/null
	docker run -d --network none -l berth-bench=1 "$IMG" sleep 600 >/dev/null
done
sleep 1
rss_berth=$(rss_of '^berth-monitor running')
rss_conmon=$(rss_of '^/usr/bin/conmon')
rss_shim=$(rss_of 'containerd-shim-runc-v2')
clear_tool berth; clear_tool podman; clear_tool docker

ratio() { printf '%.2f' "$(echo "$1 / $2" | bc -l)"; }
tb=$(med_true berth) tp=$(med_true podman) td=$(med_true docker)
ver_docker=$(docker version --format '{{.Server.Version}}')
ver_podman=$(podman --version | awk '{print $3}')
ver_berth=$("$BERTH" --version | awk '{print $3}')
table=$(
	echo "<!-- containers:begin (written by bench/containers.sh) -->"
	echo "## Containers: run, many detached, supervisor memory"
	echo
	echo "$(date -u +%F), kernel $(uname -r), $(nproc) CPUs; berth $ver_berth, podman $ver_podman, docker $ver_docker."
	echo "The same busybox image imported into each; every container with --network none. podman runs with"
	echo "\`--runtime runc --ulimit nofile=1024:1024 --ulimit nproc=1024:1024\`: its default crun refuses this"
	echo "host's hybrid cgroups and its default rlimits need CAP_SYS_RESOURCE, which root lacks here."
	echo
	echo "| measure | berth | podman | docker | berth / podman | berth / docker |"
	echo "|---|---|---|---|---|---|"
	printf '| run --rm IMAGE /bin/true, median of %d (ms) | %.1f | %.1f | %.1f | %s | %s |\n' "$RUNS" "$tb" "$tp" "$td" "$(ratio "$tb" "$tp")" "$(ratio "$tb" "$td")"
	printf '| %d detached sleep containers one after another, median of %d series (ms) | %d | %d | %d | %s | %s |\n' "$N" "$SERIES" \
		"${series_ms[berth]}" "${series_ms[podman]}" "${series_ms[docker]}" \
		"$(ratio "${series_ms[berth]}" "${series_ms[podman]}")" "$(ratio "${series_ms[berth]}" "${series_ms[docker]}")"
	printf '| supervisor RSS per running container, median of 10 (KiB): berth-monitor, conmon, containerd-shim | %d | %d | %d | %s | %s |\n' \
		"$rss_berth" "$rss_conmon" "$rss_shim" "$(ratio "$rss_berth" "$rss_conmon")" "$(ratio "$rss_berth" "$rss_shim")"
	echo "<!-- containers:end -->"
)
echo "$table"
write_section containers "$table" "$OUT"
