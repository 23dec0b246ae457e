#!/usr/bin/env bash
# libFuzzer with AddressSanitizer on MPLSGate's parsers (docs/fuzzing.md):
#   request   the control socket's request decoder and dispatcher (seeds: Tests/Fuzz/corpus)
#   pipeline  the forwarding pipeline over the lab FIB, each frame in a redzoned buffer (seeds: every fixture)
#   bfd       BFD frames and packets into a session, as the core links deliver them (seeds: the BFD fixtures and a
#             handshake)
#   fib       the config and FIB documents, objects and the compact form (seeds: examples/)
#   capture   our pcap and pcapng readers, frames into an exactly sized buffer (seeds: examples/sample.pcapng and
#             generated pcap files)
#   diff      the Swift pipeline against its C port (Benchmarks/CBaseline) on each frame: bytes, verdict, counters
#             must be the same (seeds: every fixture; built in the Benchmarks package, which holds the C port)
#   learn     the MAC learner: records, aging, flushes and controller changes against its tables' invariants
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]   each target SECONDS (default 30), all seven by default.
#        scripts/fuzz.sh --long [TARGET...]       the campaign: each target for 10 million executions or 60 CPU-minutes,
#                                                  whichever comes first, one at a time (an idle machine: never beside a
#                                                  benchmark); a table of the runs lands in out/fuzz/campaign.md.
#        scripts/fuzz.sh --selftest               shows the harness catches a one-byte over-read of a frame, and the
#                                                  differential target a one-byte difference (build both first).
# Builds its own scratch directory (.build-fuzz). Corpora grow in out/fuzz/corpus/TARGET (kept between runs);
# failing inputs land in out/fuzz/ and fail the run. The pipeline's corpus is replayed at the end and the drop
# reasons and FIB entries it reaches are printed.
set -euo pipefail
cd "$(dirname "$0")/.."
# libFuzzer and AddressSanitizer report crashes themselves; the Swift runtime's backtracer on top of them can hang
# (seen on an abort() in the differential target: swift-backtrace kept the output pipe open).
export SWIFT_BACKTRACE=enable=no
selftest=0
long=0
if [ "${1:-}" = "--selftest" ]; then selftest=1; shift; fi
if [ "${1:-}" = "--long" ]; then long=1; shift; fi
seconds=30
if [ $long = 0 ] && [ $# -gt 0 ]; then seconds=$1; shift; fi
case "$seconds" in ''|*[!0-9]*) echo "fuzz: SECONDS must be a whole number, not '$seconds'"; exit 2 ;; esac
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(request pipeline bfd fib capture diff learn)

# Release (-O): at -Onone Swift does not instrument UnsafeRawPointer.load for AddressSanitizer, so a one-byte
# over-read through PacketBytes.u8 would go unseen (the selftest shows the build catches it). The sanitizers go to
# swiftc as one flag: given as two (--sanitize=fuzzer --sanitize=address) the last one wins, and the targets were
# built without coverage ("no interesting inputs"); SwiftPM's own --sanitize=fuzzer links libFuzzer's main.
mkdir -p out
for t in "${targets[@]}"; do
  if [ "$t" = diff ]; then
    # The C port gets AddressSanitizer too (-Xcc), so a read past the frame on the C side is caught as well, and
    # UndefinedBehaviorSanitizer in trap mode (no runtime to link next to Swift's: undefined behaviour is an illegal
    # instruction, which libFuzzer reports as a crash with its input). The
    # package-benchmark plugin's own tool also gets the fuzzer flags and fails to link (two mains); SwiftPM goes on and
    # builds the product, and the build's exit status says whether it did: that link error is filtered out.
    (cd Benchmarks && swift build -c release --sanitize=fuzzer -Xswiftc -sanitize=fuzzer,address -Xcc -fsanitize=address \
      -Xcc -fsanitize=undefined -Xcc -fsanitize-trap=undefined \
      --product mplsgate-fuzz-diff -Xswiftc -DFUZZING -Xswiftc -g --scratch-path .build-fuzz > ../out/fuzz-diff-build.log 2>&1) \
      || { grep -E "error" out/fuzz-diff-build.log | tail -n 5; echo "fuzz: building the diff target failed"; exit 1; }
    grep -E "Build" out/fuzz-diff-build.log | tail -n 1
    continue
  fi
  swift build -c release --sanitize=fuzzer -Xswiftc -sanitize=fuzzer,address --product "mplsgate-fuzz-$t" \
    -Xswiftc -DFUZZING -Xswiftc -g --scratch-path .build-fuzz 2>&1 | grep -E "error|warning: unre|Build" | tail -n 3
