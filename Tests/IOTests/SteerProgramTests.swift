#if canImport(Glibc)
import Glibc
#endif
import CXDP
import FIB
@testable import IO
import Testing
import Wire

/// The XDP steering program, run by the kernel through BPF_PROG_TEST_RUN (needs root or CAP_BPF + CAP_NET_ADMIN).
/// Without a socket in the XSKMAP, a frame the program wants to steer is passed and counted "no socket"; a frame
/// that is not ours is passed and counted "passed" — so the counters tell the two apart.
@Suite(.enabled(if: geteuid() == 0, "BPF_PROG_TEST_RUN needs root"))
struct SteerProgramTests {
    static let ourMAC: [UInt8] = [0x02, 0, 0, 0, 0, 1]
    static let peerMAC: [UInt8] = [0x02, 0, 0, 0, 0, 2]

    static func ether(_ type: UInt16, dst: [UInt8] = ourMAC, vlan: UInt16? = nil) -> [UInt8] {
        var f = dst + peerMAC
        if let vlan { f += [0x81, 0x00, UInt8(vlan >> 8), UInt8(vlan & 0xFF)] }
        return f + [UInt8(type >> 8), UInt8(type & 0xFF)]
    }

    static func ipv4(dst: [UInt8], proto: UInt8, frag: UInt16 = 0, payload: [UInt8]) -> [UInt8] {
        let total = 20 + payload.count
        return [0x45, 0, UInt8(total >> 8), UInt8(total & 0xFF), 0, 1, UInt8(frag >> 8), UInt8(frag & 0xFF), 64, proto, 0, 0,
                192, 0, 2, 99] + dst + payload
    }

