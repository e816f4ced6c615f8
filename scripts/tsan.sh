#!/usr/bin/env bash
# `make tsan`: the runtime (unit), entity, store and remote suites built
# with ThreadSanitizer, on the memory store. Usage: scripts/tsan.sh BUILD_DIR
#
# Criterion's workers leave with _Exit(0), so a race reported inside a test
# never fails the suite by itself: every process writes its reports to a
# file of its own (TSAN_OPTIONS log_path), and this script counts them. Any
# report fails the run and is printed. tests/tsan.supp drops the reports
# that come from libuv being uninstrumented (see that file).
# The last line is the plain total: "N passed, N failed".
set -uo pipefail
build=${1:-build-thread}
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
cd "$root"

reports=$(mktemp -d)
log=$(mktemp)
trap 'rm -rf "$reports" "$log"' EXIT
export TSAN_OPTIONS="log_path=$reports/tsan suppressions=$root/tests/tsan.supp halt_on_error=0 second_deadlock_stack=1"
unset SKALD_TEST_STORE SKALD_JOURNAL
passed=0
failed=0
for suite in unit entity stores remote; do
	bin="$build/tests/$suite"
	if [[ ! -x "$bin" ]]; then
		echo "tsan: missing $bin" >&2
		failed=$((failed + 1))
		continue
	fi
	echo "== $suite under ThreadSanitizer" >&2
	start=$(date +%s)
	if [[ "$suite" == stores ]]; then
		SKALD_TEST_STORE=memory://tsan timeout 1800 "$bin" >"$log" 2>&1
	else
		timeout 1800 "$bin" >"$log" 2>&1
	fi
	rc=$?
	line=$(grep -a 'Synthesis: Tested:' "$log" | tail -1)
	echo "${line:-no summary} (exit $rc, $(($(date +%s) - start)) s)" >&2
	if [[ -n "$line" ]]; then
		passed=$((passed + $(sed -E 's/.*Passing: ([0-9]+).*/\1/' <<<"$line")))
		failed=$((failed + $(sed -E 's/.*Failing: ([0-9]+).*/\1/' <<<"$line")))
	fi
	if [[ $rc -ne 0 || -z "$line" ]]; then
		failed=$((failed + 1))
		grep -a -E '^\[FAIL\]|Assertion|Warning' "$log" | head -20 >&2
	fi
done

nreports=$(find "$reports" -type f | wc -l)
if [[ $nreports -gt 0 ]]; then
	echo "tsan: $nreports process(es) reported data races or other errors:" >&2
	for f in $(find "$reports" -type f | head -5); do
		echo "--- $f" >&2
		head -60 "$f" >&2
	done
	failed=$((failed + nreports))
else
	echo "tsan: no report from any process" >&2
fi
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
