import Benchmark
#if canImport(Glibc)
import Glibc
#endif
import Wire
import FIB
import Dataplane
import Control
import ControlServer

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
}
