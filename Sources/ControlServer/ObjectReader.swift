import Control

/// Reads one JSON object's fields by name, with errors naming the element (`ilm[3].out`) and a check that no
/// unknown key was given (a typo must not silently become a default).
struct ObjectReader {
    /// The element named in errors; decoders refine it once they know the entry's key. Formatted only on errors.
    var element: ElementPath
    var path: String {
        get { element.description }
        set { element = ElementPath(newValue) }
    }
    let fields: [(String, JSONValue)]
    /// The fields asked for, by position (bit i: fields[i]); objects with more than 64 fields fall back to `usedKeys`.
    private var used: UInt64 = 0
    private var usedKeys: Set<String> = []

    init(_ v: JSONValue, path: String) throws(ValidationError) {
        try self.init(v, element: ElementPath(path))
    }

    init(_ v: JSONValue, element: ElementPath) throws(ValidationError) {
        guard case .object(let f) = v else { throw ValidationError(element.description, "expected an object, got \(v.typeName)", kind: .type) }
        self.element = element
        self.fields = f
    }

    mutating func value(_ key: String) -> JSONValue? {
        if fields.count > 64 { usedKeys.insert(key) }
        for i in fields.indices where fields[i].0 == key {
            if i < 64 { used |= 1 << UInt64(i) }
            return fields[i].1
        }
        return nil
    }

    mutating func required(_ key: String) throws(ValidationError) -> JSONValue {
        guard let v = value(key) else { throw ValidationError(path, "missing \"\(key)\"", kind: .missing) }
        return v
    }

    mutating func string(_ key: String) throws(ValidationError) -> String {
        try Self.string(try required(key), "\(path).\(key)")
    }

    mutating func optionalString(_ key: String) throws(ValidationError) -> String? {
        guard let v = value(key), v != .null else { return nil }
        return try Self.string(v, "\(path).\(key)")
    }

    mutating func integer(_ key: String, in range: ClosedRange<Int64>) throws(ValidationError) -> Int64 {
        try Self.integer(try required(key), "\(path).\(key)", in: range)
    }

    mutating func optionalInteger(_ key: String, in range: ClosedRange<Int64>) throws(ValidationError) -> Int64? {
        guard let v = value(key), v != .null else { return nil }
        return try Self.integer(v, "\(path).\(key)", in: range)
    }

    mutating func optionalBool(_ key: String) throws(ValidationError) -> Bool? {
        guard let v = value(key), v != .null else { return nil }
        guard case .bool(let b) = v else { throw ValidationError("\(path).\(key)", "expected a boolean, got \(v.typeName)", kind: .type) }
        return b
    }

    mutating func array(_ key: String) throws(ValidationError) -> [JSONValue] {
        let v = try required(key)
        guard case .array(let a) = v else { throw ValidationError("\(path).\(key)", "expected an array, got \(v.typeName)", kind: .type) }
        return a
    }

    /// The array under `key`, or nil when the key is absent (an empty array stays empty).
    mutating func arrayIfPresent(_ key: String) throws(ValidationError) -> [JSONValue]? {
        guard value(key) != nil else { return nil }
        return try array(key)
    }

    mutating func optionalArray(_ key: String) throws(ValidationError) -> [JSONValue] {
        guard let v = value(key), v != .null else { return [] }
        guard case .array(let a) = v else { throw ValidationError("\(path).\(key)", "expected an array, got \(v.typeName)", kind: .type) }
        return a
    }

    /// Fails on the first key that was never asked for.
    func rejectUnknownKeys() throws(ValidationError) {
        for (i, (k, _)) in fields.enumerated() where i < 64 ? used & (1 << UInt64(i)) == 0 : !usedKeys.contains(k) {
            throw ValidationError(path, "unknown key \"\(k)\"", kind: .unknownKey)
        }
    }

    static func string(_ v: JSONValue, _ path: @autoclosure () -> String) throws(ValidationError) -> String {
        guard case .string(let s) = v else { throw ValidationError(path(), "expected a string, got \(v.typeName)", kind: .type) }
        return s
    }

    static func integer(_ v: JSONValue, _ path: @autoclosure () -> String, in range: ClosedRange<Int64>) throws(ValidationError) -> Int64 {
        guard case .number(let text) = v else { throw ValidationError(path(), "expected an integer, got \(v.typeName)", kind: .type) }
        guard let n = Int64(text) else {
            throw ValidationError(path(), "\(text) is not an integer in \(range.lowerBound)–\(range.upperBound)", kind: .range)
        }
        guard range.contains(n) else { throw ValidationError(path(), "\(n) outside \(range.lowerBound)–\(range.upperBound)", kind: .range) }
        return n
    }
}
