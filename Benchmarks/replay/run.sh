#!/usr/bin/env bash
# Replay speed: N 64-byte frames on tmpfs through `mplsgate replay` (swap) and through a libpcap read->write loop
# with no processing, alternated A/B. Usage: Benchmarks/replay/run.sh [N] [ROUNDS] [tmpfs|null] [THREADS] [pcap|pcapng]
# Outputs go to tmpfs files (default) or to /dev/null ("null": leaves out the kernel's page-cache copy of the written
# file, which varies by a factor of two from run to run here; docs/performance.md). THREADS (default 1) is replay's
# --threads: with 1 both are pinned to CPU 1; with 2 replay may use both CPUs (the copy loop stays on CPU 1).
# Prints each round and the median ratio (replay Mpps / copy-loop Mpps; wall clock of each whole process).
# With MPLSGATE_REPLAY_REFERENCE=/path/to/another/mplsgate, its output of the same capture is compared byte for byte
# with this build's first.
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-10000000}; rounds=${2:-5}; sink=${3:-tmpfs}; threads=${4:-1}; format=${5:-pcap}
tmp=$(mktemp -d /dev/shm/mplsgate-replay.XXXX); trap 'rm -rf "$tmp"' EXIT
clang -O2 -o "$tmp/pcap_copy" Benchmarks/replay/pcap_copy.c -lpcap
/usr/bin/python3 Benchmarks/replay/make_capture.py "$n" "$tmp/in.pcap"
if [ "$format" = pcapng ]; then  # the same frames as pcapng (editcap comes with tshark); both sides read it
  editcap -F pcapng "$tmp/in.pcap" "$tmp/in.pcapng" && mv "$tmp/in.pcapng" "$tmp/in.pcap"
fi
swift build -c release --product mplsgate >/dev/null
bin="$(swift build -c release --show-bin-path)/mplsgate"
# One untimed warm-up of each (page cache, the outputs' tmpfs pages), then timed rounds that alternate which goes
# first; each overwrites its output of the round before.
copy_out="$tmp/copy.pcap"; replay_out="$tmp/out.pcap"
if [ "$sink" = null ]; then copy_out=/dev/null; replay_out=/dev/null; fi
copy() { taskset -c 1 "$tmp/pcap_copy" "$tmp/in.pcap" "$copy_out" >/dev/null; }
cpus=1; [ "$threads" = 1 ] || cpus=0,1
replay() {
  taskset -c "$cpus" "$bin" replay --config examples/config.json --fib examples/fib.json --in "$tmp/in.pcap" \
    --ingress core0 --out "$replay_out" --quiet --json --threads "$threads" > "$tmp/summary.json"
}
if [ -n "${MPLSGATE_REPLAY_REFERENCE:-}" ]; then
  "$bin" replay --config examples/config.json --fib examples/fib.json --in "$tmp/in.pcap" --ingress core0 \
    --out "$tmp/this.pcap" --quiet --threads "$threads" > /dev/null
  "$MPLSGATE_REPLAY_REFERENCE" replay --config examples/config.json --fib examples/fib.json --in "$tmp/in.pcap" \
    --ingress core0 --out "$tmp/reference.pcap" --quiet > /dev/null
  cmp "$tmp/this.pcap" "$tmp/reference.pcap" && echo "output identical to $MPLSGATE_REPLAY_REFERENCE's ($(stat -c %s "$tmp/this.pcap") bytes)"
  rm -f "$tmp/this.pcap" "$tmp/reference.pcap"
fi
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
