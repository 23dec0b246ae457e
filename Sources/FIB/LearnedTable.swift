import Synchronization
import Wire

/// Learned MACs of one multipoint VNI (RFC 4762 §4): an open-addressed (linear probing) table with one writer, the
/// learner, and lock-free readers, the workers. It is not part of the FIB: no generation, digest or state file.
///
/// An allocation is a 64-byte `LearnedTableHeader` followed by `capacity` 32-byte slots:
///
///     key   (atomic) MAC << 16 | place + 1      0: empty
///     meta  (atomic) last refreshed second (low 32 bits) | flags (high 32: `frozen`)
///     moves          learner only: first second of the move window (low 32) | moves in it (high 32)
///     times          learner only: frozen until second (low 32) | learned second (high 32)
///
/// A worker reads `key` with one atomic load, so it sees a MAC with the place the learner stored for it, never a
/// torn pair. The learner inserts by storing `meta` before `key` (release), moves a MAC by storing a new `key`,
/// and deletes by backward shifting (each moved entry is written to its new slot before its old slot is emptied):
/// a reader racing with a delete can miss an entry for one lookup (the frame floods) but never finds a wrong place.
/// Growing or renumbering places builds a new table that replaces the old one in `LearnedRoot` (the old one is
/// freed after a grace period). Places are numbers in the VNI's segment block of `layout`; a reader uses a table
/// only while its `layout` is the block's.
@frozen
public struct LearnedTableHeader {
    public var vni: UInt32
    public var capacityBits: UInt32
    public var layout: UInt64
    /// Entries (the learner's count).
    public var count: UInt32
    /// Bit 0, `full` (atomic, `LearnedTable.isFull`): the learner refuses new MACs for this VNI now (its
    /// `macLimit` or the agent's capacity), so workers post no records for new sources.
    public var flags: UInt32
    /// 1: the table is a `LargeTable` mapping (freed with munmap), 0: a heap allocation.
    public var mapped: UInt32
    public var pad: UInt32 = 0
    public var reserved: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
    public init(vni: UInt32, capacityBits: UInt32, layout: UInt64, mapped: Bool = false) {
        self.vni = vni; self.capacityBits = capacityBits; self.layout = layout; count = 0; flags = 0
        self.mapped = mapped ? 1 : 0
    }
}

public enum LearnedTable {
    @inlinable public static var headerSize: Int { 64 }
    @inlinable public static var slotSize: Int { 32 }
    /// `meta` flag: a duplicate MAC frozen at its place (RFC 7432 §15.1); workers post no moves for it.
    @inlinable public static var frozen: UInt64 { 1 << 32 }
    public static let minCapacityBits: UInt32 = 6
    public static let maxCapacityBits: UInt32 = 23

    @inlinable @inline(__always)
    public static func header(_ t: UnsafeRawPointer) -> UnsafePointer<LearnedTableHeader> {
        t.assumingMemoryBound(to: LearnedTableHeader.self)
    }

    @inlinable @inline(__always)
    static func word(_ t: UnsafeRawPointer, _ i: Int, _ w: Int) -> UnsafePointer<Atomic<UInt64>> {
        let offset: Int = headerSize &+ i &* slotSize &+ w &* 8
        return (t + offset).assumingMemoryBound(to: Atomic<UInt64>.self)
    }

    /// Slot `i`'s key (atomic): MAC << 16 | place + 1, or 0.
    @inlinable @inline(__always)
    public static func key(_ t: UnsafeRawPointer, _ i: Int) -> UInt64 { word(t, i, 0).pointee.load(ordering: .acquiring) }

    /// Slot `i`'s meta (atomic): last refreshed second | flags.
    @inlinable @inline(__always)
    public static func meta(_ t: UnsafeRawPointer, _ i: Int) -> UInt64 { word(t, i, 1).pointee.load(ordering: .relaxed) }

    @inlinable @inline(__always)
    public static func home(_ mac: UInt64, bits: UInt32) -> Int {
        Int(truncatingIfNeeded: ((mac ^ (mac >> 29)) &* 0x9E37_79B9_7F4A_7C15) >> UInt64(64 &- bits))
    }

