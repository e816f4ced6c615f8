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

# Remote ping-pong: Skald over tcp:// and tls://, then raw TCP, CAF and
# Erlang (bench/peers).
R=$(awk -v s="$scale" 'BEGIN { n = int(10000 * s); print n < 100 ? 100 : n }')
N=$(awk -v s="$scale" 'BEGIN { n = int(200000 * s); print n < 1000 ? 1000 : n }')
W=1000
# skald_remote SCHEME LABEL: Skald's server and client over tcp:// or tls://
# (TLS 1.3 keyed by the cluster secret), the client's lines prefixed LABEL.
skald_remote() {
	local scheme=$1 label=$2 spid port=""
	"$build/bench/remote_pingpong" -m server -s "$scheme" -H 127.0.0.1 -p 0 2>"$out/rserver.err" &
	spid=$!
	for _ in $(seq 100); do
		port=$(sed -n 's/.*listening on port \([0-9]*\).*/\1/p' "$out/rserver.err")
		[[ -n "$port" ]] && break
		sleep 0.1
	done
	if [[ -n "$port" ]]; then
		timeout 120 "$build/bench/remote_pingpong" -m client -s "$scheme" -H 127.0.0.1 \
			-p "$port" -r "$R" -n "$N" -w "$W" | sed "s/^/$label  /"
	fi
	kill "$spid" 2>/dev/null
	wait "$spid" 2>/dev/null
}

echo
echo "== remote ping-pong R=$R N=$N W=$W" >&2
skald_remote tcp skald | tee "$out/remote.skald"
skald_remote tls skald-tls | tee "$out/remote.tls"
# Two more rounds of each, alternated, for the tls/tcp ratios below: the
# best of three of each scheme, so that a noisy moment does not decide.
for _ in 1 2; do
	skald_remote tcp skald | tee -a "$out/remote.tcp3"
	skald_remote tls skald-tls | tee -a "$out/remote.tls3"
done
SKALD_BENCH_OUT="$root/$build/bench" bash bench/peers/remote_run.sh "$R" "$N" "$W" | tee "$out/remote.peers"

# field_of FILE PEER PHASE FIELD: e.g. the mean= of "caf  latency ..."
field_of() { awk -v p="$2" -v ph="$3" -v f="$4" '$1 == p && $2 == ph { for (i = 3; i <= NF; i++) { if ($i ~ "^" f "=") { sub(f "=", "", $i); print $i } else if (f == "rate" && $(i + 1) == "round-trips/s") print $i } }' "$1"; }
echo
echo "ratios (remote; rtt: peer/Skald, above 1 means Skald is faster; rate: Skald/peer)"
cat "$out/remote.skald" "$out/remote.peers" > "$out/remote.all" 2>/dev/null
for peer in tcp caf erlang; do
	sr=$(field_of "$out/remote.all" skald latency mean)
	pr=$(field_of "$out/remote.all" "$peer" latency mean)
	[[ -n "$sr" && -n "$pr" ]] && awk -v s="$sr" -v p="$pr" -v peer="$peer" \
		'BEGIN { printf "ratio latency    rtt_mean %-7s/skald %.2fx (skald %.1f us, %s %.1f us)\n", peer, p / s, s, peer, p }'
	st=$(field_of "$out/remote.all" skald throughput rate)
	pt=$(field_of "$out/remote.all" "$peer" throughput rate)
	[[ -n "$st" && -n "$pt" ]] && awk -v s="$st" -v p="$pt" -v peer="$peer" \
		'BEGIN { printf "ratio throughput rate     skald/%-7s %.2fx\n", peer, s / p }'
done

# tls:// against tcp:// in the same run, best of three each (the targets:
# RTT at most 1.3x, throughput at least 0.7x of tcp://).
cat "$out/remote.skald" "$out/remote.tls" "$out/remote.tcp3" "$out/remote.tls3" \
	> "$out/remote.both" 2>/dev/null
best() { field_of "$out/remote.both" "$1" "$2" "$3" | sort -g | if [[ $4 == min ]]; then head -1; else tail -1; fi; }
tr=$(best skald-tls latency p50 min)
cr=$(best skald latency p50 min)
[[ -n "$tr" && -n "$cr" ]] && awk -v t="$tr" -v c="$cr" \
	'BEGIN { printf "ratio tls        rtt_p50  tls/tcp %.2fx (tls %.1f us, tcp %.1f us; target <= 1.3x)\n", t / c, t, c }'
tt=$(best skald-tls throughput rate max)
ct=$(best skald throughput rate max)
[[ -n "$tt" && -n "$ct" ]] && awk -v t="$tt" -v c="$ct" \
	'BEGIN { printf "ratio tls        rate     tls/tcp %.2fx (tls %.0f, tcp %.0f round trips/s; target >= 0.7x)\n", t / c, t, c }'

echo
run skald-http http.skald "$build/bench/http" "$scale"

echo
run skald-cluster cluster.skald "$build/bench/cluster"

# Failover: a member killed under load, on PostgreSQL (a throwaway server of
# scripts/pg.sh, a database per run) and on the memory store in one process.
echo
if pg=$(bash scripts/pg.sh start bench 2>/dev/null); then
	run skald-failover failover.skald "$build/bench/failover" --store "$pg"
	# The tic-tac-toe cluster: moves through the HTTP API of three nodes,
	# beside one INSERT per move straight into the same server.
	echo
	run skald-tictactoe tictactoe.skald "$build/bench/tictactoe" --store "$pg" \
		--games "$(awk -v s="$scale" 'BEGIN { n = int(100 * s); print n < 2 ? 2 : n }')"
	awk '$1 == "tictactoe-moves" || $1 == "tictactoe-pg-raw" { for (i = 2; i <= NF; i++) { split($i, kv, "="); f[$1, kv[1]] = kv[2] } }
		END { m = f["tictactoe-moves", "rate"]; r = f["tictactoe-pg-raw", "rate"]
		      if (m > 0 && r > 0) printf "ratio tictactoe  moves/s over HTTP, 3 nodes / raw INSERTs/s %.2fx (p50 %s vs %s)\n", m / r, f["tictactoe-moves", "p50"], f["tictactoe-pg-raw", "p50"] }' "$out/tictactoe.skald"
	bash scripts/pg.sh stop bench >/dev/null 2>&1
else
	echo "bench: PostgreSQL did not start (scripts/pg.sh start bench): failover on memory only" >&2
	run skald-failover failover.skald "$build/bench/failover" --only memory
fi
# The anchors: Akka Cluster Sharding recovers a lost member's entities after about
# 45 s with default settings, Orleans after about 15 s (not measured here).
awk '$1 == "failover" { for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
	if (f["p99_ms"] > 0) printf "ratio failover   %-8s p99 %s ms: Akka default ~45 s / skald %.0fx, Orleans ~15 s / skald %.0fx\n", f["store"], f["p99_ms"], 45000 / f["p99_ms"], 15000 / f["p99_ms"] }' "$out/failover.skald"
