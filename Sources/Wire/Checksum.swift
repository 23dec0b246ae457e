/// The Internet checksum (RFC 1071) and its incremental update (RFC 1624).
public enum InternetChecksum {
    /// Adds `count` bytes at `offset` to a running 32-bit one's-complement sum (not yet folded).
    @inlinable
    public static func sum(_ bytes: PacketBytes, offset: Int, count: Int, initial: UInt32 = 0) -> UInt32 {
        var acc = UInt64(initial)
        var i = offset
        let end = offset + count
        while i + 4 <= end {
            acc &+= UInt64(bytes.be32(i))
            i &+= 4
        }
        if i + 2 <= end { acc &+= UInt64(bytes.be16(i)); i &+= 2 }
        if i < end { acc &+= UInt64(bytes.u8(i)) << 8 }
        while acc >> 32 != 0 { acc = (acc & 0xFFFF_FFFF) &+ (acc >> 32) }
        return UInt32(acc)
    }

    /// Folds a running sum to 16 bits and complements it: the value to put in a checksum field.
    @inlinable @inline(__always)
    public static func finish(_ sum: UInt32) -> UInt16 {
        var s = sum
        s = (s & 0xFFFF) &+ (s >> 16)
        s = (s & 0xFFFF) &+ (s >> 16)
        return ~UInt16(truncatingIfNeeded: s)
    }

    /// RFC 1624 eqn. 3: the new checksum after one 16-bit word of the covered data changes from `old` to `new`.
    @inlinable @inline(__always)
    public static func update(_ checksum: UInt16, old: UInt16, new: UInt16) -> UInt16 {
        var s = UInt32(~checksum) &+ UInt32(~old) &+ UInt32(new)
        s = (s & 0xFFFF) &+ (s >> 16)
        s = (s & 0xFFFF) &+ (s >> 16)
        return ~UInt16(truncatingIfNeeded: s)
    }
}
