#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import Wire
import FIB
import Dataplane
import IO
import PipelineWorkloads

/// MAC learning's two costs (issue 18), measured in one run:
///
/// 1. Forwarding: multipoint known unicast (a local VTEP's frame to a site) with learning off and on, interleaved
///    round by round: on the lab FIB (learning on adds the source's static-MAC check), and over 1M MACs (off: 1M
///    static MACs; on: 1M learned MACs, looked up after the static table misses). ns/packet, median of the rounds.
/// 2. Learning: new source MACs posted to the real learner thread (`LearnerThread`: its ring, its 1 ms idle poll,
///    its lock) at a fixed rate for a second each, rising; for every 64th MAC the time until a worker's lookup
///    finds it. The highest rate whose p99 stays within 10 ms with nothing dropped is the learning throughput.
let usage = """
    usage: LearningBench [--rounds N] [--batches N] [--rates LIST] [--skip-forwarding] [--skip-learning]
      --rounds N     forwarding rounds (default 9); --batches N: batches of 64 per side and round (default 20000)
      --rates LIST   new MACs per second to try, comma-separated (default 10000,50000,100000,200000,500000,1000000,2000000)
    MPLSGATE_SCALE_ENTRIES sets N for the 1M tables. Pin with taskset.
    """
var rounds = 9, batches = 20_000, skipForwarding = false, skipLearning = false
var rates = [10_000, 50_000, 100_000, 200_000, 500_000, 1_000_000, 2_000_000]
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
    case "--rates": rates = value().split(separator: ",").compactMap { Int($0) }
    case "--skip-forwarding": skipForwarding = true
    case "--skip-learning": skipLearning = true
    case "-h", "--help": print(usage); exit(0)
    default: fail("unknown option \(a)")
    }
}
func f2(_ x: Double) -> String { Timing.fixed(x, 2) }

if !skipForwarding {
    let op = Operation.multipoint[0]
    print("forwarding: \(op.name), ns/packet (median of \(rounds) rounds × \(batches) batches of 64, net of the restore)")
    for (table, off, on) in [(TableKind.lab, LearningVariant.off, LearningVariant.on),
                             (.random, .off, .learned)] {
        let a = WorkloadCache.shared.workload(op, table, .resident, learning: off)
        let b = WorkloadCache.shared.workload(op, table, .resident, learning: on)
        _ = Timing.time(batches / 4) { a.runSwift() }
        _ = Timing.time(batches / 4) { b.runSwift() }
        var ta: [Double] = [], tb: [Double] = [], ratio: [Double] = []
        let perPacket = Double(batches * batchSize)
        for r in 0..<rounds {
            var x = 0.0, y = 0.0, z = 0.0
            let sides = r % 2 == 0 ? [0, 1, 2] : [2, 1, 0]
            for side in sides {
                switch side {
                case 0: x = Timing.time(batches) { a.runSwift() }
                case 1: y = Timing.time(batches) { b.runSwift() }
                default: z = Timing.time(batches) { a.runRestoreOnly() }
                }
            }
            let pa = (x - z) / perPacket, pb = (y - z) / perPacket
            ta.append(pa); tb.append(pb); ratio.append(pb / pa)
        }
        let label = table == .lab ? "lab FIB (static MACs)" : "\(scaleEntries) MACs, random keys (off: static; on: learned)"
        print("  \(label): \(off.rawValue) \(f2(Timing.median(ta))), \(on.rawValue) \(f2(Timing.median(tb))) ns/packet; "
              + "on/off \(f2(Timing.median(ratio))) [\(f2(ratio.min()!))–\(f2(ratio.max()!))]")
    }
}

if !skipLearning {
    print("learning: new source MACs posted to the learner thread for 1 s per rate; time until a lookup finds them")
    print("  rate/s     learned   ring full  p50 ms  p99 ms  max ms  within 10 ms")
    var best = 0
    for (k, rate) in rates.enumerated() {
        let qsbr = QuiescentState(workers: 1)
        let learner = LearnerThread(workers: 1, capacity: 1 << 23, qsbr: qsbr)
        let ids: [UInt64] = [Segment.siteID("dc2"), Segment.siteID("dc3")]
        let segment = LearningSegment(slot: 0, vni: 6000, layout: Segment.layout(sites: 2, ids: ids), placeIDs: ids,
                                      placeNames: ["dc2", "dc3"], siteCount: 2, learning: true, macLimit: 4_194_304,
                                      agingSeconds: 300, moveLimit: 5, moveWindowSeconds: 180, holdSeconds: 300)
        learner.configure([segment])
        try! learner.start()
        let base = UInt64(0x0200_0000_0000) | UInt64(k) << 32
        var latencies: [Double] = []
        var pending: [(mac: UInt64, t: UInt64)] = []
        var full = 0
        let start = Timing.now()
        let n = rate
        var i = 0
        while i < n {
            // Post in bursts of 64 (a worker's batch) on schedule.
            let due = start + UInt64(Double(i) / Double(rate) * 1e9)
            while Timing.now() < due {
                if let p = pending.first, let t = LearnedTable.current(learner.root.tables, slot: 0, vni: 6000, layout: segment.layout),
                   LearnedTable.probe(t, mac: p.mac).index >= 0 {
                    latencies.append(Double(Timing.now() - p.t) / 1e6)
                    pending.removeFirst()
                }
            }
            for j in 0..<min(64, n - i) {
                let mac = base | UInt64(i + j)
                if !learner.post(LearnRecord(mac: mac, placeID: ids[(i + j) & 1], layout: segment.layout, vni: 6000, slot: 0),
                                 worker: 0) { full += 1 }
                if (i + j) % 64 == 0 { pending.append((mac, Timing.now())) }
            }
            i += 64
        }
        // The rest of the samples (at most 2 s more).
        let deadline = Timing.now() + 2_000_000_000
        while let p = pending.first, Timing.now() < deadline {
            if let t = LearnedTable.current(learner.root.tables, slot: 0, vni: 6000, layout: segment.layout),
               LearnedTable.probe(t, mac: p.mac).index >= 0 {
                latencies.append(Double(Timing.now() - p.t) / 1e6)
                pending.removeFirst()
            }
        }
        let learned = learner.count(vni: 6000)
        learner.stop()
        let s = latencies.sorted()
        let p50 = s.isEmpty ? 0 : s[s.count / 2], p99 = s.isEmpty ? 0 : s[min(s.count - 1, s.count * 99 / 100)]
        let ok = full == 0 && pending.isEmpty && p99 <= 10
        if ok { best = rate }
        func col(_ x: String, _ w: Int) -> String { String(repeating: " ", count: max(0, w - x.count)) + x }
        print(col(String(rate), 8) + col(String(learned), 12) + col(String(full), 12) + col(f2(p50), 8) + col(f2(p99), 8)
              + col(f2(s.last ?? 0), 8) + "  " + (ok ? "yes" : "no" + (pending.isEmpty ? "" : " (\(pending.count) never seen)")))
    }
    print("learning throughput: \(best) new MACs/s with p99 within 10 ms and nothing dropped")
}
