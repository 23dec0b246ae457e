#!/usr/bin/env bash
# The offline demo: set up this machine, build MPLSGate, and replay the bundled sample capture through
# the bundled config and FIB (swap, push, pop, PHP, ECMP, IP->MPLS, pop to IP, VXLAN<->MPLS stitching, and the drops
# an operator should see), then show the result decoded by tshark.
# Outputs go to ./out/ (forwarded.pcap, drops.pcap, ports/PORT.pcap).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
echo "demo: building mplsgate (release)"
swift build -c release --product mplsgate 2>&1 | grep -E "error|warning: unre|Compiling|Build" | tail -n 3
bin="$(swift build -c release --show-bin-path)/mplsgate"

mkdir -p out
echo
echo "demo: mplsgate replay --config examples/config.json --fib examples/fib.json --in examples/sample.pcapng"
"$bin" replay --config examples/config.json --fib examples/fib.json --in examples/sample.pcapng \
  --out out/forwarded.pcap --drops out/drops.pcap --out-dir out/ports --quiet

echo
echo "demo: the forwarded frames, decoded by tshark (PW labels 1000-1002, 2002, 2003 decoded explicitly)"
# sed, not head: head would close the pipe early and pipefail would fail the demo once the capture grows.
tshark -r out/forwarded.pcap -d mpls.label==1000,pwethnocw -d mpls.label==1001,pwethcw -d mpls.label==1002,pwethcw \
  -d mpls.label==2002,pwethcw -d mpls.label==2003,pwethnocw \
  -T fields -E header=y -e frame.number -e eth.dst -e mpls.label -e mpls.ttl -e vxlan.vni -e ip.dst -e ipv6.dst \
  -e _ws.col.Protocol 2>/dev/null | column -t -s $'\t' | sed -n '1,100p'
echo
echo "demo: done; captures are in out/ (open out/forwarded.pcap in Wireshark, or replay your own pcap)"
