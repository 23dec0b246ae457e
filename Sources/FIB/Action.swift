import Wire

/// The operation an action performs. Raw values are stable (they appear in the C benchmark baseline).
@frozen
public enum Operation: UInt8, Sendable, CaseIterable {
    /// Not programmed: a lookup that lands here misses.
    case none = 0
    /// ILM: replace the top label with 1–16 labels (an out stack of [3] is PHP: pop, see `Action.isPHP`).
    case swap = 1
    /// ILM: pop the top label and look up the next one.
    case pop = 2
    /// ILM: pop the bottom label and forward the IPv4/IPv6 payload via a next hop, or look it up in a VRF.
    case popToIP = 3
    /// ILM: pop the pseudowire label and VXLAN-encapsulate the inner Ethernet frame.
    case popToVXLAN = 4
    /// ILM: drop on purpose.
    case drop = 5
    /// VNI: strip VXLAN, push [control word] + labels, forward.
    case vxlanToMPLS = 6
    /// FTN: push 0–16 labels on an IP packet and forward.
    case push = 7
    /// VNI: a multipoint VNI; `vteps` points at its `Segment` block (sites, local VTEPs), `aux` is its VNI.
    case multipoint = 8
    /// ILM: pop a pseudowire label into the multipoint VNI `aux` (a site's incoming label).
    case popToMultipoint = 9
}

/// The payload carried below a label, from the FIB entry, never sniffed from the first nibble (RFC 3032 §2.2).
@frozen
public enum Payload: UInt8, Sendable {
    case mpls = 0
    case ipv4 = 1
    case ipv6 = 2
}

/// Flag bits of `Action.flags`.
public enum ActionFlags {
    /// TTL/TC uniform mode (RFC 3443): copy between label and IP. Off means pipe.
    public static let uniform: UInt8 = 1
    /// The pseudowire uses an RFC 4385 control word.
    public static let controlWord: UInt8 = 2
    /// popToIP: look the payload up in `vrf` instead of forwarding to `target`.
    public static let lookupInVRF: UInt8 = 4
    /// popToVXLAN: the underlay is IPv6.
    public static let ipv6Underlay: UInt8 = 8
}

/// One precomputed forwarding action, shared by ILM, VNI and FTN entries. 128 bytes, two cache lines; the hot
/// fields sit in the first 64 bytes together with the first 10 labels.
///
/// `area` holds, by operation:
/// - swap / push / vxlanToMPLS: up to 16 label stack entries as host-order templates (label, S bit, and for pipe mode
///   TC and TTL); the data plane ORs in the per-packet TC/TTL and stores them in network order. The backup labels
///   (`backupLabelCount`, at most 8, 24 in all) follow the primary ones.
/// - popToVXLAN: the outer IP header in network order with length and checksum zero (20 or 40 bytes) at 0, then the
///   8-byte VXLAN header at 40.
/// - popToMultipoint: word 0, the site's place ID (`Segment.siteID`): where the pseudowire's sources are learned.
@frozen
public struct Action {
    public var operation: Operation
    public var flags: UInt8
    /// Labels in `area` (swap, push, vxlanToMPLS), 0–16.
    public var labelCount: UInt8
    /// The payload below the popped label (pop to IP, PHP).
    public var payload: Payload
    /// Pipe-mode TC and TTL for pushed labels; popToVXLAN: outer IP TTL.
    public var tc: UInt8
    public var ttl: UInt8
    /// VRF index (popToIP with lookupInVRF).
    public var vrf: UInt16
    public var target: ForwardTarget
    /// popToVXLAN: outer UDP destination port.
    public var aux: UInt32
    /// vxlanToMPLS: number of allowed remote VTEPs (at `vteps`); popToVXLAN: the outer IPv4 header's partial checksum.
    public var auxCount: UInt32
    /// Labels written instead of the first `labelCount` while the target next hop is down (`backupOut`,
    /// `backupPush`): the templates in `area` after the primary ones. 0: none.
    public var backupLabelCount: UInt32 = 0
    /// vxlanToMPLS: the address of its allowed remote VTEPs (`auxCount` `IPv6Address`es), a list of its own so
    /// that a VNI change never moves another VNI's list (`FIBTables.allocateVTEPs`).
    public var vteps: UInt64 = 0
    public var area: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
                      UInt64, UInt64, UInt64, UInt64)

    public init() {
        operation = .none; flags = 0; labelCount = 0; payload = .mpls; tc = 0; ttl = 0; vrf = 0
        target = .none; aux = 0; auxCount = 0
        area = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    }

    /// Byte offset of `area` inside the struct.
    /// A constant the optimizer can fold (a `MemoryLayout` query here would be a runtime call per packet); a test
    /// checks it against the layout.
    @inlinable public static var areaOffset: Int { 32 }

    @inlinable public var isUniform: Bool { flags & ActionFlags.uniform != 0 }
    @inlinable public var hasControlWord: Bool { flags & ActionFlags.controlWord != 0 }

    /// Writes label template `i` (host order) into `area`.
    public mutating func setLabelTemplate(_ i: Int, _ bits: UInt32) {
        withUnsafeMutableBytes(of: &area) { $0.storeBytes(of: bits, toByteOffset: i * 4, as: UInt32.self) }
    }

    /// Writes raw bytes into `area` at `offset`.
    public mutating func setAreaBytes(_ bytes: [UInt8], at offset: Int) {
        withUnsafeMutableBytes(of: &area) { a in for (i, b) in bytes.enumerated() { a[offset + i] = b } }
    }
}
