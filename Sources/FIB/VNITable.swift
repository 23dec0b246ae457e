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
