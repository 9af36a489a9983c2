#!/usr/bin/env bash
# bench/images.sh BERTH_BINARY — times pull and push of a ~200 MB two-layer
# image (a busybox layer and one incompressible 200 MB layer, gzip in the
# registry) against Debian's distribution registry on 127.0.0.1: berth vs
# docker vs skopeo vs podman in one run, and writes medians and ratios to
# docs/BENCHMARKS.md.
#
#   RUNS=5 bench/images.sh bin/berth
#
# Pulls come from registry A. Every push goes to registry B, whose storage
# is wiped before each run, so no tool can skip or cross-mount a blob.
# Needs root, a running dockerd, docker-registry, skopeo, podman,
# hyperfine and jq.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
BERTH=$(readlink -f "${1:?usage: bench/images.sh BERTH_BINARY}")
RUNS=${RUNS:-5}
SIZE_MB=${SIZE_MB:-200}
OUT=${OUT:-docs/BENCHMARKS.md}
[ "$(id -u)" = 0 ] || { echo "bench: must run as root" >&2; exit 1; }
for t in hyperfine jq docker docker-registry skopeo podman busybox; do
	command -v $t >/dev/null || { echo "bench: missing $t" >&2; exit 1; }
done
docker info >/dev/null 2>&1 || { echo "bench: dockerd is not running" >&2; exit 1; }

T=$(mktemp -d /tmp/berth-bench-img.XXXXXX)
PA=5101 PB=5102
A=127.0.0.1:$PA B=127.0.0.1:$PB
IMG=$A/bench/img:1
cleanup() {
	for p in "$T"/reg-*.pid; do [ -f "$p" ] && kill "$(cat "$p")" 2>/dev/null || true; done
	docker rmi -f "$IMG" >/dev/null 2>&1 || true
	podman rmi -f "$IMG" >/dev/null 2>&1 || true
	rm -rf "$T"
}
trap cleanup EXIT

registry() { # name port: (re)start a registry with empty storage
	local name=$1 port=$2
	[ -f "$T/reg-$name.pid" ] && { kill "$(cat "$T/reg-$name.pid")" 2>/dev/null || true; sleep 0.2; }
	rm -rf "$T/store-$name" && mkdir -p "$T/store-$name"
	cat >"$T/reg-$name.yml" <<-EOF
	version: 0.1
	log: {level: error, accesslog: {disabled: true}}
	storage: {filesystem: {rootdirectory: $T/store-$name}, delete: {enabled: true}}
	http: {addr: 127.0.0.1:$port}
	EOF
	docker-registry serve "$T/reg-$name.yml" >"$T/reg-$name.log" 2>&1 &
	echo $! >"$T/reg-$name.pid"
	for _ in $(seq 50); do curl -fs "http://127.0.0.1:$port/v2/" >/dev/null && return; sleep 0.1; done
	echo "bench: registry $name did not start" >&2; exit 1
}
export -f registry
export T

# The image: an old-format docker archive made by hand, pushed to A by
# skopeo, which gzips the layers as registries usually hold them.
mkdir -p "$T/img/l1/bin" "$T/img/l2/data"
cp "$(command -v busybox)" "$T/img/l1/bin/busybox"
head -c "${SIZE_MB}M" /dev/urandom >"$T/img/l2/data/blob"
tar -C "$T/img/l1" -cf "$T/img/l1.tar" . && tar -C "$T/img/l2" -cf "$T/img/l2.tar" .
d1=sha256:$(sha256sum "$T/img/l1.tar" | cut -d' ' -f1)
d2=sha256:$(sha256sum "$T/img/l2.tar" | cut -d' ' -f1)
cat >"$T/img/config.json" <<EOF
{"architecture":"amd64","os":"linux","config":{"Cmd":["/bin/busybox","sh"]},"rootfs":{"type":"layers","diff_ids":["$d1","$d2"]},"history":[{"created_by":"layer 1"},{"created_by":"layer 2"}]}
EOF
echo '[{"Config":"config.json","RepoTags":["bench/img:1"],"Layers":["l1.tar","l2.tar"]}]' >"$T/img/manifest.json"
tar -C "$T/img" -cf "$T/img.tar" manifest.json config.json l1.tar l2.tar
registry a $PA
registry b $PB
skopeo copy -q --dest-tls-verify=false "docker-archive:$T/img.tar" "docker://$IMG"

