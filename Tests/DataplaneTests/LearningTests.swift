import Foundation
import Testing
import Synchronization
import Wire
import FIB
import Dataplane

/// The MAC learner and its lock-free table beyond the replay fixtures (Tests/Fixtures/learning.json): places
/// renumbered or removed by the controller, flushes, limits, growth, and a reader racing the writer.
@Suite struct LearningTests {
    static func segment(slot: UInt32 = 0, vni: UInt32 = 7000, sites: [String], vteps: [IPv6Address], limit: Int = 100_000,
                        learning: Bool = true) -> LearningSegment {
        let ids = sites.map(Segment.siteID) + vteps.map(Segment.vtepID)
        return LearningSegment(slot: slot, vni: vni, layout: Segment.layout(sites: sites.count, ids: ids), placeIDs: ids,
                               placeNames: sites + vteps.map { "\($0)" }, siteCount: sites.count, learning: learning,
                               macLimit: limit, agingSeconds: 300, moveLimit: 5, moveWindowSeconds: 180, holdSeconds: 300)
    }

    static func record(_ s: LearningSegment, mac: UInt64, place: Int) -> LearnRecord {
        LearnRecord(mac: mac, placeID: s.placeIDs[place], layout: s.layout, vni: s.vni, slot: s.slot)
    }

    /// The place (number) the workers would read for `mac`, or nil.
    static func place(_ l: MACLearner, _ s: LearningSegment, _ mac: UInt64) -> Int? {
        guard let t = LearnedTable.current(l.root.tables, slot: Int(s.slot), vni: s.vni, layout: s.layout) else { return nil }
        let (i, k) = LearnedTable.probe(t, mac: mac)
        return i < 0 ? nil : Int(k & 0xFFFF) - 1
    }

    @Test func aChangedPlaceListRenumbersMACsAndFlushesThoseOfRemovedPlaces() {
        let v1 = IPv6Address(mapping: 0xC000_0202)
        let before = Self.segment(sites: ["dc1", "dc2"], vteps: [v1])
        let l = MACLearner(root: LearnedRoot(), capacity: 1000)
        defer { l.releaseAll() }
        l.configure([before])
        l.apply(Self.record(before, mac: 0x0A01, place: 0), now: 1)   // at dc1
        l.apply(Self.record(before, mac: 0x0A02, place: 1), now: 1)   // at dc2
        l.apply(Self.record(before, mac: 0x0A03, place: 2), now: 1)   // at the VTEP
        #expect(Self.place(l, before, 0x0A02) == 1 && Self.place(l, before, 0x0A03) == 2)
        // dc1 removed: dc2 becomes place 0, the VTEP place 1; dc1's MAC goes.
        let after = Self.segment(sites: ["dc2"], vteps: [v1])
        l.configure([after])
        #expect(Self.place(l, before, 0x0A02) == nil, "the old layout is not read any more")
        #expect(Self.place(l, after, 0x0A01) == nil && Self.place(l, after, 0x0A02) == 0 && Self.place(l, after, 0x0A03) == 1)
        #expect(l.counters(vni: 7000)?.flushed == 1 && l.total == 2)
        // A record posted under the old layout is ignored.
        l.apply(Self.record(before, mac: 0x0A09, place: 0), now: 2)
        #expect(l.total == 2)
        // The VNI gone: everything goes.
        l.configure([])
        #expect(l.total == 0 && l.root.table(0) == nil)
    }

    @Test func anIncrementalUpdateTouchesOnlyWhatChanged() {
        let a = Self.segment(slot: 0, vni: 7000, sites: ["dc1", "dc2"], vteps: [])
        let b = Self.segment(slot: 1, vni: 7001, sites: ["dc1"], vteps: [])
        let l = MACLearner(root: LearnedRoot(), capacity: 100)
        defer { l.releaseAll() }
        l.update(changed: [a, b], removedSlots: [])
        l.apply(Self.record(a, mac: 1, place: 1), now: 0)
        l.apply(Self.record(b, mac: 2, place: 0), now: 0)
        let a2 = Self.segment(slot: 0, vni: 7000, sites: ["dc2", "dc1"], vteps: [])
        l.update(changed: [a2], removedSlots: [])
        #expect(Self.place(l, a2, 1) == 0 && Self.place(l, b, 2) == 0, "7000 renumbered, 7001 untouched")
        l.update(changed: [], removedSlots: [1])
        #expect(l.count(vni: 7001) == 0 && l.root.table(1) == nil && l.count(vni: 7000) == 1 && l.total == 1)
        // A removed slot reused by another VNI in the same update starts empty.
        let c = Self.segment(slot: 0, vni: 7002, sites: ["dc9"], vteps: [])
        l.update(changed: [c], removedSlots: [0])
        #expect(l.count(vni: 7002) == 0 && l.count(vni: 7000) == 0 && l.total == 0)
    }

