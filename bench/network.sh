#!/usr/bin/env bash
# bench/network.sh BERTH_BINARY — berth's bridge networking against docker
# and podman in one run, on the same busybox image imported into each:
#   1. what the default network adds to `run --rm IMAGE /bin/true`: the
#      median with --network none, the median on the default bridge
#      network, and their difference (hyperfine -N);
#   2. requests per second through a port published on 127.0.0.1 to a
#      busybox httpd in the container (wrk), median of SERIES runs.
# Writes medians and ratios (berth / peer) to its own section of
# docs/BENCHMARKS.md and leaves the other sections alone.
#
#   RUNS=20 SERIES=3 WRK_DURATION=10 WRK_CONNECTIONS=32 WRK_THREADS=2 \
#       bench/network.sh bin/berth
#
# Needs root, docker (and dockerd), podman, hyperfine, wrk, curl, jq, bc,
# ss, ip, nft and busybox. All traffic goes to 127.0.0.1.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
BERTH=$(readlink -f "${1:?usage: bench/network.sh BERTH_BINARY}")
RUNS=${RUNS:-20}                      # runs of each run --rm command, one per round
SERIES=${SERIES:-3}                   # wrk runs per tool
WRK_DURATION=${WRK_DURATION:-10}      # seconds per wrk run
WRK_CONNECTIONS=${WRK_CONNECTIONS:-32}
WRK_THREADS=${WRK_THREADS:-2}
TARGET_NET_MS=${TARGET_NET_MS:-5}     # the most berth's default network may add
OUT=${OUT:-docs/BENCHMARKS.md}
[ "$(id -u)" = 0 ] || { echo "bench: must run as root" >&2; exit 1; }
for t in hyperfine wrk curl jq bc ss ip nft docker podman busybox; do
	command -v "$t" >/dev/null || { echo "bench: missing $t" >&2; exit 1; }
done
for v in RUNS SERIES WRK_DURATION WRK_CONNECTIONS WRK_THREADS TARGET_NET_MS; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "bench: $v must be a positive integer, not '${!v}'" >&2; exit 1; }
done
echo "bench: RUNS=$RUNS SERIES=$SERIES WRK_DURATION=$WRK_DURATION WRK_CONNECTIONS=$WRK_CONNECTIONS WRK_THREADS=$WRK_THREADS"

# podman's default crun refuses this hybrid cgroup layout, and podman's
# default rlimits need CAP_SYS_RESOURCE, which root lacks here: runc and
# limits within the host's (as bench/containers.sh does).
PODMAN=(podman --runtime runc)
PODMAN_RUN=(--ulimit nofile=1024:1024 --ulimit nproc=1024:1024)
LABEL=berth-bench-net=1
IMG=berth-bench/bbnet:1

T=$(mktemp -d /tmp/berth-bench-net.XXXXXX)
BR=$T/berth-root

# The load when the run starts goes into the report: other work on the
# host moves these figures.
LOAD=$(cut -d' ' -f1-3 /proc/loadavg)

