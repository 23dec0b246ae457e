import Benchmark
#if canImport(Glibc)
import Glibc
#endif
import PipelineWorkloads

/// ns per batch of 64 of the real pipeline (the same `Pipeline.process` the agent and replay run) and of its C port
/// (CBaseline, -O3) on the same snapshot, frames and keys, for every operation × table × frame placement of
/// PipelineWorkloads, plus "restore only" (writing the frames' first bytes and keys, which every iteration does).
/// Allocations are counted: scripts/test.sh fails the run when any benchmark allocates.
/// Interleaved Swift/C ratios come from the PipelineRatio executable (docs/performance.md).
let benchmarks: @Sendable () -> Void = {
    let ms = Int(String(cString: getenv("MPLSGATE_BENCH_MS") ?? strdup("2000"))) ?? 2000
    Benchmark.defaultConfiguration = .init(metrics: [.wallClock, .mallocCountTotal, .throughput],
                                           scalingFactor: .one, maxDuration: .milliseconds(ms), maxIterations: 200_000)
    let cases: [(TableKind, Placement)] = [(.lab, .resident), (.random, .resident), (.hot, .resident),
                                           (.random, .spread), (.hot, .spread)]
    for op in Operation.all {
        for (table, placement) in cases {
            let name = "\(op.name), \(table.rawValue), \(placement.rawValue)"
            Benchmark("\(name), Swift") { benchmark in
                let w = WorkloadCache.shared.workload(op, table, placement)
                benchmark.startMeasurement()
                for _ in benchmark.scaledIterations { w.runSwift() }
            }
            Benchmark("\(name), C -O3") { benchmark in
                let w = WorkloadCache.shared.workload(op, table, placement)
                benchmark.startMeasurement()
                for _ in benchmark.scaledIterations { w.runC() }
            }
        }
    }
    // Multipoint VNIs (Swift only; compare with "VXLAN to MPLS" above in the same run): known unicast to a site over
    // the lab FIB and over 1M static MACs, and a broadcast flooded to two sites with its copies made as a worker does.
    let unicast = Operation.multipoint[0], flood = Operation.multipoint[1]
    for (table, placement) in [(TableKind.lab, Placement.resident), (.random, .resident), (.random, .spread)] {
        Benchmark("\(unicast.name), \(table.rawValue), \(placement.rawValue), Swift") { benchmark in
            let w = WorkloadCache.shared.workload(unicast, table, placement)
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations { w.runSwift() }
        }
    }
    Benchmark("\(flood.name) (128 copies per batch), lab FIB, resident frames, Swift") { benchmark in
        let w = WorkloadCache.shared.workload(flood, .lab, .resident)
        let copies = UnsafeMutableRawPointer.allocate(byteCount: 64 * bufferSize, alignment: 4096)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { blackHole(w.runSwiftReplicating(into: copies)) }
        benchmark.stopMeasurement()
        copies.deallocate()
    }
    Benchmark("\(flood.name), flood verdict only (no copies), lab FIB, resident frames, Swift") { benchmark in
        let w = WorkloadCache.shared.workload(flood, .lab, .resident)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { w.runSwift() }
    }
    for placement in Placement.allCases {
        Benchmark("restore only, \(placement.rawValue)") { benchmark in
            let w = WorkloadCache.shared.workload(Operation.all[0], .random, placement)
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations { w.runRestoreOnly() }
        }
    }
}
