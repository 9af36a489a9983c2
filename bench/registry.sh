#!/usr/bin/env bash
# bench/registry.sh BERTH_BINARY — `berth registry serve` against the
# distribution registry (Debian's docker-registry) in one run, both on a
# filesystem root on the same disk, both on 127.0.0.1:
#   1. manifest GETs by tag per second (wrk), median of SERIES runs;
#   2. push and pull of a ~200 MB image (LAYERS random layers of LAYER_MB
#      each, gzip-compressed, made once per run) with skopeo, median of
#      RUNS runs; every push goes to a registry wiped before it, every pull
#      into an empty directory;
#   3. garbage collection while pushing: skopeo pushes PUSHES small
#      distinct images one after another while `berth registry gc --grace
#      1s` runs again and again; the failed pushes are counted. The
#      distribution registry's garbage-collect works offline only, so it
#      pushes the same series without one, as the baseline.
# Writes medians and ratios (berth / distribution) to its own section of
# docs/BENCHMARKS.md and leaves the other sections alone.
#
#   SERIES=3 RUNS=3 WRK_DURATION=10 WRK_CONNECTIONS=32 WRK_THREADS=2 \
#       LAYERS=4 LAYER_MB=50 PUSHES=20 bench/registry.sh bin/berth
#
# Needs skopeo, wrk, curl, jq, bc, ss, gzip, sha256sum and docker-registry.
# All traffic goes to 127.0.0.1.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
BERTH=$(readlink -f "${1:?usage: bench/registry.sh BERTH_BINARY}")
SERIES=${SERIES:-3}               # wrk runs per registry
RUNS=${RUNS:-3}                   # pushes and pulls of the big image per registry
WRK_DURATION=${WRK_DURATION:-10}  # seconds per wrk run
WRK_CONNECTIONS=${WRK_CONNECTIONS:-32}
WRK_THREADS=${WRK_THREADS:-2}
LAYERS=${LAYERS:-4}               # layers of the big image
LAYER_MB=${LAYER_MB:-50}          # MiB of random data per layer
PUSHES=${PUSHES:-20}              # small images pushed during garbage collection
GARBAGE=${GARBAGE:-10}            # deleted images for the collector to find
DISTRIBUTION=${DISTRIBUTION:-/usr/bin/docker-registry}
TARGET_RPS_RATIO=${TARGET_RPS_RATIO:-3}    # berth's manifest GETs/s, at least this times distribution's
TARGET_TIME_RATIO=${TARGET_TIME_RATIO:-0.7} # berth's push and pull time, at most this times distribution's
OUT=${OUT:-docs/BENCHMARKS.md}
for t in skopeo wrk curl jq bc ss gzip sha256sum tar "$DISTRIBUTION"; do
	command -v "$t" >/dev/null || { echo "bench: missing $t" >&2; exit 1; }
done
for v in SERIES RUNS WRK_DURATION WRK_CONNECTIONS WRK_THREADS LAYERS LAYER_MB PUSHES GARBAGE; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "bench: $v must be a positive integer, not '${!v}'" >&2; exit 1; }
done
echo "bench: SERIES=$SERIES RUNS=$RUNS WRK_DURATION=$WRK_DURATION LAYERS=$LAYERS LAYER_MB=$LAYER_MB PUSHES=$PUSHES"

T=$(mktemp -d /tmp/berth-bench-registry.XXXXXX)
LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
REGS=(berth distribution)
declare -A pid port root
GC_PID=

# stop_reg NAME: stops a registry with SIGTERM, then SIGKILL after 10 s.
stop_reg() {
	local p=${pid[$1]:-}
	[ -n "$p" ] || return 0
	kill "$p" 2>/dev/null || true
	for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
	kill -9 "$p" 2>/dev/null || true
	wait "$p" 2>/dev/null || true
	pid[$1]=
}

