#!/usr/bin/env bash
# Installs every Debian package Skald needs to build, test and benchmark.
# Idempotent and unattended: returns at once when everything is present.
# chromium runs headless in tests/tool: it loads the history browser's page.
# prometheus provides promtool, which checks the /metrics output in tests/ops.
# Usage: scripts/deps.sh [--bench] [--fuzz]
#   --bench adds the benchmark peers (CAF, Erlang/OTP)
#   --fuzz  adds clang's libFuzzer and sanitizer runtimes
set -euo pipefail

pkgs=(
	build-essential pkg-config clang clang-format
	libuv1-dev libjansson-dev libssl-dev libhttp-parser-dev
	libpq-dev libmongoc-dev libbson-dev
	libcriterion-dev valgrind
	postgresql prometheus
	chromium
)
for arg in "$@"; do
	case "$arg" in
	--bench) pkgs+=(libcaf-dev erlang-base g++) ;;
	--fuzz) pkgs+=(libclang-rt-14-dev) ;;
	*) echo "deps.sh: unknown option $arg (known: --bench, --fuzz)" >&2; exit 1 ;;
	esac
done

missing=()
for p in "${pkgs[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing+=("$p")
	fi
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "deps: installing ${missing[*]}" >&2
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get -o DPkg::Lock::Timeout=300 update -qq
$SUDO apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
