import Wire
import FIB

/// Multipoint VNIs (RFC 4762 VPLS at an RFC 9014 gateway): known unicast goes to its one place; broadcast,
/// multicast and unknown unicast are flooded (the frame is left unwritten with a `.flood` verdict and the caller
/// makes the copies, `Replication`); a destination on the side the frame came from is dropped (split horizon).
extension Pipeline {
    /// VXLAN from a local VTEP on a multipoint VNI: only the VNI's local VTEPs may send; known unicast goes to its
    /// site, a destination at a local VTEP is split horizon, everything else floods to the sites.
    @inlinable @inline(__always)
    static func multipointFromVTEP(_ f: inout Frame, _ b: PacketBytes, inner: Int, end: Int, source: IPv6Address,
                                   id: ActionID, action: UnsafeMutablePointer<Action>, fib: FIBSnapshot,
                                   counters: WorkerCounters) -> Verdict {
        guard let block = UnsafeRawPointer(bitPattern: UInt(action.pointee.vteps)) else { return .dropped(.unknownVNI) }
        let header = Segment.header(block)
        let vtep = index(of: source, in: Segment.vteps(block), count: Int(header.pointee.vtepCount))
        if vtep < 0 { return .dropped(.vtepNotAllowed) }
        if end - inner < Ethernet.headerSize { return .dropped(.tooShort) }
        count(counters, id, UInt64(f.length))
        let slot = Int(header.pointee.slot)
        if header.pointee.learning != 0 {
            let from = Segment.placeID(block, Int(header.pointee.siteCount) &+ vtep)
            if !observeSource(b, inner: inner, block: block, header: header, sourceID: from, fib: fib, counters: counters) {
                counters.segments[slot].staticMACMoved &+= 1
                return .dropped(.staticMACMoved)
            }
        }
        let destination = MACAddress(b, at: inner)
        if destination.value & 0x0100_0000_0000 == 0 {
            let place = destinationPlace(destination.value, header: header, fib: fib, counters: counters)
            if place != 0 {
                if place > header.pointee.siteCount {
                    counters.segments[slot].splitHorizon &+= 1
                    return .dropped(.splitHorizon)
                }
                counters.segments[slot].unicast &+= 1
                return toSite(&f, b, inner: inner, end: end, site: Segment.place(block, Int(place &- 1)), fib: fib)
            }
        }
        return flood(&f, inner: inner, end: end, id: id)
    }

    /// A site's pseudowire into a multipoint VNI: known unicast goes to its local VTEP, a destination at a site is
    /// split horizon, everything else floods to the local VTEPs.
    @inlinable @inline(__always)
    static func multipointFromSite(_ f: inout Frame, _ b: PacketBytes, inner: Int, end: Int, vni: UInt32,
                                   site: UInt64, fib: FIBSnapshot, counters: WorkerCounters) -> Verdict {
        guard let id = fib.vni(vni) else { return .dropped(.unknownVNI) }
        let action = fib.actions + Int(id.rawValue)
        guard action.pointee.operation == .multipoint,
              let block = UnsafeRawPointer(bitPattern: UInt(action.pointee.vteps)) else { return .dropped(.unknownVNI) }
        let header = Segment.header(block)
        let slot = Int(header.pointee.slot)
        if header.pointee.learning != 0
            && !observeSource(b, inner: inner, block: block, header: header, sourceID: site, fib: fib, counters: counters) {
            counters.segments[slot].staticMACMoved &+= 1
            return .dropped(.staticMACMoved)
        }
        let destination = MACAddress(b, at: inner)
        if destination.value & 0x0100_0000_0000 == 0 {
            let place = destinationPlace(destination.value, header: header, fib: fib, counters: counters)
            if place != 0 {
                if place <= header.pointee.siteCount {
                    counters.segments[slot].splitHorizon &+= 1
                    return .dropped(.splitHorizon)
                }
                counters.segments[slot].unicast &+= 1
                return vxlanEncap(&f, b, inner: inner, end: end, action: Segment.place(block, Int(place &- 1)), fib: fib)
            }
        }
        return flood(&f, inner: inner, end: end, id: id)
    }

    /// The index of `address` among a multipoint VNI's `count` local VTEPs, or -1.
    @inlinable @inline(__always)
    static func index(of address: IPv6Address, in list: UnsafePointer<IPv6Address>, count: Int) -> Int {
        var i = 0
        while i < count {
            if list[i] == address { return i }
            i &+= 1
        }
        return -1
    }

    /// Leaves the inner frame for the caller to replicate.
    @inlinable @inline(__always)
    static func flood(_ f: inout Frame, inner: Int, end: Int, id: ActionID) -> Verdict {
        f.offset = Int32(truncatingIfNeeded: inner)
        f.length = Int32(truncatingIfNeeded: end - inner)
        f.flood = id.rawValue &+ 1
        return Verdict(port: .none, drop: .flood)
    }

    /// An inner Ethernet frame into a site's pseudowire: [control word] + the site's labels, then its next hop.
    @inlinable @inline(__always)
    static func toSite(_ f: inout Frame, _ b: PacketBytes, inner: Int, end: Int, site: UnsafeMutablePointer<Action>,
                       fib: FIBSnapshot) -> Verdict {
        let hash = site.pointee.target.isGroup ? FlowHash.ethernet(b, at: inner, end: end) : 0
        var payloadStart = inner
        if site.pointee.hasControlWord {
            payloadStart &-= ControlWord.size
            b.setBE32(payloadStart, 0)
        }
        let start = pushLabels(b, payloadStart: payloadStart, action: site, dynamic: 0, fib: fib)
        if start < Ethernet.headerSize + Ethernet.vlanTagSize { return .dropped(.noHeadroom) }
        return forward(&f, b, payloadStart: start, end: end, etherType: EtherType.mpls, target: site.pointee.target,
                       hash: hash, fib: fib)
    }

