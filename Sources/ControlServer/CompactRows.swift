import Control
import FIB
import Wire

/// The fast path of large requests: a resync chunk whose `params.ilm` is in the compact form
/// (`{"columns": [...], "rows": [[...], ...]}`) or an array of entry objects has its entries decoded straight from the
/// bytes into `ILMEntrySpec`s, with no JSON tree for them (and an apply its compact ILM operations); the rest of the
/// request is parsed as `JSONParser` does, the decoded parameter left as null. A request without that parameter is
/// still parsed here once, whole, so the caller does not parse it again.
///
/// It never reports an error: whatever it does not take on (another method, escapes in a string, an operation other
/// than swap, pop or drop, a column it does not know, an out-of-range number, any syntax error) makes it return nil,
/// and the caller parses the request the usual way, so every error reads exactly as before. What it accepts it
/// decodes exactly as `FIBCodec.decodeILM` does (the request fuzz target checks both against each other).
enum CompactRows {
    /// The request's tree and, when its `params.ilm` was decoded here (null in the tree), its ILM entries; nil: use
    /// the slow path.
    static func parseChunk(_ bytes: [UInt8]) -> (request: JSONValue, ilm: [ILMEntrySpec]?)? {
        var ilm: [ILMEntrySpec]?
        guard let request = parseRequest(bytes, method: "resync.chunk", param: "ilm", opening: [UInt8(ascii: "{"), UInt8(ascii: "[")], { p in
            ilm = p.peek(UInt8(ascii: "{")) ? p.compactILM() : p.objectILM()
            return ilm != nil
        }) else { return nil }
        return (request, ilm)
    }

    /// An `apply`'s tree and its operations: compact ILM ones (`{"op", "kind": "ilm", "columns", "rows"}`) decoded
    /// from the bytes, the others parsed and decoded the usual way, in order (`params.operations` null in the tree;
    /// nil operations when it has none to decode). Nil: any operation fails (the usual path then reports it).
    static func parseApply(_ bytes: [UInt8]) -> (request: JSONValue, operations: ControlService.DecodedOperations?)? {
        var decoded: ControlService.DecodedOperations?
        guard let request = parseRequest(bytes, method: "apply", param: "operations", opening: [UInt8(ascii: "[")], { p in
            p.i += 1
            var d = ControlService.DecodedOperations()
            var count = 0
            if !p.take(UInt8(ascii: "]")) {
                repeat {
                    p.skipSpace()
                    let mark = p.i
                    if !p.compactILMOperation(into: &d) {
                        // Any other operation: parsed and decoded the usual way.
                        p.i = mark
                        guard let v = try? p.value(depth: 3) else { return false }
                        do throws(ControlService.Failure) {
                            try ControlService.decodeChanges(v, "operations[\(count)]", into: &d.changes, origins: &d.origins)
                        } catch { return false }
                    }
                    d.opIndex += repeatElement(count, count: d.changes.count - d.opIndex.count)
                    count += 1
                    guard count <= ControlService.maxOperationsPerCall,
                          d.changes.count <= ControlService.maxOperationsPerCall else { return false }
                } while p.take(UInt8(ascii: ","))
                guard p.take(UInt8(ascii: "]")) else { return false }
            }
            decoded = d
            return true
        }) else { return nil }
        return (request, decoded)
    }

    /// `request` with `params.<param>` null: the tree the fast path gives for what it decoded (for its checks).
    static func nulling(_ param: String, in request: JSONValue) -> JSONValue {
        guard case .object(let fields) = request else { return request }
        return .object(fields.map { f in
            guard f.0 == "params", case .object(let params) = f.1 else { return f }
            return (f.0, .object(params.map { $0.0 == param ? ($0.0, .null) : $0 }))
        })
    }