done
bin=.build-fuzz/release
binOf() { [ "$1" = diff ] && echo Benchmarks/.build-fuzz/release || echo "$bin"; }
mkdir -p out/fuzz/corpus

seed() {  # seed TARGET DIR: the target's seed inputs
  case "$1" in
    request) cp Tests/Fuzz/corpus/* "$2/" ;;
    diff) /usr/bin/python3 Tests/Fuzz/seeds.py pipeline "$2" ;;
    *) /usr/bin/python3 Tests/Fuzz/seeds.py "$1" "$2" ;;
  esac
}

if [ $selftest = 1 ]; then
  # The over-read goes through PacketBytes.u8, as the pipeline's own one-byte reads do.
  work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
  seed pipeline "$work"
  one=$(ls "$work" | head -n 1)
  out=$(MPLSGATE_FUZZ_OVERREAD=1 "$bin/mplsgate-fuzz-pipeline" "$work/$one" 2>&1 || true)
  grep -q "heap-buffer-overflow" <<<"$out" || { echo "fuzz selftest: the over-read was NOT caught"; exit 1; }
  echo "fuzz selftest: a one-byte read past the frame is caught (heap-buffer-overflow)"
  # The differential target must notice one changed output byte (every seed the lab forwards).
  out=$(MPLSGATE_FUZZ_DIFF_SELFTEST=1 Benchmarks/.build-fuzz/release/mplsgate-fuzz-diff -runs=0 -artifact_prefix="$work/" "$work" 2>&1 || true)
  grep -q "Swift and C disagree: output bytes" <<<"$out" \
    || { echo "fuzz selftest: the differential target did NOT catch a changed byte"; exit 1; }
  echo "fuzz selftest: the differential target catches a one-byte difference between Swift and C"
  exit 0
fi

# CPU seconds used by the waited-for children of this shell (utime + stime in /proc/PID/stat's cutime, cstime).
childCPU() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.1f", ($16 + $17) / hz }' /proc/$$/stat; }

status=0
if [ $long = 1 ]; then
  limits=(-runs=10000000 -max_total_time=3600)
  printf '| target | executions | CPU s | exec/s | cov / ft | corpus (inputs, size) | findings |\n|---|---|---|---|---|---|---|\n' \
    > out/fuzz/campaign.md
else
  limits=(-max_total_time="$seconds")
fi
for t in "${targets[@]}"; do
  corpus=out/fuzz/corpus/$t
  mkdir -p "$corpus"
  seeds=$(mktemp -d)
  seed "$t" "$seeds"
  echo "== fuzz $t: ${limits[*]}"
  before=$(childCPU)
  "$(binOf "$t")/mplsgate-fuzz-$t" "${limits[@]}" -max_len=4096 -artifact_prefix="out/fuzz/$t-" \
    -print_final_stats=1 "$corpus" "$seeds" > "out/fuzz/$t.log" 2>&1 || true
  cpu=$(awk -v a="$before" -v b="$(childCPU)" 'BEGIN { printf "%.0f", b - a }')
  grep -E "^(Done|stat::number_of_executed_units|stat::average_exec_per_sec|==[0-9]+==|SUMMARY)|cov: .* ft: " \
    "out/fuzz/$t.log" | grep -vE "^#[0-9]+\s+(pulse|NEW|REDUCE)" | tail -n 6 || true
  echo "   CPU: ${cpu} s"
  rm -rf "$seeds"
  if [ $long = 1 ]; then
    runs=$(awk '/^stat::number_of_executed_units/ { print $NF }' "out/fuzz/$t.log" | tail -n 1)
    rate=$(awk '/^stat::average_exec_per_sec/ { print $NF }' "out/fuzz/$t.log" | tail -n 1)
    cov=$(grep -oE "cov: [0-9]+ ft: [0-9]+" "out/fuzz/$t.log" | tail -n 1 | awk '{ print $2 " / " $4 }')
    size=$(find "$corpus" -type f -printf '%s\n' | awk '{ s += $1 } END { printf "%d", (s + 1023) / 1024 }')
    found=$(compgen -G "out/fuzz/$t-*-*" | wc -l || true)
    printf '| `%s` | %s | %s | %s | %s | %s, %s KiB | %s |\n' "$t" "${runs:-?}" "$cpu" "${rate:-?}" "${cov:-?}" \
      "$(ls "$corpus" | wc -l)" "$size" "$([ "$found" = 0 ] && echo none || echo "$found failing inputs")" \
      >> out/fuzz/campaign.md
  fi
  # Any one kind of artifact fails the run (`ls` of several globs fails when one of them matches nothing, which
  # hid a crash found by the capture target).
  if compgen -G "out/fuzz/$t-crash-*" >/dev/null || compgen -G "out/fuzz/$t-leak-*" >/dev/null \
     || compgen -G "out/fuzz/$t-timeout-*" >/dev/null || compgen -G "out/fuzz/$t-oom-*" >/dev/null; then
    echo "fuzz $t: failing inputs in out/fuzz/ (replay: swift build --product mplsgate-fuzz-$t && .build/debug/mplsgate-fuzz-$t FILE;"\
      "diff: the same in Benchmarks/)"
    status=1
  fi
done

# replay_reach T WHAT: T's corpus and seeds replayed with MPLSGATE_FUZZ_REACH=1; the outcomes (KIND NAME COUNT) go
# to out/fuzz/reach-T.txt.
replay_reach() {
  local t=$1 seeds
  seeds=$(mktemp -d)
  seed "$t" "$seeds"
  echo "== $t corpus and seeds: $2 ($(ls "out/fuzz/corpus/$t" "$seeds" | wc -l) inputs)"
  MPLSGATE_FUZZ_REACH=1 "$(binOf "$t")/mplsgate-fuzz-$t" -runs=0 "out/fuzz/corpus/$t" "$seeds" 2>/dev/null \
    | grep "^reach " | awk '{ printf "  %-6s %-34s %s\n", $2, $3, $4 }' | tee "out/fuzz/reach-$t.txt"
  rm -rf "$seeds"
}
# expect_reach T WHAT KIND NAME...: fails the run unless each NAME was reached as KIND at least once.
expect_reach() {
  local t=$1 what=$2 kind=$3 missing=""
  shift 3
  for n in "$@"; do
    awk -v k="$kind" -v n="$n" '$1 == k && $2 == n && $3 > 0 { f = 1 } END { exit !f }' "out/fuzz/reach-$t.txt" \
      || missing="$missing $n"
  done
  if [ -n "$missing" ]; then echo "fuzz: $what not reached:$missing"; status=1; fi
}
has() { printf '%s\n' "${targets[@]}" | grep -qx "$1"; }

if has pipeline; then
  replay_reach pipeline "drop reasons and FIB entries reached"
  # Not reachable here by design: frameTooLong (counted by the I/O layer), noHeadroom (256 bytes of headroom hold
  # every push the FIB can make), flood (a verdict, never counted as a drop), bumRateLimited (set by the
  # replication step of a worker or replay, which this target does not rate-limit) and xdpTransmitError (the live
  # agent's count of the XDP fast tier's refused redirects, never the pipeline's). Every operation: each entry of
  # the lab FIB is one (swap, PHP, pop, pop to IP/VRF/VXLAN/multipoint, VNI push, multipoint VNI, FTN push, drop, ECMP).
  missing=$(awk '$3 == 0 && ($1 == "entry" || ($1 == "drop" && $2 != "frameTooLong" && $2 != "noHeadroom" \
                 && $2 != "flood" && $2 != "bumRateLimited" && $2 != "xdpTransmitError")) { print $1 " " $2 }' \
                 out/fuzz/reach-pipeline.txt)
  if [ -n "$missing" ]; then echo "fuzz: drop reasons or FIB entries (operations) not reached: $(echo $missing)"; status=1; fi
fi
if has request; then
  replay_reach request "replies by outcome"
  # Every error code one request can earn from a fresh service without a data plane or state file. Not reachable
  # here by design: -32001 busy (needs a second request or client), -32007 (a limit needs a message far above
  # -max_len), -32009 (the socket's peer check), -32010 (needs a state file).
  expect_reach request "request error codes" code -32700 -32600 -32601 -32602 -32603 -32002 -32003 -32004 -32005 \
    -32006 -32008
  expect_reach request "request results" result reply
fi
if has fib; then
  replay_reach fib "documents by outcome"
  # Every kind of validation error (ValidationError.Kind, the control protocol's data.reason) and both results.
  expect_reach fib "FIB document errors" error syntax type missing unknownKey format range empty reserved duplicate \
    reference limit version rule
  expect_reach fib "FIB document results" result fib config
fi
if has capture; then
  replay_reach capture "files by outcome"
  # Every kind of CaptureError a file can earn; not io (the file system's errors) nor usage (replay's options).
  expect_reach capture "capture errors" error notACapture libpcap linkType truncated badLength badMagic blockTooShort \
    unsupported undefinedInterface overrun noInterface
  expect_reach capture "capture results" result read
fi
[ $long = 1 ] && { echo "== campaign (out/fuzz/campaign.md)"; cat out/fuzz/campaign.md; }
[ $status = 0 ] && echo "fuzz: no failing input"
exit $status