    /// Rewrites one copy of a flooded frame for `place` (its bytes: the inner Ethernet frame at `offset`) and sets
    /// its verdict, counting tx or the drop as `processFrame` does. The caller made the copy.
    @inlinable
    public static func replicate(_ c: inout Frame, place: UnsafeMutablePointer<Action>, fib: FIBSnapshot,
                                 counters: WorkerCounters) {
        let b = PacketBytes(c.buffer)
        let inner = Int(c.offset)
        let end = inner + Int(c.length)
        let v = place.pointee.operation == .popToVXLAN
            ? vxlanEncap(&c, b, inner: inner, end: end, action: place, fib: fib)
            : toSite(&c, b, inner: inner, end: end, site: place, fib: fib)
        c.flood = 0
        if v.drop == .none {
            c.egress = v.port; c.drop = .none
            let out = Int(v.port.rawValue)
            counters.ports[out].txPackets &+= 1
            counters.ports[out].txBytes &+= UInt64(c.length)
        } else {
            c.egress = .none; c.drop = v.drop
            counters.drops[Int(v.drop.rawValue)] &+= 1
        }
    }
}

/// The places a flooded frame is copied to, across the split horizon: a local VTEP's frame to every site, a
/// site's frame to every local VTEP.
@frozen
public struct FloodPlan {
    public let block: UnsafeRawPointer
    public let first: Int
    public let count: Int
    public let slot: Int

    @inlinable public init(block: UnsafeRawPointer, first: Int, count: Int, slot: Int) {
        self.block = block; self.first = first; self.count = count; self.slot = slot
    }

    @inlinable public func place(_ i: Int) -> UnsafeMutablePointer<Action> { Segment.place(block, first &+ i) }
    @inlinable public var header: UnsafePointer<SegmentHeader> { Segment.header(block) }
}

/// Replication shared by the live workers and replay: where a flooded frame's copies go, and the per-VNI BUM rate
/// limit (one token bucket per multipoint VNI per worker).
public enum Replication {
    /// The plan for a frame the pipeline left with a `.flood` verdict; nil if it has none.
    @inlinable
    public static func plan(_ f: Frame, fib: FIBSnapshot) -> FloodPlan? {
        guard f.drop == .flood, f.flood != 0, Int(f.flood) <= fib.actionCount else { return nil }
        let action = fib.actions + Int(f.flood &- 1)
        guard action.pointee.operation == .multipoint,
              let block = UnsafeRawPointer(bitPattern: UInt(action.pointee.vteps)) else { return nil }
        let h = Segment.header(block).pointee
        let fromSite = fib.ports[Int(f.ingress.rawValue)].role == .core
        return fromSite ? FloodPlan(block: block, first: Int(h.siteCount), count: Int(h.vtepCount), slot: Int(h.slot))
                        : FloodPlan(block: block, first: 0, count: Int(h.siteCount), slot: Int(h.slot))
    }
}

/// Per-worker token buckets, one per multipoint VNI slot: `admit` takes one token for a flood, refilled at the VNI's
/// rate up to its burst. Reserved memory, resident only for slots in use.
public struct FloodLimiter {
    /// Tokens in billionths (so that any rate refills exactly over any interval), the last refill, and the VNI the
    /// bucket was last used for (a slot reused by another VNI starts full).
    @frozen public struct Bucket { public var nanoTokens: UInt64; public var lastNs: UInt64; public var vni: UInt32; var pad: UInt32 }
    public let buckets: UnsafeMutablePointer<Bucket>

    public init() {
        guard let raw = LargeTable.reserve(bytes: Segment.maxSlots * MemoryLayout<Bucket>.stride) else {
            preconditionFailure("cannot reserve flood rate-limit buckets")
        }
        buckets = raw.bindMemory(to: Bucket.self, capacity: Segment.maxSlots)
    }

    public func release() {
        LargeTable.release(UnsafeMutableRawPointer(buckets), bytes: Segment.maxSlots * MemoryLayout<Bucket>.stride)
    }

    /// Whether a flood of the plan's VNI at time `nowNs` fits its rate. A new bucket (never used) starts full.
    @inlinable
    public func admit(_ plan: FloodPlan, nowNs: UInt64) -> Bool {
        let h = plan.header.pointee
        if h.bumPerSecond == 0 { return true }
        let b = buckets + plan.slot
        let one: UInt64 = 1_000_000_000
        // bumBurst ≤ 10M and dt × rate ≤ 1e10 × 1e8: no overflow.
        let cap = UInt64(min(max(h.bumBurst, 1), 10_000_000)) &* one
        if b.pointee.lastNs == 0 || b.pointee.vni != h.vni &+ 1 {
            b.pointee.nanoTokens = cap
            b.pointee.vni = h.vni &+ 1
            b.pointee.lastNs = max(nowNs, 1)
        } else if nowNs > b.pointee.lastNs {
            let dt = min(nowNs &- b.pointee.lastNs, 10_000_000_000)
            b.pointee.nanoTokens = min(cap, b.pointee.nanoTokens &+ dt &* UInt64(min(h.bumPerSecond, 100_000_000)))
            b.pointee.lastNs = nowNs
        }
        if b.pointee.nanoTokens < one { return false }
        b.pointee.nanoTokens &-= one
        return true
    }
}
