import Testing
import Wire
import FIB
import Dataplane
import Control
import ControlServer

/// Multipoint VNIs beyond the scapy fixtures: the BUM rate limit, per-VNI counters, static MACs as transactions
/// (references to sites and VTEPs, renumbered places), and the MAC table under churn.
@Suite struct MultipointTests {
    static let vni: UInt32 = 6000

    /// The lab's flood of VNI 6000 (a local VTEP's broadcast) as bytes.
    static var broadcast: [UInt8] { Lab.cases.first { $0.name.hasPrefix("multipoint flood: a local VTEP's broadcast") }!.input }

    @Test func rateLimitAdmitsTheBurstThenTheRate() {
        var f = Frame(buffer: UnsafeMutableRawPointer.allocate(byteCount: 16384, alignment: 64), offset: 256, length: 0, ingress: Lab.port("dc0"))
        defer { f.buffer.deallocate() }
        f.drop = .flood
        f.flood = Lab.fib.vni(Self.vni)!.rawValue + 1
        let plan = Replication.plan(f, fib: Lab.fib)!
        #expect(plan.count == 2 && plan.header.pointee.bumPerSecond == 10_000 && plan.header.pointee.bumBurst == 1000)
        let limiter = FloodLimiter()
        defer { limiter.release() }
        let t0: UInt64 = 5_000_000_000
        var admitted = 0
        for _ in 0..<1500 where limiter.admit(plan, nowNs: t0) { admitted += 1 }
        #expect(admitted == 1000, "the burst")
        // 10,000/s: 10 ms later, 100 more.
        admitted = 0
        for _ in 0..<500 where limiter.admit(plan, nowNs: t0 + 10_000_000) { admitted += 1 }
        #expect(admitted == 100)
        // A VNI without a limit is never limited.
        var m = plan.header.pointee
        m.bumPerSecond = 0
        m.vtepCount = 0
        let (block, _) = Segment.makeBlock(m, vteps: [], places: [Action(), Action()])
        defer { block.deallocate() }
        #expect((0..<5000).allSatisfy { _ in limiter.admit(Replication.testPlan(block), nowNs: t0) })
    }

    @Test func perVNICountersCountEachRule() {
        let c = WorkerCounters.allocate(entryCapacity: Lab.fib.actionCount)
        defer { c.deallocate() }
        let slot = Int(Segment.header(UnsafeRawPointer(bitPattern: UInt(Lab.fib.actions[Int(Lab.fib.vni(Self.vni)!.rawValue)].vteps))!).pointee.slot)
        for name in ["multipoint: known unicast from a local VTEP to its site (control word)",
                     "multipoint split horizon: a local VTEP's frame for another local VTEP",
                     "multipoint split horizon: a site's frame for another site"] {
            let k = Lab.cases.first { $0.name == name }!
            _ = Lab.run(k.input, port: Lab.port(k.port), counters: c)
        }
        let (drop, copies) = Lab.runFlood(Self.broadcast, port: Lab.port("dc0"), counters: c)
        #expect(drop == .flood && copies.count == 2)
        let s = c.segments[slot]
        #expect(s.unicast == 1 && s.splitHorizon == 2)
        #expect(c.drops(.splitHorizon) == 2 && c.drops(.flood) == 0, "a flood is not a drop")
        #expect(c.ports[Int(Lab.port("core0").rawValue)].txPackets == 2 && c.ports[Int(Lab.port("core1").rawValue)].txPackets == 1)
    }

    // MARK: static MACs as transactions

    static let config = InstanceConfig(ports: [
        PortConfig(name: "core0", mac: MACAddress(value: 0x0200_0000_0001), role: .core),
        PortConfig(name: "dc0", mac: MACAddress(value: 0x0200_0000_0003), role: .dc, vteps: [.v4(IPv4Address(value: 0xC000_0201))]),
    ])
    static func v4(_ s: String) -> IPAddress { IPAddress(s)! }

    func engine() throws -> FIBEngine {
        let e = try FIBEngine(config: Self.config, maxEntries: 1000)
        try e.apply([.add(.nextHop(NextHopSpec(name: "p", port: "core0", mac: MACAddress(value: 0x02AA_0000_0001)))),
                     .add(.nextHop(NextHopSpec(name: "v", port: "dc0", mac: MACAddress(value: 0x02BB_0000_0001))))])
        return e
    }

    static func segment(sites: [String], vteps: [String] = ["192.0.2.2"]) -> VNIEntrySpec {
        VNIEntrySpec(vni: vni, multipoint: MultipointSpec(
            localVTEP: v4("192.0.2.1"), vteps: vteps.map { LocalVTEPSpec(address: v4($0), via: "v") },
            sites: sites.enumerated().map { SiteSpec(name: $1, push: [16000 + UInt32($0), 2000 + UInt32($0)], via: "p") }))
    }

    static func mac(_ m: UInt64, site: String? = nil, vtep: String? = nil) -> MACEntrySpec {
        MACEntrySpec(vni: vni, mac: MACAddress(value: 0xAABB_CC00_0000 | m), site: site, vtep: vtep.map(v4))
    }

    func place(_ e: FIBEngine, _ m: UInt64) -> UInt32 {
        MACTable.lookup(e.snapshot.pointee.macDirectory, vni: Self.vni, mac: 0xAABB_CC00_0000 | m)
    }

