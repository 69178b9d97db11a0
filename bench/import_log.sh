#!/bin/sh
# Times "tallyctl import-log" and goaccess on the same generated
# 1,000,000-line combined access log (bench/gen_log.py) and prints the
# lines per second of both.
#
#	bench/import_log.sh [LINES]
#
# TALLYCTL names the binary (default: build/tallyctl next to this
# directory); GOACCESS the goaccess binary (default: from PATH; skipped
# when missing). The log is written once to a temporary directory.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
lines=${1:-1000000}
tallyctl=${TALLYCTL:-$here/../build/tallyctl}
goaccess=${GOACCESS:-$(command -v goaccess || true)}

if [ ! -x "$tallyctl" ]; then
	echo "import_log.sh: $tallyctl is not built (meson compile -C build)" >&2
	exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/tally-bench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
log=$tmp/access.log

# Prints "NAME: S s, N lines/s" for a command; with /usr/bin/time also
# the CPU seconds (user + system), which a busy machine disturbs less.
measure() {
	name=$1
	shift
	if [ -x /usr/bin/time ]; then
		/usr/bin/time -f '%e %U %S' -o "$tmp/time" "$@"
		awk -v n="$lines" -v name="$name" '{ cpu = $2 + $3;
		    printf "%s: %.2f s, %d lines/s (CPU %.2f s, %d lines/s)\n",
		    name, $1, n / $1, cpu, n / cpu }' "$tmp/time"
	else
		t0=$(date +%s.%N)
		"$@"
		t1=$(date +%s.%N)
		awk -v n="$lines" -v name="$name" -v a="$t0" -v b="$t1" \
		    'BEGIN { printf "%s: %.2f s, %d lines/s\n", name, b - a,
		    n / (b - a) }'
	fi
}

printf 'generating %s lines... ' "$lines"
python3 "$here/gen_log.py" --lines "$lines" "$log"
echo "$(wc -c <"$log") bytes"
# Both read from the page cache, not from the disk.
cat "$log" >/dev/null

# tallyctl: a fresh store each time; UTC so that days are the log's.
export TZ=UTC
measure "tallyctl import-log" \
    "$tallyctl" --data "$tmp/data" import-log "$log" 2>"$tmp/ctl.err"
grep -v ': not a log line\|malformed line (' "$tmp/ctl.err" |
    sed 's/^/    /' || true

gzip -1 -k "$log"
rm -rf "$tmp/data"
measure "tallyctl import-log, gzip" \
    "$tallyctl" --data "$tmp/data" import-log "$log.gz" 2>/dev/null

if [ -z "$goaccess" ]; then
	echo "goaccess: not installed, skipped"
	exit 0
fi
version=$("$goaccess" --version | head -1 | sed 's/.* //; s/\.$//')
measure "goaccess $version" \
    "$goaccess" "$log" --log-format=COMBINED --no-global-config \
    --no-progress -o "$tmp/report.json"
