import CPrefetch
import Wire
import FIB

/// Batch prefetch (as VPP's dual/quad loops and DPDK's examples): while frame i is processed, frame i + 12's head is
/// prefetched, frame i + 8's ILM entry, VNI entry or deepest FTN trie slot, frame i + 4's action and counter lines
/// (from the entry or trie walk that has arrived by then) and, for VXLAN, frame i + 2's allowed-VTEP address.
/// With 1M entries these are three to four dependent DRAM misses per frame; this overlaps them across frames.
/// Untagged labeled frames, untagged VXLAN over IPv4 on dc ports and untagged IPv4 on vrf ports take part;
/// prefetches are hints: a wasted one costs a little bandwidth, never a fault.
extension Pipeline {
    /// Prefetch only when the action table outgrows the L2 cache (16,384 × 128 B = 2 MiB): below that it measured
    /// +5 ns/packet for nothing (docs/performance.md).
    @inlinable static var prefetchMinimumActions: Int { 16_384 }
    @inlinable static var headDistance: Int { 12 }
    @inlinable static var entryDistance: Int { 8 }
    @inlinable static var actionDistance: Int { 4 }
    @inlinable static var vtepDistance: Int { 2 }

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

    /// The VNI table entry an untagged VXLAN-over-IPv4 frame will look up; nil for anything else.
    @inlinable @inline(__always)
    static func vniEntryAddress(_ f: Frame, fib: FIBSnapshot) -> UnsafeMutablePointer<UInt32>? {
        let inPort = Int(f.ingress.rawValue)
        if f.length < 50 || inPort >= fib.portCount || fib.ports[inPort].role != .dc { return nil }
        let head = f.buffer + Int(f.offset)
        if head.loadUnaligned(fromByteOffset: 12, as: UInt16.self) != EtherType.ipv4.bigEndian { return nil }
        let hl = Int(head.load(fromByteOffset: 14, as: UInt8.self) & 0xF) << 2
        if Int(f.length) < 14 &+ hl &+ 16 || head.load(fromByteOffset: 23, as: UInt8.self) != UDP.protocolNumber {
            return nil
        }
        let vni = UInt32(bigEndian: head.loadUnaligned(fromByteOffset: 14 &+ hl &+ 12, as: UInt32.self)) >> 8
        return VNITable.entry(fib.vniDirectory, vni)
    }

    /// The VRF and IPv4 destination of an untagged IPv4 frame on a vrf port; nil for anything else.
    @inlinable @inline(__always)
    static func ftnKey(_ f: Frame, fib: FIBSnapshot) -> (vrf: UInt16, address: UInt32)? {
        let inPort = Int(f.ingress.rawValue)
        if f.length < 34 || inPort >= fib.portCount { return nil }
        let port = fib.ports + inPort
        if port.pointee.role != .vrf { return nil }
        let head = f.buffer + Int(f.offset)
        if head.loadUnaligned(fromByteOffset: 12, as: UInt16.self) != EtherType.ipv4.bigEndian { return nil }
        return (port.pointee.vrf, UInt32(bigEndian: head.loadUnaligned(fromByteOffset: 30, as: UInt32.self)))
    }

    /// The third-level trie slot (/17–/24) of an FTN lookup, reached through two levels that stay cached (a VRF's
    /// root node and the few second-level nodes); nil when the walk ends sooner.
    @inlinable @inline(__always)
    static func ftnDeepSlot(vrf: UInt16, address: UInt32, fib: FIBSnapshot) -> UnsafeMutablePointer<LPMSlot>? {
        let s0 = fib.lpmV4[Int(fib.vrfs[Int(vrf)].v4Root) << 8 | Int(address >> 24)]
        if s0.child == 0 { return nil }
        let s1 = fib.lpmV4[Int(s0.child) << 8 | Int((address >> 16) & 0xFF)]
        if s1.child == 0 { return nil }
        return fib.lpmV4 + (Int(s1.child) << 8 | Int((address >> 8) & 0xFF))
    }

    @inlinable @inline(__always)
    static func prefetchEntry(_ f: Frame, fib: FIBSnapshot) {
        if let e = ilmEntryAddress(f, fib: fib) {
            mg_prefetch(e)
        } else if let (vrf, address) = ftnKey(f, fib: fib) {
            if let s = ftnDeepSlot(vrf: vrf, address: address, fib: fib) { mg_prefetch(s) }
        } else if let e = vniEntryAddress(f, fib: fib) {
            mg_prefetch(e)
        }
    }

    /// The action a frame's entry names, once the entry has arrived; nil when it has none.
    @inlinable @inline(__always)
    static func actionIndex(_ f: Frame, fib: FIBSnapshot) -> Int? {
        if let e = ilmEntryAddress(f, fib: fib) {
            let entry = e.pointee
            return entry.operation == .none ? nil : Int(entry.action.rawValue)
        }
        if let (vrf, address) = ftnKey(f, fib: fib) {
            let leaf = fib.lookupV4(vrf: vrf, address)
            return leaf == 0 ? nil : Int(leaf &- 1)
        }
        if let e = vniEntryAddress(f, fib: fib) {
            let v = e.pointee
            return v == 0 ? nil : Int(v &- 1)
        }
        return nil
    }

    @inlinable @inline(__always)
    static func prefetchAction(_ f: Frame, fib: FIBSnapshot, counters: WorkerCounters) {
        guard let i = actionIndex(f, fib: fib) else { return }
        mg_prefetch(fib.actions + i)
        mg_prefetch_for_write(counters.entries + i)
    }

    /// VXLAN only: the first allowed remote VTEP of the frame's VNI entry, once its action has arrived.
    @inlinable @inline(__always)
    static func prefetchVTEPs(_ f: Frame, fib: FIBSnapshot) {
        guard let e = vniEntryAddress(f, fib: fib) else { return }
        let v = e.pointee
        if v == 0 { return }
        if let vteps = UnsafeRawPointer(bitPattern: UInt(fib.actions[Int(v &- 1)].vteps)) { mg_prefetch(vteps) }
    }
}
