import Benchmark
#if canImport(Glibc)
import Glibc
#endif
import Wire
import FIB
import Dataplane
import Control
import ControlServer
import CBaseline

/// ns/packet of the real pipeline (the same `Pipeline.process` the agent and replay run) on batches of 64 frames,
/// with the lab FIB of examples/. Each iteration restores the frames' first bytes from a template (the pipeline
/// rewrites them in place); the `restore only` benchmark measures that cost alone so it can be subtracted.
let batchSize = 64
let bufferSize = 2048

struct Workload {
    let compiled: CompiledFIB
    let memory: UnsafeMutableRawPointer
    let template: UnsafeMutableRawPointer
    let batch: UnsafeMutableBufferPointer<Frame>
    let counters: WorkerCounters
    let length: Int
    let ingress: PortID

    init(frame: [UInt8], ingress: String) {
        let config = try! FIBCodec.decodeConfig(readRepoFile("examples/config.json"))
        compiled = try! FIBCompiler.compile(config: config, fib: try! FIBCodec.decodeFIB(readRepoFile("examples/fib.json")))
        let t = UnsafeMutableRawPointer.allocate(byteCount: bufferSize, alignment: 64)
        frame.withUnsafeBytes { t.copyMemory(from: $0.baseAddress!, byteCount: frame.count) }
        template = t
        memory = UnsafeMutableRawPointer.allocate(byteCount: batchSize * bufferSize, alignment: 4096)
        batch = .allocate(capacity: batchSize)
        counters = WorkerCounters.allocate(entryCapacity: compiled.snapshot.actionCount)
        length = frame.count
        self.ingress = PortID(UInt16(config.ports.firstIndex { $0.name == ingress }!))
    }

    /// Restores every frame's first 128 bytes and descriptor.
    @inline(__always)
    func restore() {
        for i in 0..<batchSize {
            let buf = memory + i * bufferSize
            (buf + Frame.headroom).copyMemory(from: template, byteCount: min(128, length))
            batch[i] = Frame(buffer: buf, offset: Int32(Frame.headroom), length: Int32(length), ingress: ingress)
        }
    }

    @inline(__always)
    func run() {
        restore()
        Pipeline.process(batch, fib: compiled.snapshot, counters: counters)
    }
}

/// A file of the repository, by its path from the repository root.
func readRepoFile(_ relative: String) -> [UInt8] {
    let path = "/" + #filePath.split(separator: "/").dropLast(4).joined(separator: "/") + "/" + relative
    guard let f = fopen(path, "rb") else { fatalError("cannot open \(path)") }
    defer { fclose(f) }
    var out: [UInt8] = [], chunk = [UInt8](repeating: 0, count: 65536)
    while true { let n = fread(&chunk, 1, chunk.count, f); out += chunk[0..<n]; if n < chunk.count { break } }
    return out
}

func hexBytes(_ s: String) -> [UInt8] {
    stride(from: 0, to: s.count, by: 2).map { i in
        let a = s.index(s.startIndex, offsetBy: i)
        return UInt8(s[a..<s.index(a, offsetBy: 2)], radix: 16)!
    }
}

/// The input frame of a scapy-built fixture (Tests/Fixtures/cases.json) whose name starts with `prefix`.
func fixtureFrame(_ prefix: String) -> [UInt8] {
    let bytes = readRepoFile("Tests/Fixtures/cases.json")
    guard case .object(let doc) = try! JSONParser.parse(bytes), case .array(let cases)? = doc.first(where: { $0.0 == "cases" })?.1
    else { fatalError("bad fixtures") }
    for c in cases {
        guard case .object(let fields) = c, case .string(let name)? = fields.first(where: { $0.0 == "name" })?.1,
              name.hasPrefix(prefix), case .string(let input)? = fields.first(where: { $0.0 == "input" })?.1 else { continue }
        return hexBytes(input)
    }
    fatalError("no fixture named \(prefix)")
}

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(metrics: [.wallClock, .mallocCountTotal, .throughput],
                                           scalingFactor: .one, maxDuration: .seconds(2), maxIterations: 200_000)
    // One workload per operation, each a scapy fixture frame that the lab FIB forwards.
    let operations: [(String, String, String)] = [
        ("swap", "64-byte frame", "core0"),
        ("VXLAN to MPLS", "VXLAN -> MPLS, no control word", "dc0"),
        ("MPLS to VXLAN", "MPLS -> VXLAN (IPv4 underlay), no control word", "core0"),
        ("push 2 (FTN, uniform)", "FTN push 2, uniform", "vrf0"),
        ("push 16 (FTN, pipe)", "FTN push 16 labels, pipe", "vrf0"),
        ("pop to IPv4", "pop to IPv4 pipe", "core0"),
        ("PHP to IPv4", "PHP to IPv4, uniform", "core0"),
        ("ECMP swap", "ECMP: swap via a group", "core0"),
    ]
    let workloads = operations.map { ($0.0, Workload(frame: fixtureFrame($0.1), ingress: $0.2)) }
    for (name, w) in workloads {
        w.run()
        precondition(w.batch.allSatisfy(\.isForwarded), "\(name): benchmark frames must be forwarded, not dropped")
    }
    for (name, w) in workloads {
        Benchmark("\(name), batch of 64") { benchmark in
            for _ in benchmark.scaledIterations { w.run() }
        }
    }
    let swap = workloads[0].1
    Benchmark("restore only, batch of 64") { benchmark in
        for _ in benchmark.scaledIterations { swap.restore() }
    }

    // The same swap in C (-O3), on the same tables, frames and counters: the ratio is the Swift cost.
    let c = CSwap(Workload(frame: fixtureFrame("64-byte frame"), ingress: "core0"))
    c.checkSameOutput(as: Workload(frame: fixtureFrame("64-byte frame"), ingress: "core0"))
    Benchmark("swap, C baseline (-O3), batch of 64") { benchmark in
        for _ in benchmark.scaledIterations { c.run() }
    }
}

