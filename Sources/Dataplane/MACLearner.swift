import Wire
import FIB

/// Something the learner did that the operator hears about (an event on the control socket and a log line).
public struct LearnEvent: Sendable, Equatable {
    public enum Kind: String, Sendable { case moved, duplicate }
    public var kind: Kind
    public var vni: UInt32
    public var mac: MACAddress
    /// Where the MAC was and where it was seen (for a duplicate: where it stays, and where it was seen).
    public var from: String
    public var to: String
    public init(kind: Kind, vni: UInt32, mac: MACAddress, from: String, to: String) {
        self.kind = kind; self.vni = vni; self.mac = mac; self.from = from; self.to = to
    }
}

/// The learned MAC tables' only writer (RFC 4762 §4 learning, RFC 7432 §15.1 duplicate detection): applies the
/// workers' `LearnRecord`s, ages entries, flushes them. Single-threaded: the live agent's learner thread owns it
/// (under a lock the control thread also takes for `show` and flushes), replay calls it at the end of each batch.
/// Times are whole seconds of one clock (CLOCK_MONOTONIC live, capture time in replay).
public final class MACLearner {
    struct SegmentState {
        var info: LearningSegment
        /// Place ID → place number.
        var index: [UInt64: Int]
        var counters = LearnCounters()
        init(_ info: LearningSegment) {
            self.info = info
            index = Dictionary(info.placeIDs.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
        }
    }

    public let root: LearnedRoot
    /// Learned MACs the agent holds at most, over all VNIs.
    public let capacity: Int
    public private(set) var total = 0
    private var segments: [Int: SegmentState] = [:]
    private var vniSlot: [UInt32: Int] = [:]
    /// Tables replaced or removed: the owner frees them after a grace period (`LearnedTable.free`).
    public var retired: [UnsafeMutableRawPointer] = []
    /// Moves and duplicates since the owner last took them.
    public var events: [LearnEvent] = []
    /// Events kept at most between two takes (a flapping storm must not grow memory).
    public static let maxEvents = 1024
    public private(set) var lastSweep: UInt32 = 0
    /// Slots whose table is marked full (`LearnedTable.setFull`).
    private var fullSlots = Set<Int>()

    public init(root: LearnedRoot, capacity: Int) {
        self.root = root; self.capacity = capacity
    }

    /// Frees every table at once (replay's end; the agent's end after its workers stopped).
    public func releaseAll() {
        for slot in segments.keys { if let t = root.set(slot, nil) { LearnedTable.free(t) } }
        for t in retired { LearnedTable.free(t) }
        retired = []; segments = [:]; vniSlot = [:]; total = 0; learningSegments = 0; fullSlots = []
    }

    // MARK: configuration (from the FIB)

    /// The multipoint VNIs of the FIB now. A VNI gone (or no longer learning) loses its learned MACs; a VNI whose
    /// places changed keeps the MACs of places that remain (renumbered) and loses those of removed sites or VTEPs.
    public func configure(_ list: [LearningSegment]) {
        let keep = Set(list.map { Int($0.slot) })
        update(changed: list, removedSlots: segments.keys.filter { !keep.contains($0) }.map(UInt32.init))
    }

    /// An incremental `configure` (`FIBEngine.takeSegmentChanges`): the slots of VNIs that stopped being multipoint
    /// lose their MACs first, then the changed or new VNIs are set as `configure` would.
    public func update(changed list: [LearningSegment], removedSlots: [UInt32]) {
        for r in removedSlots {
            let slot = Int(r)
            guard let s = segments[slot] else { continue }
            drop(slot)
            if vniSlot[s.info.vni] == slot { vniSlot[s.info.vni] = nil }
            if s.info.learning { learningSegments -= 1 }
            segments[slot] = nil
        }
        for info in list {
            let slot = Int(info.slot)
            if segments[slot]?.info.learning == true { learningSegments -= 1 }
            if info.learning { learningSegments += 1 }
            if var s = segments[slot], s.info.vni == info.vni {
                let old = s.info
                s.info = info
                s.index = SegmentState(info).index
                segments[slot] = s
                if !info.learning { drop(slot) } else if old.layout != info.layout { renumber(slot, from: old) }
            } else {
                if let old = segments[slot] {
                    drop(slot)
                    if vniSlot[old.info.vni] == slot { vniSlot[old.info.vni] = nil }
                }
                segments[slot] = SegmentState(info)
            }
            vniSlot[info.vni] = slot
        }
        // A raised macLimit makes room at once.
        releaseFull()
    }

