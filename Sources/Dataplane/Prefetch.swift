import CPrefetch
import Wire
import FIB

/// Batch prefetch (as VPP's dual/quad loops and DPDK's examples): while frame i is processed, frame i + 12's head is
/// prefetched, frame i + 8's ILM entry is prefetched, and frame i + 4's action and counter lines are prefetched
/// from the entry that has arrived by then. With a 1M-entry ILM the entry, the action and the counter are three
/// dependent DRAM misses per frame; this overlaps them across frames. Only untagged labeled frames take part (the
/// lookups that dominate a P router); prefetches are hints: a wasted one costs a little bandwidth, never a fault.
extension Pipeline {
    /// Prefetch only when the action table outgrows the L2 cache (16,384 × 128 B = 2 MiB): below that it measured
    /// +5 ns/packet for nothing (docs/performance.md).
    @inlinable static var prefetchMinimumActions: Int { 16_384 }
    @inlinable static var headDistance: Int { 12 }
    @inlinable static var entryDistance: Int { 8 }
    @inlinable static var actionDistance: Int { 4 }

    /// The ILM entry an untagged labeled frame will look up; nil for anything else. Deliberately minimal (no port,
    /// VLAN or special-label checks: the pipeline makes them); a hint may be wasted, never wrong.
    @inlinable @inline(__always)
    static func ilmEntryAddress(_ f: Frame, fib: FIBSnapshot) -> UnsafeMutablePointer<ILMEntry>? {
        if f.length < 18 { return nil }
        let head = f.buffer + Int(f.offset)
        if head.loadUnaligned(fromByteOffset: 12, as: UInt16.self) != EtherType.mpls.bigEndian { return nil }
        let label = UInt32(bigEndian: head.loadUnaligned(fromByteOffset: 14, as: UInt32.self)) >> 12
        return fib.ilmDirectory[Int(label >> UInt32(ILM.pageBits))] + Int(label & ILM.pageMask)
    }

    @inlinable @inline(__always)
    static func prefetchHead(_ f: Frame) {
        mg_prefetch(f.buffer + Int(f.offset))
    }

    @inlinable @inline(__always)
    static func prefetchEntry(_ f: Frame, fib: FIBSnapshot) {
        if let e = ilmEntryAddress(f, fib: fib) { mg_prefetch(e) }
    }

    @inlinable @inline(__always)
    static func prefetchAction(_ f: Frame, fib: FIBSnapshot, counters: WorkerCounters) {
        guard let e = ilmEntryAddress(f, fib: fib) else { return }
        let entry = e.pointee
        if entry.operation == .none { return }
        let i = Int(entry.action.rawValue)
        mg_prefetch(fib.actions + i)
        mg_prefetch_for_write(counters.entries + i)
    }
}
