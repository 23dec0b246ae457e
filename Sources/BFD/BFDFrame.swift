import Wire

/// Where a session's packets go on the wire: one hop over one port (RFC 5881).
public struct BFDPath: Equatable, Sendable {
    public var sourceMAC: MACAddress
    public var destinationMAC: MACAddress
    /// 802.1Q VLAN of the next hop, if it has one.
    public var vlan: UInt16?
    public var local: IPAddress
    public var peer: IPAddress
    /// 49152–65535, one per session (RFC 5881 §4).
    public var sourcePort: UInt16
    public init(sourceMAC: MACAddress, destinationMAC: MACAddress, vlan: UInt16?, local: IPAddress, peer: IPAddress,
                sourcePort: UInt16) {
        self.sourceMAC = sourceMAC; self.destinationMAC = destinationMAC; self.vlan = vlan; self.local = local
        self.peer = peer; self.sourcePort = sourcePort
    }
}

/// Ethernet + IPv4/IPv6 + UDP frames carrying BFD control packets (RFC 5881): UDP port 3784, TTL / hop limit 255
/// on send and required on receive (the GTSM check of §5), DSCP CS6 (network control).
public enum BFDFrame {
    public static let udpPort: UInt16 = 3784
    /// The longest frame `parse` accepts (a control packet with authentication, a VLAN tag and IPv6 fit easily).
    public static let maxFrame = 256

    /// The frame for `packet` on `path`, checksums filled in.
    public static func build(_ packet: BFDControlPacket, path: BFDPath) -> [UInt8] {
        let payload = packet.bytes
        var f: [UInt8] = []
        f.reserveCapacity(96)
        func put16(_ v: UInt16) { f.append(UInt8(v >> 8)); f.append(UInt8(v & 0xFF)) }
        func putMAC(_ m: MACAddress) { for s in stride(from: 40, through: 0, by: -8) { f.append(UInt8(m.value >> UInt64(s) & 0xFF)) } }
        putMAC(path.destinationMAC)
        putMAC(path.sourceMAC)
        if let vlan = path.vlan { put16(EtherType.vlan); put16(vlan & 0x0FFF | 0xC000) }  // PCP 6 (network control)
        let udpLength = UDP.headerSize + payload.count
        let ip = f.count + 2
        switch (path.local, path.peer) {
        case (.v4(let src), .v4(let dst)):
            put16(EtherType.ipv4)
            f += [0x45, 0xC0]
            put16(UInt16(IPv4.minHeaderSize + udpLength))
            f += [0, 0, 0, 0, 255, UDP.protocolNumber, 0, 0]
            for a in [src.value, dst.value] { put16(UInt16(a >> 16)); put16(UInt16(a & 0xFFFF)) }
            let c = checksum(f[ip..<(ip + IPv4.minHeaderSize)], initial: 0)
            f[ip + 10] = UInt8(c >> 8); f[ip + 11] = UInt8(c & 0xFF)
        case (.v6(let src), .v6(let dst)):
            put16(EtherType.ipv6)
            f += [0x6C, 0x00, 0x00, 0x00]   // version 6, traffic class 0xC0 (CS6), flow label 0
            put16(UInt16(udpLength))
            f += [UDP.protocolNumber, 255]
            for a in [src, dst] {
                for s in stride(from: 56, through: 0, by: -8) { f.append(UInt8(a.high >> UInt64(s) & 0xFF)) }
                for s in stride(from: 56, through: 0, by: -8) { f.append(UInt8(a.low >> UInt64(s) & 0xFF)) }
            }
        default:
            preconditionFailure("BFD path with mixed address families")
        }
        let udp = f.count
        put16(path.sourcePort)
        put16(udpPort)
        put16(UInt16(udpLength))
        put16(0)
        f += payload
        let c = udpChecksum(f, ip: ip, udp: udp, length: udpLength, isIPv6: f[ip] >> 4 == 6)
        f[udp + 6] = UInt8(c >> 8); f[udp + 7] = UInt8(c & 0xFF)
        return f
    }

    /// A BFD datagram taken off the wire.
    public struct Received: Sendable {
        public var source: IPAddress
        public var destination: IPAddress
        public var ttl: UInt8
        public var sourcePort: UInt16
        public var payload: ArraySlice<UInt8>
        /// The 802.1Q VLAN the frame came on, if tagged.
        public var vlan: UInt16?
    }

