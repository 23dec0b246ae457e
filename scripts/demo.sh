#!/usr/bin/env bash
# The README's first command: two data centres whose tenant segment (VXLAN VNI 5000, Linux VTEPs) is extended across
# an MPLS core by three MPLSGate agents (PE1 - P - PE2), in network namespaces this script creates and always deletes.
# It sets up the machine, builds MPLSGate, programs the agents only through their control sockets (mplsgatectl),
# pings h2 from h1, runs a short iperf3, prints each agent's FIB and per-label counters and one decoded frame from
# a core link. Root.
#   scripts/demo.sh            run and tear down
#   scripts/demo.sh --keep     leave it up for exploring (Ctrl-C tears it down)
#   scripts/demo.sh --no-cw    pseudowires without the RFC 4385 control word
#   scripts/demo.sh --sites 3  one tenant segment across three data centres (multipoint VNIs: DC1 with two Linux
#                              VTEPs, DC2, DC3, PE1-PE3 meshed through P); every host pings every other
set -euo pipefail
cd "$(dirname "$0")/.."
script=Tests/Integration/dci.py
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --keep|--no-cw) args+=("$1") ;;
    --sites)
      case "${2:-}" in
        2) ;;
        3) script=Tests/Integration/sites.py ;;
        *) echo "demo: --sites takes 2 or 3"; exit 2 ;;
      esac
      shift ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "demo: unknown option $1 (--keep, --no-cw, --sites 2|3)"; exit 2 ;;
  esac
  shift
done
if [ "$script" = Tests/Integration/sites.py ]; then
  for a in "${args[@]}"; do [ "$a" = --no-cw ] && { echo "demo: --no-cw is for the two-site demo"; exit 2; }; done
fi
[ "$(id -u)" -eq 0 ] || { echo "demo: needs root (network namespaces, XDP, AF_XDP)"; exit 1; }

scripts/setup.sh
echo "demo: building MPLSGate (release)"
swift build -c release 2>&1 | grep -E "error|warning: unre|Build" | tail -n 3
MPLSGATE_BIN_DIR="$(swift build -c release --show-bin-path)" exec /usr/bin/python3 "$script" "${args[@]}"
