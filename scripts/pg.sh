#!/usr/bin/env bash
# A throwaway PostgreSQL 15 cluster for tests and benchmarks, on loopback.
#
# Usage: scripts/pg.sh start|stop|uri|status|destroy [NAME] [--immediate]
#   start    create the cluster NAME if needed (initdb), start it on a free
#            127.0.0.1 port, create its database, print its URI
#   stop     stop it (fast shutdown; --immediate: pg_ctl stop -m immediate,
#            as a crash would, for tests of a server that goes away)
#   uri      print its URI (whether or not it runs)
#   status   exit 0 if it runs
#   destroy  stop it and remove its files
# NAME defaults to "default"; each name is its own cluster, port and URI.
# Every command is idempotent. The URI is postgres://skald:PASSWORD@127.0.0.1:PORT/skald,
# with a password drawn at initdb; user skald is the cluster's superuser, so
# tests may create databases of their own.
#
# Files live in $SKALD_PG_DIR (default /tmp/skald-pg-$UID)/NAME. initdb
# refuses to run as root, so as root the cluster belongs to the `postgres`
# user, which must be able to read every parent directory: /tmp is, and the
# directories below it are made for it. The binaries come from
# $SKALD_PG_BIN (default /usr/lib/postgresql/15/bin). No network but loopback.
#
# The cluster trades durability against an OS crash for speed (fsync=off): a
# test that kills the server (stop --immediate) loses nothing acknowledged,
# because every commit still reaches the kernel before it is acknowledged.
set -euo pipefail

bin=${SKALD_PG_BIN:-/usr/lib/postgresql/15/bin}
base=${SKALD_PG_DIR:-/tmp/skald-pg-$(id -u)}
cmd=${1:-}
name=${2:-default}
flag=${3:-}
if [[ "$name" == --* ]]; then
	flag=$name
	name=default
fi
if [[ ! "$name" =~ ^[A-Za-z0-9_.-]+$ ]]; then
	echo "pg.sh: cluster name \"$name\" must be letters, digits, '_', '.' or '-'" >&2
	exit 2
fi
dir=$base/$name
data=$dir/data

die() {
	echo "pg.sh: $*" >&2
	exit 1
}

[[ -x "$bin/pg_ctl" ]] || die "no PostgreSQL 15 in $bin (scripts/deps.sh installs the postgresql package)"

# Runs a command as the cluster's owner: root cannot own a cluster.
if [[ $(id -u) -eq 0 ]]; then
	owner=postgres
	id -u "$owner" >/dev/null 2>&1 || die "running as root needs the 'postgres' user (from the postgresql package)"
	as_owner() { runuser -u "$owner" -- "$@"; }
else
	owner=$(id -un)
	as_owner() { "$@"; }
fi

port_of() { cat "$dir/port" 2>/dev/null || true; }

uri_of() {
	local port pw
	port=$(port_of)
	pw=$(cat "$dir/password" 2>/dev/null || true)
	[[ -n "$port" && -n "$pw" ]] || die "cluster $name does not exist: run scripts/pg.sh start $name"
	echo "postgres://skald:$pw@127.0.0.1:$port/skald"
}

running() {
	[[ -f "$data/postmaster.pid" ]] && as_owner "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1
}

# A loopback port nobody listens on, drawn at random so that parallel
# sessions rarely pick the same one (start retries when they do). Below
# 32768: the kernel hands out ephemeral ports from 32768 up, and an outgoing
# connection's local port could take a fixed one from that range.
free_port() {
	local p i
	for i in $(seq 1 200); do
		p=$((20000 + RANDOM % 12000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done
	die "no free loopback port found"
}

create() {
	mkdir -p "$base"
	chmod 0755 "$base"
	mkdir -p "$dir"
	chmod 0755 "$dir"
	if [[ $(id -u) -eq 0 ]]; then chown "$owner" "$base" "$dir"; fi
	# A password of letters and digits needs no escaping in a URI.
	local pw
	pw=$(head -c 64 /dev/urandom | tr -dc 'A-Za-z0-9' | head -c 24)
	[[ ${#pw} -ge 16 ]] || pw=$(date +%s%N)$RANDOM
	umask 077
	printf '%s\n' "$pw" >"$dir/pwfile"
	if [[ $(id -u) -eq 0 ]]; then chown "$owner" "$dir/pwfile"; fi
	if ! as_owner "$bin/initdb" -D "$data" -U skald --pwfile="$dir/pwfile" \
		--auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 \
		--no-instructions >"$dir/initdb.log" 2>&1; then
		cat "$dir/initdb.log" >&2
		rm -rf "$data"
		die "initdb failed"
	fi
	cat >>"$data/postgresql.conf" <<EOF
# scripts/pg.sh: a throwaway test cluster on loopback
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
max_connections = 200
fsync = off
full_page_writes = off
synchronous_commit = on
shared_buffers = 256MB
max_wal_size = 4GB
logging_collector = off
log_min_messages = warning
EOF
	printf '%s\n' "$pw" >"$dir/password"
	rm -f "$dir/pwfile"
	umask 022
}

start() {
	if [[ ! -f "$data/PG_VERSION" ]]; then
		create
	fi
	if running; then
		uri_of
		return 0
	fi
	# Reuse the port of the last start so the URI stays the same across a
	# restart; take another if someone else holds it now.
	local port attempt
	port=$(port_of)
	for attempt in 1 2 3 4 5; do
		if [[ -z "$port" ]] || (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			port=$(free_port)
		fi
		echo "$port" >"$dir/port"
		if as_owner "$bin/pg_ctl" -D "$data" -l "$dir/server.log" -w -t 60 \
			-o "-p $port" start >/dev/null 2>&1; then
			break
		fi
		running && break
		port=""
		[[ $attempt -eq 5 ]] && {
			tail -20 "$dir/server.log" >&2 || true
			die "the server of cluster $name did not start"
		}
	done
	if ! as_owner "$bin/psql" -h "$dir" -p "$port" -U skald -d postgres -XtAq \
		-c "SELECT 1 FROM pg_database WHERE datname = 'skald'" | grep -q 1; then
		as_owner "$bin/psql" -h "$dir" -p "$port" -U skald -d postgres -XqA \
			-c "CREATE DATABASE skald" >/dev/null ||
			die "could not create database skald"
	fi
	uri_of
}

stop() {
	[[ -d "$data" ]] || return 0
	if running; then
		local mode=fast
		[[ "$flag" == "--immediate" ]] && mode=immediate
		as_owner "$bin/pg_ctl" -D "$data" -w -t 60 -m "$mode" stop >/dev/null ||
			die "could not stop cluster $name"
	fi
}

case "$cmd" in
start) start ;;
stop) stop ;;
uri) uri_of ;;
status) running ;;
destroy)
	stop
	rm -rf "$dir"
	;;
*)
	echo "usage: scripts/pg.sh start|stop|uri|status|destroy [NAME] [--immediate]" >&2
	exit 2
	;;
esac
