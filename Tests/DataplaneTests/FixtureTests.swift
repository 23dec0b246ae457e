import Testing
import Wire
import FIB
import Dataplane

/// Every scapy-built case: verdict, egress port and output bytes compared byte for byte (masked bytes are the
/// hash-chosen VXLAN UDP source port and, over IPv6, the UDP checksum that depends on it).
@Suite struct FixtureTests {
    @Test("fixture", arguments: Lab.cases)
    func fixture(_ c: Lab.Case) {
        if let copies = c.copies {
            let (drop, got) = Lab.runFlood(c.input, port: Lab.port(c.port))
            #expect(drop == .flood, "\(c.name): \(drop.name)")
            #expect(got.count == copies.count, "\(c.name): \(got.count) copies")
            for (e, g) in zip(copies, got) {
                #expect(g.1 == .none, "\(c.name): copy dropped as \(g.1.name)")
                var a = g.2, b = e.bytes
                guard a.count == b.count else { Issue.record("\(c.name): copy of \(a.count) bytes, expected \(b.count)"); continue }
                for (o, n) in e.mask { for i in o..<(o + n) { a[i] = 0; b[i] = 0 } }
                #expect(Lab.port(e.port) == g.0 && a == b, "\(c.name): got port \(g.0) \(g.2.map { String(format: "%02x", $0) }.joined())")
            }
            return
        }
        let (egress, drop, out) = Lab.run(c.input, port: Lab.port(c.port), down: c.down)
        if let reason = c.drop {
            #expect(drop.name == reason, "\(c.name)")
            #expect(egress == .none)
            return
        }
        #expect(drop == .none, "\(c.name): dropped as \(drop.name)")
        guard drop == .none else { return }
        let matches = c.expect.contains { e in
            guard Lab.port(e.port) == egress, e.bytes.count == out.count else { return false }
            var a = out, b = e.bytes
            for (o, n) in e.mask { for i in o..<(o + n) { a[i] = 0; b[i] = 0 } }
            return a == b
        }
        #expect(matches, "\(c.name): got port \(egress) \(out.map { String(format: "%02x", $0) }.joined())")
        // A masked UDP source port must be in the ephemeral range (RFC 7348 §5).
        if let e = c.expect.first, let (o, _) = e.mask.first, out.count > o + 1 {
            #expect(out[o] >= 0xC0, "\(c.name): UDP source port below 49152")
        }
    }

    /// Truncated copies of a valid frame, at every length from 0 to the end of the headers its operation reads,
    /// are dropped (never forwarded, never a crash).
    @Test("truncated", arguments: Lab.cases.filter { $0.truncate != nil })
    func truncated(_ c: Lab.Case) {
        for n in 0..<c.truncate! {
            let (egress, drop, _) = Lab.run(Array(c.input.prefix(n)), port: Lab.port(c.port))
            #expect(egress == .none, "\(c.name) cut to \(n) bytes was forwarded")
            #expect(drop == .tooShort || drop == .malformed, "\(c.name) cut to \(n): \(drop.name)")
        }
    }

    @Test func fixturesCoverEveryDropReasonThePipelineSets() {
        let seen = Set(Lab.cases.compactMap(\.drop))
        // flood is a verdict (its cases have copies); bumRateLimited is set by the replication step (MultipointTests);
        // xdpTransmitError by the agent from the fast tier's counters (test_fast_tier.py).
        let ioOnly: Set<DropReason> = [.none, .frameTooLong, .unknownPort, .noHeadroom, .flood, .bumRateLimited, .xdpTransmitError]
        for r in DropReason.allCases where !ioOnly.contains(r) {
            #expect(seen.contains(r.name), "no fixture drops with \(r.name)")
        }
    }
}
