/// An MPLS label: a 20-bit value (RFC 3032 §2.1).
///
/// Values 0–15 are reserved (RFC 3032 §2.1, RFC 7274); their meanings are named constants here.
@frozen
public struct MPLSLabel: RawRepresentable, Hashable, Comparable, Sendable, CustomStringConvertible {
    public let rawValue: UInt32

    /// The largest label: 2^20 − 1.
    public static let maxValue: UInt32 = 0xFFFFF

    /// Creates a label; nil when `rawValue` does not fit in 20 bits.
    @inlinable
    public init?(rawValue: UInt32) {
        guard rawValue <= MPLSLabel.maxValue else { return nil }
        self.rawValue = rawValue
    }

    @inlinable @inline(__always)
    init(unchecked rawValue: UInt32) { self.rawValue = rawValue }

    public static let ipv4ExplicitNull = MPLSLabel(unchecked: 0)
    public static let routerAlert = MPLSLabel(unchecked: 1)
    public static let ipv6ExplicitNull = MPLSLabel(unchecked: 2)
    public static let implicitNull = MPLSLabel(unchecked: 3)
    public static let entropyLabelIndicator = MPLSLabel(unchecked: 7)
    public static let gal = MPLSLabel(unchecked: 13)
    public static let oamAlert = MPLSLabel(unchecked: 14)

    /// True for 0–15, the labels that are never keys of the label table and never hashed.
    @inlinable public var isReserved: Bool { rawValue < 16 }

    public static func < (a: MPLSLabel, b: MPLSLabel) -> Bool { a.rawValue < b.rawValue }
    public var description: String { String(rawValue) }
}
