import Synchronization

/// The published FIB: one atomic pointer to an immutable snapshot (DESIGN §4).
///
/// The control side stores a new snapshot with one release store; a worker loads the pointer once per batch, so
/// every frame of a batch sees one snapshot. The old snapshot is freed by its owner only after
/// `QuiescentState.synchronize()` has returned.
public final class SnapshotCell: @unchecked Sendable {
    public init(_ initial: UnsafeMutablePointer<FIBSnapshot>) {
        bits = Atomic(UInt(bitPattern: initial))
    }

    /// The current snapshot (acquire): read once per batch.
    @inlinable @inline(__always)
    public func load() -> UnsafeMutablePointer<FIBSnapshot> {
        UnsafeMutablePointer(bitPattern: bits.load(ordering: .acquiring))!
    }

    @usableFromInline
    let bits: Atomic<UInt>

    /// Publishes `next` and returns the previous snapshot, which stays readable until a grace period has passed.
    public func exchange(_ next: UnsafeMutablePointer<FIBSnapshot>) -> UnsafeMutablePointer<FIBSnapshot> {
        UnsafeMutablePointer(bitPattern: bits.exchange(UInt(bitPattern: next), ordering: .acquiringAndReleasing))!
    }
}

/// Quiescent-state-based reclamation (as DPDK's RCU QSBR): each worker reports a quiescent state at every batch
/// boundary and goes offline before it blocks, so a sleeping worker never delays a writer.
///
/// Slot values: 0 = offline; otherwise the grace-period token the worker last saw.
public final class QuiescentState: @unchecked Sendable {
    /// One worker's slot, on its own cache line (the object) so workers do not share lines.
    public final class Slot: @unchecked Sendable {
        @usableFromInline let token = Atomic<UInt64>(0)
        init() {}
    }

    @usableFromInline let token = Atomic<UInt64>(1)
    public let slots: [Slot]

    public init(workers: Int) { slots = (0..<workers).map { _ in Slot() } }

    /// Worker side: passed a batch boundary; holds no snapshot pointer loaded before this call. A release store
    /// (a plain store on x86) is enough: it orders the batch's snapshot reads before it, as DPDK's QSBR does.
    @inlinable @inline(__always)
    public func quiescent(_ slot: Slot) {
        slot.token.store(token.load(ordering: .acquiring), ordering: .releasing)
    }

    /// Worker side: about to block; holds no snapshot until `online`.
    @inlinable @inline(__always)
    public func offline(_ slot: Slot) { slot.token.store(0, ordering: .releasing) }

    /// Worker side: awake again; must load the snapshot pointer afresh after this. Sequentially consistent: the
    /// slot must be visibly online before the worker's next load of the snapshot pointer (store → load order).
    @inlinable @inline(__always)
    public func online(_ slot: Slot) {
        slot.token.store(token.load(ordering: .acquiring), ordering: .sequentiallyConsistent)
    }

    /// Writer side: returns once every worker that was online when it was called has passed a batch boundary
    /// (or gone offline), i.e. no worker can still hold a snapshot unpublished before the call.
    public func synchronize(sleep: () -> Void) {
        let target = token.add(1, ordering: .sequentiallyConsistent).newValue
        for slot in slots {
            while true {
                let t = slot.token.load(ordering: .sequentiallyConsistent)
                if t == 0 || t >= target { break }
                sleep()
            }
        }
    }
}
