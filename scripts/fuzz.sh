#!/usr/bin/env bash
# Fuzzes the control socket's request decoder and dispatcher with libFuzzer for SECONDS (default 30), starting
# from Tests/Fuzz/corpus. Builds its own scratch directory (.build-fuzz) with the fuzzer sanitizer.
# Usage: scripts/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-30}
swift build --sanitize=fuzzer --product mplsgate-fuzz-request -Xswiftc -DFUZZING --scratch-path .build-fuzz 2>&1 \
  | grep -E "error|warning: unre|Build" | tail -n 3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp Tests/Fuzz/corpus/* "$work/"
# Crash inputs land in out/fuzz/ (libFuzzer's -artifact_prefix); the run fails if there is one.
mkdir -p out/fuzz
.build-fuzz/debug/mplsgate-fuzz-request -max_total_time="$seconds" -max_len=4096 -artifact_prefix=out/fuzz/ \
  -print_final_stats=1 "$work" 2>&1 | grep -E "^(Done|stat::number_of_executed_units|==|SUMMARY)" || true
if ls out/fuzz/crash-* out/fuzz/leak-* out/fuzz/timeout-* >/dev/null 2>&1; then
  echo "fuzz: failing inputs in out/fuzz/ (replay: .build/debug/mplsgate-fuzz-request FILE)"
  exit 1
fi
echo "fuzz: no crash in ${seconds} s"