cleanup() {
	[ -n "$GC_PID" ] && { kill "$GC_PID" 2>/dev/null || true; wait "$GC_PID" 2>/dev/null || true; }
	for r in "${REGS[@]}" sink; do stop_reg "$r"; done
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() { # what failed, file with its output
	echo "bench: $1" >&2
	[ -s "${2:-}" ] && tail -n 30 "$2" | sed 's/^/  | /' >&2
	exit 1
}

# pick_port NAME: a port on 127.0.0.1 that nobody listens on and no
# other registry here has (set in this shell, not a subshell, so that
# the next call sees it).
pick_port() {
	local p q used
	for p in $(seq 15500 15999); do
		used=no
		for q in "${port[@]}"; do [ "$q" = "$p" ] && used=yes; done
		[ $used = no ] || continue
		[ -z "$(ss -ltnH "sport = :$p")" ] || continue
		port[$1]=$p
		return
	done
	echo "bench: no free port in 15500-15999" >&2
	exit 1
}

# The distribution registry as internal/testutil/registrytest runs it:
# filesystem storage, deletes enabled, no background upload purging, and
# for both registries no access log and warnings only.
write_distribution_config() {
	cat >"$T/distribution.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: ${root[distribution]}
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:${port[distribution]}
  secret: $(head -c 16 /dev/urandom | sha256sum | cut -c1-32)
EOF
}

# start_reg NAME [wipe]: starts a registry (on an emptied root with
# wipe) and waits at most 15 s for GET /v2/ to answer.
start_reg() {
	local r=$1
	stop_reg "$r"
	[ "${2:-}" = wipe ] && rm -rf "${root[$r]}"
	mkdir -p "${root[$r]}"
	case $r in
	berth) "$BERTH" registry serve --listen "127.0.0.1:${port[$r]}" --root "${root[$r]}" \
		--no-access-log --log-level warn >>"$T/$r.log" 2>&1 & ;;
	distribution) "$DISTRIBUTION" serve "$T/distribution.yml" >>"$T/$r.log" 2>&1 & ;;
	esac
	pid[$r]=$!
	for _ in $(seq 150); do
		kill -0 "${pid[$r]}" 2>/dev/null || break
		# The answer must come from this process: another one on the
		# port would be measured in its place.
		if curl -fsS -m 1 -o /dev/null "http://127.0.0.1:${port[$r]}/v2/" 2>/dev/null; then
			[[ $(ss -ltnpH "sport = :${port[$r]}") == *"pid=${pid[$r]},"* ]] ||
				fail "$r: another process answers on 127.0.0.1:${port[$r]}" "$T/$r.log"
			return 0
		fi
		sleep 0.1
	done
	fail "$r did not answer GET /v2/ within 15 s" "$T/$r.log"
}

for r in "${REGS[@]}"; do
	pick_port "$r"
	root[$r]=$T/root-$r
done
write_distribution_config

# make_image DIR NAME MIB...: an OCI layout in DIR holding one image
# tagged "latest", one gzip-compressed layer of random data per size.
# Random data does not compress: the registries move what the disk holds.
make_image() {
	local dir=$1 name=$2 layers="" diffs="" n i=0 d s
	shift 2
	mkdir -p "$dir/blobs/sha256" "$T/work"
	for n in "$@"; do
		i=$((i + 1))
		mkdir -p "$T/work/l"
		head -c "$((n * 1024 * 1024))" /dev/urandom >"$T/work/l/$name-$i"
		tar -C "$T/work/l" -cf "$T/work/layer.tar" "$name-$i"
		rm -f "$T/work/l/$name-$i"
		diffs+="${diffs:+,}\"sha256:$(sha256sum "$T/work/layer.tar" | cut -d' ' -f1)\""
		gzip -1 -n -c "$T/work/layer.tar" >"$T/work/layer.tgz"
		d=$(sha256sum "$T/work/layer.tgz" | cut -d' ' -f1)
		s=$(stat -c %s "$T/work/layer.tgz")
		mv "$T/work/layer.tgz" "$dir/blobs/sha256/$d"
		layers+="${layers:+,}{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"sha256:$d\",\"size\":$s}"
	done
	rm -f "$T/work/layer.tar"
	printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[%s]}}' "$diffs" >"$T/work/config"
	d=$(sha256sum "$T/work/config" | cut -d' ' -f1)
	s=$(stat -c %s "$T/work/config")
	mv "$T/work/config" "$dir/blobs/sha256/$d"
	printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%d},"layers":[%s]}' \
		"$d" "$s" "$layers" >"$T/work/manifest"
	d=$(sha256sum "$T/work/manifest" | cut -d' ' -f1)
	s=$(stat -c %s "$T/work/manifest")
	mv "$T/work/manifest" "$dir/blobs/sha256/$d"
	printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%d,"annotations":{"org.opencontainers.image.ref.name":"latest"}}]}' \
		"$d" "$s" >"$dir/index.json"
	echo '{"imageLayoutVersion":"1.0.0"}' >"$dir/oci-layout"
	echo "sha256:$d"
}

