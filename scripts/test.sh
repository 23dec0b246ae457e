#!/usr/bin/env bash
# The README's test command (and CI's): set up this machine, check that the committed fixtures are exactly what
# their scapy script makes, build and run every test (debug), build release once for the demos, the root
# integration tests (network namespaces, veth, XDP, AF_XDP, the control socket, link protection, BFD with FRR, the
# two-data-centre interconnect),
# the control benchmark's smoke pass, a short fuzz run, and the pipeline benchmark's smoke pass.
# Every root test runs as a fresh machine sees it: in its own mount namespace without a bpffs
# (scripts/restricted.sh); the live tools and an agent start also with memlock at 8 MiB and no CAP_IPC_LOCK.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh

echo "== fixtures: regenerate with scapy and compare with the committed files"
/usr/bin/python3 Tests/Fixtures/make_fixtures.py
if git rev-parse --git-dir >/dev/null 2>&1; then
  git diff --exit-code --stat -- Tests/Fixtures/cases.json examples/sample.pcapng \
    || { echo "fixtures differ from Tests/Fixtures/make_fixtures.py's output: regenerate and commit"; exit 1; }
fi

echo "== unit, fixture and replay tests (debug build)"
swift build --build-tests
swift test --skip-build

echo "== release build (reused by the demo and the integration tests)"
swift build -c release 2>&1 | grep -E "error|warning: unre|Build" | tail -n 3
bin_dir="$(swift build -c release --show-bin-path)"

echo "== replay demo (scripts/replay-demo.sh)"
demo_log=$(mktemp)
scripts/replay-demo.sh | tee "$demo_log" | tail -n 5
grep -q "frames in, .* forwarded" "$demo_log" || { echo "replay demo: no replay summary"; exit 1; }
grep -q "16001,1000" "$demo_log" || { echo "replay demo: tshark did not show the VXLAN->MPLS label stack"; exit 1; }
rm -f "$demo_log"

echo "== integration: the live agent on veth pairs in network namespaces (root)"
MPLSGATE_BIN_DIR="$bin_dir" scripts/restricted.sh /usr/bin/python3 Tests/Integration/test_agent.py

echo "== integration: the fast tier (transit labels in the XDP program) on veth: sameness, counters, tier changes (root)"
MPLSGATE_BIN_DIR="$bin_dir" scripts/restricted.sh /usr/bin/python3 Tests/Integration/test_fast_tier.py

echo "== integration: the control socket, persistence, and 60 s of updates under traffic (root)"
MPLSGATE_BIN_DIR="$bin_dir" scripts/restricted.sh /usr/bin/python3 Tests/Integration/test_control.py

echo "== integration: link protection (link events, backups, revert, flaps) under 10,000 frames/s each way (root)"
MPLSGATE_BIN_DIR="$bin_dir" scripts/restricted.sh /usr/bin/python3 Tests/Integration/test_protection.py

echo "== integration: BFD in the forwarding path, silent failures under 10,000 frames/s, interop with FRR (root)"
MPLSGATE_BIN_DIR="$bin_dir" scripts/restricted.sh /usr/bin/python3 Tests/Integration/test_bfd.py

echo "== integration: /metrics scraped by a real Prometheus, promtool, counters under churn (root)"
MPLSGATE_BIN_DIR="$bin_dir" scripts/restricted.sh /usr/bin/python3 Tests/Integration/test_metrics.py

echo "== deploy/prometheus: the scrape config and alert rules (promtool check and test rules)"
(cd deploy/prometheus && promtool check config prometheus.yml && promtool check rules mplsgate.rules.yml \
   && promtool test rules mplsgate.rules.test.yml)

echo "== control-plane benchmark smoke pass (20,000 entries; no timing assertions)"
MPLSGATE_BIN_DIR="$bin_dir" /usr/bin/python3 Benchmarks/control/program.py 20000 5000
MPLSGATE_BIN_DIR="$bin_dir" /usr/bin/python3 Benchmarks/control/commit.py 20000 50

echo "== the demo as a test: two Linux VXLAN data centres across PE1 - P - PE2 (root)"
MPLSGATE_BIN_DIR="$bin_dir" scripts/restricted.sh /usr/bin/python3 Tests/Integration/test_dci.py
demo_log=$(mktemp)
MPLSGATE_BIN_DIR="$bin_dir" /usr/bin/python3 Tests/Integration/dci.py > "$demo_log" 2>&1 || { tail -n 30 "$demo_log"; exit 1; }
grep -q "share one L2 segment" "$demo_log" || { tail -n 30 "$demo_log"; echo "demo: failed"; exit 1; }
grep -q "PW Ethernet Control Word" "$demo_log" || { echo "demo: no decoded core frame"; exit 1; }
rm -f "$demo_log"

