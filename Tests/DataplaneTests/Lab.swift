import Foundation
import Wire
import FIB
import Dataplane
import Control
import ControlServer

/// The lab instance of examples/config.json + examples/fib.json, compiled once, and the scapy-built cases of
/// Tests/Fixtures/cases.json (made by Tests/Fixtures/make_fixtures.py).
enum Lab {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func bytes(_ relative: String) -> [UInt8] {
        [UInt8](try! Data(contentsOf: root.appendingPathComponent(relative)))
    }

    static let config = try! FIBCodec.decodeConfig(bytes("examples/config.json"))
    static let compiled = try! FIBCompiler.compile(config: config, fib: try! FIBCodec.decodeFIB(bytes("examples/fib.json")))
    static var fib: FIBSnapshot { compiled.snapshot }

    static func port(_ name: String) -> PortID { PortID(UInt16(config.ports.firstIndex(where: { $0.name == name })!)) }

    struct Expectation { var port: String; var bytes: [UInt8]; var mask: [(Int, Int)] }
    struct Case: CustomStringConvertible {
        var name: String
        var port: String
        var input: [UInt8]
        var drop: String?
        var expect: [Expectation]
        var truncate: Int?
        /// Next hops down while the case runs (liveness).
        var down: [String]
        /// A flood (multipoint VNI): the copies expected, in place order.
        var copies: [Expectation]? = nil
        var description: String { name }
    }

    static func hex(_ s: String) -> [UInt8] {
        var out: [UInt8] = []
        var i = s.startIndex
        while i < s.endIndex {
            let j = s.index(i, offsetBy: 2)
            out.append(UInt8(s[i..<j], radix: 16)!)
            i = j
        }
        return out
    }

    static let cases: [Case] = {
        let doc = try! JSONSerialization.jsonObject(with: Data(bytes("Tests/Fixtures/cases.json"))) as! [String: Any]
        return (doc["cases"] as! [[String: Any]]).map { c in
            Case(name: c["name"] as! String, port: c["port"] as! String, input: hex(c["input"] as! String),
                 drop: c["verdict"] as! String == "drop" ? c["reason"] as? String : nil,
                 expect: (c["expect"] as? [[String: Any]] ?? []).map { e in
                     Expectation(port: e["port"] as! String, bytes: hex(e["bytes"] as! String),
                                 mask: (e["mask"] as! [[Int]]).map { ($0[0], $0[1]) })
                 },
                 truncate: c["truncate"] as? Int, down: c["down"] as? [String] ?? [],
                 copies: (c["copies"] as? [[String: Any]]).map { list in list.map { e in
                     Expectation(port: e["port"] as! String, bytes: hex(e["bytes"] as! String),
                                 mask: (e["mask"] as! [[Int]]).map { ($0[0], $0[1]) })
                 } })
        }
    }()

    /// Runs one frame with the `down` next hops down, on a FIB of its own (cases run in parallel, and liveness is
    /// state beside the FIB, shared by its snapshots).
    static func run(_ input: [UInt8], port: PortID, down: [String]) -> (PortID, DropReason, [UInt8]) {
        if down.isEmpty { return run(input, port: port) }
        let own = try! FIBCompiler.compile(config: config, fib: try! FIBCodec.decodeFIB(bytes("examples/fib.json")))
        defer { own.release() }
        for name in down { own.snapshot.liveness[Int(own.engine.nextHopSlot(named: name)!)] = Liveness.down }
        return run(input, port: port, fib: own.snapshot)
    }

    /// Runs one frame through the pipeline; returns (egress, drop reason, output bytes).
    static func run(_ input: [UInt8], port: PortID, counters: WorkerCounters? = nil,
                    fib: FIBSnapshot = Lab.fib) -> (PortID, DropReason, [UInt8]) {
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: Frame.headroom + 16384, alignment: 64)
        defer { buffer.deallocate() }
        input.withUnsafeBytes { if let b = $0.baseAddress { (buffer + Frame.headroom).copyMemory(from: b, byteCount: input.count) } }
        let batch = UnsafeMutableBufferPointer<Frame>.allocate(capacity: 1)
        defer { batch.deallocate() }
        batch[0] = Frame(buffer: buffer, offset: Int32(Frame.headroom), length: Int32(input.count), ingress: port)
        let c = counters ?? WorkerCounters.allocate(entryCapacity: fib.actionCount)
        Pipeline.process(batch, fib: fib, counters: c)
        if counters == nil { c.deallocate() }
        let f = batch[0]
        let out = [UInt8](UnsafeRawBufferPointer(start: f.buffer + Int(f.offset), count: Int(f.length)))
        return (f.egress, f.drop, out)
    }

    /// Runs one frame and, when the pipeline floods it, makes its copies as a worker does (`Replication`):
    /// (verdict of the original, each copy's egress, drop and bytes).
    static func runFlood(_ input: [UInt8], port: PortID, counters: WorkerCounters? = nil,
                         fib: FIBSnapshot = Lab.fib) -> (DropReason, [(PortID, DropReason, [UInt8])]) {
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: Frame.headroom + 16384, alignment: 64)
        defer { buffer.deallocate() }
        input.withUnsafeBytes { if let b = $0.baseAddress { (buffer + Frame.headroom).copyMemory(from: b, byteCount: input.count) } }
        let batch = UnsafeMutableBufferPointer<Frame>.allocate(capacity: 1)
        defer { batch.deallocate() }
        batch[0] = Frame(buffer: buffer, offset: Int32(Frame.headroom), length: Int32(input.count), ingress: port)
        let c = counters ?? WorkerCounters.allocate(entryCapacity: fib.actionCount)
        defer { if counters == nil { c.deallocate() } }
        Pipeline.process(batch, fib: fib, counters: c)
        let f = batch[0]
        guard let plan = Replication.plan(f, fib: fib) else { return (f.drop, []) }
        let original = [UInt8](UnsafeRawBufferPointer(start: f.buffer + Int(f.offset), count: Int(f.length)))
        var copies: [(PortID, DropReason, [UInt8])] = []
        let copy = UnsafeMutableRawPointer.allocate(byteCount: Frame.headroom + 16384, alignment: 64)
        defer { copy.deallocate() }
        for k in 0..<plan.count {
            original.withUnsafeBytes { (copy + Frame.headroom).copyMemory(from: $0.baseAddress!, byteCount: original.count) }
            var x = Frame(buffer: copy, offset: Int32(Frame.headroom), length: f.length, ingress: f.ingress)
            Pipeline.replicate(&x, place: plan.place(k), fib: fib, counters: c)
            copies.append((x.egress, x.drop, [UInt8](UnsafeRawBufferPointer(start: x.buffer + Int(x.offset), count: Int(x.length)))))
        }
        // The original's bytes are never written by a flood.
        precondition(Array(input.suffix(original.count)) == original, "flood wrote the original frame")
        return (f.drop, copies)
    }
}