BR=$T/berth-root
BRS=$T/berth-push-root
"$BERTH" --root "$BRS" pull -q "$IMG" >/dev/null
docker pull -q "$IMG" >/dev/null
podman pull -q --tls-verify=false "$IMG" >/dev/null
skopeo copy -q --src-tls-verify=false "docker://$IMG" "oci:$T/skopeo-src:x"

hf() { # name command prepare
	hyperfine -N --runs "$RUNS" --prepare "$3" --export-json "$T/$1.json" "$2" >"$T/$1.log" 2>&1 ||
		{ cat "$T/$1.log" >&2; exit 1; }
}
hf berth-pull "$BERTH --root $BR pull -q $IMG" \
	"bash -c '$BERTH --root $BR rmi $IMG >/dev/null 2>&1; $BERTH --root $BR image prune -a >/dev/null'"
hf docker-pull "docker pull -q $IMG" "bash -c 'docker rmi -f $IMG >/dev/null 2>&1 || true'"
hf podman-pull "podman pull -q --tls-verify=false $IMG" "bash -c 'podman rmi -f $IMG >/dev/null 2>&1 || true'"
hf skopeo-pull "skopeo copy -q --src-tls-verify=false docker://$IMG oci:$T/skopeo-dst:x" "rm -rf $T/skopeo-dst"
# The pulls above left each tool holding the image; push it to B, fresh each run.
docker pull -q "$IMG" >/dev/null && podman pull -q --tls-verify=false "$IMG" >/dev/null
hf berth-push "$BERTH --root $BRS push -q $IMG $B/bench/berth:1" "bash -c 'registry b $PB'"
docker tag "$IMG" "$B/bench/docker:1"
hf docker-push "docker push -q $B/bench/docker:1" "bash -c 'registry b $PB'"
docker rmi "$B/bench/docker:1" >/dev/null
hf podman-push "podman push -q --tls-verify=false $IMG $B/bench/podman:1" "bash -c 'registry b $PB'"
hf skopeo-push "skopeo copy -q --dest-tls-verify=false oci:$T/skopeo-src:x docker://$B/bench/skopeo:1" "bash -c 'registry b $PB'"

median() { jq '.results[0].median * 1000' "$T/$1.json"; }
row() { # op tool version
	local m b
	m=$(median "$2-$1")
	b=$(median "berth-$1")
	printf '| %s | %s | %s | %.0f | %.2f |\n' "$1" "$2" "$3" "$m" "$(echo "$b / $m" | bc -l)"
}
ver_docker=$(docker version --format '{{.Server.Version}}')
ver_podman=$(podman --version | awk '{print $3}')
ver_skopeo=$(skopeo --version | awk '{print $3}')
ver_berth=$("$BERTH" --version | awk '{print $3}')
table=$(
	echo "<!-- images:begin (written by bench/images.sh) -->"
	echo "## Images: pull and push of a ${SIZE_MB} MB two-layer image from a local registry"
	echo
	echo "$(date -u +%F), kernel $(uname -r), $(nproc) CPUs. One busybox layer and one incompressible ${SIZE_MB} MB layer,"
	echo "gzip-compressed in Debian's distribution registry on 127.0.0.1. Every tool starts each pull with"
	echo "the image absent from its store; every push goes to a registry wiped before the run."
	echo "$RUNS runs each (hyperfine -N); the ratio is berth's median over the tool's."
	echo
	echo "| operation | tool | version | median ms | berth / tool |"
	echo "|---|---|---|---|---|"
	for op in pull push; do
		row $op berth "$ver_berth"
		row $op docker "$ver_docker"
		row $op podman "$ver_podman"
		row $op skopeo "$ver_skopeo"
	done
	echo "<!-- images:end -->"
)
echo "$table"
write_section images "$table" "$OUT"
