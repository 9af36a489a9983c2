# bench/lib.sh — what the benchmark scripts share; sourced, not run.
# shellcheck shell=bash

# write_section NAME TABLE OUT replaces the section of OUT between the
# markers <!-- NAME:begin ...--> and <!-- NAME:end --> with TABLE (which
# holds both markers), or appends TABLE when OUT has no such section. The
# table goes through a file: awk -v would expand its backslashes.
write_section() {
	local name=$1 table=$2 out=$3 tmp
	tmp=$(mktemp)
	printf '%s\n' "$table" >"$tmp"
	if grep -q "<!-- $name:begin" "$out" 2>/dev/null; then
		awk -v f="$tmp" -v b="<!-- $name:begin" -v e="<!-- $name:end -->" '
			index($0, b) == 1 { while ((getline l < f) > 0) print l; skip = 1 }
			index($0, e) == 1 { skip = 0; next }
			!skip' "$out" >"$out.tmp"
		mv "$out.tmp" "$out"
	else
		printf '\n%s\n' "$table" >>"$out"
	fi
	rm -f "$tmp"
}

# met EXPR prints "met" when the bc expression EXPR is true, else "not met".
met() { if [ "$(echo "$1" | bc -l)" = 1 ]; then echo met; else echo "not met"; fi; }