# push LAYOUT REF: skopeo copy to a registry, no retries (a failure
# counts), bounded to 10 minutes; returns skopeo's status.
push() {
	timeout 600 skopeo copy --retry-times 0 --dest-tls-verify=false "oci:$1:latest" "docker://$2" >>"$T/skopeo.log" 2>&1
}
pull() {
	timeout 600 skopeo copy --retry-times 0 --src-tls-verify=false "docker://$1" "dir:$2" >>"$T/skopeo.log" 2>&1
}
now_ms() { echo $(($(date +%s%N) / 1000000)); }
median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "bench: making the images"
make_image "$T/small" small 1 >/dev/null
sizes=()
for _ in $(seq "$LAYERS"); do sizes+=("$LAYER_MB"); done
BIG_DIGEST=$(make_image "$T/big" big "${sizes[@]}")
BIG_MB=$(du -sm "$T/big" | cut -f1)

# 1. Manifest GETs by tag. The Accept header names the manifest's type,
# as clients do.
ACCEPT='Accept: application/vnd.oci.image.manifest.v1+json'
declare -A rps_all rps errs
for r in "${REGS[@]}"; do
	start_reg "$r" wipe
	push "$T/small" "127.0.0.1:${port[$r]}/bench/small:1" || fail "$r: push of the small image" "$T/skopeo.log"
	url=http://127.0.0.1:${port[$r]}/v2/bench/small/manifests/1
	curl -fsS -m 5 -H "$ACCEPT" -o /dev/null "$url" || fail "$r: GET $url"
	timeout 30 wrk -t "$WRK_THREADS" -c "$WRK_CONNECTIONS" -d 1s -H "$ACCEPT" "$url" >/dev/null 2>&1 || true
done
for s in $(seq "$SERIES"); do
	for r in "${REGS[@]}"; do
		url=http://127.0.0.1:${port[$r]}/v2/bench/small/manifests/1
		timeout $((WRK_DURATION + 60)) wrk -t "$WRK_THREADS" -c "$WRK_CONNECTIONS" -d "${WRK_DURATION}s" -H "$ACCEPT" "$url" \
			>"$T/wrk.log" 2>&1 || fail "$r: wrk $url" "$T/wrk.log"
		rate=$(awk '/^Requests\/sec:/ {print $2}' "$T/wrk.log")
		if [ -z "$rate" ] || grep -q 'Non-2xx' "$T/wrk.log"; then fail "$r: wrk got errors or no rate" "$T/wrk.log"; fi
		e=$(awk '/^ *Socket errors:/ { gsub(/,/, ""); print $4 + $6 + $8 + $10 }' "$T/wrk.log")
		echo "bench: $r manifest GETs series $s: $rate requests/s, ${e:-0} socket errors"
		rps_all[$r]+="$rate "
		errs[$r]=$((${errs[$r]:-0} + ${e:-0}))
	done
done
for r in "${REGS[@]}"; do rps[$r]=$(median <<<"${rps_all[$r]}"); done

# 2. Push and pull of the big image, the registries in turn in each round.
declare -A push_all pull_all push_ms pull_ms
for i in $(seq "$RUNS"); do
	for r in "${REGS[@]}"; do
		start_reg "$r" wipe
		ref=127.0.0.1:${port[$r]}/bench/big:1
		t0=$(now_ms)
		push "$T/big" "$ref" || fail "$r: push of the big image" "$T/skopeo.log"
		t1=$(now_ms)
		# The registry was empty: a push that stored less than the image
		# skipped uploads, and its time would mean nothing.
		stored=$(du -sm "${root[$r]}" | cut -f1)
		[ "$stored" -ge "$((BIG_MB - 1))" ] || fail "$r: push stored only $stored MB of the $BIG_MB MB image" "$T/skopeo.log"
		rm -rf "$T/pulled"
		pull "$ref" "$T/pulled" || fail "$r: pull of the big image" "$T/skopeo.log"
		t2=$(now_ms)
		got=sha256:$(sha256sum "$T/pulled/manifest.json" | cut -d' ' -f1)
		[ "$got" = "$BIG_DIGEST" ] || fail "$r: pulled manifest $got, pushed $BIG_DIGEST"
		rm -rf "$T/pulled"
		echo "bench: $r round $i: push $((t1 - t0)) ms, pull $((t2 - t1)) ms"
		push_all[$r]+="$((t1 - t0)) "
		pull_all[$r]+="$((t2 - t1)) "
	done
