#if canImport(Glibc)
import Glibc
#endif
import FIB

/// Per-port packet and byte counts.
@frozen
public struct PortCounters: Sendable {
    public var rxPackets: UInt64 = 0
    public var rxBytes: UInt64 = 0
    public var txPackets: UInt64 = 0
    public var txBytes: UInt64 = 0
    public var dropPackets: UInt64 = 0
    public init() {}
}

/// Per-entry (action) packet and byte counts; bytes are counted as received.
@frozen
public struct EntryCounters: Sendable {
    public var packets: UInt64 = 0
    public var bytes: UInt64 = 0
    public init() {}
}

/// Per multipoint VNI (`SegmentHeader.slot`): what its frames did.
@frozen
public struct SegmentCounters: Sendable {
    /// Known unicast forwarded to its one place.
    public var unicast: UInt64 = 0
    /// Broadcast, multicast and unknown-unicast frames to replicate (before the rate limit).
    public var flooded: UInt64 = 0
    /// Copies sent.
    public var copies: UInt64 = 0
    /// Copies not made or not sent: no free frame, or no TX ring slot.
    public var noFrame: UInt64 = 0
    /// Frames dropped by split horizon.
    public var splitHorizon: UInt64 = 0
    /// Floods over the VNI's BUM rate limit.
    public var rateLimited: UInt64 = 0
    /// Frames dropped because their source is a static MAC of another place (`staticMACMoved`).
    public var staticMACMoved: UInt64 = 0
    /// Learn records the worker could not hand to the learner (its batch log or its ring to the learner was full);
    /// the next frame from that source posts again.
    public var learnDropped: UInt64 = 0
    public init() {}
}

/// One worker's counters in raw memory: a single writer (the worker), read by the control side. Sized once at
/// start; the data plane only increments.
@frozen
public struct WorkerCounters: @unchecked Sendable {
    public let drops: UnsafeMutablePointer<UInt64>
    public let ports: UnsafeMutablePointer<PortCounters>
    public let entries: UnsafeMutablePointer<EntryCounters>
    public let entryCapacity: Int
    /// `Segment.maxSlots` multipoint VNIs' counters (reserved, resident only where used).
    public let segments: UnsafeMutablePointer<SegmentCounters>
    /// The worker's learning state for the batch in hand (MAC learning, `Learning.swift`): not a counter, but
    /// per-worker state the pipeline writes, carried with the counters so the pipeline's signature stays one FIB and
    /// one counter set.
    public let learn: UnsafeMutablePointer<LearnContext>

    /// Allocates zeroed counters for up to `entryCapacity` actions.
    public static func allocate(entryCapacity: Int) -> WorkerCounters {
        let d = UnsafeMutablePointer<UInt64>.allocate(capacity: DropReason.allCases.count)
        d.initialize(repeating: 0, count: DropReason.allCases.count)
        let p = UnsafeMutablePointer<PortCounters>.allocate(capacity: PortID.maxCount)
        p.initialize(repeating: PortCounters(), count: PortID.maxCount)
        let cap = max(entryCapacity, 1)
        // Zeroed, resident only where entries count, on huge pages where the kernel allows.
        guard let raw = LargeTable.reserve(bytes: cap * MemoryLayout<EntryCounters>.stride) else {
            preconditionFailure("cannot reserve counters for \(cap) entries")
        }
        let e = raw.bindMemory(to: EntryCounters.self, capacity: cap)
        guard let seg = LargeTable.reserve(bytes: Segment.maxSlots * MemoryLayout<SegmentCounters>.stride) else {
            preconditionFailure("cannot reserve multipoint VNI counters")
        }
        return WorkerCounters(drops: d, ports: p, entries: e, entryCapacity: cap,
                              segments: seg.bindMemory(to: SegmentCounters.self, capacity: Segment.maxSlots),
                              learn: LearnContext.allocate())
    }

    public func deallocate() {
        drops.deallocate(); ports.deallocate()
        LargeTable.release(UnsafeMutableRawPointer(entries), bytes: entryCapacity * MemoryLayout<EntryCounters>.stride)
        LargeTable.release(UnsafeMutableRawPointer(segments), bytes: Segment.maxSlots * MemoryLayout<SegmentCounters>.stride)
        LearnContext.deallocate(learn)
    }

    public func drops(_ r: DropReason) -> UInt64 { drops[Int(r.rawValue)] }

    /// Total dropped frames over all reasons.
    public var totalDrops: UInt64 {
        (1..<DropReason.allCases.count).reduce(0) { $0 + drops[$1] }
    }
}