# Host state that the tools change and the benchmark puts back: podman's
# netavark and berth turn on IPv4 forwarding, a dockerd of the benchmark's
# own makes docker0, and berth's throw-away store has a bridge and an
# nftables table named after the store, so each run's would stay behind.
FORWARD_BEFORE=$(cat /proc/sys/net/ipv4/ip_forward)
LINKS_BEFORE=$(ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//')
INET_TABLES_BEFORE=$(nft list tables inet 2>/dev/null | awk '{print $3}') || true
DOCKERD_PID=
DOCKER_OWN=no
BERTH_BRIDGE=

stop_dockerd() {
	[ -n "$DOCKERD_PID" ] || return 0
	kill "$DOCKERD_PID" 2>/dev/null || true
	# dockerd stops its containerd before it exits; give both 30 s.
	for _ in $(seq 300); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 0.1; done
	kill -9 "$DOCKERD_PID" 2>/dev/null || true
	DOCKERD_PID=
}

# rm_labelled TOOL-COMMAND...: removes the containers this benchmark made.
rm_labelled() {
	local ids
	mapfile -t ids < <("$@" ps -aq --filter "label=$LABEL" 2>/dev/null)
	[ ${#ids[@]} = 0 ] && return 0
	case $1 in
	# -t 0: httpd as pid 1 ignores SIGTERM, and podman would wait 10 s.
	podman) "$@" rm -f -t 0 "${ids[@]}" >/dev/null 2>&1 || true ;;
	*) "$@" rm -f "${ids[@]}" >/dev/null 2>&1 || true ;;
	esac
}

# remove_berth_host_state: `system reset` empties the throw-away store and
# deletes its bridges and firewall table (its default network cannot be
# removed otherwise, as in Docker). What a reset left or could not do
# (a failed run, a berth without the command) goes by hand: the store's
# bridge, and the inet tables made during the run that name that bridge,
# which are the store's own.
remove_berth_host_state() {
	local t
	[ -x "$BERTH" ] && [ -d "$BR" ] && { timeout 60 "$BERTH" --root "$BR" system reset --force >/dev/null 2>&1 || true; }
	[ -n "$BERTH_BRIDGE" ] || return 0
	for t in $(nft list tables inet 2>/dev/null | awk '{print $3}'); do
		grep -qxF "$t" <<<"$INET_TABLES_BEFORE" && continue
		[[ $(nft list table inet "$t" 2>/dev/null) == *"\"$BERTH_BRIDGE\""* ]] || continue
		nft delete table inet "$t" 2>/dev/null || true
	done
	grep -qxF "$BERTH_BRIDGE" <<<"$LINKS_BEFORE" || ip link del "$BERTH_BRIDGE" 2>/dev/null || true
}

cleanup() {
	local m
	[ -x "$BERTH" ] && rm_labelled "$BERTH" --root "$BR"
	rm_labelled docker
	rm_labelled "${PODMAN[@]}"
	docker rmi -f "$IMG" >/dev/null 2>&1 || true
	podman rmi -f "$IMG" >/dev/null 2>&1 || true
	stop_dockerd
	# docker0, when the benchmark's own dockerd made it; dockerd leaves it.
	if [ "$DOCKER_OWN" = yes ] && ! grep -qxF docker0 <<<"$LINKS_BEFORE"; then
		ip link del docker0 2>/dev/null || true
	fi
	remove_berth_host_state
	echo "$FORWARD_BEFORE" >/proc/sys/net/ipv4/ip_forward 2>/dev/null || true
	# A dockerd killed hard can leave its netns and overlay mounts under
	# $T: unmount them (deepest first) so rm stays inside $T's own files.
	for m in $(findmnt -rn -o TARGET | grep -F "$T/" | sort -r); do umount -l "$m" 2>/dev/null || true; done
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() { # tool, command description, file with its stderr
	echo "bench: $1 failed: $2" >&2
	[ -s "$3" ] && sed 's/^/  | /' "$3" >&2
	exit 1
}

# must TOOL CMD...: runs CMD (bounded to 120 s), and on failure stops the
# benchmark naming the tool and the command, with its stderr.
must() {
	local tool=$1 rc=0
	shift
	timeout 120 "$@" >"$T/must.out" 2>"$T/must.err" || rc=$?
	[ "$rc" = 0 ] || fail "$tool" "\`$*\` (exit $rc)" "$T/must.err"
	cat "$T/must.out"
}

# docker's default bridge. The daemon scripts/dockerd.sh starts has none
# (--bridge=none), and its containers would then run with only a loopback
# interface: the benchmark starts a dockerd of its own, with the default
# bridge, on its own socket and roots. It keeps --iptables=false and
# --ip-forward=false so that the host's firewall and forwarding stay as
# they were; traffic to 127.0.0.1 goes through docker-proxy either way
# (docker's DNAT rules leave 127.0.0.0/8 to the proxy), so the port path
# measured is docker's usual one.
if ! docker network inspect bridge >/dev/null 2>&1; then
	command -v dockerd >/dev/null || { echo "bench: docker has no bridge network and dockerd is missing" >&2; exit 1; }
	D=$T/dockerd
	mkdir -p "$D"
	echo '{}' >"$D/daemon.json"
	dockerd --config-file "$D/daemon.json" -H "unix://$D/docker.sock" \
		--data-root "$D/root" --exec-root "$D/run" --pidfile "$D/dockerd.pid" \
		--iptables=false --ip6tables=false --ip-forward=false >"$D/dockerd.log" 2>&1 &
	DOCKERD_PID=$!
	export DOCKER_HOST=unix://$D/docker.sock
	for _ in $(seq 300); do
		docker info >/dev/null 2>&1 && break
		kill -0 "$DOCKERD_PID" 2>/dev/null || break
		sleep 0.1
	done
	docker network inspect bridge >/dev/null 2>&1 || fail docker "dockerd with a bridge did not start within 30 s" "$D/dockerd.log"
	DOCKER_OWN=yes
fi

# The image: busybox with the applets used here and a page for httpd.
mkdir -p "$T/rootfs/bin" "$T/rootfs/www"
cp "$(command -v busybox)" "$T/rootfs/bin/busybox"
for a in sh true cat httpd; do ln -s busybox "$T/rootfs/bin/$a"; done
echo '<html><body>berth-bench</body></html>' >"$T/rootfs/www/index.html"
tar -C "$T/rootfs" -cf "$T/rootfs.tar" .
must berth "$BERTH" --root "$BR" import "$T/rootfs.tar" "$IMG" >/dev/null
must docker docker import "$T/rootfs.tar" "$IMG" >/dev/null
must podman podman import "$T/rootfs.tar" "$IMG" >/dev/null

TOOLS=(berth podman docker)
# run_cmd TOOL: the tool's `run` command line, up to the image options.
run_cmd() {
	case $1 in
	berth) echo "$BERTH --root $BR run" ;;
	podman) echo "${PODMAN[*]} run ${PODMAN_RUN[*]}" ;;
	docker) echo "docker run" ;;
	esac
}

