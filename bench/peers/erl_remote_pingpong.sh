#!/bin/sh
# Runs the Erlang/OTP peer of the remote ping-pong benchmark: one server node
# and one client node, both on 127.0.0.1, with a fresh cookie and node names
# unique to this run.  Prints the client's two lines on stdout:
#   latency    window=1 n=R ...
#   throughput window=W n=N ...
#
# Usage: bench/peers/erl_remote_pingpong.sh [R [N [W [PORT]]]]
#   R, N, W   as for bench/remote_pingpong (defaults 10000 200000 1000)
#   PORT      if given, the server node's distribution listener uses this port
#             (otherwise the OS picks one); epmd stays on its own port, 4369.
# Environment:
#   SKALD_BENCH_OUT   where remote_pingpong.beam is built (default build/bench)
#   ERL_PP_TIMEOUT    seconds after which each node is killed (default 120)
#
# epmd is started (epmd -daemon, on loopback) if it is not running, and is
# left running.  Both nodes run in process groups of their own, which are
# killed on exit, so no erl, beam, erl_child_setup or inet_gethost process of
# this run outlives the script.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${SKALD_BENCH_OUT:-$root/build/bench}
limit=${ERL_PP_TIMEOUT:-120}

R=${1:-10000}
N=${2:-200000}
W=${3:-1000}
PORT=${4:-}

for v in "$R" "$N" "$W" ${PORT:+"$PORT"}; do
    case $v in
    '' | *[!0-9]* | 0)
        echo "usage: $0 [R [N [W [PORT]]]]  (positive integers)" >&2
        exit 2
        ;;
    esac
done

command -v erl >/dev/null 2>&1 || {
    echo "erl_remote_pingpong.sh: erl not found" >&2
    exit 1
}

# Build (only what is out of date); keep stdout for the results.
"$here/build.sh" "$out" >&2

# epmd: start it if needed and wait until it answers.
if ! epmd -names >/dev/null 2>&1; then
    epmd -daemon -address 127.0.0.1
    i=0
    until epmd -names >/dev/null 2>&1; do
        i=$((i + 1))
        if [ "$i" -gt 50 ]; then
            echo "erl_remote_pingpong.sh: epmd does not answer" >&2
            exit 1
        fi
        sleep 0.1
    done
fi

id=$$_$(od -An -N4 -tx4 /dev/urandom | tr -d ' \n')
srv=skald_pp_srv_$id@127.0.0.1
cli=skald_pp_cli_$id@127.0.0.1
cookie=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')

spid=
cpid=
# Each node runs under timeout(1), which puts itself and the node in a new
# process group; killing that group ends the node and its helper processes.
kill_group() {
    [ -n "$1" ] || return 0
    kill -TERM "-$1" 2>/dev/null || return 0
    i=0
    while kill -0 "$1" 2>/dev/null && [ "$i" -lt 50 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    kill -KILL "-$1" 2>/dev/null || true
}
cleanup() {
    kill_group "$cpid"
    kill_group "$spid"
    wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

listen=
if [ -n "$PORT" ]; then
    listen="-kernel inet_dist_listen_min $PORT -kernel inet_dist_listen_max $PORT"
fi

# Server: its output goes to stderr, stdout is the client's.
# shellcheck disable=SC2086  # $listen is a list of words
timeout -k 5 "$limit" erl -noinput -name "$srv" -setcookie "$cookie" \
    -kernel inet_dist_use_interface '{127,0,0,1}' $listen \
    -pa "$out" -run remote_pingpong server </dev/null >&2 &
spid=$!

# Client, in the background too so that a signal to this script is handled
# at once (the traps run when `wait` is interrupted).
timeout -k 5 "$limit" erl -noinput -name "$cli" -setcookie "$cookie" \
    -kernel inet_dist_use_interface '{127,0,0,1}' \
    -pa "$out" -run remote_pingpong client "$srv" "$R" "$N" "$W" </dev/null &
cpid=$!

if wait "$cpid"; then rc=0; else rc=$?; fi
cpid=

# The server halts once the client has said quit (or gone away); give it a
# moment, then the EXIT trap kills whatever is left.
i=0
while kill -0 "$spid" 2>/dev/null && [ "$i" -lt 50 ]; do
    sleep 0.1
    i=$((i + 1))
done
exit "$rc"
