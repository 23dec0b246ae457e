import Testing
import Wire
import FIB
import Dataplane
import Control

/// ECMP: the same flow always takes the same member; 10k flows spread within ±10 % of an even share; removing a
/// member moves only its buckets.
@Suite struct ECMPTests {
    /// A labeled frame for label 110 (swap via core-ecmp) whose label below varies per flow.
    func flowFrame(_ flow: UInt32) -> [UInt8] {
        var f: [UInt8] = [0x02, 0, 0, 0, 0, 0x01, 0x02, 0xee, 0, 0, 0, 0x99, 0x88, 0x47]
        func lse(_ label: UInt32, s: Bool) -> [UInt8] {
            let v = label << 12 | (s ? 0x100 : 0) | 64
            return [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)]
        }
        f += lse(110, s: false) + lse(16 + flow, s: true) + [UInt8](repeating: 0x45, count: 40)
        return f
    }

    @Test func sameFlowSameMemberAndEvenSpread() {
        var counts: [PortID: Int] = [:]
        for flow in 0..<UInt32(10_000) {
            let (a, _, _) = Lab.run(flowFrame(flow), port: Lab.port("core0"))
            let (b, _, _) = Lab.run(flowFrame(flow), port: Lab.port("core0"))
            #expect(a == b)
            counts[a, default: 0] += 1
        }
        #expect(counts.count == 2)
        for (_, n) in counts { #expect(abs(n - 5000) <= 500, "member got \(n) of 10000 flows") }
    }

    @Test func fourMembersSpreadWithinTenPercent() throws {
        let config = Lab.config
        let fib = FIBSpec(nextHops: (1...4).map { NextHopSpec(name: "n\($0)", port: "core0", mac: MACAddress(value: UInt64($0))) },
                          ecmpGroups: [ECMPGroupSpec(name: "g", members: ["n1", "n2", "n3", "n4"])],
                          ilm: [ILMEntrySpec(label: 110, operation: .swap(out: [210], via: "g", payload: nil, ttlMode: .uniform))])
        let c = try FIBCompiler.compile(config: config, fib: fib)
        defer { c.release() }
        var counts = [Int](repeating: 0, count: 4)
        for flow in 0..<UInt32(10_000) {
            var frame = flowFrame(flow)
            let label = 16 + flow
            frame[18] = UInt8(label >> 12); frame[19] = UInt8(label >> 4 & 0xFF)
            let h = frame.withUnsafeMutableBytes { FlowHash.labelStack(PacketBytes($0.baseAddress!), top: 14, end: $0.count) }
            let nh = c.snapshot.resolve(.group(0), hash: h)
            counts[nh - c.snapshot.nextHops] += 1
        }
        for n in counts { #expect(abs(n - 2500) <= 250, "member got \(n) of 10000 flows: \(counts)") }
    }

    @Test func removingAMemberMovesOnlyItsBuckets() throws {
        var b3 = FIBSnapshotBuilder()
        let ids: [UInt32] = (0..<3).map { _ in b3.addNextHop(NextHopRecord(port: PortID(0), destination: MACAddress(value: 1), source: MACAddress(value: 2), vlan: 0, mtu: 1500)) }
        _ = b3.addGroup(members: ids, memberKeys: ["a", "b", "c"])
        _ = b3.addGroup(members: [ids[0], ids[2]], memberKeys: ["a", "c"])
        let s = b3.build(generation: 1)
        defer { s.deallocate() }
        var moved = 0
        for i in 0..<ECMP.bucketCount {
            let before = s.groupBuckets[i], after = s.groupBuckets[ECMP.bucketCount + i]
            if before != ids[1] { #expect(before == after, "bucket \(i) moved though its member stayed") } else { moved += 1 }
        }
        #expect(moved > ECMP.bucketCount / 4 && moved < ECMP.bucketCount / 2)
    }
}

/// The lookup structures against simple references.
@Suite struct TableTests {
    @Test func ilmEntryIsEightBytesAndActionTwoCacheLines() {
        #expect(MemoryLayout<ILMEntry>.size == 8)
        #expect(MemoryLayout<Action>.stride == 128)
        #expect(MemoryLayout<NextHopRecord>.stride == 32)
        #expect(MemoryLayout<LPMSlot>.stride == 8)
        #expect(VNITable.pageSize == 4096 && VNITable.directorySize == 4096)
        // 8-byte buffer, offset, length, ports, verdict and the flood's multipoint action: one 32-byte slot.
        #expect(MemoryLayout<Frame>.stride <= 32)
        // Constants the hot path folds instead of asking MemoryLayout at run time.
        #expect(MemoryLayout<Action>.offset(of: \Action.area) == Action.areaOffset)
        #expect(ILM.pageSize == 4096 && ILM.directorySize == 256 && ILM.pageMask == 4095)
    }

    @Test func lpmMatchesLinearLongestPrefix() throws {
        var routes: [(UInt32, Int)] = []
        var rng = SystemRandomNumberGenerator()
        var fib = FIBSpec(nextHops: [NextHopSpec(name: "n", port: "core0", mac: MACAddress(value: 1))])
        var seen = Set<String>()
        while routes.count < 300 {
            let len = Int.random(in: 1...32, using: &rng)
            let addr = UInt32.random(in: 0...UInt32.max, using: &rng) & (len == 32 ? ~0 : ~(UInt32.max >> UInt32(len)))
            let e = FTNEntrySpec(prefix: .v4(IPv4Address(value: addr)), length: len, push: [16 + UInt32(routes.count)], via: "n")
            guard seen.insert(e.key).inserted else { continue }
            routes.append((addr, len)); fib.ftn.append(e)
        }
        let c = try FIBCompiler.compile(config: Lab.config, fib: fib)
        defer { c.release() }
        for _ in 0..<5000 {
            // Probe near the routes so that matches are common.
            let (base, _) = routes.randomElement(using: &rng)!
            let probe = base ^ (UInt32.random(in: 0...255, using: &rng) << UInt32.random(in: 0...24, using: &rng))
            var best = -1, bestLen = -1
            for (i, (a, l)) in routes.enumerated() {
                let mask: UInt32 = l == 32 ? ~0 : ~(UInt32.max >> UInt32(l))
                if probe & mask == a && l > bestLen { best = i; bestLen = l }
            }
            let leaf = c.snapshot.lookupV4(vrf: 0, probe)
            #expect(Int(leaf) - 1 == best, "probe \(IPv4Address(value: probe))")
        }
    }

    @Test func vniTableFindsEveryKeyAndMissesOthers() {
        var b = FIBSnapshotBuilder()
        for v in stride(from: UInt32(0), to: 50_000, by: 7) { b.setVNI(v, ActionID(v)) }
        let s = b.build(generation: 1)
        defer { s.deallocate() }
        for v in UInt32(0)..<50_000 {
            let r = s.vni(v)
            if v % 7 == 0 { #expect(r == ActionID(v)) } else if r != nil { #expect(Bool(false), "vni \(v) found") }
        }
        #expect(s.vni(VNI.maxValue) == nil)
    }
}
