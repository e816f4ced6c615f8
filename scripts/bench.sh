#!/usr/bin/env bash
# `make bench`: Skald's benchmarks and their peers (CAF 0.17, Erlang/OTP 25)
# in one run, one line per figure, then the ratio Skald/peer per figure.
# Usage: scripts/bench.sh BUILD_DIR [SCALE]   (SCALE multiplies every n)
set -uo pipefail
build=${1:-build}
scale=${2:-${SKALD_BENCH_SCALE:-1}}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

bash bench/peers/build.sh "$build/bench" >&2 || echo "bench: building the peers failed" >&2

run() { # label file command...
	local label=$1 file=$2
	shift 2
	echo "== $label" >&2
	"$@" | tee "$out/$file" | sed "s/^/$label  /"
}

# rate_of FILE FIGURE: the rate= value of FIGURE's line.
rate_of() { awk -v f="$2" '$1 == f { for (i = 2; i <= NF; i++) if ($i ~ /^rate=/) { sub("rate=", "", $i); print $i } }' "$1"; }
bytes_of() { awk -v f="$2" '$1 == f { for (i = 2; i <= NF; i++) if ($i ~ /^bytes_per_actor=/) { sub("bytes_per_actor=", "", $i); print $i } }' "$1"; }

run skald local.skald "$build/bench/local" "$scale"
[[ -x "$build/bench/caf_local" ]] && run caf local.caf "$build/bench/caf_local" "$scale"
if [[ -f "$build/bench/local.beam" ]]; then
	run erlang local.erl erl -noshell +S 2 +P 4194304 -pa "$build/bench" -run local main "$scale"
fi

echo
echo "ratios (Skald / peer; above 1 means Skald is faster, or for bytes_per_actor uses more)"
for fig in pingpong fanout spawn; do
	s=$(rate_of "$out/local.skald" "$fig")
	for peer in caf erl; do
		f="$out/local.$peer"
		[[ -s "$f" ]] || continue
		p=$(rate_of "$f" "$fig")
		[[ -n "$s" && -n "$p" ]] && awk -v s="$s" -v p="$p" -v fig="$fig" -v peer="$peer" \
			'BEGIN { printf "ratio %-10s skald/%-6s rate %.2fx\n", fig, peer, s / p }'
	done
done
s=$(bytes_of "$out/local.skald" spawn)
for peer in caf erl; do
	f="$out/local.$peer"
	[[ -s "$f" ]] || continue
	p=$(bytes_of "$f" spawn)
	[[ -n "$s" && -n "$p" ]] && awk -v s="$s" -v p="$p" -v peer="$peer" \
		'BEGIN { printf "ratio %-10s skald/%-6s bytes_per_actor %.2fx\n", "spawn", peer, s / p }'
done

echo
run skald-journal journal.skald "$build/bench/journal" --scale "$scale"