/// The C baseline over a workload's memory: the mirrors in mg_baseline.h must match Swift's layouts exactly.
final class CSwap: @unchecked Sendable {
    let w: Workload
    var fib = mg_c_fib()
    var counters: mg_c_counters

    init(_ w: Workload) {
        self.w = w
        func same(_ swift: Int, _ which: Int32, _ what: String) {
            precondition(swift == mg_c_layout(which), "C mirror of \(what): \(mg_c_layout(which)) != Swift \(swift)")
        }
        same(MemoryLayout<ILMEntry>.stride, 0, "ILMEntry size")
        same(MemoryLayout<Action>.stride, 1, "Action size")
        same(MemoryLayout<Action>.offset(of: \Action.target)!, 2, "Action.target")
        same(Action.areaOffset, 3, "Action.area")
        same(MemoryLayout<NextHopRecord>.stride, 4, "NextHopRecord size")
        same(MemoryLayout<NextHopRecord>.offset(of: \NextHopRecord.port)!, 5, "NextHopRecord.port")
        same(MemoryLayout<NextHopRecord>.offset(of: \NextHopRecord.mtu)!, 6, "NextHopRecord.mtu")
        same(MemoryLayout<PortRecord>.stride, 7, "PortRecord size")
        same(MemoryLayout<PortRecord>.offset(of: \PortRecord.role)!, 8, "PortRecord.role")
        same(MemoryLayout<Frame>.stride, 9, "Frame size")
        same(MemoryLayout<Frame>.offset(of: \Frame.offset)!, 10, "Frame.offset")
        same(MemoryLayout<Frame>.offset(of: \Frame.ingress)!, 11, "Frame.ingress")
        same(MemoryLayout<Frame>.offset(of: \Frame.egress)!, 12, "Frame.egress")
        same(MemoryLayout<Frame>.offset(of: \Frame.drop)!, 13, "Frame.drop")
        same(MemoryLayout<PortCounters>.stride, 14, "PortCounters size")
        same(MemoryLayout<EntryCounters>.stride, 15, "EntryCounters size")
        let s = w.compiled.snapshot
        fib.directory = UnsafeRawPointer(s.ilmDirectory).assumingMemoryBound(to: UnsafeMutablePointer<mg_c_ilm>?.self)
        fib.actions = UnsafeRawPointer(s.actions).assumingMemoryBound(to: mg_c_action.self)
        fib.next_hops = UnsafeRawPointer(s.nextHops).assumingMemoryBound(to: mg_c_nexthop.self)
        fib.ports = UnsafeRawPointer(s.ports).assumingMemoryBound(to: mg_c_port.self)
        fib.port_count = Int32(s.portCount)
        let reasons: [DropReason] = [.tooShort, .notForUs, .mplsNotEnabled, .unknownLabel, .reservedLabel, .ttlExpired,
                                     .noHeadroom, .mtuExceeded, .unknownPort, .malformed]
        withUnsafeMutableBytes(of: &fib.reason) { r in for (i, d) in reasons.enumerated() { r[i] = d.rawValue } }
        counters = mg_c_counters(
            drops: w.counters.drops,
            ports: UnsafeMutableRawPointer(w.counters.ports).assumingMemoryBound(to: mg_c_port_counters.self),
            entries: UnsafeMutableRawPointer(w.counters.entries).assumingMemoryBound(to: mg_c_entry_counters.self))
    }

    @inline(__always)
    func run() {
        w.restore()
        let frames = UnsafeMutableRawPointer(w.batch.baseAddress!).assumingMemoryBound(to: mg_c_frame.self)
        mg_c_process(&fib, frames, Int32(batchSize), &counters)
    }

    /// Runs both once on identical input and requires identical verdicts and bytes: the same work, checked.
    func checkSameOutput(as swift: Workload) {
        run()
        swift.run()
        for i in 0..<batchSize {
            let a = w.batch[i], b = swift.batch[i]
            precondition(a.isForwarded && a.egress == b.egress && a.offset == b.offset && a.length == b.length,
                         "C baseline and Swift disagree on frame \(i)")
            precondition(memcmp(a.buffer + Int(a.offset), b.buffer + Int(b.offset), Int(a.length)) == 0,
                         "C baseline and Swift wrote different bytes in frame \(i)")
        }
    }
}
