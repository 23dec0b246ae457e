import Wire
import FIB

/// A source seen on a multipoint VNI that the learner should look at: new, moved, or due a refresh. The learner
/// decides which by its own table; the worker only says where the frame came from.
@frozen
public struct LearnRecord: Sendable, Equatable {
    public var mac: UInt64
    /// The place the frame came from (`Segment.siteID` / `vtepID`).
    public var placeID: UInt64
    /// The segment block's layout the worker saw.
    public var layout: UInt64
    public var vni: UInt32
    public var slot: UInt32
    public init(mac: UInt64, placeID: UInt64, layout: UInt64, vni: UInt32, slot: UInt32) {
        self.mac = mac; self.placeID = placeID; self.layout = layout; self.vni = vni; self.slot = slot
    }
}

/// One worker's learning state for the batch in hand: the learned tables (nil: nothing learns here, e.g. the
/// benchmarks), the batch's second, and the records the pipeline posted (the worker hands them to the learner at
/// the end of the batch; replay applies them there). No rings or locks in the pipeline.
@frozen
public struct LearnContext {
    public static let capacity = 256
    public var tables: UnsafeMutablePointer<UInt>?
    public var nowSeconds: UInt32
    public var count: Int32
    public let records: UnsafeMutablePointer<LearnRecord>

    public static func allocate() -> UnsafeMutablePointer<LearnContext> {
        let p = UnsafeMutablePointer<LearnContext>.allocate(capacity: 1)
        p.initialize(to: LearnContext(tables: nil, nowSeconds: 0, count: 0,
                                      records: .allocate(capacity: LearnContext.capacity)))
        return p
    }

    public static func deallocate(_ p: UnsafeMutablePointer<LearnContext>) {
        p.pointee.records.deallocate()
        p.deallocate()
    }
}

extension Pipeline {
    /// The source of a frame entering multipoint VNI `header` from the place `sourceID`: false when it must be
    /// dropped (its source is a static MAC of another place). Posts a learn record for a unicast source that is not
    /// static and is unknown, elsewhere (not frozen) or due a refresh (last refreshed a second or more ago).
    @inlinable @inline(__always)
    static func observeSource(_ b: PacketBytes, inner: Int, block: UnsafeRawPointer, header: UnsafePointer<SegmentHeader>,
                              sourceID: UInt64, fib: FIBSnapshot, counters: WorkerCounters) -> Bool {
        let mac = MACAddress(b, at: inner &+ 6).value
        if mac & 0x0100_0000_0000 != 0 { return true }
        let vni = header.pointee.vni
        let fixed = MACTable.lookup(fib.macDirectory, vni: vni, mac: mac)
        if fixed != 0 { return Segment.placeID(block, Int(fixed &- 1)) == sourceID }
        let ctx = counters.learn
        guard let tables = ctx.pointee.tables else { return true }
        let slot = header.pointee.slot
        let layout = header.pointee.layout
        if let t = LearnedTable.current(tables, slot: Int(slot), vni: vni, layout: layout) {
            let (i, key) = LearnedTable.probe(t, mac: mac)
            // A VNI at its limit takes no new MAC: post nothing for new sources (a MAC flood would otherwise fill the
            // ring every tenant's learning shares).
            if i < 0 && LearnedTable.isFull(t) { return true }
            if i >= 0 {
                let place = Int(key & 0xFFFF) &- 1
                // Possibly another entry's by now (a concurrent delete shifted it in): at worst a refresh posted
                // or skipped once.
                let meta = LearnedTable.meta(t, i)
                if Segment.placeID(block, place) == sourceID {
                    if ctx.pointee.nowSeconds &- UInt32(truncatingIfNeeded: meta) == 0 { return true }
                } else if meta & LearnedTable.frozen != 0 {
                    return true
                }
            }
        }
        let n = Int(ctx.pointee.count)
        // One record per burst from one host at one place (a burst would fill the log).
        if n > 0 {
            let last = ctx.pointee.records[n &- 1]
            if last.mac == mac && last.vni == vni && last.placeID == sourceID { return true }
        }
        if n == LearnContext.capacity {
            counters.segments[Int(slot)].learnDropped &+= 1
            return true
        }
        ctx.pointee.records[n] = LearnRecord(mac: mac, placeID: sourceID, layout: layout, vni: vni, slot: slot)
        ctx.pointee.count = Int32(truncatingIfNeeded: n &+ 1)
        return true
    }

    /// The place (+ 1) of destination `mac` in multipoint VNI `header`: a static MAC, else a learned one, else 0.
    @inlinable @inline(__always)
    static func destinationPlace(_ mac: UInt64, header: UnsafePointer<SegmentHeader>, fib: FIBSnapshot,
                                 counters: WorkerCounters) -> UInt32 {
        let vni = header.pointee.vni
        let fixed = MACTable.lookup(fib.macDirectory, vni: vni, mac: mac)
        if fixed != 0 || header.pointee.learning == 0 { return fixed }
        guard let tables = counters.learn.pointee.tables,
              let t = LearnedTable.current(tables, slot: Int(header.pointee.slot), vni: vni, layout: header.pointee.layout)
        else { return 0 }
        return UInt32(truncatingIfNeeded: LearnedTable.probe(t, mac: mac).key & 0xFFFF)
    }
}
