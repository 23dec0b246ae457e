#!/usr/bin/env bash
# Same-run A/B of the Swift pipeline before and after a change:
#
#   Benchmarks/ab/run.sh BASE_REV [--filter TEXT] [--processes N] [--rounds N] [--batches N] [--base-harness]
#
# Builds PipelineRatio twice with today's benchmark harness (Benchmarks/ and its workloads; the C port stays each
# side's own): once over the MPLSGate sources of BASE_REV (a scratch git worktree) and once over the working tree. Then runs the two
# binaries alternately, N processes each (A B B A A B ...), pinned to CPU 1, and prints for every workload the
# median Swift ns/packet of A (base) and B (working tree) over all their rounds, and B − A. Only the Swift column is
# compared: the C port is the same code in both. With --base-harness, A keeps BASE_REV's own Benchmarks/ (when
# today's harness no longer builds against the base). The scratch worktree is removed on every exit.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

[ $# -ge 1 ] || { sed -n 2,9p "$0"; exit 2; }
base=$1; shift
filter="swap"; processes=5; rounds=3; batches=20000; base_harness=0
while [ $# -gt 0 ]; do
  case "$1" in
    --filter) filter=$2; shift 2 ;;
    --processes) processes=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --batches) batches=$2; shift 2 ;;
    --base-harness) base_harness=1; shift ;;
    *) echo "ab: unknown option $1" >&2; exit 2 ;;
  esac
done
git rev-parse --verify -q "$base^{commit}" >/dev/null || { echo "ab: $base is not a commit" >&2; exit 2; }

work=$(mktemp -d /tmp/mg-ab-XXXXXX)
cleanup() { git -C "$root" worktree remove --force "$work/base" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
git worktree add --detach -q "$work/base" "$base"
# Today's harness over the base's sources (unless --base-harness).
[ "$base_harness" = 1 ] || rm -rf "$work/base/Benchmarks"
if [ "$base_harness" = 0 ]; then
  mkdir -p "$work/base/Benchmarks"
  (cd "$root/Benchmarks" && tar --exclude=.build -cf - .) | (cd "$work/base/Benchmarks" && tar -xf -)
  # ... except the C port, which must mirror the base's pipeline (its layout and drop-reason checks run first).
  git -C "$work/base" checkout -q -- Benchmarks/Benchmarks/CBaseline
fi

echo "ab: building PipelineRatio over $base (A) and over the working tree (B)"
for side in "$work/base" "$root"; do
  (cd "$side/Benchmarks" && swift build -c release --product PipelineRatio 2>&1 | grep -E "error|Compiling|Build" | tail -n 2)
done
a="$work/base/Benchmarks/.build/release/PipelineRatio"
b="$root/Benchmarks/.build/release/PipelineRatio"

for i in $(seq 1 "$processes"); do
  order="a b"; [ $((i % 2)) -eq 0 ] && order="b a"
  for who in $order; do
    bin=$a; [ "$who" = b ] && bin=$b
    taskset -c 1 "$bin" --tsv --filter "$filter" --rounds "$rounds" --batches "$batches" | tail -n +2 \
      | sed "s/^/$who\t/" >> "$work/results.tsv"
  done
done

/usr/bin/python3 - "$work/results.tsv" "$base" "$processes" "$rounds" <<'PY'
import collections, statistics, sys
path, base, processes, rounds = sys.argv[1:]
values = collections.defaultdict(lambda: {"a": [], "b": []})
order = []
for line in open(path):
    who, name, swift, *_ = line.rstrip("\n").split("\t")
    if name not in values:
        order.append(name)
    values[name][who].append(float(swift))
print(f"Swift ns/packet, median over {processes} processes per side (each the median of {rounds} rounds); "
      f"A = {base}, B = working tree")
for name in order:
    a, b = statistics.median(values[name]["a"]), statistics.median(values[name]["b"])
    spread = lambda v: f"[{min(v):.2f}–{max(v):.2f}]"
    print(f"{name}: A {a:.2f} {spread(values[name]['a'])}  B {b:.2f} {spread(values[name]['b'])}  B−A {b - a:+.2f} ns")
PY