done
# The client's own share: skopeo copying the layout to a dir: with no
# registry between (reading, hashing and writing the same bytes). No
# registry can make a push or pull faster than this.
floor_all=""
for i in $(seq "$RUNS"); do
	rm -rf "$T/pulled"
	t0=$(now_ms)
	timeout 600 skopeo copy "oci:$T/big:latest" "dir:$T/pulled" >>"$T/skopeo.log" 2>&1 || fail "skopeo copy oci: to dir:" "$T/skopeo.log"
	floor_all+="$(($(now_ms) - t0)) "
done
rm -rf "$T/pulled"
FLOOR_MS=$(median <<<"$floor_all")
echo "bench: skopeo oci: to dir: without a registry: $FLOOR_MS ms"
# The push floor: skopeo pushing to a registry that checks each blob's
# digest as it arrives and stores nothing (bench/sinkregistry). No
# registry that stores the image takes less.
go build -o "$T/sinkregistry" ./bench/sinkregistry || fail "build bench/sinkregistry"
pick_port sink
"$T/sinkregistry" "127.0.0.1:${port[sink]}" >>"$T/sink.log" 2>&1 &
pid[sink]=$!
for _ in $(seq 100); do curl -fsS -m 1 -o /dev/null "http://127.0.0.1:${port[sink]}/v2/" 2>/dev/null && break; sleep 0.05; done
sink_all=""
for i in $(seq "$RUNS"); do
	t0=$(now_ms)
	push "$T/big" "127.0.0.1:${port[sink]}/bench/big:$i" || fail "push to the sink registry" "$T/skopeo.log"
	sink_all+="$(($(now_ms) - t0)) "
done
stop_reg sink
SINK_MS=$(median <<<"$sink_all")
echo "bench: push to a registry that stores nothing: $SINK_MS ms"
for r in "${REGS[@]}"; do
	push_ms[$r]=$(median <<<"${push_all[$r]}")
	pull_ms[$r]=$(median <<<"${pull_all[$r]}")
done

# 3. Pushes while garbage is collected. Garbage first: GARBAGE images
# pushed and deleted by digest, whose blobs the collector deletes once
# they are older than the grace period; then PUSHES new images, each of
# its own content.
echo "bench: making $((GARBAGE + PUSHES)) small images"
for i in $(seq "$GARBAGE"); do make_image "$T/garbage-$i" "garbage-$i" 1 >"$T/garbage-$i.digest"; done
for i in $(seq "$PUSHES"); do make_image "$T/img-$i" "img-$i" 1 1 >/dev/null; done
declare -A failed pulls_failed loop_ms
for r in "${REGS[@]}"; do
	start_reg "$r" wipe
	for i in $(seq "$GARBAGE"); do
		push "$T/garbage-$i" "127.0.0.1:${port[$r]}/bench/garbage:$i" || fail "$r: push of garbage $i" "$T/skopeo.log"
		code=$(curl -sS -m 10 -o /dev/null -w '%{http_code}' -X DELETE \
			"http://127.0.0.1:${port[$r]}/v2/bench/garbage/manifests/$(cat "$T/garbage-$i.digest")")
		[ "$code" = 202 ] || fail "$r: DELETE of garbage manifest $i: status $code"
	done
