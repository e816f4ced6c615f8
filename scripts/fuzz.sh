#!/usr/bin/env bash
# `make fuzz`: runs every libFuzzer target for SECONDS and prints its
# execution count. Usage: scripts/fuzz.sh BUILD_DIR SECONDS
set -uo pipefail
build=${1:-build-fuzz}
secs=${2:-60}
status=0
for bin in "$build"/fuzz/*; do
	name=$(basename "$bin")
	corpus="$build/corpus/$name"
	mkdir -p "$corpus"
	log="$build/fuzz-$name.log"
	# Leak checks are off for the connection target: its node's threads
	# keep memory between inputs by design.
	leaks=1
	[[ "$name" == fuzz_conn ]] && leaks=0
	"$bin" -max_total_time="$secs" -detect_leaks=$leaks -print_final_stats=1 "$corpus" >"$log" 2>&1
	rc=$?
	runs=$(grep -a -o 'Done [0-9]* runs' "$log" | tail -1)
	echo "fuzz $name: ${runs:-no summary} in ${secs}s, exit $rc (log: $log)"
	[[ $rc -ne 0 ]] && status=1 && tail -30 "$log"
done
exit $status
