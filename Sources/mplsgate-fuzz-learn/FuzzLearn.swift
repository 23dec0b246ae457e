#if canImport(Glibc)
import Glibc
#endif
import Dataplane
import FIB
import Wire
import FuzzInputs

/// libFuzzer target for the MAC learner (`MACLearner`, the learned tables' only writer): each input is a sequence of
/// 3-byte operations on a fresh learner with two multipoint VNIs: learn records (new, refreshed, moved MACs, from
/// places that exist or not, under the current layout or an old one), the clock stepping forward or back, aging
/// sweeps, flushes by VNI, place or MAC, and the controller changing the VNIs (a site removed, learning off, a
/// small macLimit or capacity, holdSeconds 0) as a whole list or as the agent's incremental update. After every operation the tables must agree with the learner: its
/// total is the sum of the VNIs' counts, no table is more than half full, a MAC is learned only with room (under the
/// VNI's limit and the capacity; a lowered limit evicts nothing), every entry names a place of the VNI's current
/// layout and is found where a worker would look, and a full mark means no room.
let root = LearnedRoot()

struct Harness {
    static let v1 = IPv6Address(mapping: 0xC000_0202), v2 = IPv6Address(mapping: 0xC000_0203)
    var segments: [LearningSegment] = []
    var capacity = 64

    static func segment(slot: UInt32, vni: UInt32, sites: [String], vteps: [IPv6Address], learning: Bool = true,
                        limit: Int = 1000, moves: UInt32 = 3, window: UInt32 = 60, hold: UInt32 = 30) -> LearningSegment {
        let ids = sites.map(Segment.siteID) + vteps.map(Segment.vtepID)
        return LearningSegment(slot: slot, vni: vni, layout: Segment.layout(sites: sites.count, ids: ids), placeIDs: ids,
                               placeNames: sites + vteps.map { "\($0)" }, siteCount: sites.count, learning: learning,
                               macLimit: limit, agingSeconds: 20, moveLimit: moves, moveWindowSeconds: window,
                               holdSeconds: hold)
    }