    /// A reader's lookup: the slot holding `mac` and the key read there (one load: the MAC and its place belong
    /// together), or (-1, 0). The slot may hold another MAC by the time its `meta` is read; only `key` is exact.
    /// At most `capacity` probes (the table is at most half full, so a probe ends at an empty slot long before; the
    /// bound only guarantees it ends while the writer keeps changing the table).
    @inlinable @inline(__always)
    public static func probe(_ t: UnsafeRawPointer, mac: UInt64) -> (index: Int, key: UInt64) {
        let bits = header(t).pointee.capacityBits
        let mask = (1 << Int(bits)) &- 1
        var i = home(mac, bits: bits)
        var left = mask
        while true {
            let k = key(t, i)
            if k == 0 { return (-1, 0) }
            if k >> 16 == mac { return (i, k) }
            if left == 0 { return (-1, 0) }
            left &-= 1
            i = (i &+ 1) & mask
        }
    }

    @inlinable @inline(__always)
    static func flagsWord(_ t: UnsafeRawPointer) -> UnsafePointer<Atomic<UInt32>> {
        (t + 20).assumingMemoryBound(to: Atomic<UInt32>.self)
    }

    /// Whether the learner refuses new MACs for this VNI now (workers then post nothing for new sources).
    @inlinable @inline(__always)
    public static func isFull(_ t: UnsafeRawPointer) -> Bool { flagsWord(t).pointee.load(ordering: .relaxed) & 1 != 0 }

    public static func setFull(_ t: UnsafeMutableRawPointer, _ full: Bool) {
        flagsWord(t).pointee.store(full ? 1 : 0, ordering: .relaxed)
    }

    /// The writer's lookup: the slot holding `mac`, or -1.
    @inlinable @inline(__always)
    public static func find(_ t: UnsafeRawPointer, mac: UInt64) -> Int { probe(t, mac: mac).index }

    /// The table of multipoint VNI slot `slot` if it is `vni`'s and of `layout`.
    @inlinable @inline(__always)
    public static func current(_ tables: UnsafeMutablePointer<UInt>, slot: Int, vni: UInt32, layout: UInt64) -> UnsafeRawPointer? {
        let bits = UnsafeRawPointer(tables + slot).assumingMemoryBound(to: Atomic<UInt>.self).pointee.load(ordering: .acquiring)
        guard let t = UnsafeRawPointer(bitPattern: bits) else { return nil }
        let h = header(t)
        return h.pointee.vni == vni && h.pointee.layout == layout ? UnsafeRawPointer(t) : nil
    }

    // MARK: the learner's side

    public static func bytes(bits: UInt32) -> Int { headerSize + (1 << Int(bits)) * slotSize }

    /// Tables of at least this many bytes are mapped on their own, on transparent huge pages where the kernel
    /// allows (`LargeTable`): a lookup in a large table of random MACs would otherwise add a TLB miss to its cache miss.
    static let mappedBytes = 2 << 20

    /// A zeroed table.
    public static func allocate(vni: UInt32, layout: UInt64, bits: UInt32) -> UnsafeMutableRawPointer {
        let n = bytes(bits: bits)
        var mapped = false
        let t: UnsafeMutableRawPointer
        if n >= mappedBytes, let m = LargeTable.reserve(bytes: n) {
            t = m   // zeroed by the kernel
            mapped = true
        } else {
            t = UnsafeMutableRawPointer.allocate(byteCount: n, alignment: 64)
            t.initializeMemory(as: UInt8.self, repeating: 0, count: n)
        }
        t.storeBytes(of: LearnedTableHeader(vni: vni, capacityBits: bits, layout: layout, mapped: mapped),
                     as: LearnedTableHeader.self)
        return t
    }

    public static func free(_ t: UnsafeMutableRawPointer) {
        let h = header(t).pointee
        if h.mapped == 1 { LargeTable.release(t, bytes: bytes(bits: h.capacityBits)) } else { t.deallocate() }
    }

    public static func capacity(_ t: UnsafeRawPointer) -> Int { 1 << Int(header(t).pointee.capacityBits) }

    public static func count(_ t: UnsafeRawPointer) -> Int { Int(header(t).pointee.count) }

    /// Learner-only words of slot `i`.
    public static func moves(_ t: UnsafeRawPointer, _ i: Int) -> UInt64 { word(t, i, 2).pointee.load(ordering: .relaxed) }
    public static func times(_ t: UnsafeRawPointer, _ i: Int) -> UInt64 { word(t, i, 3).pointee.load(ordering: .relaxed) }

