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
func fail(_ message: String) -> Never {
    let text = message + "\n" + usage + "\n"
    _ = text.withCString { write(2, $0, strlen($0)) }
    exit(2)
}
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
func now() -> UInt64 {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return UInt64(t.tv_sec) * 1_000_000_000 + UInt64(t.tv_nsec)
}

@inline(never)
func time(_ n: Int, _ body: () -> Void) -> Double {
    let t = now()
    for _ in 0..<n { body() }
    return Double(now() - t)
}

func median(_ v: [Double]) -> Double { let s = v.sorted(); return s[s.count / 2] }
func f1(_ x: Double) -> String { String(Int((x * 10).rounded())).withDecimal(1) }
func f2(_ x: Double) -> String { String(Int((x * 100).rounded())).withDecimal(2) }
extension String {
    func withDecimal(_ places: Int) -> String {
        let neg = hasPrefix("-")
        var digits = neg ? String(dropFirst()) : self
        while digits.count <= places { digits = "0" + digits }
        return (neg ? "-" : "") + digits.dropLast(places) + "." + digits.suffix(places)
    }
}

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
        _ = time(batches / 4) { w.runSwift() }
        _ = time(batches / 4) { w.runC() }
        var swift: [Double] = [], c: [Double] = [], restore: [Double] = [], ratio: [Double] = []
        let perPacket = Double(batches * batchSize)
        for r in 0..<rounds {
            var ts = 0.0, tc = 0.0
            if r % 2 == 0 {
                ts = time(batches) { w.runSwift() }; tc = time(batches) { w.runC() }
            } else {
                tc = time(batches) { w.runC() }; ts = time(batches) { w.runSwift() }
            }
            let tr = time(batches) { w.runRestoreOnly() }
            let s = (ts - tr) / perPacket, cc = (tc - tr) / perPacket
            swift.append(s); c.append(cc); restore.append(tr / perPacket); ratio.append(s / cc)
        }
        let line = tsv
            ? "\(name)\t\(f2(median(swift)))\t\(f2(median(c)))\t\(f2(median(ratio)))\t\(f2(ratio.min()!))\t\(f2(ratio.max()!))\t\(f2(median(restore)))"
            : "\(name): Swift \(f1(median(swift))) ns, C \(f1(median(c))) ns, Swift/C \(f2(median(ratio))) "
              + "[\(f2(ratio.min()!))–\(f2(ratio.max()!))] (restore \(f1(median(restore))) ns)"
        print(line)
        fflush(nil)
    }
}
