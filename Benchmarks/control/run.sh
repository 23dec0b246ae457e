#!/usr/bin/env bash
# Control-plane speed: N ILM entries (default 1,000,000) programmed through the socket of a live agent, as a
# chunked resync and as apply calls of 1,000 entries. Root; builds release first.
# Usage: Benchmarks/control/run.sh [N] [CHUNK]
set -euo pipefail
cd "$(dirname "$0")/../.."
swift build -c release 2>&1 | grep -E "error|Build" | tail -n 2
MPLSGATE_BIN_DIR="$(swift build -c release --show-bin-path)" /usr/bin/python3 Benchmarks/control/program.py "${1:-1000000}" "${2:-10000}"
