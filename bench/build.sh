#!/usr/bin/env bash
# bench/build.sh BERTH_BINARY — `berth build` against `docker build` (the
# classic builder: DOCKER_BUILDKIT=0, there is no buildx here) and
# buildah in one run, on two Dockerfiles over a busybox image imported
# into each:
#   - simple: FROM busybox, RUN echo hi > /x, COPY somefile /, CMD ["sh"];
#   - multi-stage: two independent stages and a final one copying from both.
# Each is built cold (base image present, --no-cache) and fully cached
# (the same build again). Writes medians and ratios (berth / peer) to
# docs/BENCHMARKS.md.
#
#   RUNS=10 bench/build.sh bin/berth
#
# Needs root, a running dockerd, buildah, podman, hyperfine, jq and
# busybox. buildah's default crun refuses this hybrid cgroup layout: it
# runs with runc.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
BERTH=$(readlink -f "${1:?usage: bench/build.sh BERTH_BINARY}")
RUNS=${RUNS:-10}
OUT=${OUT:-docs/BENCHMARKS.md}
[ "$(id -u)" = 0 ] || { echo "bench: must run as root" >&2; exit 1; }
for t in hyperfine jq docker buildah podman busybox bc; do
	command -v $t >/dev/null || { echo "bench: missing $t" >&2; exit 1; }
done
docker info >/dev/null 2>&1 || { echo "bench: dockerd is not running" >&2; exit 1; }

T=$(mktemp -d /tmp/berth-bench-build.XXXXXX)
BR=$T/berth-root
BASE=berth-bench/busybox:1
B() { "$BERTH" --root "$BR" "$@"; }
cleanup() {
	docker rmi -f "$BASE" berth-bench/out:simple berth-bench/out:multi >/dev/null 2>&1 || true
	docker builder prune -f >/dev/null 2>&1 || true
	buildah rmi -f berth-bench/out:simple berth-bench/out:multi >/dev/null 2>&1 || true
	buildah rmi --prune >/dev/null 2>&1 || true
	podman rmi -f "$BASE" >/dev/null 2>&1 || true
	B system reset --force >/dev/null 2>&1 || true
	rm -rf "$T"
}
trap cleanup EXIT

mkdir -p "$T/rootfs/bin" "$T/simple" "$T/multi"
cp "$(command -v busybox)" "$T/rootfs/bin/busybox"
for a in sh echo cat true; do ln -s busybox "$T/rootfs/bin/$a"; done
tar -C "$T/rootfs" -cf "$T/rootfs.tar" .
B import "$T/rootfs.tar" "$BASE" >/dev/null
docker import "$T/rootfs.tar" "$BASE" >/dev/null
# buildah has no import; podman's store is buildah's.
podman import "$T/rootfs.tar" "$BASE" >/dev/null

echo "some file" >"$T/simple/somefile"
cat >"$T/simple/Dockerfile" <<EOF
FROM $BASE
RUN echo hi > /x
COPY somefile /
CMD ["sh"]
EOF
cat >"$T/multi/Dockerfile" <<EOF
FROM $BASE AS one
RUN echo one > /one
FROM $BASE AS two
RUN echo two > /two
FROM $BASE
COPY --from=one /one /one
COPY --from=two /two /two
CMD ["sh"]
EOF

# measure NAME DIR EXTRA: hyperfine of the three builders on DIR.
measure() {
	local name=$1 dir=$2 extra=$3
	hyperfine -N --warmup 1 --runs "$RUNS" --export-json "$T/$name.json" \
		-n berth "$BERTH --root $BR build -q $extra -t berth-bench/out:$name $dir" \
		-n docker "env DOCKER_BUILDKIT=0 docker build -q $extra -t berth-bench/out:$name $dir" \
		-n buildah "buildah build --runtime runc --layers -q $extra -t berth-bench/out:$name $dir" >"$T/$name.log" 2>&1 ||
		{ cat "$T/$name.log" >&2; exit 1; }
}
median() { jq -r --arg n "$2" '.results[] | select(.command == $n) | .median * 1000' "$T/$1.json"; }

measure simple-cold "$T/simple" --no-cache
measure multi-cold "$T/multi" --no-cache
measure simple-cached "$T/simple" ""
measure multi-cached "$T/multi" ""

row() {
	local what=$1 name=$2 target=$3
	local b d h
	b=$(median "$name" berth) d=$(median "$name" docker) h=$(median "$name" buildah)
	printf '| %s | %.1f ms | %.1f ms | %.1f ms | %.2f | %.2f | %s: %s |\n' "$what" "$b" "$d" "$h" \
		"$(echo "$b / $d" | bc -l)" "$(echo "$b / $h" | bc -l)" "≤ $target ms" "$(met "$b <= $target")"
}
TABLE=$(
	echo "<!-- build:begin (bench/build.sh; do not edit by hand) -->"
	echo "## berth build against docker build and buildah"
	echo
	echo "\`RUNS=$RUNS bench/build.sh\` on $(date -u +%Y-%m-%d), medians of $RUNS runs (hyperfine); docker is the classic builder (DOCKER_BUILDKIT=0), buildah runs with --layers (and runc). Cold: base image present, --no-cache. Cached: the same build again."
	echo
	echo "| build | berth | docker | buildah | berth/docker | berth/buildah | target |"
	echo "|---|---|---|---|---|---|---|"
	row "simple, cold" simple-cold 200
	row "multi-stage, cold" multi-cold 200
	row "simple, fully cached" simple-cached 20
	row "multi-stage, fully cached" multi-cached 20
	echo "<!-- build:end -->"
)
write_section build "$TABLE" "$OUT"
printf '%s\n' "$TABLE"