# 1. The default network's cost. A first run on the default network does
# the one-time set-up (the default bridge, firewall tables) outside the
# measurement, and shows that the container really has an interface
# besides lo: a tool that silently fell back to no network would
# otherwise measure a cost of nothing.
for tool in "${TOOLS[@]}"; do
	read -ra run <<<"$(run_cmd "$tool")"
	must "$tool" "${run[@]}" --rm -l "$LABEL" --network none "$IMG" /bin/true >/dev/null
	devs=$(must "$tool" "${run[@]}" --rm -l "$LABEL" "$IMG" cat /proc/net/dev)
	if [ "$tool" = berth ]; then
		BERTH_BRIDGE=$("$BERTH" --root "$BR" network inspect bridge \
			-f '{{index .Options "com.docker.network.bridge.name"}}' 2>/dev/null) || true
	fi
	if ! awk -F: 'NR > 2 { gsub(/ /, "", $1); if ($1 != "lo") found = 1 } END { exit !found }' <<<"$devs"; then
		echo "bench: $tool: a container on the default network has no interface besides lo:" >&2
		awk '{ print "  | " $0 }' <<<"$devs" >&2
		exit 1
	fi
done
hf_args=()
declare -A hf_cmd
for tool in "${TOOLS[@]}"; do
	r=$(run_cmd "$tool")
	hf_cmd["$tool none"]="$r --rm -l $LABEL --network none $IMG /bin/true"
	hf_cmd["$tool default"]="$r --rm -l $LABEL $IMG /bin/true"
	hf_args+=(-n "$tool none" "${hf_cmd["$tool none"]}" -n "$tool default" "${hf_cmd["$tool default"]}")
done
# RUNS rounds, each running every command once in turn, so that a tool's
# runs with and without the network lie close in time and a change in the
# host's load (other work, bursts) falls on both alike; the medians are
# taken over the rounds.
for i in $(seq "$RUNS"); do
	warm=0
	[ "$i" = 1 ] && warm=2
	if ! hyperfine -N --warmup "$warm" --runs 1 --export-json "$T/run-$i.json" "${hf_args[@]}" >"$T/run.log" 2>&1; then
		# hyperfine drops the commands' output: run the one that failed
		# again to show its stderr, under the tool's name.
		name=$(sed -n 's/^Benchmark [0-9]*: //p' "$T/run.log" | tail -n 1)
		name=${name:-hyperfine} # an empty key is no key for bash's arrays
		tool=${name%% *}
		if [ -n "${hf_cmd[$name]:-}" ]; then
			read -ra cmd <<<"${hf_cmd[$name]}"
			must "$tool" "${cmd[@]}" >/dev/null
		fi
		fail "$tool" "\`${hf_cmd[$name]:-hyperfine}\` failed under hyperfine, not when run again" "$T/run.log"
	fi
done
med_run() {
	jq -s --arg n "$1" '[.[].results[] | select(.command == $n) | .times[]] | sort |
		(if length % 2 == 1 then .[length / 2 | floor] else (.[length / 2 - 1] + .[length / 2]) / 2 end) * 1000' "$T"/run-*.json
}
declare -A none_ms net_ms cost_ms
for tool in "${TOOLS[@]}"; do
	none_ms[$tool]=$(med_run "$tool none")
	net_ms[$tool]=$(med_run "$tool default")
	cost_ms[$tool]=$(echo "${net_ms[$tool]} - ${none_ms[$tool]}" | bc -l)
done