    /// Removes a slot's table (all its MACs, counted as flushed).
    private func drop(_ slot: Int) {
        guard let t = root.set(slot, nil) else { return }
        let n = LearnedTable.count(t)
        total -= n
        segments[slot]?.counters.flushed &+= UInt64(n)
        retired.append(t)
        fullSlots.remove(slot)
        releaseFull()
    }

    /// Rebuilds a slot's table for its new layout: each MAC keeps its place if the place remains.
    private func renumber(_ slot: Int, from old: LearningSegment) {
        guard let t = root.table(slot), let s = segments[slot] else { return }
        let fresh = LearnedTable.allocate(vni: s.info.vni, layout: s.info.layout,
                                          bits: LearnedTable.header(t).pointee.capacityBits)
        let lost = LearnedTable.copyEntries(from: t, into: fresh) { was in
            was < old.placeIDs.count ? s.index[old.placeIDs[was]] : nil
        }
        total -= lost
        segments[slot]?.counters.flushed &+= UInt64(lost)
        if fullSlots.contains(slot) { LearnedTable.setFull(fresh, true) }
        if let replaced = root.set(slot, fresh) { retired.append(replaced) }
        if lost > 0 { releaseFull() }
    }

    /// Whether any multipoint VNI learns (as of the last `configure` or `update`).
    public var learns: Bool { learningSegments > 0 }
    private var learningSegments = 0

    // MARK: records

    /// Applies one worker record seen at second `now`.
    public func apply(_ r: LearnRecord, now: UInt32) {
        let slot = Int(r.slot)
        guard var s = segments[slot], s.info.vni == r.vni, s.info.layout == r.layout, s.info.learning,
              let place = s.index[r.placeID] else { return }
        defer { segments[slot] = s }
        let mac = r.mac & 0xFFFF_FFFF_FFFF
        var table = root.table(slot)
        let i = table.map { LearnedTable.find($0, mac: mac) } ?? -1
        if i < 0 {
            let count = table.map { LearnedTable.count($0) } ?? 0
            if count >= s.info.macLimit || total >= capacity {
                s.counters.overLimit &+= 1
                // Workers stop posting new sources for this VNI until it has room again (`sweep`, `flush`).
                if table == nil { table = grow(slot, nil, info: s.info) }
                if let t = table { LearnedTable.setFull(t, true); fullSlots.insert(slot) }
                return
            }
            if table == nil || (count + 1) * 2 > LearnedTable.capacity(table!) {
                guard let grown = grow(slot, table, info: s.info) else { s.counters.overLimit &+= 1; return }
                table = grown
            }
            LearnedTable.insert(table!, mac: mac, place: place, meta: UInt64(now), times: UInt64(now) << 32)
            total += 1
            s.counters.learned &+= 1
            return
        }
        let t = table!
        let key = LearnedTable.key(t, i)
        let meta = LearnedTable.meta(t, i)
        let was = Int(key & 0xFFFF) - 1
        if was == place {
            LearnedTable.setMeta(t, i, meta & ~0xFFFF_FFFF | UInt64(now))
            s.counters.refreshed &+= 1
            return
        }
        if meta & LearnedTable.frozen != 0 { return }
        // A move (RFC 7432 §15.1): more than moveLimit within moveWindowSeconds make the MAC a duplicate.
        var moves = LearnedTable.moves(t, i)
        var start = UInt32(truncatingIfNeeded: moves)
        var count = UInt32(truncatingIfNeeded: moves >> 32)
        if count == 0 || now &- start >= s.info.moveWindowSeconds { start = now; count = 0 }
        count += 1
        moves = UInt64(count) << 32 | UInt64(start)
        LearnedTable.setMoves(t, i, moves)
        let from = name(s.info, was), to = name(s.info, place)
        if count > s.info.moveLimit {
            LearnedTable.setMeta(t, i, UInt64(now) | LearnedTable.frozen)
            let until: UInt32 = s.info.holdSeconds == 0 ? 0 : max(now &+ s.info.holdSeconds, 1)
            let times = LearnedTable.times(t, i)
            LearnedTable.setTimes(t, i, times & ~0xFFFF_FFFF | UInt64(until))
            s.counters.duplicate &+= 1
            note(LearnEvent(kind: .duplicate, vni: r.vni, mac: MACAddress(value: mac), from: from, to: to))
            return
        }
        LearnedTable.setMeta(t, i, UInt64(now))
        LearnedTable.setPlace(t, i, place)
        s.counters.moved &+= 1
        note(LearnEvent(kind: .moved, vni: r.vni, mac: MACAddress(value: mac), from: from, to: to))
    }

