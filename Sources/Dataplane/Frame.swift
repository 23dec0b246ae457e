import FIB

/// One frame of a batch: where its bytes are, where it came from, and (after processing) where it goes.
///
/// The buffer has headroom before `offset` (256 bytes, as an AF_XDP chunk has XDP_PACKET_HEADROOM) so that pushes and
/// VXLAN encapsulation move the start back instead of copying the payload.
@frozen
public struct Frame {
    /// Start of the buffer (headroom included).
    public var buffer: UnsafeMutableRawPointer
    /// Byte offset of the first frame byte in the buffer.
    public var offset: Int32
    /// Frame length in bytes.
    public var length: Int32
    public var ingress: PortID
    /// Set by processing: the egress port, or `PortID.none` when dropped.
    public var egress: PortID
    /// Set by processing: why the frame was dropped, or `.none`.
    public var drop: DropReason
    /// Set by processing when `drop` is `.flood`: the multipoint VNI's action index + 1; `offset`/`length` then
    /// frame the inner Ethernet frame to replicate (`Replication`).
    public var flood: UInt32

    /// Headroom every frame buffer must leave before the received data.
    public static let headroom = 256

    @inlinable
    public init(buffer: UnsafeMutableRawPointer, offset: Int32, length: Int32, ingress: PortID) {
        self.buffer = buffer; self.offset = offset; self.length = length; self.ingress = ingress
        egress = .none; drop = .none; flood = 0
    }

    /// True when processing chose an egress port.
    @inlinable public var isForwarded: Bool { egress != .none }
}
