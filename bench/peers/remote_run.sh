#!/bin/sh
# Runs the peers of the remote ping-pong benchmark one after the other, each
# with its server in the background and its client in the foreground, on
# 127.0.0.1 and a free port of its own:
#   tcp      raw TCP baseline, one write() per message (tcp_pingpong.c)
#   caf      CAF 0.17 middleman (caf_remote_pingpong.cpp)
#   erlang   two distributed Erlang nodes (erl_remote_pingpong.sh)
# and prints each client's two lines prefixed by the peer's name:
#   tcp  latency    window=1 n=R time=...
#   tcp  throughput window=W n=N time=...
#   ...
#
# Usage: bench/peers/remote_run.sh [R [N [W]]]   (defaults 10000 200000 1000)
#   R  round trips of the latency phase (one in flight)
#   N  round trips of the throughput phase, W in flight
# Environment: SKALD_BENCH_OUT (build directory, default build/bench),
#   REMOTE_RUN_TIMEOUT (seconds after which a run is killed, default 120).
# A peer that fails or times out prints "<name>  FAILED (exit status)" and the
# others still run; the script then exits with status 1.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${SKALD_BENCH_OUT:-$root/build/bench}
limit=${REMOTE_RUN_TIMEOUT:-120}
export SKALD_BENCH_OUT="$out"

R=${1:-10000}
N=${2:-200000}
W=${3:-1000}
for v in "$R" "$N" "$W"; do
    case $v in
    '' | *[!0-9]* | 0)
        echo "usage: $0 [R [N [W]]]  (positive integers)" >&2
        exit 2
        ;;
    esac
done

"$here/build.sh" "$out" >&2

tmp=$(mktemp -d)
spid=
cleanup() {
    if [ -n "$spid" ]; then
        kill -TERM "$spid" 2>/dev/null || true
        wait "$spid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A TCP port on which nothing listens or connects, outside Linux's default
# ephemeral range (32768-60999) so that no outgoing connection takes it.
free_port() {
    ss -Htan | awk '{ n = split($4, a, ":"); print a[n] }' >"$tmp/used"
    while :; do
        p=$(($(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 12000 + 20000))
        grep -qx "$p" "$tmp/used" || break
    done
    echo "$p"
}

status=0

# Prints the client's lines (or FAILED) with the peer's name in front.
emit() { # name rc
    if [ "$2" -eq 0 ] && [ -s "$tmp/out" ]; then
        sed "s/^/$1  /" "$tmp/out"
    else
        echo "$1  FAILED (exit status $2)"
        status=1
    fi
}

# Server in the background, client in the foreground, both under timeout(1).
run_pair() { # name binary
    port=$(free_port)
    timeout -k 5 "$limit" "$2" -m server -H 127.0.0.1 -p "$port" </dev/null >&2 &
    spid=$!
    if timeout -k 5 "$limit" "$2" -m client -H 127.0.0.1 -p "$port" \
        -r "$R" -n "$N" -w "$W" </dev/null >"$tmp/out"; then
        rc=0
    else
        rc=$?
    fi
    # The server exits once the client has said quit; wait for it a little.
    i=0
    while kill -0 "$spid" 2>/dev/null && [ "$i" -lt 50 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    kill -TERM "$spid" 2>/dev/null || true
    wait "$spid" 2>/dev/null || true
    spid=
    emit "$1" "$rc"
}

run_pair tcp "$out/tcp_pingpong"
run_pair caf "$out/caf_remote_pingpong"

port=$(free_port)
if ERL_PP_TIMEOUT=$limit timeout -k 10 "$limit" "$here/erl_remote_pingpong.sh" \
    "$R" "$N" "$W" "$port" </dev/null >"$tmp/out"; then
    rc=0
else
    rc=$?
fi
emit erlang "$rc"

exit "$status"