# 2. Requests per second through a published port. Each tool gets a host
# port nobody listens on, distinct from the others'.
declare -A port rps
taken=" "
free_port() {
	local p
	for p in $(seq 18080 18999); do
		[[ $taken == *" $p "* ]] && continue
		[ -z "$(ss -ltnH "sport = :$p")" ] || continue
		echo "$p"
		return
	done
	echo "bench: no free port in 18080-18999" >&2
	exit 1
}
for tool in "${TOOLS[@]}"; do
	port[$tool]=$(free_port)
	taken+="${port[$tool]} "
	read -ra run <<<"$(run_cmd "$tool")"
	must "$tool" "${run[@]}" -d -l "$LABEL" -p "127.0.0.1:${port[$tool]}:80" "$IMG" httpd -f -p 80 -h /www >/dev/null
	url=http://127.0.0.1:${port[$tool]}/
	ok=no
	for _ in $(seq 100); do # at most ~10 s
		if curl -fsS -m 1 -o /dev/null "$url" 2>/dev/null; then ok=yes; break; fi
		sleep 0.1
	done
	if [ $ok = no ]; then
		curl -fsS -m 2 -o /dev/null "$url" 2>"$T/curl.err" || true
		fail "$tool" "httpd published on 127.0.0.1:${port[$tool]} did not answer within 10 s" "$T/curl.err"
	fi
	# A second of load before the measured runs, so that no tool's first
	# connections (ARP, conntrack, the proxy's start) count.
	timeout 30 wrk -t "$WRK_THREADS" -c "$WRK_CONNECTIONS" -d 1s "$url" >/dev/null 2>&1 || true
done
declare -A rps_all errs
for s in $(seq "$SERIES"); do
	# One run per tool in turn, so that drift on the host spreads evenly.
	for tool in "${TOOLS[@]}"; do
		url=http://127.0.0.1:${port[$tool]}/
		timeout $((WRK_DURATION + 60)) wrk -t "$WRK_THREADS" -c "$WRK_CONNECTIONS" -d "${WRK_DURATION}s" "$url" \
			>"$T/wrk-$tool-$s.log" 2>&1 || fail "$tool" "\`wrk $url\`" "$T/wrk-$tool-$s.log"
		r=$(awk '/^Requests\/sec:/ {print $2}' "$T/wrk-$tool-$s.log")
		# Every response must be a 200: errors are fast and would count.
		if [ -z "$r" ] || grep -q 'Non-2xx' "$T/wrk-$tool-$s.log"; then
			fail "$tool" "\`wrk $url\` got errors or no rate" "$T/wrk-$tool-$s.log"
		fi
		# Socket errors (connect, read, write, timeout) are not requests;
		# the table shows their sum so that a rate bought with failures shows.
		e=$(awk '/^ *Socket errors:/ { gsub(/,/, ""); print $4 + $6 + $8 + $10 }' "$T/wrk-$tool-$s.log")
		echo "bench: $tool series $s: $r requests/s, ${e:-0} socket errors"
		rps_all[$tool]+="$r "
		errs[$tool]=$((${errs[$tool]:-0} + ${e:-0}))
	done
done
median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
for tool in "${TOOLS[@]}"; do
	rps[$tool]=$(median <<<"${rps_all[$tool]}")
done

# ratio A B: A / B with two decimals, or n/a when B is 0.
ratio() {
	if [ "$(echo "$2 == 0" | bc -l)" = 1 ]; then echo n/a; else printf '%.2f' "$(echo "$1 / $2" | bc -l)"; fi
}
# cost_ratio A B: like ratio, but n/a unless the peer's cost B is positive:
# under load a difference can come out at or below zero, and a ratio to it
# would mean nothing.
cost_ratio() {
	if [ "$(echo "$2 > 0" | bc -l)" = 1 ]; then ratio "$1" "$2"; else echo n/a; fi
}
ver_docker=$(docker version --format '{{.Server.Version}}')
ver_podman=$(podman --version | awk '{print $3}')
ver_berth=$("$BERTH" --version | awk '{print $3}')
if [ $DOCKER_OWN = yes ]; then
	docker_note="docker is a dockerd started for the benchmark with its default bridge (docker0) and
--iptables=false --ip-forward=false, so that the host's firewall and forwarding stay as they were; docker
sends traffic to 127.0.0.1 through docker-proxy in either setting."
else
	docker_note="docker is the running dockerd, with its default bridge."
