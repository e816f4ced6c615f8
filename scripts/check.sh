#!/usr/bin/env bash
# Runs every test suite; used by `make check` and `make test`.
# Usage: scripts/check.sh BUILD_DIR SUITE...
#
# Each suite is one Criterion binary. The store conformance suite runs once
# per journal URI in SKALD_TEST_STORES (space-separated; memory:// always).
# Every suite runs even when an earlier one failed; the exit status is 1 if
# any failed. The last line is the plain total: "N passed, N failed".
set -uo pipefail

build=$1
shift
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
cd "$root"

: "${SKALD_TEST_STORES:=memory://conformance}"
passed=0
failed=0
failed_suites=()
log=$(mktemp)
trap 'rm -f "$log"' EXIT

run_suite() {
	local label=$1
	shift
	echo "== $label" >&2
	timeout 1200 "$@" 2>&1 | tee "$log" >&2
	local rc=${PIPESTATUS[0]}
	local line
	line=$(grep -a 'Synthesis: Tested:' "$log" | tail -1)
	if [[ -n "$line" ]]; then
		local p f c
		p=$(sed -E 's/.*Passing: ([0-9]+).*/\1/' <<<"$line")
		f=$(sed -E 's/.*Failing: ([0-9]+).*/\1/' <<<"$line")
		c=$(sed -E 's/.*Crashing: ([0-9]+).*/\1/' <<<"$line")
		passed=$((passed + p))
		failed=$((failed + f))
		# Criterion counts a crash as a failure already; keep c for the log.
		: "$c"
	elif [[ $rc -ne 0 ]]; then
		failed=$((failed + 1))
	fi
	if [[ $rc -ne 0 ]]; then
		failed_suites+=("$label (exit $rc)")
		if [[ -z "$line" ]]; then
			echo "suite $label exited $rc without a Criterion summary" >&2
		fi
	fi
}

for suite in "$@"; do
	bin="$build/tests/$suite"
	if [[ ! -x "$bin" ]]; then
		echo "missing test binary $bin" >&2
		failed=$((failed + 1))
		failed_suites+=("$suite (not built)")
		continue
	fi
	if [[ "$suite" == "stores" ]]; then
		for uri in $SKALD_TEST_STORES; do
			SKALD_TEST_STORE="$uri" run_suite "stores $uri" "$bin"
		done
	else
		run_suite "$suite" "$bin"
	fi
done

if [[ ${#failed_suites[@]} -gt 0 ]]; then
	echo "failed suites: ${failed_suites[*]}"
fi
echo "$passed passed, $failed failed"
[[ ${#failed_suites[@]} -eq 0 && $failed -eq 0 ]]
