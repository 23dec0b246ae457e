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
                 truncate: c["truncate"] as? Int, down: c["down"] as? [String] ?? [])
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
}