done
sleep 1.5 # the garbage is now older than the grace period
GC_RUNS=0
GC_DELETED=0
for r in "${REGS[@]}"; do
	if [ "$r" = berth ]; then
		# The collector, again and again until the pushes are done (at
		# most 10 minutes), each run bounded to 2 minutes.
		(
			end=$((SECONDS + 600))
			while [ ! -e "$T/pushes-done" ] && [ $SECONDS -lt $end ]; do
				timeout 120 "$BERTH" registry gc --root "${root[berth]}" --grace 1s >>"$T/gc.log" 2>&1 ||
					echo "gc failed: $?" >>"$T/gc.log"
			done
		) &
		GC_PID=$!
	fi
	failed[$r]=0
	t0=$(now_ms)
	for i in $(seq "$PUSHES"); do
		if ! push "$T/img-$i" "127.0.0.1:${port[$r]}/bench/gc-$i:1"; then
			failed[$r]=$((${failed[$r]} + 1))
			echo "bench: $r: push $i failed during gc" >&2
		fi
	done
	loop_ms[$r]=$(($(now_ms) - t0))
	if [ "$r" = berth ]; then
		touch "$T/pushes-done"
		wait "$GC_PID" || true
		GC_PID=
		GC_RUNS=$(grep -c 'blobs:' "$T/gc.log" || true)
		GC_DELETED=$(awk '/ blobs: deleted / { for (i = 1; i < NF; i++) if ($i == "deleted") s += $(i + 1) } END { print s + 0 }' "$T/gc.log")
		if grep -q 'gc failed' "$T/gc.log"; then fail "berth registry gc failed during the pushes" "$T/gc.log"; fi
	fi
	# Every image pushed (and not counted failed) pulls back whole.
	pulls_failed[$r]=0
	for i in $(seq "$PUSHES"); do
		rm -rf "$T/pulled"
		if ! pull "127.0.0.1:${port[$r]}/bench/gc-$i:1" "$T/pulled"; then
			pulls_failed[$r]=$((${pulls_failed[$r]} + 1))
		fi
	done
	rm -rf "$T/pulled"
	echo "bench: $r: $PUSHES pushes in ${loop_ms[$r]} ms, ${failed[$r]} failed; ${pulls_failed[$r]} failed to pull back"
done
[ "$GC_RUNS" -gt 0 ] || fail "berth registry gc never completed during the pushes" "$T/gc.log"
[ "$GC_DELETED" -gt 0 ] || fail "berth registry gc deleted nothing during the pushes (the garbage should have gone)" "$T/gc.log"

