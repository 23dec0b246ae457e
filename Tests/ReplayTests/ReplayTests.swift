import Foundation
import Testing
@testable import Capture

/// `mplsgate replay` end to end: the real binary, real pcap/pcapng files, outputs compared with the scapy-built
/// expectations and judged by tshark.
@Suite(.serialized) final class ReplayTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let binary: URL = {
        // The test runner lives next to the package's executables in the build folder.
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        while !FileManager.default.fileExists(atPath: dir.appendingPathComponent("mplsgate").path) && dir.path != "/" {
            dir = dir.deletingLastPathComponent()
        }
        return dir.appendingPathComponent("mplsgate")
    }()

    let tmp: URL = {
        let u = FileManager.default.temporaryDirectory.appendingPathComponent("mplsgate-replay-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(at: u, withIntermediateDirectories: true)
        return u
    }()

    /// Each test gets its own instance and directory; remove it afterwards.
    deinit { try? FileManager.default.removeItem(at: tmp) }

    @discardableResult
    func run(_ exe: String, _ args: [String]) throws -> (Int32, String, String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = args
        let out = Pipe(), err = Pipe()
        p.standardOutput = out; p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }

    /// Frames of a classic pcap file, read by hand (not by libpcap, which wrote it).
    func pcapFrames(_ url: URL) throws -> [[UInt8]] {
        let d = [UInt8](try Data(contentsOf: url))
        #expect(d.count >= 24 && d[0] == 0xD4 && d[1] == 0xC3 && d[2] == 0xB2 && d[3] == 0xA1)
        var frames: [[UInt8]] = []
        var i = 24
        func u32(_ o: Int) -> Int { Int(d[o]) | Int(d[o + 1]) << 8 | Int(d[o + 2]) << 16 | Int(d[o + 3]) << 24 }
        while i + 16 <= d.count {
            let n = u32(i + 8)
            frames.append(Array(d[(i + 16)..<(i + 16 + n)]))
            i += 16 + n
        }
        return frames
    }

    /// The fixtures the sample capture holds: all but those that need next hops down (replay has no liveness).
    func cases() throws -> [[String: Any]] {
        let doc = try JSONSerialization.jsonObject(with: Data(contentsOf: Self.root.appendingPathComponent("Tests/Fixtures/cases.json"))) as! [String: Any]
        return (doc["cases"] as! [[String: Any]]).filter { $0["down"] == nil }
    }

    func hex(_ s: String) -> [UInt8] {
        stride(from: 0, to: s.count, by: 2).map { i in
            let a = s.index(s.startIndex, offsetBy: i)
            return UInt8(s[a..<s.index(a, offsetBy: 2)], radix: 16)!
        }
    }

    func replaySample(_ extra: [String] = []) throws -> (Int32, String, String) {
        try run(Self.binary.path, ["replay", "--config", Self.root.appendingPathComponent("examples/config.json").path,
                                   "--fib", Self.root.appendingPathComponent("examples/fib.json").path,
                                   "--in", Self.root.appendingPathComponent("examples/sample.pcapng").path, "--quiet"] + extra)
    }

    @Test func sampleReplayMatchesExpectationsInOrder() throws {
        let out = tmp.appendingPathComponent("out.pcap"), drops = tmp.appendingPathComponent("drops.pcap")
        let dir = tmp.appendingPathComponent("ports")
        let (rc, stdout, stderr) = try replaySample(["--out", out.path, "--drops", drops.path, "--out-dir", dir.path, "--json"])
        #expect(rc == 0, "\(stderr)")
        let summary = try JSONSerialization.jsonObject(with: Data(stdout.utf8)) as! [String: Any]
        let all = try cases()
        // Forwarded cases give one frame; flooded ones (multipoint VNIs) one per copy, in place order.
        var forwarded: [[String: Any]] = []
        for c in all {
            switch c["verdict"] as! String {
            case "forward": forwarded.append(c)
            case "flood": for e in c["copies"] as! [[String: Any]] { forwarded.append(["name": c["name"]!, "expect": [e]]) }
            default: break
            }
        }
        #expect(summary["framesIn"] as? Int == all.count)
        #expect(summary["framesOut"] as? Int == forwarded.count)
        let frames = try pcapFrames(out)
        #expect(frames.count == forwarded.count)
        for (frame, c) in zip(frames, forwarded) {
            let ok = (c["expect"] as! [[String: Any]]).contains { e in
                var want = hex(e["bytes"] as! String), got = frame
                guard want.count == got.count else { return false }
                for m in e["mask"] as! [[Int]] { for i in m[0]..<(m[0] + m[1]) { want[i] = 0; got[i] = 0 } }
                return want == got
            }
            #expect(ok, "\(c["name"]!)")
        }
        // The drop file holds the dropped inputs, unchanged.
        let dropped = all.filter { $0["verdict"] as! String == "drop" }.map { hex($0["input"] as! String) }
        #expect(try pcapFrames(drops) == dropped)
        // Per-port files partition the output.
        var perPort = 0
        for p in ["core0", "core1", "dc0", "vrf0"] { perPort += try pcapFrames(dir.appendingPathComponent("\(p).pcap")).count }
        #expect(perPort == forwarded.count)
        let drops_ = summary["drops"] as! [String: Int]
        #expect(drops_.values.reduce(0, +) == dropped.count)
    }

    @Test func tsharkFindsNoMalformedFrameAndNoError() throws {
        let out = tmp.appendingPathComponent("out.pcap")
        #expect(try replaySample(["--out", out.path]).0 == 0)
        let (rc, text, err) = try run("/usr/bin/tshark", [
            "-r", out.path, "-o", "ip.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE",
            "-d", "mpls.label==1000,pwethnocw", "-d", "mpls.label==1001,pwethcw", "-d", "mpls.label==1002,pwethcw",
            "-d", "mpls.label==2002,pwethcw", "-d", "mpls.label==2003,pwethnocw",
            "-T", "fields", "-e", "frame.number", "-e", "_ws.malformed", "-e", "_ws.expert.severity", "-e", "vxlan.vni",
            "-e", "mpls.label"])
        #expect(rc == 0, "\(err)")
        let rows = text.split(separator: "\n").map { $0.split(separator: "\t", omittingEmptySubsequences: false).map(String.init) }
        let expected = try cases().reduce(0) { n, c in
            n + (c["verdict"] as! String == "forward" ? 1 : (c["copies"] as? [Any])?.count ?? 0)
        }
        #expect(rows.count == expected)
        for r in rows {
            #expect(r[1].isEmpty, "frame \(r[0]) malformed")
            // Expert severities: 8388608 is "error"; notes (TTL 1) and chats are fine.
            #expect(!r[2].split(separator: ",").contains { Int($0) ?? 0 >= 8_388_608 }, "frame \(r[0]) has an expert error")
        }
        // tshark sees the VNIs we encapsulated and the service labels we pushed.
        #expect(Set(rows.map { $0[3] }).isSuperset(of: ["5000", "5001", "5002"]))
        #expect(rows.contains { $0[4].hasPrefix("16001,1000") })
    }

    /// A classic pcap (no interface names) built by hand: the 24-byte file header and one record per frame.
    func writeClassicPcap(_ frames: [[UInt8]], to url: URL) throws {
        var d = Data()
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { d.append(contentsOf: $0) } }
        func u16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { d.append(contentsOf: $0) } }
        u32(0xA1B2_C3D4); u16(2); u16(4); u32(0); u32(0); u32(65535); u32(1)
        for (i, f) in frames.enumerated() { u32(UInt32(i)); u32(0); u32(UInt32(f.count)); u32(UInt32(f.count)); d.append(contentsOf: f) }
        try d.write(to: url)
    }

    /// Classic pcap in big-endian byte order with nanosecond timestamps: the block reader converts both, and the
    /// output carries the microsecond time. A file cut inside its last record is an error naming the file.
    @Test func bigEndianNanosecondPcapAndATruncatedOne() throws {
        let swap = try cases().first { ($0["name"] as! String) == "swap ttl 2 -> 1, tc kept" }!
        let input = hex(swap["input"] as! String)
        let want = hex(((swap["expect"] as! [[String: Any]])[0])["bytes"] as! String)
        var d = Data()
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.bigEndian) { d.append(contentsOf: $0) } }
        func u16(_ v: UInt16) { withUnsafeBytes(of: v.bigEndian) { d.append(contentsOf: $0) } }
        u32(0xA1B2_3C4D); u16(2); u16(4); u32(0); u32(0); u32(65535); u32(1)
        for i in 0..<3 { u32(100 + UInt32(i)); u32(123_456_789); u32(UInt32(input.count)); u32(UInt32(input.count)); d.append(contentsOf: input) }
        let pcap = tmp.appendingPathComponent("be-ns.pcap")
        try d.write(to: pcap)
        let cfg = Self.root.appendingPathComponent("examples/config.json").path
        let fib = Self.root.appendingPathComponent("examples/fib.json").path
        let out = tmp.appendingPathComponent("out.pcap")
        let (rc, _, err) = try run(Self.binary.path, ["replay", "--config", cfg, "--fib", fib, "--in", pcap.path,
                                                      "--ingress", "core0", "--out", out.path, "--quiet"])
        #expect(rc == 0, "\(err)")
        #expect(try pcapFrames(out) == [want, want, want])
        let written = try Data(contentsOf: out)
        let usec = written[(24 + 4)..<(24 + 8)].withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) }
        #expect(usec == 123_456, "nanoseconds become microseconds: \(usec)")
        let cut = tmp.appendingPathComponent("cut.pcap")
        try d.prefix(d.count - 5).write(to: cut)
        let (rc2, _, err2) = try run(Self.binary.path, ["replay", "--config", cfg, "--fib", fib, "--in", cut.path,
                                                        "--ingress", "core0", "--quiet"])
        #expect(rc2 == 1 && err2.contains("cut.pcap") && err2.contains("truncated"), "\(err2)")
    }

    /// Malformed captures are errors naming the file, never a crash or a quiet end: a classic record larger than a
    /// frame buffer cut by the end of the file, a pcapng packet block shorter than its fixed fields.
    @Test func malformedCapturesAreErrors() throws {
        let cfg = Self.root.appendingPathComponent("examples/config.json").path
        let fib = Self.root.appendingPathComponent("examples/fib.json").path
        var d = Data()
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { d.append(contentsOf: $0) } }
        func u16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { d.append(contentsOf: $0) } }
        u32(0xA1B2_C3D4); u16(2); u16(4); u32(0); u32(0); u32(65535); u32(1)
        u32(1); u32(0); u32(20000); u32(20000); d.append(Data(count: 100))
        let big = tmp.appendingPathComponent("big-cut.pcap")
        try d.write(to: big)
        let (rc, _, err) = try run(Self.binary.path, ["replay", "--config", cfg, "--fib", fib, "--in", big.path,
                                                      "--ingress", "core0", "--quiet"])
        #expect(rc == 1 && err.contains("big-cut.pcap") && err.contains("truncated"), "\(err)")
        d = Data()
        u32(0x0A0D_0D0A); u32(28); u32(0x1A2B_3C4D); u16(1); u16(0); u32(0xFFFF_FFFF); u32(0xFFFF_FFFF); u32(28)
        u32(1); u32(20); u16(1); u16(0); u32(0); u32(20)
        u32(6); u32(24); u32(0); u32(0); u32(0); u32(24)
        let short = tmp.appendingPathComponent("short.pcapng")
        try d.write(to: short)
        let (rc2, _, err2) = try run(Self.binary.path, ["replay", "--config", cfg, "--fib", fib, "--in", short.path, "--quiet"])
        #expect(rc2 == 1 && err2.contains("short.pcapng") && err2.contains("packet block of 24 bytes"), "\(err2)")
    }

    /// A failed write (a full disk) fails the replay naming the file; --threads 2 writes the same bytes as one thread.
    @Test func aFullDiskIsAnErrorAndTwoThreadsWriteTheSameBytes() throws {
        let cfg = Self.root.appendingPathComponent("examples/config.json").path
        let fib = Self.root.appendingPathComponent("examples/fib.json").path
        let sample = Self.root.appendingPathComponent("examples/sample.pcapng").path
        for threads in ["1", "2"] {
            let (rc, _, err) = try run(Self.binary.path, ["replay", "--config", cfg, "--fib", fib, "--in", sample,
                                                          "--out", "/dev/full", "--quiet", "--threads", threads])
            #expect(rc == 1 && err.contains("/dev/full") && err.contains("No space left"), "threads \(threads): \(err)")
        }
        var outputs: [Data] = []
        for threads in ["1", "2"] {
            let dir = tmp.appendingPathComponent("t\(threads)")
            let (rc, _, err) = try run(Self.binary.path, ["replay", "--config", cfg, "--fib", fib, "--in", sample,
                                                          "--out", dir.path + ".pcap", "--out-dir", dir.path,
                                                          "--drops", dir.path + "-drops.pcap", "--quiet", "--threads", threads])
            #expect(rc == 0, "\(err)")
            outputs.append(try Data(contentsOf: URL(fileURLWithPath: dir.path + ".pcap"))
                           + Data(contentsOf: URL(fileURLWithPath: dir.path + "-drops.pcap"))
                           + Data(contentsOf: dir.appendingPathComponent("core1.pcap")))
        }
        #expect(outputs[0] == outputs[1] && outputs[0].count > 1000)
    }

    @Test func classicPcapNeedsIngressAndUsesIt() throws {
        // A forward case of core0 in a classic pcap: refused without --ingress; forwarded byte for byte with
        // --ingress core0; dropped with --ingress dc0 (addressed to core0's MAC: notForUs), so the option really picks the port.
        let swap = try cases().first { ($0["name"] as! String) == "swap ttl 2 -> 1, tc kept" }!
        let input = hex(swap["input"] as! String)
        let want = hex(((swap["expect"] as! [[String: Any]])[0])["bytes"] as! String)
        let pcap = tmp.appendingPathComponent("classic.pcap")
        try writeClassicPcap([input, input], to: pcap)
        let cfg = Self.root.appendingPathComponent("examples/config.json").path
        let fib = Self.root.appendingPathComponent("examples/fib.json").path
        let (rc1, _, e1) = try run(Self.binary.path, ["replay", "--config", cfg, "--fib", fib, "--in", pcap.path])
        #expect(rc1 == 1 && e1.contains("--ingress"))
        let out = tmp.appendingPathComponent("out.pcap")
        let (rc2, _, e2) = try run(Self.binary.path, ["replay", "--config", cfg, "--fib", fib, "--in", pcap.path,
                                                      "--ingress", "core0", "--out", out.path, "--quiet"])
        #expect(rc2 == 0, "\(e2)")
        #expect(try pcapFrames(out) == [want, want])
        let (rc3, json, _) = try run(Self.binary.path, ["replay", "--config", cfg, "--fib", fib, "--in", pcap.path,
                                                       "--ingress", "dc0", "--json"])
        let s = try JSONSerialization.jsonObject(with: Data(json.utf8)) as! [String: Any]
        #expect(rc3 == 0 && s["framesOut"] as? Int == 0 && (s["drops"] as? [String: Any])?["notForUs"] as? Int == 2)
    }

    /// The BUM rate limit on capture time: 3,000 broadcasts of the lab's multipoint VNI (10,000/s, burst 1,000)
    /// within 3 ms: the burst and 3 ms of refill are replicated to both sites, the rest counted rateLimited; the
    /// same capture replayed twice gives the same output.
    @Test func floodsAreRateLimitedOnCaptureTime() throws {
        let c = try cases().first { ($0["name"] as! String).hasPrefix("multipoint flood: a local VTEP's broadcast") }!
        let input = hex(c["input"] as! String)
        var d = Data()
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { d.append(contentsOf: $0) } }
        func u16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { d.append(contentsOf: $0) } }
        u32(0xA1B2_C3D4); u16(2); u16(4); u32(0); u32(0); u32(65535); u32(1)
        for i in 0..<3000 { u32(100); u32(UInt32(i)); u32(UInt32(input.count)); u32(UInt32(input.count)); d.append(contentsOf: input) }
        let pcap = tmp.appendingPathComponent("storm.pcap")
        try d.write(to: pcap)
        let cfg = Self.root.appendingPathComponent("examples/config.json").path
        let fib = Self.root.appendingPathComponent("examples/fib.json").path
        var outputs: [[[UInt8]]] = []
        for k in 0..<2 {
            let out = tmp.appendingPathComponent("storm-out-\(k).pcap")
            let (rc, json, err) = try run(Self.binary.path, ["replay", "--config", cfg, "--fib", fib, "--in", pcap.path,
                                                             "--ingress", "dc0", "--out", out.path, "--json"])
            #expect(rc == 0, "\(err)")
            let s = try JSONSerialization.jsonObject(with: Data(json.utf8)) as! [String: Any]
            let m = (s["multipoint"] as! [String: Any])["6000"] as! [String: Int]
            let admitted = 3000 - m["rateLimited"]!
            #expect(m["flooded"] == 3000 && (1000...1031).contains(admitted), "\(m)")
            #expect(m["copies"] == 2 * admitted && s["framesOut"] as? Int == 2 * admitted)
            #expect((s["drops"] as? [String: Int])?["bumRateLimited"] == m["rateLimited"])
            outputs.append(try pcapFrames(out))
        }
        #expect(outputs[0] == outputs[1])
    }

    @Test func badInputsGiveClearErrors() throws {
        let cfg = Self.root.appendingPathComponent("examples/config.json").path
        let fib = Self.root.appendingPathComponent("examples/fib.json").path
        let junk = tmp.appendingPathComponent("junk.pcap")
        try Data("not a capture at all".utf8).write(to: junk)
        let badFIB = tmp.appendingPathComponent("bad.json")
        try Data(#"{"version":1,"ilm":[{"label":7,"op":"pop"}]}"#.utf8).write(to: badFIB)
        let cases: [([String], Int32, String)] = [
            (["replay", "--config", cfg, "--fib", fib, "--in", junk.path, "--ingress", "core0"], 1, "junk.pcap"),
            (["replay", "--config", cfg, "--fib", fib, "--in", "/nonexistent.pcap", "--ingress", "core0"], 1, "nonexistent"),
            (["replay", "--config", cfg, "--fib", badFIB.path, "--in", junk.path], 1, "ilm[0] (label 7)"),
            (["replay", "--config", cfg, "--fib", fib], 2, "--in"),
            (["replay", "--config", cfg, "--fib", fib, "--in", junk.path, "--bogus"], 2, "--bogus"),
            (["frobnicate"], 2, "frobnicate"),
        ]
        for (args, code, phrase) in cases {
            let (rc, _, err) = try run(Self.binary.path, args)
            #expect(rc == code, "\(args): \(rc) \(err)")
            #expect(err.contains(phrase), "\(args): \(err)")
        }
    }

    /// A pcapng file (section header, one interface named `interface`, one enhanced packet per frame).
    func writePcapNG(_ frames: [[UInt8]], interface: String, to url: URL) throws {
        var d = Data()
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { d.append(contentsOf: $0) } }
        func u16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { d.append(contentsOf: $0) } }
        func padded(_ b: [UInt8]) -> [UInt8] { b + [UInt8](repeating: 0, count: (4 - b.count % 4) % 4) }
        u32(0x0A0D_0D0A); u32(28); u32(0x1A2B_3C4D); u16(1); u16(0); u32(0xFFFF_FFFF); u32(0xFFFF_FFFF); u32(28)
        let name = padded(Array(interface.utf8))
        let idb = UInt32(20 + 4 + name.count + 4)
        u32(1); u32(idb); u16(1); u16(0); u32(0); u16(2); u16(UInt16(interface.utf8.count)); d.append(contentsOf: name)
        u16(0); u16(0); u32(idb)
        for f in frames {
            let body = padded(f)
            let len = UInt32(32 + body.count)
            u32(6); u32(len); u32(0); u32(0); u32(0); u32(UInt32(f.count)); u32(UInt32(f.count)); d.append(contentsOf: body)
            u32(len)
        }
        try d.write(to: url)
    }

    @Test func unmatchedInterfaceNamesAreReportedOncePerName() throws {
        let cfg = Self.root.appendingPathComponent("examples/config.json").path
        let fib = Self.root.appendingPathComponent("examples/fib.json").path
        let swap = try cases().first { $0["name"] as? String == "swap ttl 2 -> 1, tc kept" }!
        let capture = tmp.appendingPathComponent("eth9.pcapng")
        try writePcapNG(Array(repeating: hex(swap["input"] as! String), count: 3), interface: "eth9", to: capture)
        let (rc, json, err) = try run(Self.binary.path, ["replay", "--config", cfg, "--fib", fib, "--in", capture.path, "--json"])
        let s = try JSONSerialization.jsonObject(with: Data(json.utf8)) as! [String: Any]
        #expect(rc == 0 && (s["drops"] as? [String: Any])?["unknownPort"] as? Int == 3)
        #expect((s["unmatchedInterfaces"] as? [String: Any])?["eth9"] as? Int == 3)
        let lines = err.split(separator: "\n").filter { $0.contains("eth9") }
        #expect(lines.count == 1 && lines[0].contains("3 frame(s)") && lines[0].contains("unknownPort"), "\(err)")
        let (rc2, json2, err2) = try run(Self.binary.path, ["replay", "--config", cfg, "--fib", fib, "--in", capture.path,
                                                          "--ingress", "core0", "--json"])
        let s2 = try JSONSerialization.jsonObject(with: Data(json2.utf8)) as! [String: Any]
        #expect(rc2 == 0 && s2["framesOut"] as? Int == 3 && err2.contains("--ingress core0"), "\(err2)")
    }

    @Test func anUnwritableOutputNamesItsPathOnce() throws {
        let out = "/nonexistent-dir/y.pcap"
        let (rc, _, err) = try run(Self.binary.path, ["replay", "--config", Self.root.appendingPathComponent("examples/config.json").path,
                                                     "--fib", Self.root.appendingPathComponent("examples/fib.json").path,
                                                     "--in", Self.root.appendingPathComponent("examples/sample.pcapng").path,
                                                     "--out", out])
        #expect(rc == 1 && err.components(separatedBy: out).count == 2 && err.contains("No such file or directory"), "\(err)")
    }

    /// Found by the capture fuzz target: a record claiming fewer original bytes than it holds came back with an
    /// original length below its captured length.
    @Test func aRecordsOriginalLengthIsAtLeastItsCapturedLength() throws {
        var file: [UInt8] = []
        func u32(_ v: UInt32) { file += withUnsafeBytes(of: v.littleEndian, Array.init) }
        func u16(_ v: UInt16) { file += withUnsafeBytes(of: v.littleEndian, Array.init) }
        u32(0xA1B2_C3D4); u16(2); u16(4); u32(0); u32(0); u32(262_144); u32(1)
        u32(1_700_000_000); u32(0); u32(60); u32(40)     // caplen 60, origlen 40
        file += [UInt8](repeating: 0xAB, count: 60)
        let path = tmp.appendingPathComponent("short-orig.pcap")
        try Data(file).write(to: path)
        let reader = try CaptureReader(path: path.path)
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: 2048, alignment: 8)
        defer { buffer.deallocate() }
        let frame = try #require(try reader.next(into: buffer, capacity: 2048))
        #expect(frame.length == 60 && frame.originalLength == 60)
        #expect(try reader.next(into: buffer, capacity: 2048) == nil)
    }

    /// A small file gets a small read buffer, and a block header claiming more bytes than the file has left is a
    /// truncation (the buffer grows only to what the file can supply).
    @Test func smallCapturesReadWithSmallBuffers() throws {
        #expect(FileBlocks.initialCapacity(fileSize: 100) == 4096)
        #expect(FileBlocks.initialCapacity(fileSize: 5000) == 8192)
        #expect(FileBlocks.initialCapacity(fileSize: 1 << 30) == FileBlocks.blockSize)
        #expect(FileBlocks.initialCapacity(fileSize: nil) == FileBlocks.blockSize)
        var d = Data()
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { d.append(contentsOf: $0) } }
        func u16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { d.append(contentsOf: $0) } }
        u32(0x0A0D_0D0A); u32(28); u32(0x1A2B_3C4D); u16(1); u16(0); u32(0xFFFF_FFFF); u32(0xFFFF_FFFF); u32(28)
        u32(6); u32(UInt32(PcapNGReader.maxBlock)); u32(0); u32(0)
        let cut = tmp.appendingPathComponent("claims-more.pcapng")
        try d.write(to: cut)
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: 2048, alignment: 8)
        defer { buffer.deallocate() }
        let reader = try CaptureReader(path: cut.path)
        do {
            _ = try reader.next(into: buffer, capacity: 2048)
            Issue.record("a block claiming more than the file is not an error")
        } catch { #expect(error.kind == .truncated, "\(error)") }
    }

    @Test func truncatedPcapngIsAnErrorNotACrash() throws {
        let data = try Data(contentsOf: Self.root.appendingPathComponent("examples/sample.pcapng"))
        let cut = tmp.appendingPathComponent("cut.pcapng")
        try data.prefix(data.count / 2 + 3).write(to: cut)
        let (rc, _, err) = try run(Self.binary.path, ["replay", "--config", Self.root.appendingPathComponent("examples/config.json").path,
                                                     "--fib", Self.root.appendingPathComponent("examples/fib.json").path, "--in", cut.path])
        #expect(rc == 1 && err.contains("truncated"), "\(err)")
    }
}
