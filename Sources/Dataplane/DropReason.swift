/// Why a frame was dropped. Every reason is a counter and appears in traces (like Cilium's drop_reasons.h and
/// VPP's error counters). Raw values are stable.
@frozen
public enum DropReason: UInt8, CaseIterable, Sendable {
    /// Not dropped.
    case none = 0
    /// The frame ends inside a header.
    case tooShort
    /// Header fields are inconsistent (IP version, header or total length, UDP length).
    case malformed
    /// Traffic for the host (wrong destination MAC, ARP, control protocols, the host's own addresses, VXLAN on
    /// another UDP port): the live agent leaves it to the kernel.
    case notForUs
    /// A labeled frame arrived on a port where MPLS is not enabled (only core ports accept labels).
    case mplsNotEnabled
    /// No ILM entry for the label.
    case unknownLabel
    /// Label 3 (implicit null) on the wire (RFC 3032 §2.1).
    case illegalLabel
    /// A reserved label (4–6, 8–12, 15) with no defined processing.
    case reservedLabel
    /// Router alert, GAL, OAM alert, or a pseudowire label with TTL 1 (VCCV): OAM, counted, not yet punted.
    case oam
    /// The bottom-of-stack bit is not what the entry expects.
    case bosMismatch
    /// Label or IP TTL ≤ 1 where it must be decremented.
    case ttlExpired
    /// A pseudowire control word whose first nibble is not 0 (RFC 4385).
    case badControlWord
    /// After the rewrite the frame exceeds the next hop's MTU (never fragmented).
    case mtuExceeded
    /// VXLAN with the I flag clear (RFC 7348 §5).
    case vxlanNoIFlag
    /// No VNI entry for the VXLAN VNI.
    case unknownVNI
    /// VXLAN from a remote VTEP the VNI entry does not allow.
    case vtepNotAllowed
    /// No FTN route for the destination in the port's VRF.
    case noRoute
    /// An ILM entry whose operation is drop.
    case fibDrop
    /// A fragmented IP packet addressed to our VTEP (the VXLAN underlay is not reassembled).
    case underlayFragment
    /// An IPv4 header checksum that does not verify.
    case badIPChecksum
    /// Not enough headroom in the frame buffer for the headers to push.
    case noHeadroom
    /// The frame is larger than a frame buffer (counted by the I/O layer).
    case frameTooLong
    /// The ingress port is not in the FIB's port table.
    case unknownPort
    /// A swap or PHP would send on a label stack with no bottom-of-stack entry (S=1) before the frame's end or
    /// within `Pipeline.maxLabelDepth` entries: the next router would take the payload for labels.
    case noBottomOfStack
    /// The next hop is down and has no usable backup (link events: `docs/deployment.md`, protection).
    case nextHopDown
    /// Not a drop of traffic: a BFD control packet (UDP 3784) on a core port, which the live agent hands to its
    /// protection thread (`docs/deployment.md`, BFD). Counted here so that rx = tx + drops holds per port; replay,
    /// which runs no BFD, counts it the same way.
    case control
    /// A multipoint VNI's frame whose destination MAC is on the side it came from: a local VTEP's frame for
    /// another local VTEP (they reach each other directly), or a pseudowire's frame for another site (the sites
    /// form a full mesh). Split horizon (RFC 4762 §4.4).
    case splitHorizon
    /// Not a drop: a broadcast, multicast or unknown-unicast frame of a multipoint VNI, replicated by the worker
    /// to every place across the split horizon (its copies are counted per VNI and as port tx; a copy that cannot
    /// be sent counts its drop reason, not a port drop). Per port, rx = tx of forwarded frames + drops + floods.
    case flood
    /// A flood over its VNI's BUM rate limit (per worker).
    case bumRateLimited
    /// A multipoint VNI's frame whose source MAC is a static MAC of another place (a spoofed or misplaced host: the
    /// controller pinned that MAC elsewhere). Checked on VNIs that learn.
    case staticMACMoved
    /// A frame the XDP fast tier redirected that the egress device then refused (the kernel's XDP transmit
    /// errors: a veth whose peer stopped taking redirected frames, a device down or with a smaller MTU). Counted
    /// on the ingress port by the agent, never by the pipeline.
    case xdpTransmitError

    /// The name used in counters, traces and JSON.
    public var name: String {
        switch self {
        case .none: return "none"
        case .tooShort: return "tooShort"
        case .malformed: return "malformed"
        case .notForUs: return "notForUs"
        case .mplsNotEnabled: return "mplsNotEnabled"
        case .unknownLabel: return "unknownLabel"
        case .illegalLabel: return "illegalLabel"
        case .reservedLabel: return "reservedLabel"
        case .oam: return "oam"
        case .bosMismatch: return "bosMismatch"
        case .ttlExpired: return "ttlExpired"
        case .badControlWord: return "badControlWord"
        case .mtuExceeded: return "mtuExceeded"
        case .vxlanNoIFlag: return "vxlanNoIFlag"
        case .unknownVNI: return "unknownVNI"
        case .vtepNotAllowed: return "vtepNotAllowed"
        case .noRoute: return "noRoute"
        case .fibDrop: return "fibDrop"
        case .underlayFragment: return "underlayFragment"
        case .badIPChecksum: return "badIPChecksum"
        case .noHeadroom: return "noHeadroom"
        case .frameTooLong: return "frameTooLong"
        case .unknownPort: return "unknownPort"
        case .noBottomOfStack: return "noBottomOfStack"
        case .nextHopDown: return "nextHopDown"
        case .control: return "control"
        case .splitHorizon: return "splitHorizon"
        case .flood: return "flood"
        case .bumRateLimited: return "bumRateLimited"
        case .staticMACMoved: return "staticMACMoved"
        case .xdpTransmitError: return "xdpTransmitError"
        }
    }

    /// The reason with this name, or nil.
    public init?(name: String) {
        guard let r = DropReason.allCases.first(where: { $0.name == name }) else { return nil }
        self = r
    }
}
