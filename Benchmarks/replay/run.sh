#!/usr/bin/env bash
# Replay speed: N 64-byte frames on tmpfs through `mplsgate replay` (swap) and through a libpcap read->write loop
# with no processing, alternated A/B. Usage: Benchmarks/replay/run.sh [N] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-2000000}; rounds=${2:-3}
tmp=$(mktemp -d /dev/shm/mplsgate-replay.XXXX); trap 'rm -rf "$tmp"' EXIT
cc -O2 -o "$tmp/pcap_copy" Benchmarks/replay/pcap_copy.c -lpcap
/usr/bin/python3 Benchmarks/replay/make_capture.py "$n" "$tmp/in.pcap"
swift build -c release --product mplsgate >/dev/null
bin="$(swift build -c release --show-bin-path)/mplsgate"
for r in $(seq "$rounds"); do
  t0=$(date +%s.%N); "$tmp/pcap_copy" "$tmp/in.pcap" "$tmp/copy.pcap" >/dev/null; t1=$(date +%s.%N)
  "$bin" replay --config examples/config.json --fib examples/fib.json --in "$tmp/in.pcap" --ingress core0 \
    --out "$tmp/out.pcap" --quiet --json > "$tmp/summary.json"; t2=$(date +%s.%N)
  out=$(grep -o '"framesOut":[0-9]*' "$tmp/summary.json" | cut -d: -f2)
  [ "$out" = "$n" ] || { echo "replay forwarded $out of $n"; exit 1; }
  awk -v n="$n" -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN {
    copy = n / (b - a) / 1e6; rep = n / (c - b) / 1e6
    printf "round: pcap_copy %.2f Mpps, mplsgate replay %.2f Mpps, ratio %.2f\n", copy, rep, rep / copy }'
done
