#!/usr/bin/env bash
# `make fuzz`: runs libFuzzer targets for SECONDS each and prints their
# execution counts. Usage: scripts/fuzz.sh BUILD_DIR SECONDS [TARGET...]
# (all of BUILD_DIR/fuzz/ when no target is named).
#
# Each target starts from its committed seeds (tests/fuzz/corpus/TARGET,
# read only) and the corpus of earlier runs (BUILD_DIR/corpus/TARGET, where
# new inputs go). A crash leaves its input in BUILD_DIR/crash-TARGET-* and
# fails the run.
set -uo pipefail
build=${1:-build-fuzz}
secs=${2:-60}
shift 2 2>/dev/null || shift $#
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
	for bin in "$build"/fuzz/*; do targets+=("$(basename "$bin")"); done
fi
status=0
for name in "${targets[@]}"; do
	bin="$build/fuzz/$name"
	corpus="$build/corpus/$name"
	seeds="$root/tests/fuzz/corpus/$name"
	mkdir -p "$corpus"
	log="$build/fuzz-$name.log"
	# Leak checks are off for the targets that keep a server running
	# between inputs (a node, the HTTP server): its threads hold memory
	# by design.
	leaks=1
	[[ "$name" == fuzz_conn || "$name" == fuzz_http ]] && leaks=0
	# The tool's input code explains every refusal on stderr: silenced
	# (libFuzzer and the sanitizers keep their own copy of stderr).
	quiet=()
	[[ "$name" == fuzz_lines ]] && quiet=(-close_fd_mask=2)
	dirs=("$corpus")
	[[ -d "$seeds" ]] && dirs+=("$seeds")
	"$bin" -max_total_time="$secs" -detect_leaks=$leaks -print_final_stats=1 "${quiet[@]}" \
		-artifact_prefix="$build/crash-$name-" "${dirs[@]}" >"$log" 2>&1
	rc=$?
	runs=$(grep -a -o 'Done [0-9]* runs' "$log" | tail -1)
	cov=$(grep -a -o 'cov: [0-9]*' "$log" | tail -1)
	echo "fuzz $name: ${runs:-no summary}, ${cov:-cov ?} in ${secs}s, exit $rc (log: $log)"
	[[ $rc -ne 0 ]] && status=1 && tail -40 "$log"
done
exit $status