echo "== three data centres on one tenant segment: multipoint VNIs, Linux VTEPs with head-end replication (root)"
MPLSGATE_BIN_DIR="$bin_dir" scripts/restricted.sh /usr/bin/python3 Tests/Integration/test_sites.py
echo "== MAC learning across the three data centres: learning, VM migration, a MAC flood, a flapping MAC (root)"
MPLSGATE_BIN_DIR="$bin_dir" scripts/restricted.sh /usr/bin/python3 Tests/Integration/test_learning.py
demo_log=$(mktemp)
MPLSGATE_BIN_DIR="$bin_dir" /usr/bin/python3 Tests/Integration/sites.py > "$demo_log" 2>&1 || { tail -n 30 "$demo_log"; exit 1; }
grep -q "one segment across three data centres" "$demo_log" || { tail -n 30 "$demo_log"; echo "demo --sites 3: failed"; exit 1; }
rm -f "$demo_log"

echo "== fuzz: request decoder, pipeline, BFD, config/FIB documents, capture files, Swift vs C, briefly (libFuzzer + ASan)"
scripts/fuzz.sh "${FUZZ_SECONDS:-15}"
scripts/fuzz.sh --selftest

echo "== benchmark smoke pass (no timing assertions; allocations per batch must be 0)"
if [ "${SKIP_BENCHMARKS:-0}" != 1 ]; then
  bench_log=$(mktemp)
  # The scale benchmark's tables are small here (1M entries each by default: docs/performance.md).
  (cd Benchmarks && MPLSGATE_SCALE_ENTRIES=20000 MPLSGATE_BENCH_MS=50 \
     swift package --allow-writing-to-package-directory benchmark --no-progress) > "$bench_log" 2>&1 \
    || { tail -n 40 "$bench_log"; exit 1; }
  # Swift and its C port must do the same work on every workload (bytes, verdicts, counters), or this fails.
  (cd Benchmarks && swift build -c release --product PipelineRatio > /dev/null \
     && MPLSGATE_SCALE_ENTRIES=20000 .build/release/PipelineRatio --rounds 1 --batches 200) \
    || { echo "benchmark: the Swift and C pipelines disagree"; exit 1; }
  # MAC learning's benchmark, briefly: learned destinations forward (it checks every frame's verdict) and the
  # learner thread learns what is posted.
  learn_log=$(mktemp)
  (cd Benchmarks && swift build -c release --product LearningBench > /dev/null \
     && MPLSGATE_SCALE_ENTRIES=20000 .build/release/LearningBench --rounds 1 --batches 200 --rates 10000) > "$learn_log" 2>&1 \
    || { cat "$learn_log"; echo "benchmark: MAC learning failed"; exit 1; }
  cat "$learn_log"
  grep -q "learning throughput: 10000 " "$learn_log" || { echo "benchmark: the learner did not keep up with 10,000 MACs/s"; exit 1; }
  rm -f "$learn_log"
  # Live A/B on veth, one short round, without a bpffs: the generator, the C forwarder and the agent must all move
  # frames. Then with memlock at 8 MiB and no CAP_IPC_LOCK: each DUT forwards or refuses naming the limit.
  MPLSGATE_BIN_DIR="$bin_dir" scripts/restricted.sh /usr/bin/python3 Benchmarks/live/run.py --ops swap,vxlan-to-mpls \
    --sizes 64 --rounds 1 --seconds 0.5 || { echo "benchmark: the live A/B failed"; exit 1; }
  MPLSGATE_BIN_DIR="$bin_dir" scripts/restricted.sh --limits /usr/bin/python3 Benchmarks/live/run.py --ops swap \
    --sizes 64 --rounds 1 --seconds 0.5 --limits-named || { echo "benchmark: the live tools under memlock 8 MiB"; exit 1; }
  grep -E "^(swap|VXLAN|MPLS|push|pop|PHP|ECMP|restore|ILM|VNI|FTN|keys)|Malloc \(total\)" "$bench_log" || true
  if grep -E "Malloc \(total\)" "$bench_log" | grep -vqE "│ +0 │ +0 │ +0 │"; then
    echo "benchmark: the pipeline allocated"; exit 1
  fi
  rm -f "$bench_log"
fi
echo "== all tests passed"