    private func note(_ e: LearnEvent) {
        if events.count < MACLearner.maxEvents { events.append(e) }
    }

    private func name(_ info: LearningSegment, _ place: Int) -> String {
        place >= 0 && place < info.placeNames.count ? info.placeNames[place] : "place \(place)"
    }

    /// A larger table (or the first) for `slot`, published; nil when the table is at its largest.
    private func grow(_ slot: Int, _ old: UnsafeMutableRawPointer?, info: LearningSegment) -> UnsafeMutableRawPointer? {
        let bits = old.map { LearnedTable.header($0).pointee.capacityBits + 1 } ?? LearnedTable.minCapacityBits
        if bits > LearnedTable.maxCapacityBits { return nil }
        let fresh = LearnedTable.allocate(vni: info.vni, layout: info.layout, bits: bits)
        if let old { LearnedTable.copyEntries(from: old, into: fresh) }
        if let replaced = root.set(slot, fresh) { retired.append(replaced) }
        return fresh
    }

    /// Clears the full mark of every VNI that has room again (after MACs went away).
    private func releaseFull() {
        guard !fullSlots.isEmpty else { return }
        for slot in fullSlots {
            guard let s = segments[slot], let t = root.table(slot) else { fullSlots.remove(slot); continue }
            if LearnedTable.count(t) < s.info.macLimit && total < capacity {
                LearnedTable.setFull(t, false)
                fullSlots.remove(slot)
            }
        }
    }

    // MARK: aging, flushing

    /// Ages out MACs not refreshed for their VNI's aging time and releases duplicates whose hold expired.
    public func sweep(now: UInt32) {
        lastSweep = now
        for (slot, s) in segments {
            guard let t = root.table(slot) else { continue }
            var expired: [UInt64] = []
            for i in 0..<LearnedTable.capacity(t) {
                let k = LearnedTable.key(t, i)
                if k == 0 { continue }
                let meta = LearnedTable.meta(t, i)
                let frozen = meta & LearnedTable.frozen != 0
                let until = UInt32(truncatingIfNeeded: LearnedTable.times(t, i))
                let seen = UInt32(truncatingIfNeeded: meta)
                // A duplicate frozen until an operator flushes it (holdSeconds 0) does not age.
                if !(frozen && until == 0) && now >= seen && now - seen >= s.info.agingSeconds {
                    expired.append(k >> 16)
                    continue
                }
                if frozen && until != 0 && now >= until {
                    LearnedTable.setMeta(t, i, meta & ~LearnedTable.frozen)
                    LearnedTable.setMoves(t, i, 0)
                }
            }
            remove(expired, from: t)
            segments[slot]?.counters.aged &+= UInt64(expired.count)
        }
        releaseFull()
    }

