/// VXLAN header (RFC 7348 §5), carried in UDP (IANA port 4789).
///
/// ```
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |R|R|R|R|I|R|R|R|            Reserved                           |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                VXLAN Network Identifier (VNI) |   Reserved    |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
/// Receivers check the I flag and ignore every reserved bit (RFC 7348 §5).
public enum VXLAN {
    public static let headerSize = 8
    /// The I flag: the VNI is valid.
    public static let flagI: UInt8 = 0x08
    public static let defaultUDPPort: UInt16 = 4789
    /// Outer Ethernet (untagged) + IPv4 + UDP + VXLAN added in front of an inner frame.
    public static let overheadIPv4 = Ethernet.headerSize + IPv4.minHeaderSize + UDP.headerSize + headerSize
    /// Outer Ethernet (untagged) + IPv6 + UDP + VXLAN.
    public static let overheadIPv6 = Ethernet.headerSize + IPv6.headerSize + UDP.headerSize + headerSize
    /// UDP source ports are chosen from this range by a hash of the inner frame (RFC 7348 §5).
    public static let sourcePortBase: UInt16 = 49152

    /// The VNI of the header at `offset`.
    @inlinable @inline(__always)
    public static func vni(_ b: PacketBytes, at offset: Int) -> UInt32 { b.be32(offset + 4) >> 8 }
}

/// The pseudowire control word (RFC 4385 §3, generic preferred form): the first nibble is 0.
///
/// ```
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |0 0 0 0| Flags |FRG|  Length   |       Sequence Number         |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
/// MPLSGate sends it as all zeros (no sequencing, RFC 4448 §4.6) and on receive checks only the first nibble.
public enum ControlWord {
    public static let size = 4
}
