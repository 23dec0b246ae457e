#!/usr/bin/env bash
# Control-plane speed (root; builds release first):
#   program.py: N ILM entries (default 1,000,000) through the socket of a live agent: resyncs (objects, compact form,
#               1 % changed), applies of 1,000 and 10,000 entries, and `ip -batch` of N IPv4 routes for comparison;
#   commit.py:  one-entry commits with N entries of each kind (ILM, VNI, IPv4 and IPv6 FTN), state file on and off.
# Usage: Benchmarks/control/run.sh [N] [CHUNK] [COMMITS]
set -euo pipefail
cd "$(dirname "$0")/../.."
swift build -c release 2>&1 | grep -E "error|Build" | tail -n 2
bin="$(swift build -c release --show-bin-path)"
MPLSGATE_BIN_DIR="$bin" /usr/bin/python3 Benchmarks/control/program.py "${1:-1000000}" "${2:-10000}"
MPLSGATE_BIN_DIR="$bin" /usr/bin/python3 Benchmarks/control/commit.py "${1:-1000000}" "${3:-1000}"
