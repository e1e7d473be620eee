#!/bin/bash
# Test runner for `make check` (after the build): unit tests, their sanitizer build, then the
# integration scripts in network namespaces. Every test prints "PASS name", "FAIL name" or
# "SKIP name: reason" lines; this script shows them all and ends with one line
#   N passed, N failed, N skipped
# and exits 1 if anything failed.
#
#   tests/run.sh            everything
#   tests/run.sh tcp        only the integration scripts whose name contains "tcp"
#
# A unit binary that exits non-zero without printing a FAIL line counts as one failure named
# after it; so does an integration script. Each binary and script runs under a timeout so a
# hang fails instead of blocking CI.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1

UNIT_TIMEOUT=${UNIT_TIMEOUT:-120}
NET_TIMEOUT=${NET_TIMEOUT:-600}
FILTER=${1:-}
N_PASS=0 N_FAIL=0 N_SKIP=0
LOG=$(mktemp "${TMPDIR:-/tmp}/ferry-run.XXXXXX") || exit 1
trap 'rm -f "$LOG"' EXIT

# run_one NAME PREFIX CMD...: run CMD, show its output (result names prefixed with PREFIX),
# count its PASS/FAIL/SKIP lines
run_one() {
	local name=$1 prefix=$2 rc p f s
	shift 2
	timeout -k 10 "$TIMEOUT" "$@" 2>&1 </dev/null |
		sed -u -E "s/^(PASS|FAIL|SKIP) /\\1 $prefix/" | tee "$LOG"
	rc=${PIPESTATUS[0]}
	p=$(grep -c '^PASS ' "$LOG")
	f=$(grep -c '^FAIL ' "$LOG")
	s=$(grep -c '^SKIP ' "$LOG")
	if [ "$rc" != 0 ] && [ "$f" = 0 ]; then
		if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
			echo "FAIL $prefix$name: timed out after $TIMEOUT s"
		else
			echo "FAIL $prefix$name: exited with status $rc"
		fi
		f=1
	elif [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
		echo "FAIL $prefix$name: timed out after $TIMEOUT s"
		f=$((f + 1))
	fi
	N_PASS=$((N_PASS + p)) N_FAIL=$((N_FAIL + f)) N_SKIP=$((N_SKIP + s))
}

if [ -z "$FILTER" ]; then
	TIMEOUT=$UNIT_TIMEOUT
	for t in build/tests/test_*; do
		[ -x "$t" ] || continue
		run_one "$(basename "$t")" "" "$t"
	done
	for t in build/tests-san/test_*; do
		[ -x "$t" ] || continue
		run_one "$(basename "$t")" "san:" "$t"
	done
fi

TIMEOUT=$NET_TIMEOUT
for t in tests/net/*.sh; do
	[ "$(basename "$t")" = lib.sh ] && continue
	name=net/$(basename "$t" .sh)
	case $name in *"$FILTER"*) ;; *) continue ;; esac
	if [ "$(id -u)" != 0 ]; then
		echo "SKIP $name: needs root"
		N_SKIP=$((N_SKIP + 1))
		continue
	fi
	echo "== $name"
	run_one "$name" "" bash "$t"
done

echo "$N_PASS passed, $N_FAIL failed, $N_SKIP skipped"
[ "$N_FAIL" = 0 ]
