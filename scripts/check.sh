#!/usr/bin/env bash
# Runs every test suite; used by `make check` and `make test`.
# Usage: scripts/check.sh BUILD_DIR SUITE...
#
# The pseudo-suite "packaging" installs the build into a temporary prefix and
# builds programs against it as a user would (scripts/packaging.sh).
#
# Each suite is one Criterion binary. Before the suites, the test servers
# start on loopback (a throwaway PostgreSQL 15 and FerretDB, the MongoDB-wire
# server) and get migrated with the `skald` tool; they stop when this script
# exits. A server that cannot start makes the suites that need it fail: no
# suite is ever skipped.
#
# The store conformance suite runs once per journal URI (memory, PostgreSQL,
# MongoDB), and the entity suite once on memory and once on PostgreSQL. The
# journal front's suite (registry, upcasters), which does not depend on the
# store, runs once like every other suite.
# Every suite runs even when an earlier one failed; the exit status is 1 if
# any failed. The last line is the plain total: "N passed, N failed".
set -uo pipefail

build=$1
shift
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
cd "$root"

passed=0
failed=0
failed_suites=()
log=$(mktemp)

# Servers of this run only, named by its process id, so that two runs on one
# machine (two checkouts, or CI beside a developer) never stop each other's.
pg_name="check-$$"
export SKALD_FERRETDB_DIR="$root/$build/ferretdb-$$"
pg_uri=""
mongo_uri=""
stop_servers() {
	bash scripts/pg.sh destroy "$pg_name" >/dev/null 2>&1
	bash scripts/ferretdb.sh stop >/dev/null 2>&1
	rm -rf "$SKALD_FERRETDB_DIR"
	rm -f "$log"
}
trap stop_servers EXIT

fail_setup() {
	echo "check: $1" >&2
	failed=$((failed + 1))
	failed_suites+=("$1")
}

# The URI with its password hidden, for logs.
show() { sed -E 's#//([^:/@]*):[^@]*@#//\1:***@#' <<<"$1"; }

needs() { # needs SUITE...: true if one of them is to run
	local s t
	for s in "$@"; do
		for t in "${suites[@]}"; do [[ "$s" == "$t" ]] && return 0; done
	done
	return 1
}

suites=("$@")
if needs stores entity postgres tool sharding; then
	if pg_uri=$(bash scripts/pg.sh start "$pg_name"); then
		echo "check: PostgreSQL at $(show "$pg_uri")" >&2
		if ! "$build/skald" migrate --store "$pg_uri" >&2; then
			fail_setup "PostgreSQL migration"
		fi
	else
		pg_uri=""
		fail_setup "PostgreSQL did not start (scripts/pg.sh start $pg_name)"
	fi
fi
if needs stores mongo tool; then
	if mongo=$(bash scripts/ferretdb.sh start); then
		mongo_uri="$mongo/conformance"
		echo "check: FerretDB at $mongo" >&2
		if ! "$build/skald" migrate --store "$mongo_uri" >&2; then
			fail_setup "MongoDB migration"
		fi
	else
		fail_setup "FerretDB did not start (scripts/ferretdb.sh start)"
	fi
fi
# Suites that need a server read it from these; unset, they fail loudly.
[[ -n "$pg_uri" ]] && export SKALD_TEST_PG="$pg_uri"
[[ -n "$mongo_uri" ]] && export SKALD_TEST_MONGO="${mongo_uri%/conformance}"

run_suite() {
	local label=$1
	shift
	echo "== $label" >&2
	timeout 1200 "$@" 2>&1 | tee "$log" >&2
	local rc=${PIPESTATUS[0]}
	local line
	line=$(grep -a 'Synthesis: Tested:' "$log" | tail -1)
	if [[ -n "$line" ]]; then
		local p f
		p=$(sed -E 's/.*Passing: ([0-9]+).*/\1/' <<<"$line")
		f=$(sed -E 's/.*Failing: ([0-9]+).*/\1/' <<<"$line")
		passed=$((passed + p))
		failed=$((failed + f))
	elif [[ $rc -ne 0 ]]; then
		failed=$((failed + 1))
	fi
	if [[ $rc -ne 0 ]]; then
		failed_suites+=("$label (exit $rc)")
		[[ -z "$line" ]] && echo "suite $label exited $rc without a Criterion summary" >&2
	fi
}

# The packaging check (scripts/packaging.sh): one test per line it prints.
run_packaging() {
	echo "== packaging" >&2
	SANITIZE="${SANITIZE:-}" timeout 600 bash scripts/packaging.sh "$build" 2>&1 | tee "$log" >&2
	local rc=${PIPESTATUS[0]}
	local line
	line=$(grep -a '^packaging: [0-9]* passed' "$log" | tail -1)
	if [[ -n "$line" ]]; then
		passed=$((passed + $(sed -E 's/packaging: ([0-9]+) passed.*/\1/' <<<"$line")))
		failed=$((failed + $(sed -E 's/.*passed, ([0-9]+) failed/\1/' <<<"$line")))
	else
		failed=$((failed + 1))
	fi
	[[ $rc -ne 0 ]] && failed_suites+=("packaging (exit $rc)")
}

for suite in "${suites[@]}"; do
	if [[ "$suite" == packaging ]]; then
		run_packaging
		continue
	fi
	bin="$build/tests/$suite"
	if [[ ! -x "$bin" ]]; then
		echo "missing test binary $bin" >&2
		failed=$((failed + 1))
		failed_suites+=("$suite (not built)")
		continue
	fi
	case "$suite" in
	stores)
		SKALD_TEST_STORE=memory://conformance run_suite "stores memory" "$bin"
		if [[ -n "$pg_uri" ]]; then
			SKALD_TEST_STORE="$pg_uri" run_suite "stores postgres" "$bin"
		else
			fail_setup "stores postgres (no server)"
		fi
		if [[ -n "$mongo_uri" ]]; then
			# FerretDB's SQLite backend serializes work: one test at a
			# time keeps each within the suite's time limits.
			CRITERION_JOBS=1 SKALD_TEST_STORE="$mongo_uri" run_suite "stores mongodb" "$bin"
		else
			fail_setup "stores mongodb (no server)"
		fi
		;;
	entity)
		run_suite "entity memory" "$bin"
		if [[ -n "$pg_uri" ]]; then
			SKALD_TEST_STORE="$pg_uri" run_suite "entity postgres" "$bin"
		else
			fail_setup "entity postgres (no server)"
		fi
		;;
	*)
		run_suite "$suite" "$bin"
		;;
	esac
done

if [[ ${#failed_suites[@]} -gt 0 ]]; then
	echo "failed: ${failed_suites[*]}"
fi
echo "$passed passed, $failed failed"
[[ ${#failed_suites[@]} -eq 0 && $failed -eq 0 ]]
