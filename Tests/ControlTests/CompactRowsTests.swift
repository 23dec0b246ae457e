import Testing
import Control
@testable import ControlServer

/// The fast path of compact ILM rows against the usual parser and `decodeILM`: whatever it accepts must decode to
/// the same entries (and the same request, `params.ilm` aside); whatever it refuses goes the usual way.
@Suite struct CompactRowsTests {
    struct Rand {
        var state: UInt64
        /// splitmix64: all 64 bits random (the shuffle below needs the high ones).
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func pick<T>(_ a: [T]) -> T { a[Int(next() % UInt64(a.count))] }
        mutating func chance(_ n: UInt64) -> Bool { next() % n == 0 }
    }

    static let cells: [String: [String]] = [
        "label": ["100", "0", "4294967295", "4294967296", "-1", "1.0", "01", "1e3", "\"100\"", "null", "16", "-0",
                  "12345678901", "1E3", "true", "nullx", " 17 "],
        "op": ["\"swap\"", "\"swap\"", "\"pop\"", "\"drop\"", "\"popToIP\"", "\"bogus\"", "null", "7", "\"sw\\u0061p\""],
        "out": ["[200]", "[200,300]", "[]", "[1048575]", "[1048576]", "[3]", "null", "\"x\"", "[2.0]", "[ 17 , 18 ]",
                "[01]", "[17,]", "[[17]]", "[17 18]"],
        "via": ["\"p1\"", "\"p2\"", "\"\"", "null", "5", "\"p\\u0031\"", "\"pé\""],
        "ttlMode": ["\"uniform\"", "\"pipe\"", "null", "\"bogus\"", "1"],
        "payload": ["\"mpls\"", "\"ipv4\"", "\"ipv6\"", "null", "\"eth\""],
        "backupOut": ["[400]", "[]", "null", "[1048576]", "4"],
        "extra": ["1", "null"],
    ]

    /// What the usual parser makes of a request: its tree and its params.
    static func usual(_ bytes: [UInt8]) throws -> (tree: JSONValue, params: [(String, JSONValue)]) {
        let tree = try JSONParser.parse(bytes)
        guard case .object(let fields) = tree, case .object(let params)? = fields.first(where: { $0.0 == "params" })?.1 else {
            throw JSONSyntaxError(offset: 0, line: 0, column: 0, message: "not a request")
        }
        return (tree, params)
    }

    /// A chunk the fast path took: its ILM entries are decodeILM's, and its tree is the usual one with ilm null.
    static func expectSame(_ request: JSONValue, _ ilm: [ILMEntrySpec]?, _ bytes: [UInt8]) throws {
        let line = String(decoding: bytes, as: UTF8.self)
        let (tree, params) = try usual(bytes)
        let decoded = try #require(ilm, "the fast path parsed a chunk with ILM entries but did not decode them: \(line)")
        #expect(try FIBCodec.section(params.first { $0.0 == "ilm" }?.1, "ilm", FIBCodec.decodeILM) == decoded, "\(line)")
        #expect(CompactRows.nulling("ilm", in: tree) == request, "\(line)")
    }

    /// Random compact ILM columns and rows, mostly well-formed: the `"columns":[…],"rows":[…]` members.
    static func table(_ r: inout Rand) -> String {
            var columns = ["label", "op"]
            for c in ["out", "via", "ttlMode", "payload", "backupOut"] where !r.chance(3) { columns.append(c) }
            if r.chance(40) { columns.append("extra") }
            if r.chance(40) { columns.append("label") }
            if r.chance(2) { columns.shuffle(using: &r) }
            var rows: [String] = []
            for _ in 0..<Int(r.next() % 4) {
                // Mostly a well-formed swap, pop or drop; sometimes anything from the column's list.
                let op = r.pick(["swap", "swap", "pop", "drop"])
                let cells = columns.map { c -> String in
                    let good: String?
                    switch (c, op) {
                    case ("label", _): good = "\(16 + r.next() % 100_000)"
                    case ("op", _): good = "\"\(op)\""
                    case ("out", "swap"): good = "[\(16 + r.next() % 1000)]"
                    case ("via", "swap"): good = "\"p1\""
                    case ("out", _), ("via", _), ("payload", "pop"), ("payload", "drop"), ("ttlMode", "drop"): good = "null"
                    default: good = nil
                    }
                    if let good, !r.chance(6) { return good }
                    return r.pick(Self.cells[c]!)
                }
                rows.append("[" + cells.joined(separator: r.chance(2) ? "," : " , ") + "]")
            }
            return "\"columns\":[" + columns.map { "\"\($0)\"" }.joined(separator: ",") + "],\"rows\":[" + rows.joined(separator: ",") + "]"
    }

