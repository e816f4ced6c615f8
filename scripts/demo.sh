#!/usr/bin/env bash
# `make demo`: runs the showcase. The tic-tac-toe game when it is built,
# otherwise the runtime tour (examples/counter). Exits by itself.
set -euo pipefail
build=${1:-build}
if [[ -x "$build/examples/tictactoe" ]]; then
	exec "$build/examples/tictactoe" demo --store "${SKALD_DEMO_STORE:-memory://demo}"
fi
exec "$build/examples/counter"
