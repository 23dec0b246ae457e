import Wire

/// A multipoint VNI (an RFC 4762 VPLS instance at the RFC 9014 gateway): its remote sites (one pseudowire each)
/// and the local VTEPs of this data centre. The VNI's `.multipoint` action points (`Action.vteps`) at one block:
///
///     SegmentHeader (64 bytes) | local VTEP addresses (16 bytes each, padded to 64) | place actions (128 bytes each)
///     | place IDs (8 bytes each)
///
/// Places are numbered sites first (0..<siteCount: `.vxlanToMPLS` actions that push the site's labels), then local
/// VTEPs (siteCount..<siteCount + vtepCount: `.popToVXLAN` actions that encapsulate toward the VTEP). A MAC entry
/// names a place by that number + 1. A block is replaced whole with its VNI entry.
///
/// A place's ID (`siteID`, `vtepID`) stays the same across replacements of the VNI while the site or VTEP exists;
/// `layout` summarises the IDs in order, so that learned MACs (which name places by number, `LearnedTable`) are
/// used only with the layout they were learned under.
@frozen
public struct SegmentHeader {
    public var siteCount: UInt32
    public var vtepCount: UInt32
    /// Stable while the multipoint VNI exists: the index of its counters and flood rate-limit buckets.
    public var slot: UInt32
    /// Broadcast, unknown-unicast and multicast frames admitted per second per worker (0: no limit).
    public var bumPerSecond: UInt32
    /// Frames the rate limit admits at once after a quiet spell.
    public var bumBurst: UInt32
    public var vni: UInt32
    /// `Segment.layout` of the place IDs (set by `makeBlock`).
    public var layout: UInt64 = 0
    /// 1: sources are learned (and checked against static MACs); 0: only static MACs forward as known unicast.
    public var learning: UInt32 = 0
    public var pad: UInt32 = 0
    public var reserved: (UInt64, UInt64, UInt64) = (0, 0, 0)

    public init(siteCount: UInt32, vtepCount: UInt32, slot: UInt32, bumPerSecond: UInt32, bumBurst: UInt32, vni: UInt32,
                learning: Bool = false) {
        self.siteCount = siteCount; self.vtepCount = vtepCount; self.slot = slot
        self.bumPerSecond = bumPerSecond; self.bumBurst = bumBurst; self.vni = vni; self.learning = learning ? 1 : 0
    }
}

public enum Segment {
    /// Multipoint VNIs an agent can hold (counter and bucket slots).
    public static let maxSlots = 65_536
    @inlinable public static var headerSize: Int { 64 }

    @inlinable @inline(__always)
    public static func header(_ block: UnsafeRawPointer) -> UnsafePointer<SegmentHeader> {
        block.assumingMemoryBound(to: SegmentHeader.self)
    }

    /// The local VTEPs' addresses (IPv4 as IPv4-mapped IPv6).
    @inlinable @inline(__always)
    public static func vteps(_ block: UnsafeRawPointer) -> UnsafePointer<IPv6Address> {
        (block + headerSize).assumingMemoryBound(to: IPv6Address.self)
    }

    /// Place `i`'s action.
    @inlinable @inline(__always)
    public static func place(_ block: UnsafeRawPointer, _ i: Int) -> UnsafeMutablePointer<Action> {
        let vtepBytes = (Int(header(block).pointee.vtepCount) &* 16 &+ 63) & ~63
        return UnsafeMutableRawPointer(mutating: block + headerSize + vtepBytes).assumingMemoryBound(to: Action.self) + i
    }

    /// Place `i`'s ID (`siteID`, `vtepID`).
    @inlinable @inline(__always)
    public static func placeID(_ block: UnsafeRawPointer, _ i: Int) -> UInt64 {
        let h = header(block).pointee
        let vtepBytes = (Int(h.vtepCount) &* 16 &+ 63) & ~63
        let places = Int(h.siteCount &+ h.vtepCount)
        return (block + headerSize + vtepBytes + places &* MemoryLayout<Action>.stride)
            .load(fromByteOffset: i &* 8, as: UInt64.self)
    }

    /// The ID of the site `name` in any multipoint VNI (FNV-1a, never 0).
    public static func siteID(_ name: String) -> UInt64 { fnv(Array("site\u{0}\(name)".utf8)) }

    /// The ID of the local VTEP at `address`.
    public static func vtepID(_ address: IPv6Address) -> UInt64 {
        fnv(Array("vtep\u{0}".utf8) + withUnsafeBytes(of: address) { Array($0) })
    }

    /// The layout of a block: its counts and place IDs in order (never 0).
    public static func layout(sites: Int, ids: [UInt64]) -> UInt64 {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(8 + ids.count * 8)
        withUnsafeBytes(of: UInt64(sites)) { bytes += $0 }
        for id in ids { withUnsafeBytes(of: id) { bytes += $0 } }
        return fnv(bytes)
    }

