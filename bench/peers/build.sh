#!/bin/sh
# Builds the peer implementations of the local actor benchmark:
#   <out>/caf_local    from bench/peers/caf_local.cpp  (CAF 0.17, C++17)
#   <out>/local.beam   from bench/peers/local.erl      (Erlang/OTP)
# and of the remote ping-pong benchmark:
#   <out>/caf_remote_pingpong   from bench/peers/caf_remote_pingpong.cpp
#   <out>/remote_pingpong.beam  from bench/peers/remote_pingpong.erl
#   <out>/tcp_pingpong          from bench/peers/tcp_pingpong.c (raw TCP, C11)
# Usage: bench/peers/build.sh [out]   (default: build/bench under the repo root)
# Each target is rebuilt only when its source is newer, so running it twice
# does nothing the second time. CC, CFLAGS, CXX and CXXFLAGS may be overridden.
#
# Run the peers with:
#   <out>/caf_local [scale]
#   erl -noshell +S 2 +P 4194304 -pa <out> -run local main [scale]
#   bench/peers/remote_run.sh [R N W]   (all remote ping-pong peers)
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${1:-$root/build/bench}
CXX=${CXX:-g++}
CXXFLAGS=${CXXFLAGS:--O2}
CC=${CC:-cc}
CFLAGS=${CFLAGS:--O2}

mkdir -p "$out"

need() {
    command -v "$1" >/dev/null 2>&1 || {
        echo "build.sh: '$1' not found ($2)" >&2
        exit 1
    }
}

# target is missing or older than source
stale() {
    [ ! -e "$1" ] || [ "$2" -nt "$1" ]
}

src="$here/caf_local.cpp"
bin="$out/caf_local"
if stale "$bin" "$src"; then
    need "$CXX" "a C++17 compiler is needed for the CAF peer"
    echo "  CXX     $bin"
    # Build beside the target, then rename, so that a failed or interrupted
    # build never leaves a fresh-looking binary behind.
    "$CXX" $CXXFLAGS -std=c++17 "$src" -o "$bin.tmp" -lcaf_core -lpthread
    mv -f "$bin.tmp" "$bin"
fi

src="$here/local.erl"
beam="$out/local.beam"
if stale "$beam" "$src"; then
    need erlc "Erlang/OTP is needed for the Erlang peer"
    echo "  ERLC    $beam"
    erlc -o "$out" "$src"
fi

src="$here/caf_remote_pingpong.cpp"
bin="$out/caf_remote_pingpong"
if stale "$bin" "$src"; then
    need "$CXX" "a C++17 compiler is needed for the CAF peer"
    echo "  CXX     $bin"
    "$CXX" $CXXFLAGS -std=c++17 "$src" -o "$bin.tmp" -lcaf_io -lcaf_core -lpthread
    mv -f "$bin.tmp" "$bin"
fi

src="$here/remote_pingpong.erl"
beam="$out/remote_pingpong.beam"
if stale "$beam" "$src"; then
    need erlc "Erlang/OTP is needed for the Erlang peer"
    echo "  ERLC    $beam"
    # erlc names its output after the module, so compile into a scratch
    # directory beside the target and rename from there.
    tmpdir="$out/.remote_pingpong.tmp"
    rm -rf "$tmpdir"
    mkdir "$tmpdir"
    erlc -o "$tmpdir" "$src"
    mv -f "$tmpdir/remote_pingpong.beam" "$beam"
    rmdir "$tmpdir"
fi

src="$here/tcp_pingpong.c"
bin="$out/tcp_pingpong"
if stale "$bin" "$src"; then
    need "$CC" "a C11 compiler is needed for the raw TCP baseline"
    echo "  CC      $bin"
    "$CC" $CFLAGS -std=c11 "$src" -o "$bin.tmp" -lm
    mv -f "$bin.tmp" "$bin"
fi
