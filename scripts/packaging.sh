#!/usr/bin/env bash
# The packaging check, run by `make check`: Skald as a user gets it.
# Usage: scripts/packaging.sh BUILD_DIR
#
# Installs the built tree (`make install`) into a temporary prefix, then
# builds programs outside the tree with `-std=c11 -Wall -Werror` and nothing
# but the flags pkg-config gives (PKG_CONFIG_PATH pointing into the prefix),
# and runs them:
#   counter          examples/counter against skald, shared libraries
#   counter static   the same against the static libraries
#   memory only      a program against skald alone needs neither libpq nor
#                    libmongoc, and a postgres:// URI is an unknown scheme
#   stores shared    a program against skald-postgres and skald-mongo,
#                    linked with --as-needed, that never calls a store: each
#                    store answers its own URIs
#   stores static    the same against the static libraries
#   http             a server against skald-http alone answers a request
# Prints one line per check and last "packaging: N passed, N failed"; exits 1
# if any failed.
set -uo pipefail

build=$1
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix="$tmp/prefix"
passed=0
failed=0

pass() { echo "packaging: ok   $1"; passed=$((passed + 1)); }
fail() { echo "packaging: FAIL $1" >&2; failed=$((failed + 1)); }
# check NAME COMMAND...: runs the command, its output to $tmp/NAME.log.
check() {
	local name=$1
	shift
	if "$@" >"$tmp/log" 2>&1; then
		pass "$name"
	else
		cat "$tmp/log" >&2
		fail "$name"
	fi
}

# The install runs as its own make, not as part of the one that called this
# script: it must not inherit that one's jobserver.
if ! env -u MAKEFLAGS -u MFLAGS make -s -C "$root" install PREFIX="$prefix" BUILD="$build" \
	>"$tmp/install.log" 2>&1; then
	cat "$tmp/install.log" >&2
	fail "make install PREFIX=..."
	http_runs() { # http_runs OUT shared|static
	cc_user "$1" "$tmp/src/http_probe.c" "$2" skald-http && "$tmp/$1" &&
		! needs "$tmp/$1" libskald.so
}
check "skald-http, shared" http_runs probe-http shared
check "skald-http, static" http_runs probe-http-static static

echo "packaging: $passed passed, $failed failed"
	exit 1
fi
pass "make install PREFIX=..."

export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
export LD_LIBRARY_PATH="$prefix/lib"
# A user's compiler flags: no -D of the tree's own, only pkg-config's. A
# sanitizer build's libraries need its runtime in the program too.
cflags=(-std=c11 -Wall -Werror)
[[ -n "${SANITIZE:-}" ]] && cflags+=("-fsanitize=$SANITIZE")
# A directory holding only the static libraries: searched first, it makes
# the linker take libskald*.a where it would take the .so.
mkdir -p "$tmp/static"
ln -s "$prefix"/lib/libskald*.a "$tmp/static/"

# Builds SRC into $tmp/OUT against PACKAGES: cc_user OUT SRC STATIC PACKAGES...
cc_user() {
	local out=$1 src=$2 static=$3
	shift 3
	local flags
	if [[ $static == static ]]; then
		# Skald's archives, and the system libraries they need shared:
		# `pkg-config --static` would ask for libpq's own static
		# dependencies (Kerberos, libpgcommon), which Debian does not ship.
		local private
		private=$(pkg-config --print-requires-private skald "$@" | awk '{print $1}')
		# shellcheck disable=SC2086 # one package name a word
		flags=$(pkg-config --cflags --libs "$@" $private) || return 1
		flags="-L$tmp/static $flags"
	else
		flags=$(pkg-config --cflags --libs "$@") || return 1
	fi
	# shellcheck disable=SC2086 # pkg-config's flags are words
	cc "${cflags[@]}" -Wl,--as-needed -o "$tmp/$out" "$src" $flags
}

needs() { # needs BINARY LIB: true if BINARY loads a library named LIB*
	ldd "$1" | grep -q "^[[:space:]]*$2"
}

mkdir -p "$tmp/src"
cp "$root/examples/counter/main.c" "$tmp/src/counter.c"
cp "$root/tests/packaging/store_probe.c" "$tmp/src/store_probe.c"
cp "$root/tests/packaging/http_probe.c" "$tmp/src/http_probe.c"

counter_runs() {
	cc_user "$1" "$tmp/src/counter.c" "$2" skald && "$tmp/$1"
}
check "examples/counter, shared" counter_runs counter shared
check "examples/counter, static" counter_runs counter-static static
check "examples/counter, static: no libskald.so" bash -c "! ldd '$tmp/counter-static' | grep -q libskald"

memory_only() {
	cc_user probe-memory "$tmp/src/store_probe.c" shared skald || return 1
	! needs "$tmp/probe-memory" libpq && ! needs "$tmp/probe-memory" libmongoc || return 1
	"$tmp/probe-memory" "memory://probe?batch=0" SKALD_EURI "batch" &&
		"$tmp/probe-memory" "postgres://127.0.0.1/db" SKALD_ESCHEME "registered schemes are memory"
}
check "skald alone: memory only, without libpq and libmongoc" memory_only

stores() { # stores OUT shared|static
	cc_user "$1" "$tmp/src/store_probe.c" "$2" skald-postgres skald-mongo || return 1
	if [[ $2 == static ]] && needs "$tmp/$1" libskald; then
		echo "$1 loads a shared libskald" >&2
		return 1
	fi
	"$tmp/$1" "postgres://127.0.0.1/db?batch=0" SKALD_EURI "postgres journal URI" &&
		"$tmp/$1" "postgresql://127.0.0.1/db?batch=0" SKALD_EURI "postgres journal URI" &&
		"$tmp/$1" "mongodb://127.0.0.1/db?batch=0" SKALD_EURI "MongoDB journal URI" &&
		"$tmp/$1" "memory://probe?batch=0" SKALD_EURI "memory journal URI" &&
		"$tmp/$1" "nosuch://x" SKALD_ESCHEME "postgres"
}
check "skald-postgres and skald-mongo, shared, --as-needed" stores probe-stores shared
check "skald-postgres and skald-mongo, static" stores probe-stores-static static
check "skald-postgres alone" bash -c "
	cc ${cflags[*]} -Wl,--as-needed -o '$tmp/probe-pg' '$tmp/src/store_probe.c' \$(pkg-config --cflags --libs skald-postgres) &&
	'$tmp/probe-pg' 'postgres://127.0.0.1/db?batch=0' SKALD_EURI 'postgres journal URI' &&
	'$tmp/probe-pg' 'mongodb://127.0.0.1/db' SKALD_ESCHEME 'postgres, postgresql'"

http_runs() { # http_runs OUT shared|static
	cc_user "$1" "$tmp/src/http_probe.c" "$2" skald-http && "$tmp/$1" &&
		! needs "$tmp/$1" libskald.so
}
check "skald-http, shared" http_runs probe-http shared
check "skald-http, static" http_runs probe-http-static static

echo "packaging: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