    static func ipv6(dst: [UInt8], next: UInt8, payload: [UInt8]) -> [UInt8] {
        [0x60, 0, 0, 0, UInt8(payload.count >> 8), UInt8(payload.count & 0xFF), next, 64]
            + [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [0x63] + dst + payload
    }

    static func udp(dport: UInt16) -> [UInt8] {
        [0xC0, 0x00, UInt8(dport >> 8), UInt8(dport & 0xFF), 0, 24, 0, 0] + [0x08, 0, 0, 0, 0, 0x13, 0x88, 0]
            + [UInt8](repeating: 0xAB, count: 8)
    }

    static let vtep4: [UInt8] = [192, 0, 2, 1]
    static let vtep6: [UInt8] = [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [1]

    enum Expect { case steered, passed }

    func check(_ prog: SteerProgram, _ cases: [(String, [UInt8], Expect)]) throws {
        for (name, frame, expect) in cases {
            let before = prog.counters()
            let action = try prog.testRun(frame + [UInt8](repeating: 0, count: max(0, 60 - frame.count)))
            let after = prog.counters()
            #expect(action == UInt32(XDP_PASS.rawValue), "\(name): action \(action)")
            switch expect {
            case .steered:
                #expect(after.noSocket == before.noSocket + 1 && after.passed == before.passed, "\(name): not steered")
            case .passed:
                #expect(after.passed == before.passed + 1 && after.noSocket == before.noSocket, "\(name): steered")
            }
        }
    }

    @Test func corePortSteersMPLSOnly() throws {
        let prog = try SteerProgram(role: .core)
        let lse: [UInt8] = [0x00, 0x06, 0x41, 0x40]
        try check(prog, [
            ("mpls", Self.ether(0x8847) + lse, .steered),
            ("mpls under 802.1Q", Self.ether(0x8847, vlan: 100) + lse, .steered),
            ("upstream-assigned 0x8848", Self.ether(0x8848) + lse, .passed),
            ("arp", Self.ether(0x0806) + [UInt8](repeating: 0, count: 28), .passed),
            ("ipv4", Self.ether(0x0800) + Self.ipv4(dst: [10, 0, 0, 1], proto: 17, payload: Self.udp(dport: 53)), .passed),
            ("runt", [UInt8](Self.ether(0x8847).prefix(10)), .passed),
        ])
    }

    /// Core ports with addresses: BFD control (UDP 3784) to one of them is steered for the agent's sessions; other
    /// UDP, other addresses, fragments and multicast stay the host's.
    @Test func corePortSteersBFDToItsAddresses() throws {
        let ll: [UInt8] = [0xfe, 0x80] + [UInt8](repeating: 0, count: 13) + [1]
        let prog = try SteerProgram(role: .core, addresses: [.v4(IPv4Address(value: 0x0A01_0001)),
                                                             .v6(IPv6Address(high: 0xfe80_0000_0000_0000, low: 1))])
        let bfd = Self.udp(dport: 3784)
        try check(prog, [
            ("bfd v4 to our address", Self.ether(0x0800) + Self.ipv4(dst: [10, 1, 0, 1], proto: 17, payload: bfd), .steered),
            ("bfd v6 link-local to our address", Self.ether(0x86DD) + Self.ipv6(dst: ll, next: 17, payload: bfd), .steered),
            ("bfd under 802.1Q", Self.ether(0x0800, vlan: 9) + Self.ipv4(dst: [10, 1, 0, 1], proto: 17, payload: bfd), .steered),
            ("bfd to another address", Self.ether(0x0800) + Self.ipv4(dst: [10, 1, 0, 2], proto: 17, payload: bfd), .passed),
            ("multihop bfd (4784)", Self.ether(0x0800) + Self.ipv4(dst: [10, 1, 0, 1], proto: 17, payload: Self.udp(dport: 4784)), .passed),
            ("fragment", Self.ether(0x0800) + Self.ipv4(dst: [10, 1, 0, 1], proto: 17, frag: 0x2000, payload: bfd), .passed),
            ("broadcast mac", Self.ether(0x0800, dst: [0xff, 0xff, 0xff, 0xff, 0xff, 0xff]) + Self.ipv4(dst: [10, 1, 0, 1], proto: 17, payload: bfd), .passed),
            ("mpls still", Self.ether(0x8847) + [0, 6, 0x41, 0x40], .steered),
            ("truncated udp", [UInt8]((Self.ether(0x0800) + Self.ipv4(dst: [10, 1, 0, 1], proto: 17, payload: bfd)).prefix(36)), .passed),
        ])
    }

    @Test func dcPortSteersVXLANToOurVTEPs() throws {
        let prog = try SteerProgram(role: .dc, vxlanPort: 4789,
                                    addresses: [.v4(IPv4Address(value: 0xC000_0201)), .v6(IPv6Address(high: 0x2001_0db8_0000_0000, low: 1))])
        let vx = Self.udp(dport: 4789)
        try check(prog, [
            ("vxlan v4 to our vtep", Self.ether(0x0800) + Self.ipv4(dst: Self.vtep4, proto: 17, payload: vx), .steered),
            ("vxlan v6 to our vtep", Self.ether(0x86DD) + Self.ipv6(dst: Self.vtep6, next: 17, payload: vx), .steered),
            ("vxlan v4 under 802.1Q", Self.ether(0x0800, vlan: 7) + Self.ipv4(dst: Self.vtep4, proto: 17, payload: vx), .steered),
            ("vxlan to another address", Self.ether(0x0800) + Self.ipv4(dst: [192, 0, 2, 2], proto: 17, payload: vx), .passed),
            ("udp 8472", Self.ether(0x0800) + Self.ipv4(dst: Self.vtep4, proto: 17, payload: Self.udp(dport: 8472)), .passed),
            ("tcp to our vtep", Self.ether(0x0800) + Self.ipv4(dst: Self.vtep4, proto: 6, payload: vx), .passed),
            ("non-first fragment", Self.ether(0x0800) + Self.ipv4(dst: Self.vtep4, proto: 17, frag: 0x00B9, payload: vx), .passed),
            ("broadcast mac", Self.ether(0x0800, dst: [0xff, 0xff, 0xff, 0xff, 0xff, 0xff]) + Self.ipv4(dst: Self.vtep4, proto: 17, payload: vx), .passed),
            ("arp", Self.ether(0x0806) + [UInt8](repeating: 0, count: 28), .passed),
            ("mpls (dropped and counted by the guard)", Self.ether(0x8847) + [0, 6, 0x41, 0x40], .steered),
            ("upstream-assigned mpls", Self.ether(0x8848) + [0, 6, 0x41, 0x40], .passed),
            ("truncated udp", [UInt8]((Self.ether(0x0800) + Self.ipv4(dst: Self.vtep4, proto: 17, payload: vx)).prefix(36)), .passed),
        ])
    }

    @Test func vrfPortSteersIPNotForTheHost() throws {
        let prog = try SteerProgram(role: .vrf, addresses: [.v4(IPv4Address(value: 0xC633_6401))])
        let payload = Self.udp(dport: 53)
        try check(prog, [
            ("ipv4 transit", Self.ether(0x0800) + Self.ipv4(dst: [10, 1, 2, 3], proto: 17, payload: payload), .steered),
            ("ipv4 to the host", Self.ether(0x0800) + Self.ipv4(dst: [198, 51, 100, 1], proto: 1, payload: payload), .passed),
            ("ipv6 transit", Self.ether(0x86DD) + Self.ipv6(dst: Self.vtep6, next: 17, payload: payload), .steered),
            ("ipv6 multicast (ND)", Self.ether(0x86DD, dst: [0x33, 0x33, 0, 0, 0, 1])
                + Self.ipv6(dst: [0xff, 0x02] + [UInt8](repeating: 0, count: 13) + [1], next: 58, payload: payload), .passed),
            ("ipv6 link-local", Self.ether(0x86DD) + Self.ipv6(dst: [0xfe, 0x80] + [UInt8](repeating: 0, count: 13) + [1], next: 58, payload: payload), .passed),
            ("arp", Self.ether(0x0806) + [UInt8](repeating: 0, count: 28), .passed),
            ("mpls (dropped and counted by the guard)", Self.ether(0x8847) + [0, 6, 0x41, 0x40], .steered),
        ])
    }

    @Test func tooManyAddressesIsAnError() {
        #expect(throws: AgentError.self) {
            _ = try SteerProgram(role: .dc, addresses: (0..<17).map { .v4(IPv4Address(value: UInt32(0x0A00_0000 + $0))) })
        }
    }
}
