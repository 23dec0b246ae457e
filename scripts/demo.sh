#!/usr/bin/env bash
# The README's first command: two data centres whose tenant segment (VXLAN VNI 5000, Linux VTEPs) is extended across
# an MPLS core by three MPLSGate agents (PE1 - P - PE2), in network namespaces this script creates and always deletes.
# It sets up the machine, builds MPLSGate, programs the agents only through their control sockets (mplsgatectl),
# pings h2 from h1, runs a short iperf3, prints each agent's FIB and per-label counters and one decoded frame from
# a core link. Root.
#   scripts/demo.sh            run and tear down
#   scripts/demo.sh --keep     leave it up for exploring (Ctrl-C tears it down)
#   scripts/demo.sh --no-cw    pseudowires without the RFC 4385 control word
set -euo pipefail
cd "$(dirname "$0")/.."
for a in "$@"; do
  case "$a" in
    --keep|--no-cw) ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "demo: unknown option $a (--keep, --no-cw)"; exit 2 ;;
  esac
done
[ "$(id -u)" -eq 0 ] || { echo "demo: needs root (network namespaces, XDP, AF_XDP)"; exit 1; }

scripts/setup.sh
echo "demo: building MPLSGate (release)"
swift build -c release 2>&1 | grep -E "error|warning: unre|Build" | tail -n 3
MPLSGATE_BIN_DIR="$(swift build -c release --show-bin-path)" exec /usr/bin/python3 Tests/Integration/dci.py "$@"
