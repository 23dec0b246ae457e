/// A view of packet bytes in memory: unaligned loads and stores with the byte order in the accessor name.
///
/// Callers check bounds once per header (against the frame length they hold); accessors do not check again,
/// so the hot path pays for one comparison per header rather than one per field.
@frozen
public struct PacketBytes {
    /// First byte of the view.
    public let base: UnsafeMutableRawPointer

    @inlinable @inline(__always)
    public init(_ base: UnsafeMutableRawPointer) { self.base = base }

    @inlinable @inline(__always)
    public func u8(_ offset: Int) -> UInt8 { base.load(fromByteOffset: offset, as: UInt8.self) }

    @inlinable @inline(__always)
    public func setU8(_ offset: Int, _ value: UInt8) { base.storeBytes(of: value, toByteOffset: offset, as: UInt8.self) }

    /// Loads a big-endian (network order) 16-bit field.
    @inlinable @inline(__always)
    public func be16(_ offset: Int) -> UInt16 {
        UInt16(bigEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }

    /// Loads a big-endian (network order) 32-bit field.
    @inlinable @inline(__always)
    public func be32(_ offset: Int) -> UInt32 {
        UInt32(bigEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    /// Stores a 16-bit value in network order.
    @inlinable @inline(__always)
    public func setBE16(_ offset: Int, _ value: UInt16) {
        base.storeBytes(of: value.bigEndian, toByteOffset: offset, as: UInt16.self)
    }

    /// Stores a 32-bit value in network order.
    @inlinable @inline(__always)
    public func setBE32(_ offset: Int, _ value: UInt32) {
        base.storeBytes(of: value.bigEndian, toByteOffset: offset, as: UInt32.self)
    }

    /// Loads 64 bits as they lie in memory (for hashing and copying, where byte order does not matter).
    @inlinable @inline(__always)
    public func raw64(_ offset: Int) -> UInt64 { base.loadUnaligned(fromByteOffset: offset, as: UInt64.self) }

    /// Loads 32 bits as they lie in memory.
    @inlinable @inline(__always)
    public func raw32(_ offset: Int) -> UInt32 { base.loadUnaligned(fromByteOffset: offset, as: UInt32.self) }

    /// Copies a few bytes (a header template) in 8- and 4-byte words, without the call a `copyMemory` costs.
    @inlinable @inline(__always)
    public func copySmall(from source: UnsafeRawPointer, count: Int, to offset: Int) {
        var i = 0
        while i + 8 <= count {
            base.storeBytes(of: source.loadUnaligned(fromByteOffset: i, as: UInt64.self), toByteOffset: offset + i, as: UInt64.self)
            i &+= 8
        }
        if i + 4 <= count {
            base.storeBytes(of: source.loadUnaligned(fromByteOffset: i, as: UInt32.self), toByteOffset: offset + i, as: UInt32.self)
            i &+= 4
        }
        while i < count { base.storeBytes(of: source.load(fromByteOffset: i, as: UInt8.self), toByteOffset: offset + i, as: UInt8.self); i &+= 1 }
    }

    /// The view moved forward (positive) or back (negative) by `delta` bytes.
    @inlinable @inline(__always)
    public func advanced(by delta: Int) -> PacketBytes { PacketBytes(base + delta) }
}
