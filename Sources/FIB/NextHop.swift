import Wire

/// A resolved next hop: egress port and the Ethernet header to write, precomputed in network order.
/// 32 bytes.
@frozen
public struct NextHopRecord {
    /// Destination MAC (6), source MAC (6), and when tagged the 802.1Q TPID + TCI (4), in wire order.
    public var l2: (UInt64, UInt64)
    public var port: PortID
    /// 12 (untagged) or 16 (one 802.1Q tag): bytes of `l2` written before the EtherType.
    public var l2Size: UInt16
    /// Largest allowed number of bytes after the Ethernet header.
    public var mtu: UInt16
    public var reserved: UInt16 = 0
    /// Where to send while this next hop is down (`FIBSnapshot.liveness`): a next hop or a group; `.none` when
    /// it has no backup.
    public var backup: ForwardTarget = .none
    public var reserved2: UInt32 = 0

    /// Builds the record; `vlan` 0 means untagged.
    public init(port: PortID, destination: MACAddress, source: MACAddress, vlan: UInt16, mtu: UInt16) {
        var bytes = [UInt8](repeating: 0, count: 16)
        for i in 0..<6 {
            bytes[i] = UInt8(truncatingIfNeeded: destination.value >> UInt64(40 - 8 * i))
            bytes[6 + i] = UInt8(truncatingIfNeeded: source.value >> UInt64(40 - 8 * i))
        }
        if vlan != 0 {
            bytes[12] = 0x81; bytes[13] = 0x00
            bytes[14] = UInt8(vlan >> 8); bytes[15] = UInt8(vlan & 0xFF)
        }
        var l2: (UInt64, UInt64) = (0, 0)
        withUnsafeMutableBytes(of: &l2) { $0.copyBytes(from: bytes) }
        self.l2 = l2
        self.port = port
        self.l2Size = vlan != 0 ? 16 : 12
        self.mtu = mtu
    }

    /// Writes the Ethernet header with `etherType` so that it ends at `payloadOffset`; returns the frame start.
    @inlinable @inline(__always)
    public func writeHeader(_ b: PacketBytes, payloadOffset: Int, etherType: UInt16) -> Int {
        let start = payloadOffset - Int(l2Size) - 2
        b.base.storeBytes(of: l2.0, toByteOffset: start, as: UInt64.self)
        if l2Size == 16 {
            b.base.storeBytes(of: l2.1, toByteOffset: start + 8, as: UInt64.self)
        } else {
            b.base.storeBytes(of: UInt32(truncatingIfNeeded: l2.1), toByteOffset: start + 8, as: UInt32.self)
        }
        b.setBE16(payloadOffset - 2, etherType)
        return start
    }

    /// Ethernet header size this next hop writes (14 or 18).
    @inlinable public var headerSize: Int { Int(l2Size) + 2 }
}

/// ECMP groups are arrays of this many buckets, each naming a next hop. Members own buckets by rendezvous hashing,
/// so removing a member moves only the buckets it owned.
public enum ECMP {
    public static let bucketCount = 4096
    public static let bucketMask: UInt32 = 4095
}

/// Next-hop liveness: one byte per next-hop slot, outside the FIB generation (DESIGN §7). Written only by the
/// protection thread, read by workers when they resolve a next hop: 0 = up, anything else = down (its traffic
/// takes the backup, or is dropped as `nextHopDown` when there is none or it is down too).
public enum Liveness {
    /// Next-hop slots the liveness array covers.
    public static let capacity = 1 << 16
    public static let up: UInt8 = 0
    public static let down: UInt8 = 1
}