    /// Parses a request as `JSONParser` does, except that the value of `params.<param>` (when it starts with one of
    /// `opening`) goes to `special`, which reads it from the parser and says whether it took it; the tree holds null
    /// there. Nil: `special` refused it, the method is not `method`, or anything is out of reach.
    /// Tried only when `"method":"<method>"` appears in the first 256 bytes (as clients write it), so other large
    /// requests are not parsed twice.
    private static func parseRequest(_ bytes: [UInt8], method: String, param: String, opening: [UInt8],
                                     _ special: (inout JSONParser) -> Bool) -> JSONValue? {
        guard looksLike(Array("\"method\":\"\(method)\"".utf8), bytes) else { return nil }
        var p = JSONParser(bytes: bytes, maxDepth: JSONParser.defaultMaxDepth)
        var fields: [(String, JSONValue)] = []
        var keys = Set<String>()
        p.skipSpace()
        guard p.take(UInt8(ascii: "{")) else { return nil }
        repeat {
            p.skipSpace()
            guard let key = p.plainString(), keys.insert(key).inserted, p.colon() else { return nil }
            if key == "params" && p.peek(UInt8(ascii: "{")) {
                p.i += 1
                var params: [(String, JSONValue)] = []
                var paramKeys = Set<String>()
                repeat {
                    p.skipSpace()
                    guard let k = p.plainString(), paramKeys.insert(k).inserted, p.colon() else { return nil }
                    if k == param && opening.contains(where: { p.peek($0) }) {
                        guard special(&p) else { return nil }
                        params.append((k, .null))
                    } else {
                        guard let v = try? p.value(depth: 2) else { return nil }
                        params.append((k, v))
                    }
                    p.skipSpace()
                } while p.take(UInt8(ascii: ","))
                guard p.take(UInt8(ascii: "}")) else { return nil }
                fields.append((key, .object(params)))
            } else {
                guard let v = try? p.value(depth: 1) else { return nil }
                fields.append((key, v))
            }
            p.skipSpace()
        } while p.take(UInt8(ascii: ","))
        guard p.take(UInt8(ascii: "}")) else { return nil }
        p.skipSpace()
        guard p.i == bytes.count, case .string(method)? = fields.first(where: { $0.0 == "method" })?.1 else { return nil }
        return .object(fields)
    }

    /// Whether `"method":"…"` appears in the first 256 bytes.
    static func looksLike(_ method: [UInt8], _ bytes: [UInt8]) -> Bool {
        let head = bytes.prefix(256)
        guard head.count >= method.count else { return false }
        for start in head.startIndex...(head.endIndex - method.count)
        where head[start] == UInt8(ascii: "\"") && head[start..<start + method.count].elementsEqual(method) {
            return true
        }
        return false
    }
}

/// The columns the fast path decodes (`FIBCodec.decodeILM`'s fields for swap, pop and drop).
fileprivate enum ILMColumn: String, CaseIterable {
    case label, op, out, via, ttlMode, payload, backupOut

    var bit: UInt8 { 1 << UInt8(ILMColumn.allCases.firstIndex(of: self)!) }
}

/// One ILM entry's fields as read from a row or an object; `entry()` applies `FIBCodec.decodeILM`'s rules.
fileprivate struct ILMFields {
    var label: UInt32?, op: String?, out: [UInt32]?, via: String?, ttl: TTLMode?, payload: Payload?
    var backupOut: [UInt32]?

    /// Reads field `c`'s value (not null); false: not for the fast path.
    mutating func read(_ c: ILMColumn, from p: inout JSONParser, lastVia: inout String) -> Bool {
        switch c {
        case .label: guard let v = p.plainInteger(max: UInt64(UInt32.max)) else { return false }; label = UInt32(v)
        case .op: guard let s = p.plainString() else { return false }; op = s
        case .out: guard let l = p.labelArray() else { return false }; out = l
        case .backupOut: guard let l = p.labelArray() else { return false }; backupOut = l
        case .via:
            guard let s = p.plainString() else { return false }
            // Entries name few next hops: keep one String for a run of equal names.
            if s == lastVia { via = lastVia } else { via = s; lastVia = s }
        case .ttlMode: guard let s = p.plainString(), let m = TTLMode(rawValue: s) else { return false }; ttl = m
        case .payload: guard let s = p.plainString(), let v = try? FIBCodec.payload(s, "") else { return false }; payload = v
        }
        return true
    }

    /// The entry, as `decodeILM` makes it from these fields; nil where it would refuse them (or a case it does not
    /// take on: other operations).
    func entry() -> ILMEntrySpec? {
        guard let label, let op else { return nil }
        let operation: ILMOperationSpec
        switch op {
        case "swap":
            guard let out, let via else { return nil }
            operation = .swap(out: out, via: via, payload: payload, ttlMode: ttl ?? .uniform)
        case "pop":
            guard out == nil, via == nil, payload == nil else { return nil }
            operation = .pop(ttlMode: ttl ?? .uniform)
        case "drop":
            guard out == nil, via == nil, payload == nil, ttl == nil else { return nil }
            operation = .drop
        default:
            return nil
        }
        return ILMEntrySpec(label: label, operation: operation, backupOut: backupOut)
    }
}