    /// The controller's change number `k`: the VNIs it configures.
    mutating func variant(_ k: UInt8) -> [LearningSegment] {
        let a = Harness.segment(slot: 0, vni: 6000, sites: ["a", "b", "c"], vteps: [Harness.v1, Harness.v2])
        let b = Harness.segment(slot: 1, vni: 6001, sites: ["a"], vteps: [Harness.v1])
        switch k % 8 {
        case 0: segments = [a, b]
        case 1: segments = [Harness.segment(slot: 0, vni: 6000, sites: ["a", "c"], vteps: [Harness.v2, Harness.v1]), b]
        case 2: segments = [Harness.segment(slot: 0, vni: 6000, sites: ["a", "b", "c"], vteps: [Harness.v1, Harness.v2],
                                            learning: false), b]
        case 3: segments = [Harness.segment(slot: 0, vni: 6000, sites: ["a", "b", "c"], vteps: [Harness.v1, Harness.v2],
                                            limit: 3), b]
        case 4: segments = [a]
        case 5: segments = [Harness.segment(slot: 1, vni: 6000, sites: ["b"], vteps: [Harness.v2]),
                            Harness.segment(slot: 0, vni: 6001, sites: ["a"], vteps: [Harness.v1])]   // slots swapped
        case 6: segments = [Harness.segment(slot: 0, vni: 6000, sites: ["a", "b", "c"], vteps: [Harness.v1, Harness.v2],
                                            hold: 0), b]
        default: segments = [a, Harness.segment(slot: 1, vni: 6001, sites: ["a", "b"], vteps: [Harness.v1], limit: 2)]
        }
        return segments
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzLearn(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard size >= 1 else { return 0 }
    var h = Harness()
    h.capacity = Int(data[0] % 64) + 1
    let l = MACLearner(root: root, capacity: h.capacity)
    defer { l.releaseAll() }
    var old = h.variant(0)
    l.configure(old)
    var now: UInt32 = 1000
    var i = 1
    while i + 3 <= size {
        let (op, x, y) = (data[i], data[i + 1], data[i + 2])
        i += 3
        switch op % 8 {
        case 0, 1, 2, 3:
            // A record: VNI by bit 3, a MAC from a small space (moves and refreshes), a place that may not exist, the
            // layout of the last configuration but one now and then.
            let list = op & 0x40 != 0 ? old : h.segments
            guard !list.isEmpty else { break }
            let s = list[Int(op >> 3 & 1) % list.count]
            let place = Int(y % 8)
            let id = place < s.placeIDs.count ? s.placeIDs[place] : Segment.siteID("nowhere")
            now &+= UInt32(y >> 6)
            let before = l.count(vni: s.vni), totalBefore = l.total
            l.apply(LearnRecord(mac: 0x0200_0000_0000 | UInt64(x % 48), placeID: id, layout: s.layout, vni: s.vni, slot: s.slot),
                    now: now)
            // A MAC is learned only with room (a lowered limit evicts nothing: a VNI may stay over it).
            if l.count(vni: s.vni) > before, let current = h.segments.first(where: { $0.vni == s.vni }) {
                precondition(before < current.macLimit && totalBefore < h.capacity,
                             "VNI \(s.vni) learned a MAC at \(before) of \(current.macLimit), agent \(totalBefore) of \(h.capacity)")
            }
        case 4:
            now &+= UInt32(x)
            l.sweep(now: now)
        case 5:
            let vni: UInt32 = x & 1 == 0 ? 6000 : 6001
            switch y % 4 {
            case 0: l.flush(vni: vni)
            case 1: l.flush(vni: vni, mac: 0x0200_0000_0000 | UInt64(x >> 1 % 48))
            case 2: l.flush(vni: vni, placeID: Segment.siteID(["a", "b", "c"][Int(x >> 1) % 3]))
            default: l.flush(placeID: Segment.vtepID(Harness.v1))
            }
        case 6:
            old = h.segments
            let new = h.variant(x)
            if y & 1 == 0 {
                l.configure(new)
            } else {
                // As the agent hands changes over (`FIBEngine.takeSegmentChanges`): the slots whose VNI went or changed
                // first, then the VNIs that are new or different.
                let removed = old.filter { o in !new.contains { $0.slot == o.slot && $0.vni == o.vni } }.map(\.slot)
                l.update(changed: new.filter { !old.contains($0) }, removedSlots: removed)
            }
            precondition(l.learns == new.contains { $0.learning }, "learns is \(l.learns)")
        default:
            // The clock stepping back (a capture out of order) or far forward.
            now = now &+ UInt32(x) &- 128 &+ (y == 255 ? 1_000_000 : 0)
        }
        // Replaced tables: nothing else reads them here.
        for t in l.retired { LearnedTable.free(t) }
        l.retired = []
        check(l, h)
    }
    return 0
}

func check(_ l: MACLearner, _ h: Harness) {
    var sum = 0
    for s in h.segments {
        let n = l.count(vni: s.vni)
        sum += n
        guard let t = root.table(Int(s.slot)) else {
            precondition(n == 0, "VNI \(s.vni) counts \(n) MACs without a table")
            continue
        }
        let header = LearnedTable.header(t).pointee
        precondition(header.vni == s.vni && header.layout == s.layout, "VNI \(s.vni)'s table is of another VNI or layout")
        var entries = 0
        for k in 0..<LearnedTable.capacity(t) {
            let key = LearnedTable.key(t, k)
            if key == 0 { continue }
            entries += 1
            let place = Int(key & 0xFFFF) - 1
            precondition(place >= 0 && place < s.placeIDs.count, "VNI \(s.vni): MAC at place \(place) of \(s.placeIDs.count)")
            precondition(LearnedTable.probe(t, mac: key >> 16).index == k, "VNI \(s.vni): an entry a lookup cannot find")
        }
        precondition(entries == n && Int(header.count) == n, "VNI \(s.vni): \(entries) entries, count \(n)")
        precondition(entries * 2 <= LearnedTable.capacity(t), "VNI \(s.vni): table more than half full")
        precondition(!s.learning ? n == 0 : true, "VNI \(s.vni) does not learn but holds \(n) MACs")
        if LearnedTable.isFull(t) {
            precondition(n >= s.macLimit || l.total >= h.capacity, "VNI \(s.vni) marked full with room")
        }
    }
    precondition(sum == l.total, "total \(l.total), VNIs hold \(sum)")
    precondition(l.total <= h.capacity, "total \(l.total) over the capacity \(h.capacity)")
}

#if !FUZZING
/// Without libFuzzer (a plain `swift build`): runs the inputs given as files.
@main
struct ReplayInputs {
    static func main() { FuzzInputs.replayArguments(fuzzLearn) }
}
#endif
