import Wire

/// A port's role decides what it accepts (DESIGN §3 "who may send what").
@frozen
public enum PortRole: UInt8, Sendable, CaseIterable {
    /// Core-facing: MPLS enabled; labeled frames accepted.
    case core = 0
    /// Data-centre-facing: VXLAN to our VTEP addresses is stitched.
    case dc = 1
    /// Customer-facing IP: looked up in the port's VRF (FTN).
    case vrf = 2

    public var name: String {
        switch self { case .core: return "core"; case .dc: return "dc"; case .vrf: return "vrf" }
    }
}

/// A port as the data plane sees it. Addresses (VTEPs on dc ports, host addresses on others) are a range in
/// `FIBSnapshot.addresses`.
@frozen
public struct PortRecord: Sendable {
    public var mac: MACAddress
    public var role: PortRole
    public var reserved: UInt8 = 0
    public var vrf: UInt16
    /// VXLAN UDP destination port accepted on this (dc) port.
    public var vxlanPort: UInt16
    public var addressCount: UInt16
    public var addressStart: UInt32

    public init(mac: MACAddress, role: PortRole, vrf: UInt16, vxlanPort: UInt16, addressStart: UInt32, addressCount: UInt16) {
        self.mac = mac; self.role = role; self.vrf = vrf; self.vxlanPort = vxlanPort
        self.addressStart = addressStart; self.addressCount = addressCount
    }
}

/// Addresses in one list for both families: IPv4 is stored IPv4-mapped (::ffff:a.b.c.d, RFC 4291 §2.5.5.2).
public extension IPv6Address {
    @inlinable @inline(__always)
    init(mapping v4: UInt32) { self.init(high: 0, low: 0xFFFF_0000_0000 | UInt64(v4)) }

    init(_ a: IPAddress) {
        switch a {
        case .v4(let v4): self.init(mapping: v4.value)
        case .v6(let v6): self = v6
        }
    }
}
