#!/usr/bin/env bash
# bench/runtime.sh BERTH_BINARY — times `run` of /bin/true from a busybox
# bundle with berth, runc and crun in one run, measures each runtime's peak
# RSS, and writes the table to docs/BENCHMARKS.md (ratios berth / peer).
#
#   RUNS=50 WARMUP=5 bench/runtime.sh bin/berth
#
# crun 1.8 refuses hybrid cgroup hosts (v1 plus a cgroup2 mount with
# controllers): it then runs in a private mount namespace without
# /sys/fs/cgroup/unified, through a tiny C wrapper (well under 1 ms).
set -euo pipefail
BERTH=$(readlink -f "${1:?usage: bench/runtime.sh BERTH_BINARY}")
RUNS=${RUNS:-50}
WARMUP=${WARMUP:-5}
RSS_RUNS=${RSS_RUNS:-9}
OUT=${OUT:-docs/BENCHMARKS.md}
[ "$(id -u)" = 0 ] || { echo "bench: must run as root" >&2; exit 1; }
for t in hyperfine jq busybox; do command -v $t >/dev/null || { echo "bench: missing $t" >&2; exit 1; }; done

T=$(mktemp -d /tmp/berth-bench.XXXXXX)
cleanup() {
	for r in "$T"/state/*/; do
		[ -d "$r" ] || continue
		for id in $(ls "$r" 2>/dev/null); do "$BERTH" runtime --root "$r" delete -f "$id" >/dev/null 2>&1 || true; done
	done
	rm -rf "$T"
}
trap cleanup EXIT

# A busybox bundle running /bin/true, from berth's own default spec.
B=$T/bundle
mkdir -p "$B/rootfs/bin" "$B/rootfs/proc" "$B/rootfs/sys" "$B/rootfs/dev" "$B/rootfs/tmp" "$B/rootfs/etc"
cp "$(command -v busybox)" "$B/rootfs/bin/busybox"
ln -s busybox "$B/rootfs/bin/true"
(cd "$B" && "$BERTH" runtime spec)
jq '.process.args=["/bin/true"] | .process.terminal=false' "$B/config.json" >"$B/c.json" && mv "$B/c.json" "$B/config.json"
# crun 1.8 rejects newer ociVersions; the config is the same otherwise.
mkdir -p "$T/bundle-crun" && cp -a "$B/rootfs" "$T/bundle-crun/rootfs"
jq '.ociVersion="1.0.2"' "$B/config.json" >"$T/bundle-crun/config.json"

mkdir -p "$T/wrap"
cat >"$T/wrap/mntns.c" <<'CSRC'
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <sys/mount.h>
#include <unistd.h>
int main(int argc, char **argv) {
  (void)argc;
  if (unshare(CLONE_NEWNS) < 0) { perror("unshare"); return 125; }
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) { perror("mount"); return 125; }
  umount2("/sys/fs/cgroup/unified", MNT_DETACH);
  execv(TARGET, argv);
  perror("execv");
  return 127;
}
CSRC
CRUN=$(command -v crun || true)
RUNC=$(command -v runc || true)
if [ -n "$CRUN" ]; then
	cc -O2 -DTARGET="\"$CRUN\"" -o "$T/wrap/crun" "$T/wrap/mntns.c"
	if [ "$(stat -fc %T /sys/fs/cgroup)" = tmpfs ] && [ -n "$(cat /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null)" ]; then
		CRUN=$T/wrap/crun
	fi
fi

declare -A CMD BUNDLE
CMD[berth]="$BERTH runtime"; BUNDLE[berth]=$B
[ -n "$RUNC" ] && { CMD[runc]=$RUNC; BUNDLE[runc]=$B; }
[ -n "$CRUN" ] && { CMD[crun]=$CRUN; BUNDLE[crun]=$T/bundle-crun; }
names=(berth)
[ -n "$RUNC" ] && names+=(runc)
[ -n "$CRUN" ] && names+=(crun)

args=()
for n in "${names[@]}"; do
	mkdir -p "$T/state/$n"
	# Foreground run deletes the container when it exits, so one id serves.
	args+=(-n "$n" "${CMD[$n]} --root $T/state/$n run --bundle ${BUNDLE[$n]} bench-$n")
done
hyperfine -N --runs "$RUNS" --warmup "$WARMUP" --export-json "$T/times.json" "${args[@]}" >&2

# Peak RSS (kB) of each runtime's process tree for one run, median of RSS_RUNS.
declare -A RSS
for n in "${names[@]}"; do
	for i in $(seq "$RSS_RUNS"); do
		/usr/bin/time -f %M -o "$T/rss" ${CMD[$n]} --root "$T/state/$n" run --bundle "${BUNDLE[$n]}" "rss-$n" >/dev/null
		cat "$T/rss"
	done | sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}' >"$T/rss.$n"
	RSS[$n]=$(cat "$T/rss.$n")
done

median() { jq -r --arg n "$1" '.results[] | select(.command==$n) | .median*1000' "$T/times.json"; }
field() { jq -r --arg n "$1" --arg f "$2" '.results[] | select(.command==$n) | .[$f]*1000' "$T/times.json"; }
bm=$(median berth)
section=$T/section.md
{
	echo "<!-- runtime:begin (written by bench/runtime.sh) -->"
	echo "## OCI runtime: \`run\` of /bin/true from a busybox bundle"
	echo
	echo "$(date -u +%F), kernel $(uname -r), $(nproc) CPUs, cgroups: $(stat -fc %T /sys/fs/cgroup)$( [ -d /sys/fs/cgroup/unified ] && echo ' + cgroup2 at unified (hybrid)'), $RUNS runs after $WARMUP warm-up runs (hyperfine -N)."
	[ "$CRUN" = "$T/wrap/crun" ] && echo "crun ran in a private mount namespace without /sys/fs/cgroup/unified (it refuses hybrid hosts)."
	echo
	echo "| runtime | version | median ms | min ms | max ms | berth / runtime (time) | peak RSS kB | berth / runtime (RSS) |"
	echo "|---|---|---|---|---|---|---|---|"
	for n in "${names[@]}"; do
		case $n in
			berth) v=$("$BERTH" --version | head -1 | awk '{print $NF}') ;;
			*) v=$(${CMD[$n]} --version 2>/dev/null | head -1 | awk '{print $NF}') ;;
		esac
		m=$(median "$n")
		printf '| %s | %s | %.2f | %.2f | %.2f | %.2f | %s | %.2f |\n' "$n" "$v" "$m" "$(field "$n" min)" "$(field "$n" max)" \
			"$(echo "$bm / $m" | bc -l)" "${RSS[$n]}" "$(echo "${RSS[berth]} / ${RSS[$n]}" | bc -l)"
	done
	echo "<!-- runtime:end -->"
} >"$section"

# Replace this benchmark's section of the page, keeping the rest.
if [ -f "$OUT" ] && grep -q '<!-- runtime:begin' "$OUT"; then
	awk -v f="$section" '
		/<!-- runtime:begin/ { while ((getline l < f) > 0) print l; skip=1; next }
		/<!-- runtime:end -->/ { skip=0; next }
		!skip' "$OUT" >"$T/page.md"
else
	{
		echo "# Benchmarks"
		echo
		echo "Figures are medians measured side by side in one run on the same host; ratios are berth / peer"
		echo "(below 1 means berth is faster or smaller). Reproduce with \`make bench\` (as root)."
		echo
		cat "$section"
	} >"$T/page.md"
fi
cp "$T/page.md" "$OUT"
cat "$section"
