import Testing
import Wire

@Suite struct WireTests {
    @Test func labelRange() {
        #expect(MPLSLabel(rawValue: 1_048_575) != nil)
        #expect(MPLSLabel(rawValue: 1_048_576) == nil)
        #expect(MPLSLabel(rawValue: 15)!.isReserved)
        #expect(!MPLSLabel(rawValue: 16)!.isReserved)
        #expect(VNI(rawValue: 0xFF_FFFF) != nil)
        #expect(VNI(rawValue: 0x100_0000) == nil)
    }

    @Test func labelStackEntryFields() {
        let e = LabelStackEntry(label: MPLSLabel(rawValue: 0xABCDE)!, tc: 5, bottomOfStack: true, ttl: 0x7F)
        #expect(e.bits == 0xABCD_EB7F)
        #expect(e.labelValue == 0xABCDE && e.tc == 5 && e.bottomOfStack && e.ttl == 0x7F)
        #expect(e.with(ttl: 1).ttl == 1 && e.with(ttl: 1).labelValue == 0xABCDE)
        var bytes: [UInt8] = [0, 0, 0, 0]
        bytes.withUnsafeMutableBytes { PacketBytes($0.baseAddress!).setBE32(0, e.bits) }
        #expect(bytes == [0xAB, 0xCD, 0xEB, 0x7F])
    }

    @Test func addressesParseAndPrint() {
        #expect(IPv4Address("192.0.2.1")?.value == 0xC000_0201)
        for bad in ["192.0.2", "192.0.2.256", "1.2.3.4.5", "a.b.c.d", "", "01234.1.1.1"] { #expect(IPv4Address(bad) == nil, "\(bad)") }
        #expect(IPv6Address("2001:db8::1")?.description == "2001:db8::1")
        #expect(IPv6Address("::")?.description == "::")
        #expect(IPv6Address("::ffff:192.0.2.1") == IPv6Address(high: 0, low: 0xFFFF_C000_0201))
        #expect(IPv6Address("1:2:3:4:5:6:7:8")?.description == "1:2:3:4:5:6:7:8")
        for bad in ["1::2::3", "12345::", "1:2:3:4:5:6:7:8:9", ":", "g::1"] { #expect(IPv6Address(bad) == nil, "\(bad)") }
        #expect(MACAddress("02:00:00:00:00:0a")?.value == 0x0200_0000_000A)
        #expect(MACAddress("02:00:00:00:00:0a")?.description == "02:00:00:00:00:0a")
        #expect(MACAddress("02:00:00:00:00") == nil)
    }

    @Test func ipv4ChecksumAndIncrementalUpdate() {
        // RFC 1071 example header (from a real capture): checksum 0xb861.
        var h: [UInt8] = [0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61,
                          0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7]
        h.withUnsafeMutableBytes { raw in
            let b = PacketBytes(raw.baseAddress!)
            #expect(IPv4.checksumIsValid(b, at: 0, headerLength: 20))
            #expect(IPv4.headerChecksum(b, at: 0, headerLength: 20) == 0xB861)
            for ttl in [UInt8(0), 1, 63, 255] {
                IPv4.setTTL(b, at: 0, ttl)
                #expect(IPv4.checksumIsValid(b, at: 0, headerLength: 20), "ttl \(ttl)")
                #expect(IPv4.headerChecksum(b, at: 0, headerLength: 20) == b.be16(10))
            }
        }
    }
}