    /// Parses a frame the pipeline punted (Ethernet, one optional 802.1Q tag, IPv4 or IPv6, UDP to 3784), checks
    /// lengths and checksums; the TTL is returned for the caller's GTSM check.
    public static func parse(_ f: [UInt8]) -> Result<Received, BFDControlPacket.Reject> {
        func be16(_ o: Int) -> UInt16 { UInt16(f[o]) << 8 | UInt16(f[o + 1]) }
        func be32(_ o: Int) -> UInt32 { UInt32(be16(o)) << 16 | UInt32(be16(o + 2)) }
        func be64(_ o: Int) -> UInt64 { UInt64(be32(o)) << 32 | UInt64(be32(o + 4)) }
        guard f.count >= 14 else { return .failure(.tooShort) }
        var type = be16(12)
        var ip = 14
        var vlan: UInt16?
        if type == EtherType.vlan {
            guard f.count >= 18 else { return .failure(.tooShort) }
            vlan = be16(14) & 0x0FFF
            type = be16(16)
            ip = 18
        }
        var source: IPAddress
        var destination: IPAddress
        var ttl: UInt8
        var udp: Int
        var end: Int
        let isIPv6: Bool
        switch type {
        case EtherType.ipv4:
            guard f.count >= ip + IPv4.minHeaderSize else { return .failure(.tooShort) }
            let ihl = Int(f[ip] & 0x0F) * 4
            guard f[ip] >> 4 == 4, ihl >= IPv4.minHeaderSize, f.count >= ip + ihl else { return .failure(.notBFD) }
            let total = Int(be16(ip + 2))
            guard total >= ihl + UDP.headerSize, ip + total <= f.count else { return .failure(.tooShort) }
            guard f[ip + 9] == UDP.protocolNumber, be16(ip + 6) & IPv4.fragmentMask == 0 else { return .failure(.notBFD) }
            guard checksum(f[ip..<(ip + ihl)], initial: 0) == 0 else { return .failure(.badChecksum) }
            ttl = f[ip + 8]
            source = .v4(IPv4Address(value: be32(ip + 12)))
            destination = .v4(IPv4Address(value: be32(ip + 16)))
            udp = ip + ihl
            end = ip + total
            isIPv6 = false
        case EtherType.ipv6:
            guard f.count >= ip + IPv6.headerSize + UDP.headerSize else { return .failure(.tooShort) }
            guard f[ip] >> 4 == 6, f[ip + 6] == UDP.protocolNumber else { return .failure(.notBFD) }
            let payloadLength = Int(be16(ip + 4))
            guard ip + IPv6.headerSize + payloadLength <= f.count else { return .failure(.tooShort) }
            ttl = f[ip + 7]
            source = .v6(IPv6Address(high: be64(ip + 8), low: be64(ip + 16)))
            destination = .v6(IPv6Address(high: be64(ip + 24), low: be64(ip + 32)))
            udp = ip + IPv6.headerSize
            end = udp + payloadLength
            isIPv6 = true
        default:
            return .failure(.notBFD)
        }
        guard end - udp >= UDP.headerSize, be16(udp + 2) == udpPort else { return .failure(.notBFD) }
        let udpLength = Int(be16(udp + 4))
        guard udpLength >= UDP.headerSize, udp + udpLength <= end else { return .failure(.tooShort) }
        let sent = be16(udp + 6)
        if sent != 0 || isIPv6 {
            var copy = Array(f[0..<(udp + udpLength)])
            copy[udp + 6] = 0; copy[udp + 7] = 0
            guard sent == udpChecksum(copy, ip: ip, udp: udp, length: udpLength, isIPv6: isIPv6) else {
                return .failure(.badChecksum)
            }
        }
        return .success(Received(source: source, destination: destination, ttl: ttl, sourcePort: be16(udp),
                                 payload: f[(udp + UDP.headerSize)..<(udp + udpLength)], vlan: vlan))
    }

    private static func checksum(_ bytes: ArraySlice<UInt8>, initial: UInt32) -> UInt16 {
        var acc = UInt64(initial)
        var i = bytes.startIndex
        while i + 1 < bytes.endIndex { acc += UInt64(bytes[i]) << 8 | UInt64(bytes[i + 1]); i += 2 }
        if i < bytes.endIndex { acc += UInt64(bytes[i]) << 8 }
        while acc >> 16 != 0 { acc = (acc & 0xFFFF) + (acc >> 16) }
        return ~UInt16(acc)
    }

    /// UDP checksum with the pseudo-header of the IP header at `ip`; a computed 0 goes out as 0xFFFF (RFC 768).
    private static func udpChecksum(_ f: [UInt8], ip: Int, udp: Int, length: Int, isIPv6: Bool) -> UInt16 {
        var pseudo: UInt32 = UInt32(UDP.protocolNumber) + UInt32(length)
        let (from, count) = isIPv6 ? (ip + IPv6.sourceOffset, 32) : (ip + IPv4.sourceOffset, 8)
        var i = from
        while i < from + count { pseudo += UInt32(f[i]) << 8 | UInt32(f[i + 1]); i += 2 }
        let c = checksum(f[udp..<(udp + length)], initial: pseudo)
        return c == 0 ? 0xFFFF : c
    }
}
