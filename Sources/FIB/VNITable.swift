import Wire

/// VNI → action, an open-addressed hash table with linear probing (keys are VNI + 1, 0 is empty).
/// Capacity is a power of two at least twice the entry count, so a probe sequence is short.
@frozen
public struct VNISlot: Sendable {
    public var key: UInt32
    public var action: ActionID
}

public enum VNIHash {
    /// Multiplicative hash of a VNI (Knuth), masked to the table.
    @inlinable @inline(__always)
    public static func slot(_ vni: UInt32, mask: UInt32) -> UInt32 { (vni &* 0x9E37_79B1) >> 8 & mask }
}

extension VNIHash {
    /// The open-addressed table for `entries`: capacity a power of two ≥ 2 × count, at least 16.
    public static func table(_ entries: [(vni: UInt32, action: ActionID)]) -> (slots: [VNISlot], mask: UInt32) {
        var cap = 16
        while cap < entries.count * 2 { cap <<= 1 }
        var slots = [VNISlot](repeating: VNISlot(key: 0, action: ActionID(0)), count: cap)
        let mask = UInt32(cap - 1)
        for (vni, action) in entries {
            var i = slot(vni, mask: mask)
            while slots[Int(i)].key != 0 { i = (i &+ 1) & mask }
            slots[Int(i)] = VNISlot(key: vni &+ 1, action: action)
        }
        return (slots, mask)
    }
}
