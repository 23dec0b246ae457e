#if canImport(Glibc)
import Glibc
#endif
import PipelineWorkloads

/// Swift pipeline vs its C port, interleaved: for each workload, `rounds` rounds each time `batches` batches of
/// Swift, of C and of the restore alone (in alternating order), and report ns/packet net of the restore and the
/// Swift/C ratio per round: median [min–max]. Interleaving puts both sides under the same machine state, which a
/// noisy VM does not keep from one minute to the next.
let usage = """
    usage: PipelineRatio [--rounds N] [--batches N] [--filter TEXT] [--tsv]
      --rounds N     rounds per workload (default 9)
      --batches N    batches of 64 per side and round (default 20000)
      --filter TEXT  only workloads whose name contains TEXT (e.g. "swap, lab")
      --tsv          tab-separated output
    MPLSGATE_SCALE_ENTRIES sets N for the 1M tables. Pin with taskset (taskset -c 1 PipelineRatio ...).
    """
var rounds = 9, batches = 20_000, filter = "", tsv = false
func fail(_ message: String) -> Never { Timing.usageError(message, usage) }
var args = CommandLine.arguments.dropFirst()
while let a = args.popFirst() {
    func value() -> String {
        guard let v = args.popFirst() else { fail("\(a) needs a value") }
        return v
    }
    switch a {
    case "--rounds": rounds = Int(value()) ?? 9
    case "--batches": batches = Int(value()) ?? 20_000
    case "--filter": filter = value()
    case "--tsv": tsv = true
    case "-h", "--help": print(usage); exit(0)
    default: fail("unknown option \(a)")
    }
}
func f1(_ x: Double) -> String { Timing.fixed(x, 1) }
func f2(_ x: Double) -> String { Timing.fixed(x, 2) }

let cases: [(TableKind, Placement)] = [(.lab, .resident), (.random, .resident), (.hot, .resident),
                                       (.random, .spread), (.hot, .spread)]
if tsv { print("workload\tswift_ns\tc_ns\tratio_median\tratio_min\tratio_max\trestore_ns") } else {
    print("ns/packet net of the restore (median of \(rounds) rounds × \(batches) batches of 64); Swift/C per round: "
          + "median [min–max]")
}
for op in Operation.all {
    for (table, placement) in cases {
        let name = "\(op.name), \(table.rawValue), \(placement.rawValue)"
        if !filter.isEmpty && !name.contains(filter) { continue }
        let w = WorkloadCache.shared.workload(op, table, placement)
        _ = Timing.time(batches / 4) { w.runSwift() }
        _ = Timing.time(batches / 4) { w.runC() }
        var swift: [Double] = [], c: [Double] = [], restore: [Double] = [], ratio: [Double] = []
        let perPacket = Double(batches * batchSize)
        for r in 0..<rounds {
            var ts = 0.0, tc = 0.0
            if r % 2 == 0 {
                ts = Timing.time(batches) { w.runSwift() }; tc = Timing.time(batches) { w.runC() }
            } else {
                tc = Timing.time(batches) { w.runC() }; ts = Timing.time(batches) { w.runSwift() }
            }
            let tr = Timing.time(batches) { w.runRestoreOnly() }
            let s = (ts - tr) / perPacket, cc = (tc - tr) / perPacket
            swift.append(s); c.append(cc); restore.append(tr / perPacket); ratio.append(s / cc)
        }
        let line = tsv
            ? "\(name)\t\(f2(Timing.median(swift)))\t\(f2(Timing.median(c)))\t\(f2(Timing.median(ratio)))\t\(f2(ratio.min()!))\t\(f2(ratio.max()!))\t\(f2(Timing.median(restore)))"
            : "\(name): Swift \(f1(Timing.median(swift))) ns, C \(f1(Timing.median(c))) ns, Swift/C \(f2(Timing.median(ratio))) "
              + "[\(f2(ratio.min()!))–\(f2(ratio.max()!))] (restore \(f1(Timing.median(restore))) ns)"
        print(line)
        fflush(nil)
    }
}