    @Test func theFastPathDecodesWhatDecodeILMDecodes() throws {
        var r = Rand(state: 0x5EED)
        var accepted = 0, refused = 0
        for _ in 0..<3000 {
            let ilm = "{" + Self.table(&r) + "}"
            let method = r.chance(20) ? "apply" : "resync.chunk"
            var params = ["\"session\":\"ab\"", "\"ilm\":\(r.chance(30) ? " " : "")\(ilm)"]
            if r.chance(8) { params.append("\"nextHops\":[]") }
            if r.chance(30) { params.append("\"ilm\":null") }
            if r.chance(30) { params.append("\"sess\\u0069on\":\"ab\"") }
            if r.chance(2) { params.shuffle(using: &r) }
            var envelope = ["\"jsonrpc\":\"2.0\"", "\"id\":1", "\"method\":\"\(method)\"", "\"params\":{" + params.joined(separator: ",") + "}"]
            if r.chance(6) { envelope.swapAt(2, 3) }
            if r.chance(30) { envelope.append("\"id\":2") }
            var line = "{" + envelope.joined(separator: r.chance(5) ? " , " : ",") + "}"
            if r.chance(30) { line += " x" } else if r.chance(10) { line += "  " }
            if r.chance(40) { line = line.replacingOccurrences(of: "\"rows\":[[", with: "\"rows\":[[1],[") }
            let bytes = Array(line.utf8)
            guard let fast = CompactRows.parseChunk(bytes) else { refused += 1; continue }
            accepted += 1
            try Self.expectSame(fast.request, fast.ilm, bytes)
        }
        #expect(accepted > 500 && refused > 500, "accepted \(accepted), refused \(refused)")
    }

    /// A chunk without ILM entries (or with a section the fast path does not decode) is still parsed there once,
    /// whole: the caller does not parse it again.
    @Test func otherChunksAreParsedOnce() throws {
        for line in [#"{"jsonrpc":"2.0","id":1,"method":"resync.chunk","params":{"session":"ab","vni":[{"vni":5000,"push":[16],"via":"p1"}]}}"#,
                     #"{"jsonrpc":"2.0","id":2,"method":"resync.chunk","params":{"session":"ab","ilm":null,"ftn":[]}}"#] {
            let bytes = Array(line.utf8)
            let fast = try #require(CompactRows.parseChunk(bytes), "\(line)")
            let tree = try JSONParser.parse(bytes)
            #expect(fast.ilm == nil && fast.request == tree, "\(line)")
        }
        // An ILM section it refuses (a null value in the object form) leaves the whole request to the usual path.
        #expect(CompactRows.parseChunk(Array(#"{"jsonrpc":"2.0","id":3,"method":"resync.chunk","params":{"ilm":[{"label":16,"op":"pop","out":null}]}}"#.utf8)) == nil)
    }

