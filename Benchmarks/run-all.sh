#!/usr/bin/env bash
# Every performance figure of docs/performance.md, in one run (root; ~25 minutes on 2 cores; quick: ~4 minutes).
#
#   Benchmarks/run-all.sh [--quick] [OUTDIR]
#
# Writes one log per benchmark to OUTDIR (default: a new /tmp/mplsgate-bench.XXXX) and prints each as it runs:
#   pipeline.txt  package-benchmark: ns per batch and mallocs, every operation x table x placement, Swift and C
#   ratio.txt     PipelineRatio: Swift/C per operation, interleaved rounds (pinned to CPU 1)
#   scale.txt     package-benchmark Scale: lookups, build time and memory with 1M ILM, VNI and FTN entries
#   replay.txt    10M 64-byte frames through `mplsgate replay` next to a libpcap copy loop (pinned)
#   live.txt      MPLSGate against a minimal C AF_XDP forwarder on veth, A/B (generator CPU 0, DUT CPU 1)
#   control.txt   1M entries through the control socket: resyncs, applies, ip -batch, one-entry commits per kind
#   protection.txt  link-protection switch time with the lab FIB and with 1M entries on the protected next hop
#   learning.txt  MAC learning: multipoint forwarding with learning on vs off (pinned), the learner's throughput
# --quick: 20,000-entry tables, 1 round each, short runs: checks that everything works, not the figures.
set -euo pipefail
cd "$(dirname "$0")/.."
quick=0
if [ "${1:-}" = "--quick" ]; then quick=1; shift; fi
out=${1:-$(mktemp -d /tmp/mplsgate-bench.XXXX)}
mkdir -p "$out"
[ "$(id -u)" = 0 ] || { echo "run-all.sh: the live and control benchmarks need root"; exit 1; }

if [ $quick = 1 ]; then
  export MPLSGATE_SCALE_ENTRIES=20000 MPLSGATE_BENCH_MS=50
  ratio_args=(--rounds 1 --batches 500); replay_args=(1000000 1); live_args=(--rounds 1 --seconds 0.5)
  control_args=(20000 5000 50); protection_entries=20000; learning_args=(--rounds 1 --batches 500 --rates 10000)
else
  ratio_args=(--rounds 9 --batches 5000); replay_args=(10000000 7); live_args=(--rounds 5 --seconds 2)
  control_args=(1000000 10000); protection_entries=1000000; learning_args=(--rounds 9 --batches 5000)
fi

step() { echo "== $1 (log: $out/$2)"; }
swift build -c release 2>&1 | grep -E "error|Compiling|Build" | tail -n 2

step "pipeline: ns per batch of 64 and allocations, Swift and C" pipeline.txt
(cd Benchmarks && swift package --allow-writing-to-package-directory benchmark --target Pipeline --no-progress) \
  > "$out/pipeline.txt" 2>&1
step "pipeline: Swift/C ratios, interleaved" ratio.txt
(cd Benchmarks && swift build -c release --product PipelineRatio > /dev/null \
   && taskset -c 1 .build/release/PipelineRatio "${ratio_args[@]}") | tee "$out/ratio.txt"
step "scale: 1M ILM, VNI, FTN" scale.txt
(cd Benchmarks && swift package --allow-writing-to-package-directory benchmark --target Scale --no-progress) \
  > "$out/scale.txt" 2>&1
grep "^scale:" "$out/scale.txt" || true
step "MAC learning: forwarding with learning on vs off, and the learner's throughput" learning.txt
(cd Benchmarks && swift build -c release --product LearningBench > /dev/null \
   && taskset -c 1 .build/release/LearningBench "${learning_args[@]}" --skip-learning \
   && .build/release/LearningBench "${learning_args[@]}" --skip-forwarding) | tee "$out/learning.txt"
step "replay: mplsgate replay vs a libpcap copy loop (null, tmpfs, tmpfs with --threads 2, pcapng)" replay.txt
for variant in "null 1 pcap" "tmpfs 1 pcap" "tmpfs 2 pcap" "null 1 pcapng"; do
  echo "-- outputs, threads, input: $variant"
  # shellcheck disable=SC2086
  Benchmarks/replay/run.sh "${replay_args[@]}" $variant
done | tee "$out/replay.txt"
step "live: MPLSGate vs a C AF_XDP forwarder on veth" live.txt
/usr/bin/python3 Benchmarks/live/run.py "${live_args[@]}" | tee "$out/live.txt"
step "link protection: switch time with the lab FIB and with 1M entries" protection.txt
/usr/bin/python3 Benchmarks/protection/run.py --entries "${protection_entries}" --rounds 3 | tee "$out/protection.txt"
step "control plane: entries through the socket" control.txt
Benchmarks/control/run.sh "${control_args[@]}" | tee "$out/control.txt"
if grep -E "Malloc \(total\)" "$out/pipeline.txt" "$out/scale.txt" | grep -vqE "│ +0 │ +0 │ +0 │"; then
  echo "run-all.sh: a benchmark allocated in its measured loop"; exit 1
fi
echo "== done: $out"
