#!/bin/sh
# Builds the peer implementations of the local actor benchmark:
#   <out>/caf_local    from bench/peers/caf_local.cpp  (CAF 0.17, C++17)
#   <out>/local.beam   from bench/peers/local.erl      (Erlang/OTP)
# Usage: bench/peers/build.sh [out]   (default: build/bench under the repo root)
# Each target is rebuilt only when its source is newer, so running it twice
# does nothing the second time. CXX and CXXFLAGS may be overridden.
#
# Run the peers with:
#   <out>/caf_local [scale]
#   erl -noshell +S 2 +P 4194304 -pa <out> -run local main [scale]
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${1:-$root/build/bench}
CXX=${CXX:-g++}
CXXFLAGS=${CXXFLAGS:--O2}

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
