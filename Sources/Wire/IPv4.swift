/// IPv4 header (RFC 791).
///
/// ```
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |Version|  IHL  |   DSCP    |ECN|          Total Length         |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |         Identification        |Flags|      Fragment Offset    |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |  Time to Live |    Protocol   |         Header Checksum       |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                       Source Address                          |
/// |                    Destination Address                        |
/// |                    Options (IHL > 5)                          |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
public enum IPv4 {
    public static let minHeaderSize = 20
    public static let tosOffset = 1
    public static let totalLengthOffset = 2
    public static let identificationOffset = 4
    public static let flagsFragmentOffset = 6
    public static let ttlOffset = 8
    public static let protocolOffset = 9
    public static let checksumOffset = 10
    public static let sourceOffset = 12
    public static let destinationOffset = 16
    /// Don't Fragment, in the flags/fragment-offset word.
    public static let dontFragment: UInt16 = 0x4000
    /// More Fragments and the 13-bit offset: non-zero for any fragment.
    public static let fragmentMask: UInt16 = 0x3FFF

    /// Decrements the TTL at `offset` (the IPv4 header start) and patches the checksum incrementally.
    @inlinable @inline(__always)
    public static func decrementTTL(_ b: PacketBytes, at offset: Int) {
        setTTL(b, at: offset, b.u8(offset + ttlOffset) &- 1)
    }

    /// Writes a new TTL and patches the header checksum incrementally (RFC 1624).
    @inlinable @inline(__always)
    public static func setTTL(_ b: PacketBytes, at offset: Int, _ ttl: UInt8) {
        let oldWord = b.be16(offset + ttlOffset)
        let newWord = UInt16(ttl) << 8 | oldWord & 0xFF
        b.setBE16(offset + ttlOffset, newWord)
        b.setBE16(offset + checksumOffset,
                  InternetChecksum.update(b.be16(offset + checksumOffset), old: oldWord, new: newWord))
    }

    /// The header checksum over `headerLength` bytes, with the checksum field itself taken as zero.
    @inlinable
    public static func headerChecksum(_ b: PacketBytes, at offset: Int, headerLength: Int) -> UInt16 {
        let s = InternetChecksum.sum(b, offset: offset, count: headerLength)
        // Remove the stored checksum's contribution so the field counts as zero.
        let stored = UInt32(b.be16(offset + checksumOffset))
        var t = UInt64(s) &+ UInt64(0xFFFF &- stored)
        while t >> 16 != 0 { t = (t & 0xFFFF) &+ (t >> 16) }
        return ~UInt16(truncatingIfNeeded: t)
    }

    /// True when the header's checksum verifies (the one's-complement sum over it is all ones).
    @inlinable
    public static func checksumIsValid(_ b: PacketBytes, at offset: Int, headerLength: Int) -> Bool {
        InternetChecksum.finish(InternetChecksum.sum(b, offset: offset, count: headerLength)) == 0
    }
}

/// An IPv4 address in host order.
@frozen
public struct IPv4Address: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let value: UInt32
    @inlinable public init(value: UInt32) { self.value = value }

    /// Parses dotted-quad text; nil when malformed.
    public init?(_ text: String) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var v: UInt32 = 0
        for p in parts {
            guard !p.isEmpty, p.count <= 3, p.allSatisfy({ $0.isASCII && $0.isNumber }), let b = UInt8(p) else { return nil }
            v = v << 8 | UInt32(b)
        }
        value = v
    }

    public static func < (a: IPv4Address, b: IPv4Address) -> Bool { a.value < b.value }
    public var description: String {
        "\(value >> 24).\(value >> 16 & 0xFF).\(value >> 8 & 0xFF).\(value & 0xFF)"
    }
}
