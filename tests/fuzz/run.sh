#!/bin/sh
# Runs every libFuzzer target build/fuzz/fuzz_X for FUZZ_SECONDS seconds (default 30),
# starting from a copy of tests/fuzz/corpus/X/ so that a run never writes into the
# repository. Prints PASS/FAIL per target and ends with "N passed, N failed".
# A crashing input is kept in build/fuzz/crashes/X/ to replay: build/fuzz/fuzz_X FILE.
# `make fuzz` builds the targets first; FUZZ_TARGETS="endpoint config" picks some,
# FUZZ_BINDIR=dir runs targets built elsewhere.
set -u

cd "$(dirname "$0")/../.." || exit 1
seconds=${FUZZ_SECONDS:-30}
bindir=${FUZZ_BINDIR:-build/fuzz}
# the fuzz build lets UBSan recover; a report must stop the run and fail the target
UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
export UBSAN_OPTIONS
passed=0
failed=0

work=$(mktemp -d "${TMPDIR:-/tmp}/ferry-fuzz.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT TERM

if [ -n "${FUZZ_TARGETS:-}" ]; then
	targets=$(for t in $FUZZ_TARGETS; do echo "$bindir/fuzz_$t"; done)
else
	targets=$(ls "$bindir"/fuzz_* 2>/dev/null | grep -v '\.d$')
fi
if [ -z "$targets" ]; then
	echo "no fuzz targets in $bindir (run: make fuzz)"
	exit 1
fi

for bin in $targets; do
	name=${bin##*/fuzz_}
	if [ ! -x "$bin" ]; then
		echo "FAIL fuzz_$name (not built: $bin)"
		failed=$((failed + 1))
		continue
	fi
	corpus=$work/$name/corpus
	crashes=$work/$name/crashes
	mkdir -p "$corpus" "$crashes"
	if [ -d "tests/fuzz/corpus/$name" ]; then
		cp -R "tests/fuzz/corpus/$name/." "$corpus/"
	fi
	# -timeout: one input taking this long is a hang; -rss_limit_mb: a leak or blow-up
	if "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$crashes/" "$corpus" >"$work/$name/log" 2>&1; then
		execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$name/log")
		echo "PASS fuzz_$name (${seconds}s, ${execs:-?} runs)"
		passed=$((passed + 1))
	else
		echo "FAIL fuzz_$name"
		tail -n 30 "$work/$name/log" | sed 's/^/  /'
		if [ -n "$(ls "$crashes")" ]; then
			mkdir -p "$bindir/crashes/$name"
			cp "$crashes"/* "$bindir/crashes/$name/"
			echo "  kept: $(ls "$bindir/crashes/$name" | sed "s|^|$bindir/crashes/$name/|" | tr '\n' ' ')"
		fi
		failed=$((failed + 1))
	fi
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