    public static func setMeta(_ t: UnsafeMutableRawPointer, _ i: Int, _ v: UInt64) { word(t, i, 1).pointee.store(v, ordering: .relaxed) }
    public static func setMoves(_ t: UnsafeMutableRawPointer, _ i: Int, _ v: UInt64) { word(t, i, 2).pointee.store(v, ordering: .relaxed) }
    public static func setTimes(_ t: UnsafeMutableRawPointer, _ i: Int, _ v: UInt64) { word(t, i, 3).pointee.store(v, ordering: .relaxed) }

    /// Points slot `i` at `place` (a move): one atomic store of its key.
    public static func setPlace(_ t: UnsafeMutableRawPointer, _ i: Int, _ place: Int) {
        let k = key(t, i)
        word(t, i, 0).pointee.store(k & ~0xFFFF | UInt64(place + 1), ordering: .releasing)
    }

    /// Adds `mac` at `place` (the caller checked it is absent and the table less than half full); returns its slot.
    @discardableResult
    public static func insert(_ t: UnsafeMutableRawPointer, mac: UInt64, place: Int, meta: UInt64, moves: UInt64 = 0,
                              times: UInt64 = 0) -> Int {
        let bits = header(t).pointee.capacityBits
        let mask = (1 << Int(bits)) - 1
        var i = home(mac, bits: bits)
        while key(t, i) != 0 { i = (i + 1) & mask }
        setMeta(t, i, meta); setMoves(t, i, moves); setTimes(t, i, times)
        word(t, i, 0).pointee.store(mac << 16 | UInt64(place + 1), ordering: .releasing)
        t.assumingMemoryBound(to: LearnedTableHeader.self).pointee.count += 1
        return i
    }

    /// Copies every entry of `old` into `fresh` (a new table, not yet published), at the place `place` maps its old
    /// place to; an entry whose place maps to nil is left out. Returns how many were left out.
    @discardableResult
    public static func copyEntries(from old: UnsafeRawPointer, into fresh: UnsafeMutableRawPointer,
                                   place: (Int) -> Int? = { $0 }) -> Int {
        var left = 0
        for i in 0..<capacity(old) {
            let k = key(old, i)
            if k == 0 { continue }
            guard let p = place(Int(k & 0xFFFF) - 1) else { left += 1; continue }
            insert(fresh, mac: k >> 16, place: p, meta: meta(old, i), moves: moves(old, i), times: times(old, i))
        }
        return left
    }

    /// Removes slot `i` by backward shifting the entries behind it (entries move: callers that iterate collect the
    /// MACs first and `find` each).
    public static func remove(_ t: UnsafeMutableRawPointer, _ i: Int) {
        let bits = header(t).pointee.capacityBits
        let mask = (1 << Int(bits)) - 1
        var hole = i
        word(t, hole, 0).pointee.store(0, ordering: .releasing)
        var j = (hole + 1) & mask
        while true {
            let k = key(t, j)
            if k == 0 { break }
            let h = home(k >> 16, bits: bits)
            // j's entry may fill the hole unless its home lies cyclically in (hole, j].
            let stays = hole <= j ? (hole < h && h <= j) : (hole < h || h <= j)
            if !stays {
                setMeta(t, hole, meta(t, j)); setMoves(t, hole, moves(t, j)); setTimes(t, hole, times(t, j))
                word(t, hole, 0).pointee.store(k, ordering: .releasing)
                word(t, j, 0).pointee.store(0, ordering: .releasing)
                hole = j
            }
            j = (j + 1) & mask
        }
        t.assumingMemoryBound(to: LearnedTableHeader.self).pointee.count -= 1
    }
}

/// Every multipoint VNI's learned table, by segment slot (`SegmentHeader.slot`): the pointers a worker reads (once
/// per lookup, acquire) and the learner replaces. `version` counts replacements.
public final class LearnedRoot: @unchecked Sendable {
    public let tables: UnsafeMutablePointer<UInt>
    public let version = Atomic<UInt64>(0)

