#if canImport(Glibc)
import Glibc
#endif
import CBaseline
import Control
import ControlServer
import Dataplane
import FIB
import PipelineWorkloads
import Wire

/// libFuzzer differential target: every input frame goes through the Swift pipeline and through its C port
/// (Benchmarks/CBaseline, reading the very same snapshot), each in its own buffer, and the run stops on any
/// difference in output bytes, verdict, egress port, drop reason or counters. Input format as the pipeline target's
/// (Sources/mplsgate-fuzz-pipeline): byte 0 the ingress port (modulo ports + 1), byte 1 the liveness of the first
/// eight next-hop slots (bit set: down), the rest the frame, at offset 256 of an allocation of exactly 256 + n bytes
/// on both sides. Lives in the Benchmarks package, which holds the C port; built by scripts/fuzz.sh (target `diff`).
nonisolated(unsafe) let lab: CompiledFIB = {
    let config = try! FIBCodec.decodeConfig(readRepoFile("examples/config.json"))
    return try! FIBCompiler.compile(config: config, fib: FIBCodec.decodeFIB(readRepoFile("examples/fib.json")).pointToPoint, maxEntries: 64)
}()
nonisolated(unsafe) let swiftCounters = WorkerCounters.allocate(entryCapacity: lab.engine.tables.maxActions)
nonisolated(unsafe) let cCounters = WorkerCounters.allocate(entryCapacity: lab.engine.tables.maxActions)
nonisolated(unsafe) var cFIB = CPipeline.fib(lab.snapshot)
nonisolated(unsafe) var cCounterPointers = mg_c_counters(
    drops: cCounters.drops,
    ports: UnsafeMutableRawPointer(cCounters.ports).assumingMemoryBound(to: mg_c_port_counters.self),
    entries: UnsafeMutableRawPointer(cCounters.entries).assumingMemoryBound(to: mg_c_entry_counters.self))

/// MPLSGATE_FUZZ_DIFF_SELFTEST=1 changes the first byte of every frame the Swift side forwards, so the harness can
/// show it catches a difference (scripts/fuzz.sh --selftest).
let selftest = getenv("MPLSGATE_FUZZ_DIFF_SELFTEST") != nil

func differ(_ what: String, _ input: UnsafePointer<UInt8>, _ size: Int) -> Never {
    let hex = (0..<size).map { String(input[$0], radix: 16).count == 1 ? "0" + String(input[$0], radix: 16) : String(input[$0], radix: 16) }
    print("fuzz-diff: Swift and C disagree: \(what)\ninput \(hex.joined())")
    fflush(nil)
    abort()
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDiff(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard size >= 2 else { return 0 }
    let fib = lab.snapshot
    let port = UInt16(data[0]) % UInt16(fib.portCount + 1)
    for s in 0..<8 { fib.liveness[s] = data[1] >> UInt8(s) & 1 == 1 ? Liveness.down : Liveness.up }
    let n = size - 2
    let swiftBuffer = malloc(Frame.headroom + n)!, cBuffer = malloc(Frame.headroom + n)!
    defer { free(swiftBuffer); free(cBuffer) }
    memcpy(swiftBuffer + Frame.headroom, data + 2, n)
    memcpy(cBuffer + Frame.headroom, data + 2, n)
    let frames = UnsafeMutableBufferPointer<Frame>.allocate(capacity: 2)
    defer { frames.deallocate() }
    frames[0] = Frame(buffer: swiftBuffer, offset: Int32(Frame.headroom), length: Int32(n), ingress: PortID(port))
    frames[1] = Frame(buffer: cBuffer, offset: Int32(Frame.headroom), length: Int32(n), ingress: PortID(port))
    Pipeline.process(UnsafeMutableBufferPointer(rebasing: frames[0..<1]), fib: fib, counters: swiftCounters)
    mg_c_process(&cFIB, UnsafeMutableRawPointer(frames.baseAddress! + 1).assumingMemoryBound(to: mg_c_frame.self), 1,
                 &cCounterPointers)
    if selftest, frames[0].isForwarded { (frames[0].buffer + Int(frames[0].offset)).storeBytes(of: 0xEE, as: UInt8.self) }
    let s = frames[0], c = frames[1]
    if s.isForwarded != c.isForwarded || s.drop != c.drop {
        differ("verdict: Swift \(s.isForwarded ? "forwarded" : "dropped \(s.drop.name)"), C \(c.isForwarded ? "forwarded" : "dropped \(c.drop.name)")", data, size)
    }
    if s.isForwarded {
        if s.egress != c.egress { differ("egress port \(s.egress.rawValue) vs \(c.egress.rawValue)", data, size) }
        if s.offset != c.offset || s.length != c.length {
            differ("frame at \(s.offset)+\(s.length) vs \(c.offset)+\(c.length)", data, size)
        }
        if memcmp(s.buffer + Int(s.offset), c.buffer + Int(c.offset), Int(s.length)) != 0 { differ("output bytes", data, size) }
    }
    if memcmp(swiftCounters.drops, cCounters.drops, DropReason.allCases.count * 8) != 0 { differ("drop counters", data, size) }
    if memcmp(swiftCounters.ports, cCounters.ports, PortID.maxCount * MemoryLayout<PortCounters>.stride) != 0 {
        differ("port counters", data, size)
    }
    if memcmp(swiftCounters.entries, cCounters.entries, fib.actionCount * MemoryLayout<EntryCounters>.stride) != 0 {
        differ("entry counters", data, size)
    }
    return 0
}

#if !FUZZING
/// Without libFuzzer: runs the inputs given as files (a found difference reproduces under the debugger).
@main
struct ReplayInputs {
    static func main() {
        for path in CommandLine.arguments.dropFirst() {
            guard let bytes = readWholeFile(path) else { print("\(path): cannot read"); continue }
            _ = bytes.withUnsafeBufferPointer { fuzzDiff($0.baseAddress!, $0.count) }
            print("\(path): same")
        }
    }
}
#endif
