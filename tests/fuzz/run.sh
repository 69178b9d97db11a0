#!/bin/sh
# Builds the libFuzzer targets with clang and runs each for a bounded
# time on a copy of its seed corpus. A crash leaves its input in
# $OUT/crash-* and fails the run; copy it into corpus/TARGET/ and into a
# regression test.
#
#   tests/fuzz/run.sh [SECONDS] [TARGET...]     (default: 20 s, all)
#
# Long campaigns: FUZZ_SECONDS=3600 tests/fuzz/run.sh, or run a built
# target by hand: $OUT/fuzz_path -jobs=2 corpus-dir/ (README.md).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
seconds=${1:-${FUZZ_SECONDS:-20}}
[ $# -gt 0 ] && shift
targets=${*:-"path params config csv logline"}
OUT=${FUZZ_OUT:-$(mktemp -d /tmp/tally-fuzz-XXXXXX)}

if ! command -v clang >/dev/null; then
	echo "fuzz: clang is missing; skipped" >&2
	exit 77
fi
cat > "$OUT/probe.c" <<'C'
#include <stdint.h>
#include <stddef.h>
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }
C
if ! clang -fsanitize=fuzzer "$OUT/probe.c" -o "$OUT/probe" 2>/dev/null; then
	echo "fuzz: clang cannot link libFuzzer here (libclang-rt-dev?); skipped" >&2
	exit 77
fi

lib="lib/log lib/buf lib/escape lib/path lib/day lib/net lib/number lib/render lib/location lib/config"
sources_of() {
	case $1 in
	path) echo "lib/log lib/buf lib/escape lib/number lib/net lib/path" ;;
	params) echo "lib/log lib/buf lib/escape tallyd/params" ;;
	config) echo "$lib" ;;
	csv) echo "$lib lib/referrer lib/exportrow" ;;
	logline) echo "lib/log lib/buf lib/escape lib/day lib/logline" ;;
	esac
}

status=0
for t in $targets; do
	[ -f "$here/fuzz_$t.c" ] || { echo "fuzz: no target $t" >&2; status=1; continue; }
	srcs=""
	for s in $(sources_of "$t"); do srcs="$srcs $root/$s.c"; done
	clang -g -O1 -std=c11 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined \
	    -fno-sanitize-recover=undefined -I"$root/include" -I"$root" -I"$root/tallyd" \
	    -I"$OUT" "$here/fuzz_$t.c" $srcs -o "$OUT/fuzz_$t" \
	    $(pkg-config --cflags --libs lmdb libsodium) -lm
	mkdir -p "$OUT/corpus-$t"
	[ -d "$here/corpus/$t" ] && cp -r "$here/corpus/$t/." "$OUT/corpus-$t/"
	echo "fuzz: $t for ${seconds}s"
	if ! (cd "$OUT" && "./fuzz_$t" -max_total_time="$seconds" \
	    -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
	    "corpus-$t" > "$OUT/$t.log" 2>&1); then
		echo "fuzz: $t FAILED; see $OUT/$t.log and $OUT/crash-*" >&2
		tail -40 "$OUT/$t.log" >&2
		status=1
	else
		grep -E "stat::number_of_executed_units" "$OUT/$t.log" || true
	fi
done
[ $status -eq 0 ] && [ -z "${FUZZ_OUT:-}" ] && rm -rf "$OUT"
exit $status
