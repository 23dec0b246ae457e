/// An element's name in errors (`chunk 3 ilm.rows[7] (label 100).out[0]`), formatted only when an error needs it:
/// decoding a million entries used to build four such strings per entry that no one read.
public struct ElementPath: CustomStringConvertible, ExpressibleByStringInterpolation, Sendable {
    /// The section or element path as given ("chunk 3 ilm", "operations[2]").
    var base: String
    /// The element's index in the section (-1: none), in the compact form's rows or the object form's array.
    var index = -1
    var compact = false
    var key: Key = .none

    enum Key: Sendable {
        case none
        /// " (label 100)", " (vni 5000)".
        case number(StaticString, UInt64)
        /// " (p1)", " (203.0.113.0/24)".
        case text(String)
    }

    public init(_ base: String) { self.base = base }
    public init(stringLiteral value: String) { base = value }
    public init(stringInterpolation: DefaultStringInterpolation) { base = String(stringInterpolation: stringInterpolation) }

    init(_ base: String, index: Int, compact: Bool) {
        self.base = base
        self.index = index
        self.compact = compact
    }

    /// The same element, named by its key.
    func keyed(_ name: StaticString, _ value: UInt64) -> ElementPath {
        var p = self
        p.key = .number(name, value)
        return p
    }

    func keyed(_ text: String) -> ElementPath {
        var p = self
        p.key = .text(text)
        return p
    }

    public var description: String {
        var s = base
        if index >= 0 { s += compact ? ".rows[\(index)]" : "[\(index)]" }
        switch key {
        case .none: break
        case .number(let name, let v): s += " (\(name) \(v))"
        case .text(let t): s += " (\(t))"
        }
        return s
    }
}
