/// A VXLAN network identifier: 24 bits (RFC 7348 §5).
@frozen
public struct VNI: RawRepresentable, Hashable, Comparable, Sendable, CustomStringConvertible {
    public let rawValue: UInt32

    /// The largest VNI: 2^24 − 1.
    public static let maxValue: UInt32 = 0xFF_FFFF

    /// Creates a VNI; nil when `rawValue` does not fit in 24 bits.
    @inlinable
    public init?(rawValue: UInt32) {
        guard rawValue <= VNI.maxValue else { return nil }
        self.rawValue = rawValue
    }

    public static func < (a: VNI, b: VNI) -> Bool { a.rawValue < b.rawValue }
    public var description: String { String(rawValue) }
}