    /// Removes the learned MACs of `vni`: all, those at the place `placeID`, or the one `mac`. Returns how many.
    @discardableResult
    public func flush(vni: UInt32, placeID: UInt64? = nil, mac: UInt64? = nil) -> Int {
        guard let slot = vniSlot[vni], let s = segments[slot], let t = root.table(slot) else { return 0 }
        let place = placeID.map { s.index[$0] ?? -2 }
        var gone: [UInt64] = []
        if let mac = mac.map({ $0 & 0xFFFF_FFFF_FFFF }) {
            let i = LearnedTable.find(t, mac: mac)
            if i >= 0 && (place == nil || Int(LearnedTable.key(t, i) & 0xFFFF) - 1 == place) { gone.append(mac) }
        } else {
            for i in 0..<LearnedTable.capacity(t) {
                let k = LearnedTable.key(t, i)
                if k != 0 && (place == nil || Int(k & 0xFFFF) - 1 == place) { gone.append(k >> 16) }
            }
        }
        remove(gone, from: t)
        segments[slot]?.counters.flushed &+= UInt64(gone.count)
        releaseFull()
        return gone.count
    }

    /// Removes `macs` (all in `t`; collected first, since a removal shifts entries) and counts them out of `total`.
    private func remove(_ macs: [UInt64], from t: UnsafeMutableRawPointer) {
        for mac in macs {
            let i = LearnedTable.find(t, mac: mac)
            if i >= 0 { LearnedTable.remove(t, i) }
        }
        total -= macs.count
    }

    /// Flushes the MACs learned at place `placeID` in every VNI that has it (a site whose next hop and backup are
    /// down). Returns how many.
    @discardableResult
    public func flush(placeID: UInt64) -> Int {
        segments.values.filter { $0.index[placeID] != nil }.map(\.info.vni)
            .reduce(0) { $0 + flush(vni: $1, placeID: placeID) }
    }

    // MARK: reading

    public func counters(vni: UInt32) -> LearnCounters? { vniSlot[vni].flatMap { segments[$0]?.counters } }

    public func count(vni: UInt32) -> Int { vniSlot[vni].flatMap { root.table($0) }.map { LearnedTable.count($0) } ?? 0 }

    /// The learned MACs of `vni` at second `now`, sorted by MAC.
    public func entries(vni: UInt32, now: UInt32) -> [LearnedMAC] {
        guard let slot = vniSlot[vni], let s = segments[slot], let t = root.table(slot) else { return [] }
        var out: [LearnedMAC] = []
        out.reserveCapacity(LearnedTable.count(t))
        for i in 0..<LearnedTable.capacity(t) {
            let k = LearnedTable.key(t, i)
            if k == 0 { continue }
            let place = Int(k & 0xFFFF) - 1
            let meta = LearnedTable.meta(t, i)
            let times = LearnedTable.times(t, i)
            let frozen = meta & LearnedTable.frozen != 0
            let until = UInt32(truncatingIfNeeded: times)
            let moves = LearnedTable.moves(t, i)
            let windowOpen = now &- UInt32(truncatingIfNeeded: moves) < s.info.moveWindowSeconds
            // Seconds since; 0 if the learner stamped a later second than the caller's `now`.
            func ago(_ x: UInt32) -> UInt32 { now >= x ? now - x : 0 }
            out.append(LearnedMAC(
                vni: vni, mac: MACAddress(value: k >> 16), place: name(s.info, place), isSite: place < s.info.siteCount,
                age: ago(UInt32(truncatingIfNeeded: meta)), learnedAgo: ago(UInt32(truncatingIfNeeded: times >> 32)),
                moves: windowOpen || frozen ? UInt32(truncatingIfNeeded: moves >> 32) : 0,
                frozen: frozen, frozenFor: frozen && until != 0 ? until &- min(now, until) : 0))
        }
        return out.sorted { $0.mac.value < $1.mac.value }
    }
}