ratio() {
	if [ "$(echo "$2 == 0" | bc -l)" = 1 ]; then echo n/a; else printf '%.2f' "$(echo "$1 / $2" | bc -l)"; fi
}
ver_berth=$("$BERTH" --version | awk '{print $3}')
ver_dist=$("$DISTRIBUTION" --version | awk '{print $3}')
ver_skopeo=$(skopeo --version | awk '{print $3}')
table=$(
	echo "<!-- registry:begin (written by bench/registry.sh) -->"
	echo "## Registry: manifest requests, push and pull, pushes during garbage collection"
	echo
	echo "$(date -u +%F), kernel $(uname -r), $(nproc) CPUs, load average $LOAD at the start and $(cut -d' ' -f1-3 /proc/loadavg) at the end;"
	echo "berth $ver_berth (\`berth registry serve\`), the distribution registry $ver_dist (Debian's docker-registry), skopeo $ver_skopeo."
	echo "Both registries on 127.0.0.1 with filesystem storage in directories on the same disk, access logs off,"
	echo "warnings only. The big image is $LAYERS layers of $LAYER_MB MiB of random data, gzip-compressed ($BIG_MB MB in all), an OCI"
	echo "layout made once per run; every push goes to a registry wiped (and restarted) before it, every pull into an"
	echo "empty \`dir:\` directory. Reproduce with \`make bench-registry\`."
	echo
	echo '```'
	echo "# runs per registry: $SERIES, the registries in turn; median of the runs."
	echo "wrk -t$WRK_THREADS -c$WRK_CONNECTIONS -d${WRK_DURATION}s -H '$ACCEPT' http://127.0.0.1:PORT/v2/bench/small/manifests/1"
	echo "# rounds: $RUNS, each pushing and pulling once per registry, in turn; medians over the rounds."
	echo "skopeo copy --retry-times 0 --dest-tls-verify=false oci:big:latest docker://127.0.0.1:PORT/bench/big:1"
	echo "skopeo copy --retry-times 0 --src-tls-verify=false docker://127.0.0.1:PORT/bench/big:1 dir:pulled"
	echo "# pushes during garbage collection (berth: the collector runs in a loop meanwhile)"
	echo "for i in 1..$PUSHES: skopeo copy --retry-times 0 ... oci:img-\$i:latest docker://127.0.0.1:PORT/bench/gc-\$i:1"
	echo "while pushing: berth registry gc --root DIR --grace 1s"
	echo '```'
	echo
	echo "| measure | berth | distribution | berth / distribution |"
	echo "|---|---|---|---|"
	printf '| manifest GETs by tag per second, median of %d (higher is better) | %.0f | %.0f | %s |\n' "$SERIES" \
		"${rps[berth]}" "${rps[distribution]}" "$(ratio "${rps[berth]}" "${rps[distribution]}")"
	printf '| wrk socket errors, sum over the %d runs | %d | %d | |\n' "$SERIES" "${errs[berth]}" "${errs[distribution]}"
	printf '| push of the %d MB image, median of %d (ms) | %d | %d | %s |\n' "$BIG_MB" "$RUNS" \
		"${push_ms[berth]}" "${push_ms[distribution]}" "$(ratio "${push_ms[berth]}" "${push_ms[distribution]}")"
	printf '| pull of the %d MB image, median of %d (ms) | %d | %d | %s |\n' "$BIG_MB" "$RUNS" \
		"${pull_ms[berth]}" "${pull_ms[distribution]}" "$(ratio "${pull_ms[berth]}" "${pull_ms[distribution]}")"
	printf '| %d pushes of 2 MiB images, one after another (ms) | %d | %d | %s |\n' "$PUSHES" \
		"${loop_ms[berth]}" "${loop_ms[distribution]}" "$(ratio "${loop_ms[berth]}" "${loop_ms[distribution]}")"
	printf '| garbage collection meanwhile | %d runs, %d blobs deleted | none (offline only) | |\n' "$GC_RUNS" "$GC_DELETED"
	printf '| failed pushes of the %d | %d | %d | |\n' "$PUSHES" "${failed[berth]}" "${failed[distribution]}"
	printf '| pushed images that failed to pull back afterwards | %d | %d | |\n' "${pulls_failed[berth]}" "${pulls_failed[distribution]}"
	echo
	echo "For scale: skopeo copying the big image from the OCI layout to a \`dir:\` with no registry between takes"
	echo "$FLOOR_MS ms (median of $RUNS). That is the client's own part of every push and pull (reading, hashing and"
	echo "writing the bytes): what a registry adds is the rest, and no registry brings a total below it."
	echo "A push to a registry that checks each blob's digest as it arrives and stores nothing (\`bench/sinkregistry\`)"
	echo "takes $SINK_MS ms (median of $RUNS): $(ratio "$SINK_MS" "${push_ms[distribution]}") of distribution's push, the floor of the push ratio."
	echo "Before the pushes, $GARBAGE images were pushed to each registry and deleted by digest: the collector's garbage."
	echo "The distribution registry's \`garbage-collect\` works only on a registry that is stopped or read-only, so"
	echo "it cannot run during pushes at all; its row is the same series of pushes without collection."
	echo
	printf -- "- berth serves at least %s times distribution's manifest GETs per second: %s (%s).\n" "$TARGET_RPS_RATIO" \
		"$(met "${rps[berth]} >= $TARGET_RPS_RATIO * ${rps[distribution]}")" "$(ratio "${rps[berth]}" "${rps[distribution]}")"
	printf -- "- berth's push takes at most %s of distribution's time: %s (%s).\n" "$TARGET_TIME_RATIO" \
		"$(met "${push_ms[berth]} <= $TARGET_TIME_RATIO * ${push_ms[distribution]}")" "$(ratio "${push_ms[berth]}" "${push_ms[distribution]}")"
	printf -- "- berth's pull takes at most %s of distribution's time: %s (%s).\n" "$TARGET_TIME_RATIO" \
		"$(met "${pull_ms[berth]} <= $TARGET_TIME_RATIO * ${pull_ms[distribution]}")" "$(ratio "${pull_ms[berth]}" "${pull_ms[distribution]}")"
	printf -- "- No push fails while berth collects garbage: %s (%d failed).\n" \
		"$(met "${failed[berth]} == 0 && ${pulls_failed[berth]} == 0")" "${failed[berth]}"
	echo "<!-- registry:end -->"
)
echo "$table"
write_section registry "$table" "$OUT"