    @Test func macsNamePlacesOfTheirVNIAndFollowRenumbering() throws {
        let e = try engine()
        defer { e.release() }
        try e.apply([.add(.vni(Self.segment(sites: ["a", "b"]))), .add(.mac(Self.mac(1, site: "b"))),
                     .add(.mac(Self.mac(2, vtep: "192.0.2.2")))])
        #expect(place(e, 1) == 2 && place(e, 2) == 3)
        // Reordering the sites renumbers the places: the MACs follow their site.
        try e.apply([.replace(.vni(Self.segment(sites: ["b", "a"])))])
        #expect(place(e, 1) == 1 && place(e, 2) == 3)
        // Removing a site a MAC names is refused, whatever the order; with the MAC deleted in the same
        // transaction it is taken.
        #expect(throws: TransactionError.self) { try e.apply([.replace(.vni(Self.segment(sites: ["a"])))]) }
        try e.apply([.replace(.vni(Self.segment(sites: ["a"]))), .delete(.mac(MACKey(vni: Self.vni, mac: 0xAABB_CC00_0001)))])
        #expect(place(e, 1) == 0 && place(e, 2) == 2)
        // A MAC for a site that does not exist, a group MAC, a point-to-point VNI: refused.
        #expect(throws: TransactionError.self) { try e.apply([.add(.mac(Self.mac(3, site: "zz")))]) }
        #expect(throws: TransactionError.self) {
            try e.apply([.add(.mac(MACEntrySpec(vni: Self.vni, mac: MACAddress(value: 0x0100_5E00_0001), site: "a")))])
        }
        #expect(throws: TransactionError.self) { try e.apply([.delete(.vni(Self.vni))]) }
        // Deleting the VNI with its MACs in one transaction works, and the table is empty again.
        try e.apply([.delete(.mac(MACKey(vni: Self.vni, mac: 0xAABB_CC00_0002))), .delete(.vni(Self.vni))])
        #expect(e.tables.macCount == 0 && e.staticMACs().isEmpty)
    }

    @Test func aDocumentRoundTripsAndResyncsInOneCommit() throws {
        let e = try engine()
        defer { e.release() }
        try e.apply([.add(.vni(Self.segment(sites: ["a", "b"]))), .add(.mac(Self.mac(1, site: "b")))])
        let doc = e.document()
        let text = JSONWriter.write(FIBCodec.encode(doc))
        let back = try FIBCodec.decodeFIB(Array(text.utf8))
        #expect(back == doc)
        // A resync that drops site b and its MAC, and adds a MAC at a, is one valid diff.
        var next = doc
        next.vni = [Self.segment(sites: ["a"])]
        next.macs = [Self.mac(7, site: "a")]
        try e.replaceAll(with: next)
        #expect(place(e, 1) == 0 && place(e, 7) == 1)
    }

    final class Store: EntryCounterStore {
        var reset: [Int] = []
        func read(slot: Int) -> (packets: UInt64, bytes: UInt64) { (0, 0) }
        func reset(slot: Int) {}
        func resetSegment(slot: Int) { reset.append(slot) }
    }

    /// A multipoint VNI's counter slot is not reused by a VNI the same commit adds (workers on the old snapshot still
    /// count into it); it is zeroed after the grace period and reused by a later commit.
    @Test func counterSlotsAreReusedOnlyAfterTheirGracePeriod() throws {
        let e = try engine()
        defer { e.release() }
        let store = Store()
        e.counterStore = store
        func seg(_ v: UInt32) -> VNIEntrySpec { var s = Self.segment(sites: ["a"]); s.vni = v; return s }
        try e.apply([.add(.vni(seg(7000)))])
        let first = e.segmentSlot(vni: 7000)!
        try e.apply([.delete(.vni(7000)), .add(.vni(seg(7001)))])
        #expect(e.segmentSlot(vni: 7001) != first && e.segmentSlot(vni: 7000) == nil)
        #expect(store.reset == [first])
        try e.apply([.add(.vni(seg(7002)))])
        #expect(e.segmentSlot(vni: 7002) == first)
    }

    /// The open-addressed table under random inserts and deletes (backward-shift deletion keeps every probe chain
    /// intact): every key present is found at its place, every deleted key is gone.
    @Test func macTableSurvivesChurn() throws {
        let e = try engine()
        defer { e.release() }
        try e.apply([.add(.vni(Self.segment(sites: ["a", "b"])))])
        var rng = SystemRandomNumberGenerator()
        var live: [UInt64: String] = [:]
        for _ in 0..<20 {
            var ops: [FIBChange] = []
            for _ in 0..<500 {
                let m = UInt64.random(in: 0..<4000, using: &rng)
                let key = MACKey(vni: Self.vni, mac: 0xAABB_CC00_0000 | m)
                if live[m] != nil, Bool.random(using: &rng) {
                    ops.append(.delete(.mac(key))); live[m] = nil
                } else if live[m] == nil {
                    let s = Bool.random(using: &rng) ? "a" : "b"
                    ops.append(.add(.mac(Self.mac(m, site: s)))); live[m] = s
                }
            }
            try e.apply(ops)
        }
        for m in UInt64(0)..<4000 {
            let want: UInt32 = live[m].map { $0 == "a" ? 1 : 2 } ?? 0
            #expect(place(e, m) == want, "mac \(m)")
        }
        #expect(e.tables.macCount == live.count)
    }
}

extension Replication {
    /// A plan over a block made by a test.
    static func testPlan(_ block: UnsafeRawPointer) -> FloodPlan {
        FloodPlan(block: block, first: 0, count: Int(Segment.header(block).pointee.siteCount), slot: 1)
    }
}
