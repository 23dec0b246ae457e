import Wire

/// The flow hash that picks an ECMP member and the VXLAN UDP source port: MurmurHash3's 32-bit mixing steps over
/// header words. Deterministic (no per-process seed), so the same flow always takes the same member.
public enum FlowHash {
    public static let seed: UInt32 = 0x4D50_4C53  // "MPLS"

    @inlinable @inline(__always)
    public static func mix(_ h: UInt32, _ word: UInt32) -> UInt32 {
        var k = word &* 0xCC9E_2D51
        k = (k << 15 | k >> 17) &* 0x1B87_3593
        var x = h ^ k
        x = (x << 13 | x >> 19) &* 5 &+ 0xE654_6B64
        return x
    }

    @inlinable @inline(__always)
    public static func finish(_ h: UInt32) -> UInt32 {
        var x = h
        x ^= x >> 16; x = x &* 0x85EB_CA6B
        x ^= x >> 13; x = x &* 0xC2B2_AE35
        return x ^ x >> 16
    }

    /// 5-tuple of the IPv4 header at `ip` (ports only for unfragmented TCP/UDP whose header is present).
    @inlinable @inline(__always)
    public static func ipv4(_ b: PacketBytes, ip: Int, end: Int, into h0: UInt32) -> UInt32 {
        var h = mix(h0, b.be32(ip + IPv4.sourceOffset))
        h = mix(h, b.be32(ip + IPv4.destinationOffset))
        let proto = b.u8(ip + IPv4.protocolOffset)
        h = mix(h, UInt32(proto))
        let hl = Int(b.u8(ip) & 0xF) << 2
        if (proto == TCP.protocolNumber || proto == UDP.protocolNumber)
            && b.be16(ip + IPv4.flagsFragmentOffset) & IPv4.fragmentMask == 0 && ip + hl + 4 <= end {
            h = mix(h, b.be32(ip + hl))
        }
        return h
    }

    /// 5-tuple of the IPv6 header at `ip` (ports when the next header is TCP/UDP and present).
    @inlinable @inline(__always)
    public static func ipv6(_ b: PacketBytes, ip: Int, end: Int, into h0: UInt32) -> UInt32 {
        var h = h0
        var i = ip + IPv6.sourceOffset
        while i < ip + IPv6.headerSize { h = mix(h, b.be32(i)); i &+= 4 }
        let nh = b.u8(ip + IPv6.nextHeaderOffset)
        h = mix(h, UInt32(nh))
        if (nh == TCP.protocolNumber || nh == UDP.protocolNumber) && ip + IPv6.headerSize + 4 <= end {
            h = mix(h, b.be32(ip + IPv6.headerSize))
        }
        return h
    }

    /// An inner Ethernet frame (pseudowire payload): both MACs, the EtherType, and the IP 5-tuple below it.
    @inlinable @inline(__always)
    public static func ethernet(_ b: PacketBytes, at e: Int, end: Int) -> UInt32 {
        var h = mix(seed, b.be32(e))
        h = mix(h, b.be32(e + 4))
        h = mix(h, b.be32(e + 8))
        var type = b.be16(e + 12)
        var ip = e + Ethernet.headerSize
        if type == EtherType.vlan && ip + 4 <= end { type = b.be16(ip + 2); ip += 4 }
        h = mix(h, UInt32(type))
        if type == EtherType.ipv4 && ip + IPv4.minHeaderSize <= end {
            h = ipv4(b, ip: ip, end: end, into: h)
        } else if type == EtherType.ipv6 && ip + IPv6.headerSize <= end {
            h = ipv6(b, ip: ip, end: end, into: h)
        }
        return finish(h)
    }

    /// A label stack from `top`: every label ≥ 16 down to the bottom, or the entropy label alone when an ELI
    /// (label 7) is present (RFC 6790 §4.3). Reserved labels are never hashed.
    @inlinable @inline(__always)
    public static func labelStack(_ b: PacketBytes, top: Int, end: Int) -> UInt32 {
        var h = seed
        var i = top
        while i + 4 <= end {
            let lse = b.be32(i)
            let label = lse >> 12
            if label == 7 && i + 8 <= end { return finish(mix(seed, b.be32(i + 4) >> 12)) }
            if label >= 16 { h = mix(h, label) }
            if lse & 0x100 != 0 { break }
            i &+= 4
        }
        return finish(h)
    }
}