extension JSONParser {
    func peek(_ c: UInt8) -> Bool { i < bytes.count && bytes[i] == c }

    /// Takes `c` (after any space) if it comes next.
    mutating func take(_ c: UInt8) -> Bool {
        skipSpace()
        guard peek(c) else { return false }
        i += 1
        return true
    }

    mutating func colon() -> Bool {
        guard take(UInt8(ascii: ":")) else { return false }
        skipSpace()
        return true
    }

    /// A string of printable ASCII without escapes (nil otherwise: the slow path takes it).
    mutating func plainString() -> String? {
        skipSpace()
        guard peek(UInt8(ascii: "\"")) else { return nil }
        let start = i + 1
        var j = start
        while j < bytes.count {
            let c = bytes[j]
            if c == UInt8(ascii: "\"") {
                i = j + 1
                return String(decoding: bytes[start..<j], as: UTF8.self)
            }
            if c == UInt8(ascii: "\\") || c < 0x20 || c >= 0x80 { return nil }
            j += 1
        }
        return nil
    }

    /// A non-negative integer in JSON syntax (no sign, fraction, exponent or leading zero) up to `max`.
    mutating func plainInteger(max: UInt64) -> UInt64? {
        skipSpace()
        let start = i
        var v: UInt64 = 0
        while i < bytes.count, bytes[i] >= UInt8(ascii: "0"), bytes[i] <= UInt8(ascii: "9") {
            v = v &* 10 &+ UInt64(bytes[i] - UInt8(ascii: "0"))
            i += 1
            if i - start > 10 { return nil }
        }
        guard i > start, !(bytes[start] == UInt8(ascii: "0") && i - start > 1), v <= max else { return nil }
        // A fraction or exponent would make it a number Int64() does not read: the slow path reports it.
        if i < bytes.count, bytes[i] == UInt8(ascii: ".") || bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E") {
            return nil
        }
        return v
    }

    /// `null` (an absent field in a compact row).
    mutating func null() -> Bool {
        skipSpace()
        guard i + 4 <= bytes.count, bytes[i] == UInt8(ascii: "n"), bytes[i + 1] == UInt8(ascii: "u"),
              bytes[i + 2] == UInt8(ascii: "l"), bytes[i + 3] == UInt8(ascii: "l") else { return false }
        i += 4
        return true
    }

    /// An array of labels (`FIBCodec.labels`: each 0–2^20-1).
    mutating func labelArray() -> [UInt32]? {
        guard take(UInt8(ascii: "[")) else { return nil }
        var out: [UInt32] = []
        if take(UInt8(ascii: "]")) { return out }
        repeat {
            guard let l = plainInteger(max: UInt64(MPLSLabel.maxValue)) else { return nil }
            out.append(UInt32(l))
        } while take(UInt8(ascii: ","))
        guard take(UInt8(ascii: "]")) else { return nil }
        return out
    }

    /// `{"columns": [...], "rows": [[...], ...]}` of ILM entries, in that order; nil: not for the fast path.
    mutating func compactILM() -> [ILMEntrySpec]? {
        guard take(UInt8(ascii: "{")), plainString() == "columns", colon(), let columns = ilmColumns(),
              take(UInt8(ascii: ",")), plainString() == "rows", colon(), let entries = ilmRows(columns),
              take(UInt8(ascii: "}")) else { return nil }
        return entries
    }

    /// The columns' array (known ILM fields, no duplicates, label and op among them).
    fileprivate mutating func ilmColumns() -> [ILMColumn]? {
        guard take(UInt8(ascii: "[")) else { return nil }
        var columns: [ILMColumn] = []
        repeat {
            guard let name = plainString(), let c = ILMColumn(rawValue: name), !columns.contains(c) else { return nil }
            columns.append(c)
        } while take(UInt8(ascii: ","))
        guard take(UInt8(ascii: "]")), columns.contains(.label), columns.contains(.op) else { return nil }
        return columns
    }

    /// The rows' array, each decoded as `FIBCodec.decodeILM` decodes the object of its non-null cells.
    fileprivate mutating func ilmRows(_ columns: [ILMColumn]) -> [ILMEntrySpec]? {
        guard take(UInt8(ascii: "[")) else { return nil }
        var entries: [ILMEntrySpec] = []
        if take(UInt8(ascii: "]")) { return entries }
        var lastVia = ""
        repeat {
            guard take(UInt8(ascii: "[")) else { return nil }
            var f = ILMFields()
            for (n, c) in columns.enumerated() {
                if n > 0 && !take(UInt8(ascii: ",")) { return nil }
                if null() { continue }   // a null cell: the field is absent
                guard f.read(c, from: &self, lastVia: &lastVia) else { return nil }
            }
            guard take(UInt8(ascii: "]")), let e = f.entry() else { return nil }
            entries.append(e)
        } while take(UInt8(ascii: ","))
        guard take(UInt8(ascii: "]")) else { return nil }
        return entries
    }

    /// An array of ILM entry objects (the object form), keys in any order; a null value, an unknown or repeated key
    /// is left to the usual path (whose rules for null differ by field and operation).
    mutating func objectILM() -> [ILMEntrySpec]? {
        guard take(UInt8(ascii: "[")) else { return nil }
        var entries: [ILMEntrySpec] = []
        if take(UInt8(ascii: "]")) { return entries }
        var lastVia = ""
        repeat {
            guard take(UInt8(ascii: "{")) else { return nil }
            var f = ILMFields()
            var seen: UInt8 = 0
            repeat {
                guard let key = plainString(), let c = ILMColumn(rawValue: key), seen & c.bit == 0, colon(), !null(),
                      f.read(c, from: &self, lastVia: &lastVia) else { return nil }
                seen |= c.bit
            } while take(UInt8(ascii: ","))
            guard take(UInt8(ascii: "}")), let e = f.entry() else { return nil }
            entries.append(e)
        } while take(UInt8(ascii: ","))
        guard take(UInt8(ascii: "]")) else { return nil }
        return entries
    }

    /// One apply operation `{"op": "add" | "replace", "kind": "ilm", "columns": [...], "rows": [...]}` in that
    /// order, decoded as `ControlService.decodeChanges` does; nil: not for the fast path (the caller rewinds).
    mutating func compactILMOperation(into d: inout ControlService.DecodedOperations) -> Bool {
        guard take(UInt8(ascii: "{")), plainString() == "op", colon() else { return false }
        let op = plainString()
        guard op == "add" || op == "replace", take(UInt8(ascii: ",")), plainString() == "kind", colon(),
              plainString() == "ilm", take(UInt8(ascii: ",")), plainString() == "columns", colon(),
              let columns = ilmColumns(), take(UInt8(ascii: ",")), plainString() == "rows", colon(),
              let entries = ilmRows(columns), take(UInt8(ascii: "}")) else { return false }
        d.changes.reserveCapacity(d.changes.count + entries.count)
        for (row, e) in entries.enumerated() {
            d.changes.append(op == "add" ? .add(.ilm(e)) : .replace(.ilm(e)))
            d.origins.append((row, "rows"))
        }
        return true
    }
}