    /// Chunks in the object form: entry objects with keys in any order, null values, unknown and repeated keys.
    @Test func objectEntriesDecodeAsDecodeILMDecodes() throws {
        var r = Rand(state: 0x0B1E)
        var accepted = 0, refused = 0
        for _ in 0..<3000 {
            var objects: [String] = []
            for _ in 0..<Int(r.next() % 4) {
                let op = r.pick(["swap", "swap", "pop", "drop"])
                var fields: [(String, String)] = [("label", "\(16 + r.next() % 100_000)"), ("op", "\"\(op)\"")]
                if op == "swap" { fields += [("out", "[\(16 + r.next() % 1000)]"), ("via", "\"p1\"")] }
                for c in ["ttlMode", "payload", "backupOut"] where r.chance(4) { fields.append((c, r.pick(Self.cells[c]!))) }
                if r.chance(6) {
                    let c = r.pick(["label", "op", "out", "via", "extra"])
                    let v = r.pick(Self.cells[c]!)
                    if let i = fields.firstIndex(where: { $0.0 == c }), !r.chance(4) { fields[i].1 = v } else { fields.append((c, v)) }
                }
                if r.chance(2) { fields.shuffle(using: &r) }
                objects.append("{" + fields.map { "\"\($0.0)\":\($0.1)" }.joined(separator: r.chance(4) ? " , " : ",") + "}")
            }
            let line = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"resync.chunk\",\"params\":{\"session\":\"ab\",\"ilm\":[" + objects.joined(separator: ",") + "]}}"
            let bytes = Array(line.utf8)
            guard let fast = CompactRows.parseChunk(bytes) else { refused += 1; continue }
            accepted += 1
            try Self.expectSame(fast.request, fast.ilm, bytes)
        }
        #expect(accepted > 500 && refused > 500, "accepted \(accepted), refused \(refused)")
    }

    /// Applies mixing compact ILM operations (the fast path) with any other operation (decoded the usual way).
    @Test func aFastApplyDecodesWhatDecodeOperationsDecodes() throws {
        var r = Rand(state: 0xA991)
        var accepted = 0, refused = 0
        for _ in 0..<4000 {
            var ops: [String] = []
            for _ in 0..<(1 + Int(r.next() % 3)) {
                switch r.next() % 6 {
                case 0, 1, 2: ops.append("{\"op\":\"\(r.pick(["add", "add", "replace", "delete"]))\",\"kind\":\"\(r.chance(10) ? "vni" : "ilm")\"," + Self.table(&r) + "}")
                case 3: ops.append("{\"op\":\"delete\",\"kind\":\"ilm\",\"keys\":[\(16 + r.next() % 100)]}")
                case 4: ops.append("{\"op\":\"add\",\"kind\":\"ilm\",\"entry\":{\"label\":\(16 + r.next() % 100),\"op\":\"swap\",\"out\":[17],\"via\":\"p1\"}}")
                default: ops.append(r.pick(["{\"kind\":\"ilm\",\"op\":\"add\",\"columns\":[\"label\",\"op\"],\"rows\":[[20,\"drop\"]]}", "7", "{}",
                                            "{\"op\":\"add\",\"kind\":\"ilm\",\"columns\":[\"label\",\"op\"],\"rows\":[[20,\"drop\"]],\"x\":1}"]))
                }
            }
            let extra = r.chance(4) ? ",\"expectedGeneration\":3" : ""
            let line = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"apply\",\"params\":{\"operations\":[" + ops.joined(separator: ",") + "]\(extra)}}"
            let bytes = Array(line.utf8)
            guard let fast = CompactRows.parseApply(bytes) else { refused += 1; continue }
            accepted += 1
            let (tree, params) = try Self.usual(bytes)
            let decoded = try #require(fast.operations, "\(line)")
            let slow = try ControlService.decodeOperations(params.first { $0.0 == "operations" }?.1)
            #expect(slow.changes == decoded.changes && slow.opIndex == decoded.opIndex, "\(line)")
            #expect(slow.origins.map { "\($0.row)\($0.list)" } == decoded.origins.map { "\($0.row)\($0.list)" }, "\(line)")
            #expect(CompactRows.nulling("operations", in: tree) == fast.request, "\(line)")
        }
        #expect(accepted > 200 && refused > 200, "accepted \(accepted), refused \(refused)")
    }
}

extension CompactRowsTests.Rand: RandomNumberGenerator {}
