#!/usr/bin/env bash
# The MongoDB-wire test server: FerretDB 1.24.2 on loopback, with its own
# SQLite backend in a throwaway directory (never the system's MongoDB).
#
# Usage: scripts/ferretdb.sh install|start|stop|uri|status
#   install  builds FerretDB into the cache when it is missing (idempotent;
#            about three minutes the first time, instant afterwards)
#   start    installs if needed, starts a server on a free loopback port
#            unless one of ours is already running, prints its URI
#   stop     stops the server that start started, removes its data
#   uri      prints mongodb://127.0.0.1:PORT of the running server (fails
#            when none runs): append /DBNAME for a journal URI
#   status   exit 0 when the server runs
#
# Environment:
#   SKALD_CACHE         cache root (default ${XDG_CACHE_HOME:-~/.cache}/skald)
#   SKALD_FERRETDB_DIR  the server's state: data, pid, port, log
#                       (default build/ferretdb in the repository)
#   SKALD_FERRETDB_BIN  use this ferretdb binary instead of building one
#
# Why it builds from a temporary module: `go install …@v1.24.2` asks the
# module proxy for the deprecation list of the module, which the proxy here
# refuses; `go get` into a scratch module does not ask for it. FerretDB
# also panics at start unless its generated build/version/version.txt was
# embedded, and the module zip does not carry it: the scratch module
# replaces FerretDB by a copy of its source that has the file.
#
# Works unattended (CI=true, as root, no terminal). A server that cannot be
# built or started is a failure with a message, never a silent skip.
set -euo pipefail

VERSION=1.24.2
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
cache=${SKALD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/skald}
bin=${SKALD_FERRETDB_BIN:-$cache/ferretdb-$VERSION}
dir=${SKALD_FERRETDB_DIR:-$root/build/ferretdb}
pidfile=$dir/ferretdb.pid
portfile=$dir/port
logfile=$dir/ferretdb.log

die() {
	echo "ferretdb.sh: $*" >&2
	exit 1
}

find_go() {
	if command -v go >/dev/null 2>&1; then
		command -v go
	elif [[ -x /usr/local/go/bin/go ]]; then
		echo /usr/local/go/bin/go
	else
		return 1
	fi
}

install() {
	# A binary that does not answer --version is a broken earlier build:
	# build again rather than start something that panics.
	if [[ -x "$bin" ]] && "$bin" --version >/dev/null 2>&1; then
		return 0
	fi
	[[ -n "${SKALD_FERRETDB_BIN:-}" ]] && die "SKALD_FERRETDB_BIN=$bin does not run"
	local go
	go=$(find_go) || die "Go is needed to build FerretDB $VERSION (go 1.24 or later in PATH)"
	mkdir -p "$cache"
	local work
	work=$(mktemp -d)
	# shellcheck disable=SC2064
	trap "rm -rf '$work'" RETURN
	echo "ferretdb.sh: building FerretDB $VERSION into $bin (a few minutes, once)" >&2
	(
		cd "$work"
		export GOFLAGS=-mod=mod
		"$go" mod init ferretbuild >/dev/null 2>&1
		"$go" get "github.com/FerretDB/FerretDB/cmd/ferretdb@v$VERSION" >&2
		# FerretDB refuses to start without build/version/version.txt,
		# which its release process generates and the module zip lacks:
		# build from a writable copy of the module that has it.
		local src
		src=$("$go" list -m -f '{{.Dir}}' github.com/FerretDB/FerretDB)
		cp -r "$src" ferret
		chmod -R u+w ferret
		echo "v$VERSION" >ferret/build/version/version.txt
		"$go" mod edit -replace github.com/FerretDB/FerretDB=./ferret
		"$go" build -trimpath -o "$bin.tmp" github.com/FerretDB/FerretDB/cmd/ferretdb >&2
	) || die "building FerretDB $VERSION failed (see above)"
	mv -f "$bin.tmp" "$bin"
	"$bin" --version >/dev/null 2>&1 || die "the FerretDB just built does not run: $bin"
}

running() {
	[[ -f "$pidfile" && -f "$portfile" ]] || return 1
	local pid
	pid=$(cat "$pidfile")
	[[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null
}

uri() {
	running || die "no FerretDB of ours is running (scripts/ferretdb.sh start)"
	echo "mongodb://127.0.0.1:$(cat "$portfile")"
}

# A TCP port on 127.0.0.1 that nothing listens on now, below the kernel's
# ephemeral range (32768 and up). Another process may take it before the
# server binds it: start then tries another.
free_port() {
	local port
	for _ in $(seq 1 50); do
		port=$((20000 + RANDOM % 12000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			echo "$port"
			return 0
		fi
	done
	return 1
}

start() {
	install
	if running; then
		uri
		return 0
	fi
	mkdir -p "$dir"
	rm -rf "$dir/data" "$dir/state"
	mkdir -p "$dir/data" "$dir/state"
	local attempt port pid
	for attempt in 1 2 3 4 5; do
		port=$(free_port) || die "no free loopback port found"
		# setsid: the server outlives this script and is not hit by a
		# terminal's signals; telemetry off: it must never call out.
		setsid "$bin" --handler=sqlite --sqlite-url="file:$dir/data/" \
			--listen-addr="127.0.0.1:$port" --debug-addr=- \
			--state-dir="$dir/state" --telemetry=disable \
			--log-level=warn --mode=normal \
			</dev/null >"$logfile" 2>&1 &
		pid=$!
		echo "$pid" >"$pidfile"
		echo "$port" >"$portfile"
		for _ in $(seq 1 100); do
			if ! kill -0 "$pid" 2>/dev/null; then
				break
			fi
			if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
				uri
				return 0
			fi
			sleep 0.1
		done
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		echo "ferretdb.sh: start attempt $attempt on port $port failed:" >&2
		tail -5 "$logfile" >&2 || true
	done
	rm -f "$pidfile" "$portfile"
	die "FerretDB did not start (log: $logfile)"
}

stop() {
	if running; then
		local pid
		pid=$(cat "$pidfile")
		kill "$pid" 2>/dev/null || true
		for _ in $(seq 1 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -9 "$pid" 2>/dev/null || true
	fi
	rm -f "$pidfile" "$portfile"
	rm -rf "$dir/data" "$dir/state"
}

case "${1:-}" in
install) install ;;
start) start ;;
stop) stop ;;
uri) uri ;;
status) running ;;
*)
	echo "usage: $0 install|start|stop|uri|status" >&2
	exit 2
	;;
esac
