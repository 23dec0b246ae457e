/// Index types, one per index space, so that indices of different kinds cannot be mixed.

/// A port of this instance, numbered in config order from 0.
@frozen
public struct PortID: Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt16
    @inlinable public init(_ rawValue: UInt16) { self.rawValue = rawValue }
    /// The sentinel carried in a frame's egress field when the frame is dropped.
    @inlinable public static var none: PortID { PortID(0xFFFF) }
    /// At most this many ports per instance.
    public static let maxCount = 256
    public var description: String { String(rawValue) }
}

/// Index into the snapshot's action table. An ILM, VNI or FTN entry names one action; the action's index is also
/// its counter slot.
@frozen
public struct ActionID: Hashable, Sendable {
    public let rawValue: UInt32
    @inlinable public init(_ rawValue: UInt32) { self.rawValue = rawValue }
}

/// Where a rewritten frame goes: one next hop, or an ECMP group that picks a next hop by flow hash.
/// Bit 31 set means a group.
@frozen
public struct ForwardTarget: Hashable, Sendable {
    public let rawValue: UInt32
    @inlinable public init(rawValue: UInt32) { self.rawValue = rawValue }
    @inlinable public static func nextHop(_ i: UInt32) -> ForwardTarget { ForwardTarget(rawValue: i) }
    @inlinable public static func group(_ i: UInt32) -> ForwardTarget { ForwardTarget(rawValue: i | 0x8000_0000) }
    @inlinable public var isGroup: Bool { rawValue & 0x8000_0000 != 0 }
    @inlinable public var index: UInt32 { rawValue & 0x7FFF_FFFF }
    /// No target (entries whose operation does not forward).
    @inlinable public static var none: ForwardTarget { ForwardTarget(rawValue: 0x7FFF_FFFF) }
}
