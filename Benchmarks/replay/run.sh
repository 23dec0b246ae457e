#!/usr/bin/env bash
# Replay speed: N 64-byte frames on tmpfs through `mplsgate replay` (swap) and through a libpcap read->write loop
# with no processing, alternated A/B, both pinned to CPU 1. Usage: Benchmarks/replay/run.sh [N] [ROUNDS] [tmpfs|null]
# Outputs go to tmpfs files (default) or to /dev/null ("null": leaves out the kernel's page-cache copy of the written
# file, which varies by a factor of two from run to run here; docs/performance.md).
# Prints each round and the median ratio (replay Mpps / copy-loop Mpps; wall clock of each whole process).
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-10000000}; rounds=${2:-5}; sink=${3:-tmpfs}
tmp=$(mktemp -d /dev/shm/mplsgate-replay.XXXX); trap 'rm -rf "$tmp"' EXIT
clang -O2 -o "$tmp/pcap_copy" Benchmarks/replay/pcap_copy.c -lpcap
/usr/bin/python3 Benchmarks/replay/make_capture.py "$n" "$tmp/in.pcap"
swift build -c release --product mplsgate >/dev/null
bin="$(swift build -c release --show-bin-path)/mplsgate"
# One untimed warm-up of each (page cache, the outputs' tmpfs pages), then timed rounds that alternate which goes
# first; each overwrites its output of the round before.
copy_out="$tmp/copy.pcap"; replay_out="$tmp/out.pcap"
if [ "$sink" = null ]; then copy_out=/dev/null; replay_out=/dev/null; fi
copy() { taskset -c 1 "$tmp/pcap_copy" "$tmp/in.pcap" "$copy_out" >/dev/null; }
replay() {
  taskset -c 1 "$bin" replay --config examples/config.json --fib examples/fib.json --in "$tmp/in.pcap" --ingress core0 \
    --out "$replay_out" --quiet --json > "$tmp/summary.json"
}
copy; replay
for r in $(seq "$rounds"); do
  if [ $((r % 2)) = 1 ]; then
    t0=$(date +%s.%N); copy; t1=$(date +%s.%N); replay; t2=$(date +%s.%N)
  else
    t1=$(date +%s.%N); replay; t2=$(date +%s.%N); copy; t3=$(date +%s.%N)
    t0=$(awk -v a="$t1" -v b="$t2" -v c="$t3" 'BEGIN { printf "%.9f", a - (c - b) }')
  fi
  out=$(grep -o '"framesOut":[0-9]*' "$tmp/summary.json" | cut -d: -f2)
  [ "$out" = "$n" ] || { echo "replay forwarded $out of $n"; exit 1; }
  awk -v n="$n" -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN {
    copy = n / (b - a) / 1e6; rep = n / (c - b) / 1e6
    printf "round: pcap_copy %.2f Mpps, mplsgate replay %.2f Mpps, ratio %.2f\n", copy, rep, rep / copy }' \
    | tee -a "$tmp/rounds"
done
sort -t' ' -k10 -n "$tmp/rounds" | awk '{ r[NR] = $10 } END { printf "median ratio %.2f [%.2f-%.2f] over %d rounds\n", r[int((NR + 1) / 2)], r[1], r[NR], NR }' 
