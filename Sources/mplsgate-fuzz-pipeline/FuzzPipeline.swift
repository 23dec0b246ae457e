#if canImport(Glibc)
import Glibc
#endif
import Control
import ControlServer
import Dataplane
import FIB
import Wire
import FuzzInputs

/// libFuzzer target for the forwarding pipeline over the lab FIB (examples/config.json + examples/fib.json).
/// An input is: byte 0, the ingress port (modulo ports + 1, so an unknown port is reached too); byte 1, the
/// liveness of the first eight next-hop slots (bit set: down); the rest, the frame. The frame sits at offset 256 of
/// an allocation of exactly 256 + n bytes, so AddressSanitizer catches a read past its end or a write before the
/// headroom. After the pipeline the verdict must be consistent (a forwarded frame inside its buffer, on a real port;
/// a dropped one with a reason).
///
/// VNI 6000 learns: a few learned MACs are fixed for the run (`learner`).
///
/// MPLSGATE_FUZZ_REACH=1 prints, at exit, every drop reason and FIB entry the inputs reached (scripts/fuzz.sh
/// replays a corpus that way); MPLSGATE_FUZZ_OVERREAD=1 reads one byte past the frame on purpose, so the harness
/// can show the sanitizer catches it. Built by scripts/fuzz.sh (`--sanitize=fuzzer --sanitize=address`).
nonisolated(unsafe) let lab: CompiledFIB = {
    let config = try! FIBCodec.decodeConfig(FuzzInputs.repoFile("examples/config.json"))
    return try! FIBCompiler.compile(config: config, fib: FIBCodec.decodeFIB(FuzzInputs.repoFile("examples/fib.json")), maxEntries: 64)
}()
/// VNI 6000's learned MACs, fixed for the whole run so that every input sees the same state: 0a:00:00:00:00:0k
/// at place k - 1 (sites, then local VTEPs), each input's learn records discarded. A frame to or from one of them
/// takes the learned-table paths (known unicast to a learned place, a source seen elsewhere, refreshes).
nonisolated(unsafe) let learner: MACLearner = {
    let l = MACLearner(root: LearnedRoot(), capacity: 1024)
    let segments = lab.engine.learningSegments()
    l.configure(segments)
    for s in segments {
        for place in 0..<s.placeIDs.count {
            l.apply(LearnRecord(mac: 0x0A00_0000_0000 | UInt64(place + 1), placeID: s.placeIDs[place], layout: s.layout,
                                vni: s.vni, slot: s.slot), now: 100)
        }
    }
    return l
}()
nonisolated(unsafe) let counters: WorkerCounters = {
    let c = WorkerCounters.allocate(entryCapacity: lab.engine.tables.maxActions)
    c.learn.pointee.tables = learner.root.tables
    c.learn.pointee.nowSeconds = 100
    if getenv("MPLSGATE_FUZZ_REACH") != nil { atexit { printReach() } }
    return c
}()
let overread = getenv("MPLSGATE_FUZZ_OVERREAD") != nil
/// Where the deliberate over-read goes (a discarded load may be optimised away).
nonisolated(unsafe) var overreadSink: UInt8 = 0

func printReach() {
    for r in DropReason.allCases.dropFirst() {
        print("reach drop \(r.name) \(counters.drops[Int(r.rawValue)])")
    }
    for (slot, name) in lab.actionNames.enumerated() where !name.isEmpty {
        print("reach entry \(name.replacingSpaces) \(counters.entries[slot].packets)")
    }
    fflush(nil)
}

extension String {
    var replacingSpaces: String { String(map { $0 == " " ? "_" : $0 }) }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPipeline(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard size >= 2 else { return 0 }
    let fib = lab.snapshot
    let port = UInt16(data[0]) % UInt16(fib.portCount + 1)
    for s in 0..<8 { fib.liveness[s] = data[1] >> UInt8(s) & 1 == 1 ? Liveness.down : Liveness.up }
    let n = size - 2
    let buffer = malloc(Frame.headroom + n)!
    memcpy(buffer + Frame.headroom, data + 2, n)
    var frame = Frame(buffer: buffer, offset: Int32(Frame.headroom), length: Int32(n), ingress: PortID(port))
    Pipeline.processFrame(&frame, fib: fib, counters: counters)
    precondition(counters.learn.pointee.count <= 1, "one frame posted more than one learn record")
    counters.learn.pointee.count = 0
    if overread { overreadSink &+= PacketBytes(buffer).u8(Frame.headroom + n) }
    if frame.isForwarded {
        precondition(frame.drop == .none && Int(frame.egress.rawValue) < fib.portCount, "forwarded to a bad port")
        precondition(frame.offset >= 0 && frame.length >= 14 && Int(frame.offset) + Int(frame.length) <= Frame.headroom + n,
                     "a forwarded frame outside its buffer: offset \(frame.offset), length \(frame.length), input \(n)")
    } else {
        precondition(frame.drop != .none, "neither forwarded nor dropped")
    }
    // A flood (multipoint VNI): its copies as a worker makes them, each in an allocation of exactly headroom + the
    // inner frame, so a copy that reads past the inner frame or writes before the headroom is caught too.
    if let plan = Replication.plan(frame, fib: fib) {
        precondition(frame.offset >= 0 && Int(frame.offset) + Int(frame.length) <= Frame.headroom + n, "a flood outside its buffer")
        for k in 0..<plan.count {
            let m = Int(frame.length)
            let copy = malloc(Frame.headroom + m)!
            memcpy(copy + Frame.headroom, buffer + Int(frame.offset), m)
            var c = Frame(buffer: copy, offset: Int32(Frame.headroom), length: frame.length, ingress: frame.ingress)
            Pipeline.replicate(&c, place: plan.place(k), fib: fib, counters: counters)
            if c.isForwarded {
                precondition(Int(c.egress.rawValue) < fib.portCount && c.offset >= 0
                             && Int(c.offset) + Int(c.length) <= Frame.headroom + m, "a flood copy outside its buffer")
            } else {
                precondition(c.drop != .none && c.drop != .flood, "a copy neither forwarded nor dropped")
            }
            free(copy)
        }
    }
    free(buffer)
    return 0
}

#if !FUZZING
/// Without libFuzzer (a plain `swift build`): runs the inputs given as files.
@main
struct ReplayInputs {
    static func main() { FuzzInputs.replayArguments(fuzzPipeline) }
}
#endif
