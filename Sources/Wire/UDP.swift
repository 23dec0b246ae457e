/// UDP header (RFC 768).
///
/// ```
/// +----------------+----------------+----------------+----------------+
/// |  Source Port   | Destination Port|    Length      |   Checksum     |
/// +----------------+----------------+----------------+----------------+
/// ```
public enum UDP {
    public static let headerSize = 8
    public static let sourcePortOffset = 0
    public static let destinationPortOffset = 2
    public static let lengthOffset = 4
    public static let checksumOffset = 6
    public static let protocolNumber: UInt8 = 17

    /// The UDP checksum over IPv6 (RFC 8200 §8.1: mandatory), for the datagram of `length` bytes at `udpOffset`
    /// whose IPv6 header starts at `ipOffset`. The checksum field must be zero when this is called.
    @inlinable
    public static func checksumOverIPv6(_ b: PacketBytes, ipOffset: Int, udpOffset: Int, length: Int) -> UInt16 {
        // Pseudo-header: source, destination, upper-layer length, next header (RFC 8200 §8.1).
        var s = InternetChecksum.sum(b, offset: ipOffset + IPv6.sourceOffset, count: 32)
        s = InternetChecksum.sum(b, offset: udpOffset, count: length,
                                 initial: s &+ UInt32(length >> 16) &+ UInt32(length & 0xFFFF) &+ UInt32(protocolNumber))
        let c = InternetChecksum.finish(s)
        // RFC 768: a computed zero is sent as all ones (zero means "no checksum").
        return c == 0 ? 0xFFFF : c
    }
}

/// TCP, only as far as flow hashing needs it.
public enum TCP {
    public static let protocolNumber: UInt8 = 6
}
