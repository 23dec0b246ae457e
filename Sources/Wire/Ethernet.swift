/// Ethernet II header, optionally with one IEEE 802.1Q tag.
///
/// ```
/// +-------------------+-------------------+-----------+
/// | destination (6)   | source (6)        | type (2)  |            untagged: 14 bytes
/// +-------------------+-------------------+-----------+----------+-----------+
/// | destination (6)   | source (6)        | 0x8100    | TCI (2)  | type (2)  | 802.1Q: 18 bytes
/// +-------------------+-------------------+-----------+----------+-----------+
/// ```
public enum Ethernet {
    public static let headerSize = 14
    public static let vlanTagSize = 4
    public static let destinationOffset = 0
    public static let sourceOffset = 6
    public static let typeOffset = 12
    /// VLAN identifiers are 12 bits; 0 and 4095 are reserved (IEEE 802.1Q).
    public static let maxVLAN: UInt16 = 4094
}

/// A 48-bit MAC address, kept in the low 48 bits of a UInt64 in network order of significance
/// (the first byte on the wire is the most significant).
@frozen
public struct MACAddress: Hashable, Sendable, CustomStringConvertible {
    public let value: UInt64

    @inlinable public init(value: UInt64) { self.value = value & 0xFFFF_FFFF_FFFF }

    /// Reads six bytes at `offset`.
    @inlinable @inline(__always)
    public init(_ bytes: PacketBytes, at offset: Int) {
        value = UInt64(bytes.be16(offset)) << 32 | UInt64(bytes.be32(offset + 2))
    }

    /// Parses `aa:bb:cc:dd:ee:ff` (also with `-`); nil when malformed.
    public init?(_ text: String) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false).count == 6
            ? text.split(separator: ":", omittingEmptySubsequences: false)
            : text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 6 else { return nil }
        var v: UInt64 = 0
        for p in parts {
            guard p.count == 2, let b = UInt8(p, radix: 16) else { return nil }
            v = v << 8 | UInt64(b)
        }
        value = v
    }

    /// Writes the six bytes at `offset`.
    @inlinable @inline(__always)
    public func store(_ bytes: PacketBytes, at offset: Int) {
        bytes.setBE16(offset, UInt16(truncatingIfNeeded: value >> 32))
        bytes.setBE32(offset + 2, UInt32(truncatingIfNeeded: value))
    }

    public var description: String {
        (0..<6).map { i -> String in
            let b = UInt8(truncatingIfNeeded: value >> UInt64(40 - 8 * i))
            return (b < 16 ? "0" : "") + String(b, radix: 16)
        }.joined(separator: ":")
    }
}