fi
pb="${PODMAN[*]} run ${PODMAN_RUN[*]}"
table=$(
	echo "<!-- network:begin (written by bench/network.sh) -->"
	echo "## Networks: the default bridge's cost, requests through a published port"
	echo
	echo "$(date -u +%F), kernel $(uname -r), $(nproc) CPUs, load average $LOAD at the start and $(cut -d' ' -f1-3 /proc/loadavg) at the end;"
	echo "berth $ver_berth, podman $ver_podman, docker $ver_docker."
	echo "The same busybox image imported into each. podman runs with \`--runtime runc --ulimit nofile=1024:1024"
	echo "--ulimit nproc=1024:1024\`: its default crun refuses this host's hybrid cgroups and its default rlimits"
	echo "need CAP_SYS_RESOURCE, which root lacks here."
	echo "$docker_note"
	echo "netavark deletes podman's bridge when its last container leaves, so each of podman's \`run --rm\` here"
	echo "makes it anew; berth and docker keep theirs."
	echo "busybox httpd forks a child for each connection and closes it after the response, so every request"
	echo "is a new connection through the published port."
	echo "Reproduce as root with \`make bench-network\`."
	echo
	echo "Commands (TOOL run is \`berth --root DIR run\`, \`$pb\` or \`docker run\`; every container also has \`-l $LABEL\`):"
	echo
	echo '```'
	echo "# rounds: $RUNS, each running every tool's two commands once, in turn (2 warm-up runs in the"
	echo "# first round); medians over the rounds."
	echo "hyperfine -N --runs 1 'TOOL run --rm --network none IMG /bin/true' 'TOOL run --rm IMG /bin/true'"
	echo "TOOL run -d -p 127.0.0.1:HOSTPORT:80 IMG httpd -f -p 80 -h /www"
	echo "# runs per tool: $SERIES, the tools in turn; median of the runs."
	echo "wrk -t$WRK_THREADS -c$WRK_CONNECTIONS -d${WRK_DURATION}s http://127.0.0.1:HOSTPORT/"
	echo '```'
	echo
	echo "| measure | berth | podman | docker | berth / podman | berth / docker |"
	echo "|---|---|---|---|---|---|"
	printf '| run --rm --network none IMG /bin/true, median of %d runs (ms) | %.1f | %.1f | %.1f | %s | %s |\n' "$RUNS" \
		"${none_ms[berth]}" "${none_ms[podman]}" "${none_ms[docker]}" \
		"$(ratio "${none_ms[berth]}" "${none_ms[podman]}")" "$(ratio "${none_ms[berth]}" "${none_ms[docker]}")"
	printf '| run --rm IMG /bin/true on the default network, median of %d runs (ms) | %.1f | %.1f | %.1f | %s | %s |\n' "$RUNS" \
		"${net_ms[berth]}" "${net_ms[podman]}" "${net_ms[docker]}" \
		"$(ratio "${net_ms[berth]}" "${net_ms[podman]}")" "$(ratio "${net_ms[berth]}" "${net_ms[docker]}")"
	printf '| what the default network adds: the difference (ms) | %.1f | %.1f | %.1f | %s | %s |\n' \
		"${cost_ms[berth]}" "${cost_ms[podman]}" "${cost_ms[docker]}" \
		"$(cost_ratio "${cost_ms[berth]}" "${cost_ms[podman]}")" "$(cost_ratio "${cost_ms[berth]}" "${cost_ms[docker]}")"
	printf '| requests/s to httpd through -p 127.0.0.1:HOSTPORT:80, median of %d (higher is better) | %.0f | %.0f | %.0f | %s | %s |\n' "$SERIES" \
		"${rps[berth]}" "${rps[podman]}" "${rps[docker]}" \
		"$(ratio "${rps[berth]}" "${rps[podman]}")" "$(ratio "${rps[berth]}" "${rps[docker]}")"
	printf '| wrk socket errors (connect, read, write, timeout), sum over the %d runs | %d | %d | %d | | |\n' "$SERIES" \
		"${errs[berth]}" "${errs[podman]}" "${errs[docker]}"
	echo
	printf -- '- The default network adds at most %d ms with berth: %s (%.1f ms).\n' "$TARGET_NET_MS" \
		"$(met "${cost_ms[berth]} <= $TARGET_NET_MS")" "${cost_ms[berth]}"
	printf -- "- berth serves at least docker's requests/s through a published port: %s (%s).\n" \
		"$(met "${rps[berth]} >= ${rps[docker]}")" "$(ratio "${rps[berth]}" "${rps[docker]}")"
	echo "<!-- network:end -->"
)
echo "$table"
write_section network "$table" "$OUT"
