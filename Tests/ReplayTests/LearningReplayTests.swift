import Foundation
import Testing

/// MAC learning through `mplsgate replay` (Tests/Fixtures/learning.json, built with scapy): each scenario is a
/// capture replayed with `--batch N` on the lab FIB (VNI 6000's learning settings overridden as the scenario says),
/// capture time as the clock. Every frame's outputs must come out in order, and the VNI's counters must match.
@Suite(.serialized) final class LearningReplayTests {
    let base = ReplayTests()

    /// A pcapng file with the lab's four ports as interfaces; frame timestamps from each frame's second.
    func writeCapture(_ frames: [(port: String, second: Int, bytes: [UInt8])], to url: URL) throws {
        let ports = ["core0", "core1", "dc0", "vrf0"]
        var d = Data()
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { d.append(contentsOf: $0) } }
        func u16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { d.append(contentsOf: $0) } }
        func padded(_ b: [UInt8]) -> [UInt8] { b + [UInt8](repeating: 0, count: (4 - b.count % 4) % 4) }
        u32(0x0A0D_0D0A); u32(28); u32(0x1A2B_3C4D); u16(1); u16(0); u32(0xFFFF_FFFF); u32(0xFFFF_FFFF); u32(28)
        for p in ports {
            let name = padded(Array(p.utf8))
            let idb = UInt32(20 + 4 + name.count + 4)
            u32(1); u32(idb); u16(1); u16(0); u32(0); u16(2); u16(UInt16(p.utf8.count)); d.append(contentsOf: name)
            u16(0); u16(0); u32(idb)
        }
        for (k, f) in frames.enumerated() {
            let body = padded(f.bytes)
            let len = UInt32(32 + body.count)
            let t = UInt64(1_764_000_000 + f.second) * 1_000_000 + UInt64(k)
            u32(6); u32(len); u32(UInt32(ports.firstIndex(of: f.port)!)); u32(UInt32(t >> 32)); u32(UInt32(t & 0xFFFF_FFFF))
            u32(UInt32(f.bytes.count)); u32(UInt32(f.bytes.count)); d.append(contentsOf: body)
            u32(len)
        }
        try d.write(to: url)
    }

    static func scenarios() throws -> [[String: Any]] {
        let url = ReplayTests.root.appendingPathComponent("Tests/Fixtures/learning.json")
        let doc = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        return doc["scenarios"] as! [[String: Any]]
    }

    @Test(arguments: try! LearningReplayTests.scenarios().map { $0["name"] as! String })
    func scenario(_ name: String) throws {
        let s = try Self.scenarios().first { $0["name"] as? String == name }!
        // The lab FIB with VNI 6000's learning overridden.
        let fibURL = ReplayTests.root.appendingPathComponent("examples/fib.json")
        var fib = try JSONSerialization.jsonObject(with: Data(contentsOf: fibURL)) as! [String: Any]
        var vnis = fib["vni"] as! [[String: Any]]
        let k = vnis.firstIndex { $0["vni"] as? Int == 6000 }!
        var mp = vnis[k]["multipoint"] as! [String: Any]
        if let l = s["learning"] as? [String: Any], !l.isEmpty { mp["learning"] = l }
        vnis[k]["multipoint"] = mp
        fib["vni"] = vnis
        let patched = base.tmp.appendingPathComponent("fib.json")
        try JSONSerialization.data(withJSONObject: fib).write(to: patched)

        let frames = s["frames"] as! [[String: Any]]
        let capture = base.tmp.appendingPathComponent("in.pcapng")
        try writeCapture(frames.map { ($0["port"] as! String, $0["second"] as! Int, base.hex($0["input"] as! String)) }, to: capture)
        let out = base.tmp.appendingPathComponent("out.pcap")
        let (rc, stdout, stderr) = try base.run(ReplayTests.binary.path, [
            "replay", "--config", ReplayTests.root.appendingPathComponent("examples/config.json").path, "--fib", patched.path,
            "--in", capture.path, "--out", out.path, "--batch", String(s["batch"] as! Int), "--json", "--quiet"])
        #expect(rc == 0, "\(name): \(stderr)")
        let expected = frames.flatMap { $0["outputs"] as! [[String: Any]] }
        let got = try base.pcapFrames(out)
        #expect(got.count == expected.count, "\(name): \(got.count) frames out, expected \(expected.count)")
        for (i, (frame, e)) in zip(got, expected).enumerated() {
            var want = base.hex(e["bytes"] as! String), have = frame
            if want.count == have.count {
                for m in e["mask"] as! [[Int]] { for j in m[0]..<(m[0] + m[1]) { want[j] = 0; have[j] = 0 } }
            }
            #expect(want == have, "\(name): output \(i) differs")
        }
        let summary = try JSONSerialization.jsonObject(with: Data(stdout.utf8)) as! [String: Any]
        let vni = (summary["multipoint"] as! [String: Any])["6000"] as! [String: Int]
        for (key, value) in s["counters"] as! [String: Int] {
            #expect(vni[key] == value, "\(name): \(key) \(vni[key] ?? -1), expected \(value)")
        }
    }

    @Test func twoReplaysOfOneCaptureAreIdentical() throws {
        // The longest scenario (flapping, freezing, release) twice: byte-identical outputs and summaries.
        let s = try Self.scenarios().max { ($0["frames"] as! [Any]).count < ($1["frames"] as! [Any]).count }!
        let frames = s["frames"] as! [[String: Any]]
        let capture = base.tmp.appendingPathComponent("twice.pcapng")
        try writeCapture(frames.map { ($0["port"] as! String, $0["second"] as! Int, base.hex($0["input"] as! String)) }, to: capture)
        var results: [(NSDictionary, Data)] = []
        for k in 0..<2 {
            let out = base.tmp.appendingPathComponent("twice\(k).pcap")
            let (rc, stdout, _) = try base.run(ReplayTests.binary.path, [
                "replay", "--config", ReplayTests.root.appendingPathComponent("examples/config.json").path,
                "--fib", ReplayTests.root.appendingPathComponent("examples/fib.json").path,
                "--in", capture.path, "--out", out.path, "--json", "--quiet"])
            #expect(rc == 0)
            let summary = try JSONSerialization.jsonObject(with: Data(stdout.utf8)) as! [String: Any]
            results.append((summary["multipoint"] as! NSDictionary, try Data(contentsOf: out)))
        }
        #expect(results[0].0 == results[1].0)
        #expect(results[0].1 == results[1].1)
        // One batch of 64 holds the whole capture: A's seven places arrive as seven records, applied in order at the
        // batch's end, so A moves and is frozen there too.
        let vni = results[0].0["6000"] as! [String: Int]
        #expect(vni["moved"] == 5 && vni["duplicate"] == 1, "\(vni)")
    }
}
