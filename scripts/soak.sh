#!/usr/bin/env bash
# `make soak [SOAK_MINUTES=30]`: the soak. Usage: scripts/soak.sh BUILD_DIR MINUTES
#
# Three node processes (tests/soak/node.c) on a throwaway PostgreSQL
# (scripts/pg.sh), SOAK_ENTITIES entities (default 10000) split among them,
# SOAK_RATE commands a second per node (default 300), each persisting one
# event. Every few minutes (a quarter of the run when it is shorter than 10
# minutes) one node, in turn, is SIGKILLed and started again a few seconds
# later; half way the database is stopped as a crash would stop it
# (immediate shutdown) and started again 5 s later. Every 10 s the resident
# memory of each node is sampled. At the end the nodes stop (SIGTERM) and
# the journal is read back with `skald export`: tests/soak/check.c checks
# that every acknowledged event is there, no seq twice, no forked history.
# Then the RSS curve of each node is printed, one line a minute.
#
# SOAK_FAULTS, when set, puts faulty:// between the nodes and the database
# with those options (e.g. "ops=append&lie_every=997&drop_after=1009"): the
# same promises must hold when the journal also fails on purpose.
#
# Until the cluster shards entities, each node owns a disjoint set of them
# (soak-I with I % 3 == its index): the soak tests the journal under kills,
# not placement.
#
# Files of the run (node logs, acknowledgement records, the RSS samples)
# are kept in BUILD_DIR/soak-run/. Exit status 0 when the check passed.
set -uo pipefail

# Everything runs inside main, which bash reads whole before running it: a
# run of half an hour must not read an edited copy of this file half way.
main() {
	build=${1:-build}
	minutes=${2:-30}
	entities=${SOAK_ENTITIES:-10000}
	rate=${SOAK_RATE:-300}
	nodes=3
	here=$(cd "$(dirname "$0")" && pwd)
	root=$(dirname "$here")
	cd "$root"

	run="$build/soak-run"
	rm -rf "$run"
	mkdir -p "$run"
	pg_name="soak-$$"
	pids=()
	cleanup() {
		for p in "${pids[@]}"; do
			[[ -n "$p" ]] && kill -KILL "$p" 2>/dev/null
		done
		bash scripts/pg.sh destroy "$pg_name" >/dev/null 2>&1
	}
	trap cleanup EXIT

	say() { echo "soak [$(($(date +%s) - t0))s]: $*"; }

	t0=$(date +%s)
	uri=$(bash scripts/pg.sh start "$pg_name") || {
		echo "soak: PostgreSQL did not start" >&2
		exit 1
	}
	"$build/skald" migrate --store "$uri" >/dev/null || exit 1
	node_uri=$uri
	[[ -n "${SOAK_FAULTS:-}" ]] && node_uri="faulty://?inner=$uri&$SOAK_FAULTS"

	start_node() { # start_node INDEX
		"$build/soak/node" "$node_uri" "$1" "$nodes" "$entities" "$rate" "$run/acks-$1" \
			>>"$run/node-$1.log" 2>&1 &
		pids[$1]=$!
		echo "$(($(date +%s) - t0)) $1 start ${pids[$1]}" >>"$run/events"
	}

	rss_of() { # the resident memory of a process in KiB, or 0
		awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0
	}

	for i in $(seq 0 $((nodes - 1))); do start_node "$i"; done
	say "$nodes nodes on $(sed -E 's#//([^:/@]*):[^@]*@#//\1:***@#' <<<"$node_uri"), $entities entities, $rate commands/s per node, $minutes min"

	total=$((minutes * 60))
	if [[ $minutes -ge 10 ]]; then kill_every=180; else kill_every=$((total / 4)); fi
	[[ $kill_every -lt 15 ]] && kill_every=15
	next_kill=$kill_every
	db_restart=$((total / 2))
	db_done=0
	victim=0
	kills=0
	echo "seconds node0_kib node1_kib node2_kib" >"$run/rss"
	while :; do
		now=$(($(date +%s) - t0))
		[[ $now -ge $total ]] && break
		line="$now"
		for i in $(seq 0 $((nodes - 1))); do line+=" $(rss_of "${pids[$i]}")"; done
		echo "$line" >>"$run/rss"
		if [[ $now -ge $next_kill && $((now + 10)) -lt $total ]]; then
			say "SIGKILL node $victim (pid ${pids[$victim]})"
			kill -KILL "${pids[$victim]}"
			wait "${pids[$victim]}" 2>/dev/null
			echo "$now $victim kill" >>"$run/events"
			sleep 3
			start_node "$victim"
			say "node $victim started again (pid ${pids[$victim]})"
			kills=$((kills + 1))
			victim=$(((victim + 1) % nodes))
			next_kill=$((next_kill + kill_every))
		fi
		if [[ $db_done -eq 0 && $now -ge $db_restart ]]; then
			say "PostgreSQL stopped (immediate shutdown, as a crash)"
			bash scripts/pg.sh stop "$pg_name" --immediate >/dev/null 2>&1
			echo "$now db stop" >>"$run/events"
			sleep 5
			bash scripts/pg.sh start "$pg_name" >/dev/null || {
				echo "soak: PostgreSQL did not start again" >&2
				exit 1
			}
			say "PostgreSQL started again"
			db_done=1
		fi
		sleep 10
	done

	say "stopping the nodes (SIGTERM)"
	for i in $(seq 0 $((nodes - 1))); do kill -TERM "${pids[$i]}" 2>/dev/null; done
	for i in $(seq 0 $((nodes - 1))); do
		wait "${pids[$i]}"
		rc=$?
		[[ $rc -ne 0 ]] && say "node $i exited with $rc" && tail -5 "$run/node-$i.log"
		pids[$i]=""
	done
	for i in $(seq 0 $((nodes - 1))); do tail -1 "$run/node-$i.log"; done

	say "reading the journal back with skald export"
	"$build/skald" export --prefix soak- --store "$uri" >"$run/journal.jsonl"
	export_rc=$?
	"$build/soak/check" "$run"/acks-* <"$run/journal.jsonl"
	check_rc=$?
	rm -f "$run/journal.jsonl"

	# The RSS curve: the largest sample of each minute, in MiB; a node that
	# was killed in that minute starts again from nothing.
	echo "soak: resident memory of each node (MiB, largest sample of each minute; k: killed and restarted)"
	awk -v events="$run/events" '
		BEGIN { while ((getline l < events) > 0) { split(l, f, " "); if (f[3] == "kill") k[int(f[1] / 60), f[2]] = 1 } }
		NR > 1 { m = int($1 / 60); for (i = 0; i < 3; i++) if ($(i + 2) > max[m, i]) max[m, i] = $(i + 2); if (m > last) last = m }
		END {
			printf "minute   node0   node1   node2\n"
			for (m = 0; m <= last; m++) {
				printf "%6d", m
				for (i = 0; i < 3; i++) printf " %6.1f%s", max[m, i] / 1024, k[m, i] ? "k" : " "
				printf "\n"
			}
		}' "$run/rss"
	say "$kills node kills, 1 database restart; files in $run"
	if [[ $export_rc -ne 0 || $check_rc -ne 0 ]]; then
		echo "soak: FAILED (export exit $export_rc, check exit $check_rc)"
		exit 1
	fi
	echo "soak: passed"
}

main "$@"