    @Test func flushesByPlaceAndByMACAndLimits() {
        let s = Self.segment(sites: ["dc1", "dc2"], vteps: [], limit: 3)
        let other = Self.segment(slot: 1, vni: 7001, sites: ["dc1"], vteps: [])
        let l = MACLearner(root: LearnedRoot(), capacity: 4)
        defer { l.releaseAll() }
        l.configure([s, other])
        for m in 1...4 { l.apply(Self.record(s, mac: UInt64(m), place: m % 2), now: 0) }
        #expect(l.count(vni: 7000) == 3 && l.counters(vni: 7000)?.overLimit == 1, "the VNI's limit")
        #expect(LearnedTable.isFull(l.root.table(0)!), "marked full: workers stop posting new sources")
        l.apply(Self.record(other, mac: 9, place: 0), now: 0)
        l.apply(Self.record(other, mac: 10, place: 0), now: 0)
        #expect(l.total == 4 && l.counters(vni: 7001)?.overLimit == 1, "the agent's capacity")
        #expect(l.flush(vni: 7000, placeID: Segment.siteID("dc2")) == 2, "MACs 1 and 3 were at dc2")
        #expect(!LearnedTable.isFull(l.root.table(0)!), "room again after the flush")
        #expect(l.flush(vni: 7000, mac: 2) == 1 && l.count(vni: 7000) == 0)
        #expect(l.flush(placeID: Segment.siteID("dc1")) == 1, "dc1 of every VNI: 7001's one MAC")
        #expect(l.total == 0)
    }

    /// Found by the learn fuzz target: a raised macLimit must clear the full mark at once (workers post nothing for
    /// new sources while it is set).
    @Test func aRaisedLimitMakesRoomAtOnce() {
        let small = Self.segment(sites: ["dc1"], vteps: [], limit: 1)
        let l = MACLearner(root: LearnedRoot(), capacity: 100)
        defer { l.releaseAll() }
        l.configure([small])
        l.apply(Self.record(small, mac: 1, place: 0), now: 0)
        l.apply(Self.record(small, mac: 2, place: 0), now: 0)
        #expect(LearnedTable.isFull(l.root.table(0)!))
        l.configure([Self.segment(sites: ["dc1"], vteps: [], limit: 10)])
        #expect(!LearnedTable.isFull(l.root.table(0)!))
    }

    @Test func theTableGrowsAndSurvivesChurn() {
        let s = Self.segment(sites: ["a", "b", "c"], vteps: [])
        let l = MACLearner(root: LearnedRoot(), capacity: 1 << 20)
        defer { l.releaseAll() }
        l.configure([s])
        var rng = SystemRandomNumberGenerator()
        var model: [UInt64: Int] = [:]
        for round in 0..<20 {
            for _ in 0..<1000 {
                let mac = UInt64.random(in: 1...5000, using: &rng)
                let place = Int.random(in: 0..<3, using: &rng)
                if model[mac] == nil || model[mac] == place {
                    l.apply(Self.record(s, mac: mac, place: place), now: UInt32(round))
                    model[mac] = place
                }
            }
            for _ in 0..<300 {
                let mac = UInt64.random(in: 1...5000, using: &rng)
                if model.removeValue(forKey: mac) != nil { #expect(l.flush(vni: 7000, mac: mac) == 1) }
            }
        }
        #expect(l.count(vni: 7000) == model.count)
        #expect(model.allSatisfy { Self.place(l, s, $0.key) == $0.value })
        #expect((5001...5500).allSatisfy { Self.place(l, s, UInt64($0)) == nil })
        for t in l.retired { LearnedTable.free(t) }
        l.retired = []
    }

    /// A reader (a worker) looks MACs up while the learner inserts, moves, removes and grows: it may miss a MAC
    /// for one lookup, but never sees a place the MAC never had. Each MAC only ever lives at place mac % 2 or
    /// mac % 2 + 2, so any other place read is a torn or stale slot.
    @Test func aRacingReaderNeverSeesAWrongPlace() async {
        let s = Self.segment(sites: ["a", "b", "c", "d"], vteps: [])
        let l = MACLearner(root: LearnedRoot(), capacity: 1 << 20)
        l.configure([s])
        let stop = Atomic<Bool>(false)
        let wrong = Atomic<Int>(0)
        let tables = UInt(bitPattern: l.root.tables)
        let reader = Thread {
            let t = UnsafeMutablePointer<UInt>(bitPattern: tables)!
            var mac: UInt64 = 1
            while !stop.load(ordering: .relaxed) {
                if let table = LearnedTable.current(t, slot: 0, vni: s.vni, layout: s.layout) {
                    let (i, k) = LearnedTable.probe(table, mac: mac)
                    if i >= 0 {
                        let place = Int(k & 0xFFFF) - 1
                        if k >> 16 != mac || (place != Int(mac % 2) && place != Int(mac % 2) + 2) { wrong.add(1, ordering: .relaxed) }
                    }
                }
                mac = mac % 20_000 + 1
            }
        }
        reader.start()
        for round in 0..<40 {
            for mac in UInt64(1)...20_000 where mac % 3 != UInt64(round % 3) {
                let place = Int(mac % 2) + (round % 2) * 2
                l.apply(Self.record(s, mac: mac, place: place), now: UInt32(round * 1000))   // window restarts: no freeze
            }
            for mac in stride(from: UInt64(round % 7 + 1), through: 20_000, by: 7) { l.flush(vni: s.vni, mac: mac) }
        }
        stop.store(true, ordering: .relaxed)
        while !reader.isFinished { try? await Task.sleep(nanoseconds: 1_000_000) }
        #expect(wrong.load(ordering: .relaxed) == 0)
        // Freed only now that the reader is gone (the agent waits for a grace period instead).
        l.releaseAll()
    }
}
