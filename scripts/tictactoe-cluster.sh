#!/usr/bin/env bash
# Three tic-tac-toe nodes as separate processes on one journal, on loopback.
#
# Usage: scripts/tictactoe-cluster.sh start URI   the journal: postgres://... or mongodb://...
#        scripts/tictactoe-cluster.sh status      the nodes that run, and GET /cluster
#        scripts/tictactoe-cluster.sh kill NAME   SIGKILL node a, b or c (a crash)
#        scripts/tictactoe-cluster.sh restart NAME  start it again (a new incarnation)
#        scripts/tictactoe-cluster.sh stop        SIGTERM every node: each leaves the
#                                                 cluster, then exits
#
# Node a listens on tcp://127.0.0.1:7301 (HTTP http://127.0.0.1:8301/), b on
# 7302 (8302), c on 7303 (8303); b and c join through a, and a through b
# and c when it is restarted. BUILD (default build) is where
# examples/tictactoe is; files (pids, logs, the URI) live in
# $SKALD_TTT_DIR (default /tmp/skald-ttt-$UID). The journal must be
# migrated: build/skald migrate --store URI.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-build}
bin="$here/$build/examples/tictactoe"
dir=${SKALD_TTT_DIR:-/tmp/skald-ttt-$(id -u)}
secret=${SKALD_SECRET:-tictactoe-$(id -u)}
names=(a b c)

port_of() { # NAME -> cluster port
	case "$1" in a) echo 7301 ;; b) echo 7302 ;; c) echo 7303 ;; *)
		echo "tictactoe-cluster: no node \"$1\": a, b or c" >&2
		exit 2
		;;
	esac
}

# A killed node whose parent is gone may linger as a zombie: that is not
# running.
running() {
	local st
	[[ -f "$dir/$1.pid" ]] && st=$(ps -o stat= -p "$(cat "$dir/$1.pid")" 2>/dev/null) &&
		[[ "$st" != Z* ]]
}

start_node() { # NAME
	local name=$1 port seeds=()
	port=$(port_of "$name")
	for other in "${names[@]}"; do
		[[ "$other" != "$name" ]] && seeds+=("tcp://127.0.0.1:$(port_of "$other")")
	done
	local list
	list=$(IFS=,; echo "${seeds[*]}")
	# The first node of a new cluster forms it; the others join through
	# whoever runs.
	running a || running b || running c || list=""
	SKALD_SECRET=$secret "$bin" node --name "$name" --listen "tcp://127.0.0.1:$port" \
		${list:+--seeds "$list"} --http "127.0.0.1:$((port + 1000))" \
		--store "$(cat "$dir/uri")" >"$dir/$name.log" 2>&1 &
	echo $! >"$dir/$name.pid"
	for _ in $(seq 150); do
		grep -q " up " "$dir/$name.log" 2>/dev/null && break
		running "$name" || break
		sleep 0.1
	done
	if ! grep " up " "$dir/$name.log"; then
		echo "tictactoe-cluster: node $name did not come up; its log:" >&2
		cat "$dir/$name.log" >&2
		exit 1
	fi
}

case "${1:-}" in
start)
	[[ -n "${2:-}" ]] || { echo "usage: $0 start URI" >&2; exit 2; }
	[[ -x "$bin" ]] || { echo "tictactoe-cluster: build first: make" >&2; exit 1; }
	mkdir -p "$dir"
	echo "$2" >"$dir/uri"
	for n in "${names[@]}"; do
		running "$n" && { echo "tictactoe-cluster: node $n runs already" >&2; continue; }
		start_node "$n"
	done
	echo "play at http://127.0.0.1:8301/ (or 8302, 8303)"
	;;
restart)
	port_of "${2:-}" >/dev/null
	running "$2" && { echo "tictactoe-cluster: node $2 runs" >&2; exit 1; }
	start_node "$2"
	;;
kill)
	port_of "${2:-}" >/dev/null
	running "$2" || { echo "tictactoe-cluster: node $2 does not run" >&2; exit 1; }
	kill -KILL "$(cat "$dir/$2.pid")"
	echo "killed node $2"
	;;
status)
	for n in "${names[@]}"; do
		if running "$n"; then echo "$n: runs (pid $(cat "$dir/$n.pid"))"; else echo "$n: stopped"; fi
	done
	for n in "${names[@]}"; do
		if running "$n"; then
			curl -s "http://127.0.0.1:$(($(port_of "$n") + 1000))/cluster" && echo
			break
		fi
	done
	;;
stop)
	for n in "${names[@]}"; do
		running "$n" && kill -TERM "$(cat "$dir/$n.pid")"
	done
	for n in "${names[@]}"; do
		while running "$n"; do sleep 0.1; done
		rm -f "$dir/$n.pid"
	done
	echo "stopped"
	;;
*)
	sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
	exit 2
	;;
esac
