#!/bin/bash
# Runs the core black-box files against tallyd under valgrind memcheck
# and reports every memory error and leak. Not part of `meson test` (it
# takes minutes); see doc/valgrind.md.
#
#   tests/valgrind.sh [FILE...]     FILE: routes, errors, hostile (default:
#                                   all three), or any tests/blackbox name
#
# Environment: BUILD (default build: a build WITHOUT sanitizers; valgrind
# and AddressSanitizer do not mix), VALGRIND_CTL=1 to run tallyctl under
# valgrind too, KEEP=1 to keep the logs' directory.
#
# Exit: 0 clean, 1 a test failed or valgrind reported something, 77
# valgrind missing.
set -u
cd "$(dirname "$0")/.."
root=$(pwd)
build=${BUILD:-build}
case $build in /*) ;; *) build=$root/$build ;; esac
files=${*:-routes errors hostile}

if ! command -v valgrind >/dev/null 2>&1; then
	echo "valgrind.sh: valgrind is not installed (apt-get install valgrind)" >&2
	exit 77
fi
if [ ! -d "$build" ]; then
	meson setup "$build" >/dev/null || exit 1
fi
meson compile -C "$build" >/dev/null || exit 1
real_tallyd=$build/tallyd
real_tallyctl=$build/tallyctl
if nm -D "$real_tallyd" 2>/dev/null | grep -q __asan_init; then
	echo "valgrind.sh: $build is built with AddressSanitizer; use a plain" \
	    "build (BUILD=dir)" >&2
	exit 1
fi

work=$(mktemp -d /tmp/tally-valgrind.XXXXXX)
logs=$work/logs
mkdir -p "$logs"
[ "${KEEP:-}" = 1 ] || trap 'rm -rf "$work"' EXIT

# LMDB writes whole pages whose unused tail was never set; memcheck
# flags that on every commit. It is LMDB's, known and harmless.
cat >"$work/lmdb.supp" <<'EOF'
{
   lmdb-pwrite-uninitialised-page-tail
   Memcheck:Param
   pwrite64(buf)
   ...
   obj:*liblmdb.so*
}
{
   lmdb-pwritev-uninitialised-page-tail
   Memcheck:Param
   pwritev(vector[0])
   ...
   obj:*liblmdb.so*
}
{
   lmdb-write-uninitialised-page-tail
   Memcheck:Param
   write(buf)
   ...
   obj:*liblmdb.so*
}
EOF

vg="valgrind --error-exitcode=99 --leak-check=full
    --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect
    --num-callers=30 --suppressions=$work/lmdb.supp"

# The harness ends most cases with SIGKILL, to the wrapper and to all its
# descendants, and a process killed so never writes its leak report. So
# valgrind runs detached (setsid -f: no descendant of the wrapper); the
# wrapper passes TERM/INT/HUP on and returns valgrind's exit code; when
# the wrapper is killed, a watcher beside valgrind ends it with SIGTERM,
# which tallyd handles (commit, free, exit), and the report is written.
# (A test that kills with -9 and at once restarts on the same data
# directory would find the old process holding the store for a moment;
# routes, errors and hostile do not do that.)
cat >"$work/vgrun" <<EOF
#!/bin/bash
run=\$1 parent=\$2
shift 2
$(echo $vg) --log-file=$logs/tallyd.%p.log $real_tallyd "\$@" &
vg=\$!
echo \$vg >>$logs/pids
echo \$vg >"\$run/pid"
( while kill -0 \$parent 2>/dev/null; do sleep 0.2; done
  kill -TERM \$vg 2>/dev/null ) &
watcher=\$!
wait \$vg
echo \$? >"\$run/rc.tmp" && mv "\$run/rc.tmp" "\$run/rc"
kill \$watcher 2>/dev/null
EOF
cat >"$work/tallyd" <<EOF
#!/bin/bash
run=\$(mktemp -d $work/run.XXXXXX)
setsid -f $work/vgrun "\$run" \$\$ "\$@" </dev/null
while [ ! -s "\$run/pid" ]; do sleep 0.01; done
vg=\$(cat "\$run/pid")
for s in TERM INT HUP; do trap "kill -\$s \$vg 2>/dev/null" \$s; done
while [ ! -f "\$run/rc" ]; do sleep 0.05; done
exit \$(cat "\$run/rc")
EOF
chmod +x "$work/vgrun" "$work/tallyd"

ctl=$real_tallyctl
if [ "${VALGRIND_CTL:-}" = 1 ]; then
	cat >"$work/tallyctl" <<EOF
#!/bin/sh
exec $(echo $vg) --log-file=$logs/tallyctl.%p.log $real_tallyctl "\$@"
EOF
	chmod +x "$work/tallyctl"
	ctl=$work/tallyctl
fi

status=0
for f in $files; do
	echo "== $f (tallyd under valgrind)"
	t0=$(date +%s)
	TALLYD=$work/tallyd TALLYCTL=$ctl TALLY_VALGRIND=1 TALLY_TIME_SCALE=4 \
	    PYTHONDONTWRITEBYTECODE=1 \
	    python3 "tests/blackbox/test_$f.py"
	rc=$?
	echo "== $f: exit $rc, $(( $(date +%s) - t0 )) s"
	[ $rc = 0 ] || status=1
done

# Processes ended by the watcher are still writing their reports.
if [ -f "$logs/pids" ]; then
	for i in $(seq 1 600); do
		alive=0
		for p in $(cat "$logs/pids"); do
			kill -0 "$p" 2>/dev/null && alive=1
		done
		[ $alive = 0 ] && break
		sleep 0.1
	done
fi

echo "== valgrind reports"
n=0
bad=0
for log in "$logs"/*.log; do
	[ -e "$log" ] || continue
	n=$((n + 1))
	errs=$(sed -n 's/.*ERROR SUMMARY: \([0-9,]*\) errors.*/\1/p' "$log" |
	    tail -1 | tr -d ,)
	if [ -z "$errs" ]; then
		# Killed before it could report: say so, it proves nothing.
		echo "no summary (process killed?): $log"
		continue
	fi
	definite=$(sed -n 's/.*definitely lost: \([0-9,]*\) bytes.*/\1/p' \
	    "$log" | tr -d , | tail -1)
	indirect=$(sed -n 's/.*indirectly lost: \([0-9,]*\) bytes.*/\1/p' \
	    "$log" | tr -d , | tail -1)
	if [ "$errs" != 0 ] || [ "${definite:-0}" != 0 ] ||
	    [ "${indirect:-0}" != 0 ]; then
		bad=$((bad + 1))
		echo "---- $log: $errs errors, ${definite:-0} bytes definitely" \
		    "and ${indirect:-0} indirectly lost"
		sed -e 's/^==[0-9]*== //' "$log" | grep -v '^$' | head -120
	fi
done
echo "== $n processes under valgrind, $bad with errors or leaks"
[ $bad = 0 ] || status=1
[ "${KEEP:-}" = 1 ] && echo "logs kept in $logs"
exit $status