    /// 512 KiB on the heap, not a `LargeTable` mapping: leak checkers (the fuzz targets' LeakSanitizer) scan the
    /// heap for the tables' pointers, not mappings.
    public init() {
        tables = .allocate(capacity: Segment.maxSlots)
        tables.initialize(repeating: 0, count: Segment.maxSlots)
    }

    deinit { tables.deallocate() }

    public func table(_ slot: Int) -> UnsafeMutableRawPointer? {
        UnsafeMutableRawPointer(bitPattern: UnsafeRawPointer(tables + slot).assumingMemoryBound(to: Atomic<UInt>.self)
            .pointee.load(ordering: .acquiring))
    }

    /// Publishes `t` (or nil) for `slot`; returns the table it replaces.
    @discardableResult
    public func set(_ slot: Int, _ t: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? {
        let old = UnsafeRawPointer(tables + slot).assumingMemoryBound(to: Atomic<UInt>.self).pointee
            .exchange(UInt(bitPattern: t), ordering: .acquiringAndReleasing)
        version.add(1, ordering: .relaxed)
        return UnsafeMutableRawPointer(bitPattern: old)
    }
}

/// What the learner needs to know of one multipoint VNI (from the control side, `FIBEngine.learningSegments`).
public struct LearningSegment: Sendable, Equatable {
    public var slot: UInt32
    public var vni: UInt32
    public var layout: UInt64
    /// Place IDs in place order (sites, then local VTEPs), and their names for `show macs`.
    public var placeIDs: [UInt64]
    public var placeNames: [String]
    public var siteCount: Int
    public var learning: Bool
    public var macLimit: Int
    public var agingSeconds: UInt32
    /// RFC 7432 §15.1: more than `moveLimit` moves within `moveWindowSeconds` freeze the MAC for `holdSeconds`
    /// (0: until cleared).
    public var moveLimit: UInt32
    public var moveWindowSeconds: UInt32
    public var holdSeconds: UInt32

    public init(slot: UInt32, vni: UInt32, layout: UInt64, placeIDs: [UInt64], placeNames: [String], siteCount: Int,
                learning: Bool, macLimit: Int, agingSeconds: UInt32, moveLimit: UInt32, moveWindowSeconds: UInt32,
                holdSeconds: UInt32) {
        self.slot = slot; self.vni = vni; self.layout = layout; self.placeIDs = placeIDs; self.placeNames = placeNames
        self.siteCount = siteCount; self.learning = learning; self.macLimit = macLimit; self.agingSeconds = agingSeconds
        self.moveLimit = moveLimit; self.moveWindowSeconds = moveWindowSeconds; self.holdSeconds = holdSeconds
    }
}

/// One learned MAC as `show macs` reports it.
public struct LearnedMAC: Sendable, Equatable {
    public var vni: UInt32
    public var mac: MACAddress
    /// The site's name or the local VTEP's address.
    public var place: String
    public var isSite: Bool
    /// Seconds since it was last refreshed, and since it was learned.
    public var age: UInt32
    public var learnedAgo: UInt32
    /// Moves in the current window.
    public var moves: UInt32
    /// Frozen as a duplicate (RFC 7432 §15.1); seconds left (0: until cleared).
    public var frozen: Bool
    public var frozenFor: UInt32
    public init(vni: UInt32, mac: MACAddress, place: String, isSite: Bool, age: UInt32, learnedAgo: UInt32, moves: UInt32,
                frozen: Bool, frozenFor: UInt32) {
        self.vni = vni; self.mac = mac; self.place = place; self.isSite = isSite; self.age = age
        self.learnedAgo = learnedAgo; self.moves = moves; self.frozen = frozen; self.frozenFor = frozenFor
    }
}

/// Per multipoint VNI: what the learner did (the workers' part, records they could not post, is in
/// `SegmentCounters`).
@frozen
public struct LearnCounters: Sendable, Equatable {
    public var learned: UInt64 = 0
    public var refreshed: UInt64 = 0
    public var moved: UInt64 = 0
    /// MACs frozen as duplicates.
    public var duplicate: UInt64 = 0
    /// Sources not learned: the VNI's limit or the agent's capacity was reached.
    public var overLimit: UInt64 = 0
    public var aged: UInt64 = 0
    /// Removed by a flush or clear (a request, a deleted site or VTEP, a next hop down without backup).
    public var flushed: UInt64 = 0
    public init() {}
}
