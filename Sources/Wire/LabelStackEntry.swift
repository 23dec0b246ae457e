/// An MPLS label stack entry (RFC 3032 §2.1, TC per RFC 5462), held in host order.
///
/// ```
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                Label                  | TC  |S|       TTL     |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
@frozen
public struct LabelStackEntry: Hashable, Sendable {
    /// The 32 bits in host order; `PacketBytes.be32` gives this from the wire.
    public var bits: UInt32

    /// Size of one entry on the wire.
    public static let size = 4

    @inlinable @inline(__always)
    public init(bits: UInt32) { self.bits = bits }

    @inlinable
    public init(label: MPLSLabel, tc: UInt8, bottomOfStack: Bool, ttl: UInt8) {
        bits = label.rawValue << 12 | UInt32(tc & 7) << 9 | (bottomOfStack ? 1 << 8 : 0) | UInt32(ttl)
    }

    /// The 20-bit label value as a plain integer (0–1,048,575).
    @inlinable public var labelValue: UInt32 { bits >> 12 }
    @inlinable public var label: MPLSLabel { MPLSLabel(unchecked: bits >> 12) }
    /// Traffic class (RFC 5462), 3 bits.
    @inlinable public var tc: UInt8 { UInt8(truncatingIfNeeded: bits >> 9) & 7 }
    /// Bottom of stack.
    @inlinable public var bottomOfStack: Bool { bits & 0x100 != 0 }
    @inlinable public var ttl: UInt8 { UInt8(truncatingIfNeeded: bits) }

    /// The same entry with another TTL.
    @inlinable @inline(__always)
    public func with(ttl: UInt8) -> LabelStackEntry { LabelStackEntry(bits: bits & ~0xFF | UInt32(ttl)) }
}

/// EtherTypes MPLSGate reads or writes.
public enum EtherType {
    public static let ipv4: UInt16 = 0x0800
    public static let arp: UInt16 = 0x0806
    public static let vlan: UInt16 = 0x8100
    public static let ipv6: UInt16 = 0x86DD
    /// MPLS unicast (RFC 3032).
    public static let mpls: UInt16 = 0x8847
    /// MPLS with upstream-assigned labels (RFC 5332): never looked up in our label table.
    public static let mplsUpstream: UInt16 = 0x8848
}