    /// `FIBSnapshotBuilder.stableHash` (FNV-1a), never 0.
    static func fnv(_ bytes: [UInt8]) -> UInt64 {
        let h = FIBSnapshotBuilder.stableHash(bytes: bytes)
        return h == 0 ? 1 : h
    }

    /// Bytes of a block with these counts.
    public static func blockSize(sites: Int, vteps: Int) -> Int {
        headerSize + ((vteps * 16 + 63) & ~63) + (sites + vteps) * (MemoryLayout<Action>.stride + 8)
    }

    /// Lays out a block (64-byte aligned); the caller owns it. `ids`: one per place (default: sites then VTEPs
    /// numbered 1, 2, …); the header's `layout` is computed from them.
    public static func makeBlock(_ header: SegmentHeader, vteps: [IPv6Address], places: [Action],
                                 ids: [UInt64]? = nil) -> (UnsafeMutableRawPointer, Int) {
        precondition(places.count == Int(header.siteCount + header.vtepCount) && vteps.count == Int(header.vtepCount))
        let ids = ids ?? places.indices.map { UInt64($0 + 1) }
        precondition(ids.count == places.count)
        let size = blockSize(sites: Int(header.siteCount), vteps: vteps.count)
        let p = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 64)
        p.initializeMemory(as: UInt8.self, repeating: 0, count: size)
        var h = header
        h.layout = layout(sites: Int(header.siteCount), ids: ids)
        p.storeBytes(of: h, as: SegmentHeader.self)
        if !vteps.isEmpty {
            let v = (p + headerSize).bindMemory(to: IPv6Address.self, capacity: vteps.count)
            for (i, a) in vteps.enumerated() { (v + i).initialize(to: a) }
        }
        for (i, a) in places.enumerated() { place(p, i).initialize(to: a) }
        let idBase = UnsafeMutableRawPointer(mutating: place(p, 0) + places.count)
        for (i, id) in ids.enumerated() { idBase.storeBytes(of: id, toByteOffset: i * 8, as: UInt64.self) }
        return (p, size)
    }
}

/// One slot of the MAC table: a (VNI, MAC) key and the place it names (+ 1; 0: empty slot).
@frozen
public struct MACSlot: Sendable {
    public var mac: UInt64
    public var vni: UInt32
    public var place: UInt32
    public init(mac: UInt64, vni: UInt32, place: UInt32) { self.mac = mac; self.vni = vni; self.place = place }
}

/// The static MAC table of every multipoint VNI: one open-addressed (linear probing) hash table of `capacity` slots,
/// kept in pages behind a directory like the ILM so that a commit copies only the pages it touches. The table is
/// never more than half full (the engine refuses more), so a probe always ends at an empty slot within a few steps.
public enum MACTable {
    @inlinable public static var pageBits: Int { 12 }
    @inlinable public static var capacityBits: Int { 22 }
    @inlinable public static var capacity: Int { 1 << capacityBits }
    @inlinable public static var directorySize: Int { capacity >> pageBits }
    /// The most entries the table takes (half its slots).
    public static let maxEntries = capacity / 2

    nonisolated(unsafe) public static let emptyPage: UnsafeMutablePointer<MACSlot> = {
        let p = UnsafeMutablePointer<MACSlot>.allocate(capacity: 1 << 12)
        p.initialize(repeating: MACSlot(mac: 0, vni: 0, place: 0), count: 1 << 12)
        return p
    }()

    /// The home slot of a key.
    @inlinable @inline(__always)
    public static func home(vni: UInt32, mac: UInt64) -> Int {
        var k = mac ^ (UInt64(vni) << 48) ^ (UInt64(vni) >> 16)
        k = (k ^ (k >> 29)) &* 0xFF51_AFD7_ED55_8CCD
        return Int(truncatingIfNeeded: (k &* 0x9E37_79B9_7F4A_7C15) >> UInt64(64 - capacityBits))
    }

    /// The place (+ 1) of (vni, mac), or 0.
    @inlinable @inline(__always)
    public static func lookup(_ directory: UnsafeMutablePointer<UnsafeMutablePointer<MACSlot>>, vni: UInt32, mac: UInt64) -> UInt32 {
        var i = home(vni: vni, mac: mac)
        let mask = capacity &- 1
        let pageMask = (1 << pageBits) &- 1
        while true {
            let s = directory[i >> pageBits][i & pageMask]
            if s.place == 0 { return 0 }
            if s.mac == mac && s.vni == vni { return s.place }
            i = (i &+ 1) & mask
        }
    }
}
