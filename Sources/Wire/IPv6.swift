/// IPv6 fixed header (RFC 8200 §3).
///
/// ```
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |Version| Traffic Class |           Flow Label                  |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |         Payload Length        |  Next Header  |   Hop Limit   |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                Source Address (16)                            |
/// |                Destination Address (16)                       |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
public enum IPv6 {
    public static let headerSize = 40
    public static let payloadLengthOffset = 4
    public static let nextHeaderOffset = 6
    public static let hopLimitOffset = 7
    public static let sourceOffset = 8
    public static let destinationOffset = 24

    /// The 8-bit traffic class (DSCP + ECN) of the header at `offset`.
    @inlinable @inline(__always)
    public static func trafficClass(_ b: PacketBytes, at offset: Int) -> UInt8 {
        UInt8(truncatingIfNeeded: b.be16(offset) >> 4)
    }
}

/// An IPv6 address as two host-order 64-bit halves (`high` holds the first 8 bytes on the wire).
@frozen
public struct IPv6Address: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let high: UInt64
    public let low: UInt64
    @inlinable public init(high: UInt64, low: UInt64) { self.high = high; self.low = low }

    /// Reads 16 bytes at `offset`.
    @inlinable @inline(__always)
    public init(_ b: PacketBytes, at offset: Int) {
        high = UInt64(b.be32(offset)) << 32 | UInt64(b.be32(offset + 4))
        low = UInt64(b.be32(offset + 8)) << 32 | UInt64(b.be32(offset + 12))
    }

    /// Writes the 16 bytes at `offset`.
    @inlinable @inline(__always)
    public func store(_ b: PacketBytes, at offset: Int) {
        b.setBE32(offset, UInt32(truncatingIfNeeded: high >> 32)); b.setBE32(offset + 4, UInt32(truncatingIfNeeded: high))
        b.setBE32(offset + 8, UInt32(truncatingIfNeeded: low >> 32)); b.setBE32(offset + 12, UInt32(truncatingIfNeeded: low))
    }

    /// Byte `i` (0–15) in wire order.
    @inlinable public func byte(_ i: Int) -> UInt8 {
        i < 8 ? UInt8(truncatingIfNeeded: high >> UInt64(56 - 8 * i)) : UInt8(truncatingIfNeeded: low >> UInt64(56 - 8 * (i - 8)))
    }

    /// Parses RFC 4291 §2.2 text (with `::` compression and an optional trailing dotted quad); nil when malformed.
    public init?(_ text: String) {
        var groups: [UInt16] = []
        var tail: [UInt16] = []
        var sawGap = false
        let s = Substring(text)
        if s.isEmpty { return nil }
        let halves = s.components(separatedByString: "::")
        guard halves.count <= 2 else { return nil }
        func parse(_ part: Substring, allowV4: Bool) -> [UInt16]? {
            if part.isEmpty { return [] }
            var out: [UInt16] = []
            let fields = part.split(separator: ":", omittingEmptySubsequences: false)
            for (i, f) in fields.enumerated() {
                if allowV4 && i == fields.count - 1 && f.contains(".") {
                    guard let v4 = IPv4Address(String(f)) else { return nil }
                    out.append(UInt16(v4.value >> 16)); out.append(UInt16(v4.value & 0xFFFF))
                } else {
                    guard !f.isEmpty, f.count <= 4, let v = UInt16(f, radix: 16) else { return nil }
                    out.append(v)
                }
            }
            return out
        }
        if halves.count == 2 {
            sawGap = true
            guard let a = parse(halves[0], allowV4: false), let b = parse(halves[1], allowV4: true) else { return nil }
            groups = a; tail = b
            guard groups.count + tail.count <= 7 else { return nil }
        } else {
            guard let a = parse(halves[0], allowV4: true), a.count == 8 else { return nil }
            groups = a
        }
        if sawGap { groups += Array(repeating: 0, count: 8 - groups.count - tail.count) + tail }
        var h: UInt64 = 0, l: UInt64 = 0
        for i in 0..<4 { h = h << 16 | UInt64(groups[i]) }
        for i in 4..<8 { l = l << 16 | UInt64(groups[i]) }
        high = h; low = l
    }

    public static func < (a: IPv6Address, b: IPv6Address) -> Bool { (a.high, a.low) < (b.high, b.low) }

    public var description: String {
        var g: [UInt16] = []
        for i in 0..<4 { g.append(UInt16(truncatingIfNeeded: high >> UInt64(48 - 16 * i))) }
        for i in 0..<4 { g.append(UInt16(truncatingIfNeeded: low >> UInt64(48 - 16 * i))) }
        // Longest run of zero groups (length ≥ 2) becomes "::" (RFC 5952).
        var bestStart = -1, bestLen = 0, i = 0
        while i < 8 {
            if g[i] == 0 {
                var j = i
                while j < 8 && g[j] == 0 { j += 1 }
                if j - i > bestLen && j - i >= 2 { bestStart = i; bestLen = j - i }
                i = j
            } else { i += 1 }
        }
        func hex(_ r: ArraySlice<UInt16>) -> String { r.map { String($0, radix: 16) }.joined(separator: ":") }
        if bestStart < 0 { return hex(g[...]) }
        return hex(g[0..<bestStart]) + "::" + hex(g[(bestStart + bestLen)...])
    }
}

extension Substring {
    /// Splits on a multi-character separator (Wire imports no Foundation).
    func components(separatedByString sep: String) -> [Substring] {
        var out: [Substring] = []
        var start = startIndex
        var i = startIndex
        let sepChars = Array(sep)
        while i < endIndex {
            var j = i, k = 0
            while k < sepChars.count, j < endIndex, self[j] == sepChars[k] { j = index(after: j); k += 1 }
            if k == sepChars.count {
                out.append(self[start..<i]); start = j; i = j
            } else { i = index(after: i) }
        }
        out.append(self[start..<endIndex])
        return out
    }
}

/// An IPv4 or IPv6 address, as named in configuration and FIB entries.
public enum IPAddress: Hashable, Sendable, CustomStringConvertible {
    case v4(IPv4Address)
    case v6(IPv6Address)

    /// Parses either family; nil when neither parses.
    public init?(_ text: String) {
        if let a = IPv4Address(text) { self = .v4(a) } else if let a = IPv6Address(text) { self = .v6(a) } else { return nil }
    }

    public var description: String {
        switch self { case .v4(let a): return a.description; case .v6(let a): return a.description }
    }
}
