#if canImport(Glibc)
import Glibc
#endif
import ControlServer

/// mplsgatectl: the operator's and scripts' client of a running agent's control socket (like vppctl / ovs-appctl).
let usage = """
    mplsgatectl: talk to a running mplsgate agent over its control socket

    USAGE
      mplsgatectl [--socket PATH | --instance NAME] [--json] [--timeout S] COMMAND

    COMMANDS
      info                        version, boot id, generation, digest, entry counts, ports, limits
      show ports                  ports with link state and counters (pipeline, rings, kernel, XDP program)
      show fib                    every next hop, group and entry
      show labels | vni | ftn | next-hops | groups
      show counters [ilm|vni|ftn] ports and drops; with a kind, per-entry packets and bytes
      show drops                  drops per reason
      trace [N] [--wait-ms MS]    the next N packets (default 10): headers in and out, and the decision
      apply FILE                  an atomic transaction: {"operations": [...], "expectedGeneration": N}
      resync FILE [--chunk N]     replace the whole FIB with a FIB document, in chunks of N entries (default 10000)
      watch counters [--interval S]   port and drop counters every S seconds (default 1) until Ctrl-C
      events                      print generation and port events until Ctrl-C
      call METHOD [PARAMS]        any method with a JSON params object; prints the raw result

    --socket PATH     the agent's socket (default /run/mplsgate/NAME.sock)
    --instance NAME   the agent's --instance (default mplsgate)
    --json            machine-readable output: the method's JSON result, one line
    --timeout S       seconds to wait for a reply (default 30; 0 waits forever)

    EXIT STATUS
      0 success; 1 the agent refused the request (the message names the element); 2 usage error;
      3 cannot reach the agent (not running, wrong socket, permission); 4 protocol error or timeout.
    """

func fail(_ message: String, code: Int32) -> Never {
    var b = Array("mplsgatectl: \(message)\n".utf8)
    _ = write(2, &b, b.count)
    exit(code)
}

// MARK: options

var args = Array(CommandLine.arguments.dropFirst())
var socketPath: String?
var instance = "mplsgate"
var jsonOut = false
var timeout = 30.0
var rest: [String] = []
var i = 0
while i < args.count {
    let a = args[i]
    func value() -> String {
        guard i + 1 < args.count else { fail("\(a) needs a value", code: 2) }
        i += 1
        return args[i]
    }
    switch a {
    case "--socket": socketPath = value()
    case "--instance": instance = value()
    case "--json": jsonOut = true
    case "--timeout":
        guard let t = Double(value()), t >= 0 else { fail("--timeout expects seconds", code: 2) }
        timeout = t
    case "--help", "-h", "help": print(usage); exit(0)
    default: rest.append(a)
    }
    i += 1
}
guard !rest.isEmpty else { print(usage); exit(2) }
let path = socketPath ?? "/run/mplsgate/\(instance).sock"

// MARK: connection

@MainActor
final class Connection {
    let fd: Int32
    var buffer: [UInt8] = []
    var nextID = 1

    init(path: String) {
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { fail("socket: \(String(cString: strerror(errno)))", code: 3) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        guard path.utf8.count < 108 else { fail("socket path too long: \(path)", code: 2) }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in for (i, b) in path.utf8.enumerated() { raw[i] = b } }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        if rc != 0 {
            let e = errno
            let hint = e == ENOENT || e == ECONNREFUSED ? " (is the agent running? --socket / --instance)"
                : e == EACCES ? " (permission: the socket is 0660; the agent's --allow-uid / --allow-gid)" : ""
            fail("cannot connect to \(path): \(String(cString: strerror(e)))\(hint)", code: 3)
        }
    }

    func send(_ method: String, _ params: JSONValue) -> Int {
        let id = nextID
        nextID += 1
        let line = JSONWriter.write(.object([("jsonrpc", .string("2.0")), ("id", .number(String(id))),
                                             ("method", .string(method)), ("params", params)])) + "\n"
        var bytes = Array(line.utf8)
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeMutableBytes { write(fd, $0.baseAddress, $0.count) }
            if n <= 0 { fail("the agent closed the connection while sending: \(String(cString: strerror(errno)))", code: 4) }
            off += n
        }
        bytes = []
        return id
    }

    /// The next line from the agent (a response or an event), or nil at the deadline.
    func readLine(timeout: Double) -> JSONValue? {
        var waited = 0.0
        while true {
            if let nl = buffer.firstIndex(of: 0x0A) {
                let line = Array(buffer[..<nl])
                buffer.removeFirst(nl + 1)
                do { return try JSONParser.parse(line, maxDepth: 256) } catch {
                    fail("unreadable reply from the agent: \(error.description)", code: 4)
                }
            }
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let r = poll(&p, 1, 200)
            if r == 0 {
                waited += 0.2
                if timeout > 0 && waited >= timeout { return nil }
                continue
            }
            var chunk = [UInt8](repeating: 0, count: 1 << 16)
            let n = read(fd, &chunk, chunk.count)
            if n <= 0 { fail("the agent closed the connection", code: 4) }
            buffer += chunk[0..<n]
        }
    }

    /// Sends and waits for the matching response; exits 1 on a JSON-RPC error.
    func call(_ method: String, _ params: JSONValue = .object([]), timeout: Double = timeout) -> JSONValue {
        let id = send(method, params)
        while true {
            guard let v = readLine(timeout: timeout) else { fail("no reply to \(method) within \(Int(timeout)) s", code: 4) }
            guard case .object(let f) = v else { continue }
            let rid = f.first { $0.0 == "id" }?.1
            guard rid == .number(String(id)) || rid == .null else { continue }
            if let err = f.first(where: { $0.0 == "error" })?.1 {
                if jsonOut { print(JSONWriter.write(err)) }
                var msg = "\(method) failed"
                if case .object(let e) = err {
                    let code = e.first { $0.0 == "code" }?.1
                    if case .string(let m)? = e.first(where: { $0.0 == "message" })?.1 { msg = m }
                    if case .number(let c)? = code { msg += " (code \(c))" }
                }
                fail(msg, code: 1)
            }
            if let r = f.first(where: { $0.0 == "result" })?.1 { return r }
        }
    }
}

// MARK: JSON helpers

extension JSONValue {
    subscript(_ k: String) -> JSONValue? {
        if case .object(let f) = self { return f.first { $0.0 == k }?.1 }
        return nil
    }
    var text: String {
        switch self {
        case .string(let s): return s
        case .number(let n): return n
        case .bool(let b): return b ? "true" : "false"
        case .null: return "-"
        default: return JSONWriter.write(self)
        }
    }
    var items: [JSONValue] { if case .array(let a) = self { return a }; return [] }
    var fields: [(String, JSONValue)] { if case .object(let f) = self { return f }; return [] }
}

func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s + " " : s + String(repeating: " ", count: n - s.count) }
func lpad(_ s: String, _ n: Int) -> String { s.count >= n ? " " + s : String(repeating: " ", count: n - s.count) + s }

func readFileBytes(_ p: String) -> [UInt8] {
    guard let bytes = readWholeFile(p) else { fail("\(p): \(String(cString: strerror(errno)))", code: 2) }
    return bytes
}

func parseJSONFile(_ p: String) -> JSONValue {
    do { return try JSONParser.parse(readFileBytes(p)) } catch { fail("\(p): \(error.description)", code: 2) }
}

/// Every entry of a kind, page by page.
@MainActor func dumpAll(_ c: Connection, _ kind: String) -> [JSONValue] {
    var out: [JSONValue] = []
    var cursor: JSONValue = .number("0")
    while true {
        let r = c.call("dump", .object([("kind", .string(kind)), ("cursor", cursor), ("limit", .number("10000"))]))
        out += r["entries"]?.items ?? []
        guard let next = r["next"], next != .null else { return out }
        cursor = next
    }
}

func describeEntry(_ kind: String, _ e: JSONValue) -> String {
    switch kind {
    case "ilm":
        let op = e["op"]?.text ?? "?"
        var s = pad(e["label"]?.text ?? "?", 9) + pad(op, 11)
        switch op {
        case "swap": s += "out " + (e["out"]?.items.map(\.text).joined(separator: ",") ?? "") + " via " + (e["via"]?.text ?? "")
        case "popToIP": s += (e["payload"]?.text ?? "") + (e["via"].map { " via " + $0.text } ?? "") + (e["vrf"].map { " vrf " + $0.text } ?? "")
        case "popToVXLAN": s += "vni \(e["vni"]?.text ?? "") \(e["localVtep"]?.text ?? "") -> \(e["remoteVtep"]?.text ?? "") via \(e["via"]?.text ?? "")"
            + (e["controlWord"] == .bool(true) ? " cw" : "")
        default: break
        }
        if let m = e["ttlMode"] { s += " (\(m.text))" }
        return s
    case "vni":
        return pad(e["vni"]?.text ?? "?", 9) + "push " + (e["push"]?.items.map(\.text).joined(separator: ",") ?? "")
            + " via " + (e["via"]?.text ?? "") + (e["controlWord"] == .bool(true) ? " cw" : "")
            + " from " + (e["allowedVteps"]?.items.map(\.text).joined(separator: ",") ?? "")
    case "ftn":
        return pad((e["vrf"]?.text ?? "") + " " + (e["prefix"]?.text ?? ""), 28) + "push "
            + (e["push"]?.items.map(\.text).joined(separator: ",") ?? "") + " via " + (e["via"]?.text ?? "")
    case "nextHop":
        return pad(e["name"]?.text ?? "", 16) + pad(e["port"]?.text ?? "", 10) + (e["mac"]?.text ?? "")
            + (e["vlan"].map { " vlan " + $0.text } ?? "") + (e["mtu"].map { " mtu " + $0.text } ?? "")
    case "ecmpGroup":
        return pad(e["name"]?.text ?? "", 16) + (e["members"]?.items.map(\.text).joined(separator: " ") ?? "")
    default:
        return JSONWriter.write(e)
    }
}

func printPorts(_ info: JSONValue, _ counters: JSONValue) {
    print("port         interface     role  state  mode      rx packets   tx packets    dropped  xdp passed")
    for p in info["ports"]?.items ?? [] {
        let name = p["name"]?.text ?? ""
        let c = counters["ports"]?[name]
        print(pad(name, 12) + " " + pad(p["interface"]?.text ?? "", 13) + pad(p["role"]?.text ?? "", 6)
              + pad(p["state"]?.text ?? "", 7) + pad(p["mode"]?.text ?? "", 8)
              + lpad(c?["rxPackets"]?.text ?? "-", 12) + lpad(c?["txPackets"]?.text ?? "-", 13)
              + lpad(c?["dropPackets"]?.text ?? "-", 11) + lpad(c?["xdp"]?["passed"]?.text ?? "-", 12))
    }
}

func printDrops(_ counters: JSONValue) {
    let nonzero = (counters["drops"]?.fields ?? []).filter { $0.1.text != "0" }
    if nonzero.isEmpty { print("no drops"); return }
    for (k, v) in nonzero { print(pad(k, 22) + lpad(v.text, 12)) }
}

// MARK: commands

signal(SIGPIPE, SIG_IGN)
let conn = Connection(path: path)
let command = rest[0]
let sub = rest.count > 1 ? rest[1] : ""

@MainActor func option(_ name: String) -> String? {
    guard let i = rest.firstIndex(of: name) else { return nil }
    guard i + 1 < rest.count else { fail("\(name) needs a value", code: 2) }
    return rest[i + 1]
}

switch command {
case "info":
    let r = conn.call("info")
    if jsonOut { print(JSONWriter.write(r)); break }
    for (k, v) in r.fields where k != "ports" && k != "limits" && k != "entries" { print(pad(k, 20) + v.text) }
    print(pad("entries", 20) + (r["entries"]?.fields.map { "\($0.0) \($0.1.text)" }.joined(separator: ", ") ?? ""))
    print(pad("limits", 20) + (r["limits"]?.fields.map { "\($0.0) \($0.1.text)" }.joined(separator: ", ") ?? ""))
    print()
    printPorts(r, conn.call("counters"))

case "show":
    switch sub {
    case "ports":
        let info = conn.call("info"), counters = conn.call("counters")
        if jsonOut { print(JSONWriter.write(.object([("ports", info["ports"] ?? .null), ("counters", counters["ports"] ?? .null)]))); break }
        printPorts(info, counters)
    case "fib", "labels", "ilm", "vni", "ftn", "next-hops", "groups":
        let kinds: [String]
        switch sub {
        case "fib": kinds = ["nextHop", "ecmpGroup", "ilm", "vni", "ftn"]
        case "labels", "ilm": kinds = ["ilm"]
        case "next-hops": kinds = ["nextHop"]
        case "groups": kinds = ["ecmpGroup"]
        default: kinds = [sub]
        }
        var doc: [(String, JSONValue)] = []
        for k in kinds {
            let entries = dumpAll(conn, k)
            if jsonOut { doc.append((k, .array(entries))); continue }
            if kinds.count > 1 { print("\(k) (\(entries.count))") }
            for e in entries { print((kinds.count > 1 ? "  " : "") + describeEntry(k, e)) }
        }
        if jsonOut { print(JSONWriter.write(.object(doc))) }
    case "counters":
        let kind = rest.count > 2 ? rest[2] : nil
        if let kind {
            let kindName = kind == "labels" ? "ilm" : kind
            var all: [JSONValue] = []
            var cursor: JSONValue = .number("0")
            var first: JSONValue = .null
            while true {
                let r = conn.call("counters", .object([("kind", .string(kindName)), ("cursor", cursor), ("limit", .number("10000"))]))
                if first == .null { first = r }
                all += r["entries"]?.items ?? []
                guard let n = r["next"], n != .null else { break }
                cursor = n
            }
            if jsonOut { print(JSONWriter.write(.object([("generation", first["generation"] ?? .null), ("entries", .array(all))]))); break }
            print(pad(kindName, 30) + lpad("packets", 14) + lpad("bytes", 16))
            for e in all { print(pad(e["key"]?.text ?? "", 30) + lpad(e["packets"]?.text ?? "", 14) + lpad(e["bytes"]?.text ?? "", 16)) }
        } else {
            let r = conn.call("counters")
            if jsonOut { print(JSONWriter.write(r)); break }
            printPorts(conn.call("info"), r)
            print()
            printDrops(r)
        }
    case "drops":
        let r = conn.call("counters")
        if jsonOut { print(JSONWriter.write(r["drops"] ?? .null)); break }
        printDrops(r)
    default:
        fail("show what? ports, fib, labels, vni, ftn, next-hops, groups, counters [kind], drops", code: 2)
    }

case "trace":
    let n = Int(sub) ?? 10
    let wait = Int(option("--wait-ms") ?? "5000") ?? 5000
    let r = conn.call("trace", .object([("count", .number(String(n))), ("timeoutMs", .number(String(wait)))]),
                      timeout: max(timeout, Double(wait) / 1000 + 5))
    if jsonOut { print(JSONWriter.write(r)); break }
    let packets = r["packets"]?.items ?? []
    if packets.isEmpty { print("no packets within \(wait) ms") }
    for (k, p) in packets.enumerated() {
        print("#\(k + 1) \(p["ingress"]?.text ?? "") \(p["length"]?.text ?? "") bytes: \(JSONWriter.write(p["headers"] ?? .null))")
        if p["decision"]?.text == "forward" {
            print("   -> \(p["egress"]?.text ?? "") \(p["lengthOut"]?.text ?? "") bytes: \(JSONWriter.write(p["headersOut"] ?? .null))")
        } else {
            print("   -> drop: \(p["reason"]?.text ?? "")")
        }
    }

case "apply":
    guard rest.count > 1 else { fail("apply FILE", code: 2) }
    var params = parseJSONFile(rest[1])
    if case .array(let ops) = params { params = .object([("operations", .array(ops))]) }
    let r = conn.call("apply", params)
    if jsonOut { print(JSONWriter.write(r)) } else { print("applied \(r["applied"]?.text ?? "?") operations: generation \(r["generation"]?.text ?? "?")") }

case "resync":
    guard rest.count > 1 else { fail("resync FILE [--chunk N]", code: 2) }
    let chunkSize = Int(option("--chunk") ?? "10000") ?? 10000
    guard (1...100_000).contains(chunkSize) else { fail("--chunk must be 1–100000", code: 2) }
    let doc = parseJSONFile(rest[1])
    guard case .object = doc else { fail("\(rest[1]): a FIB document is a JSON object", code: 2) }
    if let v = doc["version"], v != .number("1") { fail("\(rest[1]): schema version \(v.text) is not 1", code: 2) }
    let begin = conn.call("resync.begin")
    let session = begin["session"] ?? .null
    var chunks = 0
    for kind in ["nextHops", "ecmpGroups", "ilm", "vni", "ftn"] {
        let all = doc[kind]?.items ?? []
        var start = 0
        while start < all.count {
            let end = min(start + chunkSize, all.count)
            _ = conn.call("resync.chunk", .object([("session", session), (kind, .array(Array(all[start..<end])))]))
            chunks += 1
            start = end
        }
    }
    let r = conn.call("resync.end", .object([("session", session)]))
    if jsonOut { print(JSONWriter.write(r)); break }
    print("resync in \(chunks) chunk(s): generation \(r["generation"]?.text ?? "?"), added \(r["added"]?.text ?? "0"), "
          + "replaced \(r["replaced"]?.text ?? "0"), deleted \(r["deleted"]?.text ?? "0")")

case "watch":
    guard sub == "counters" else { fail("watch counters [--interval S]", code: 2) }
    let interval = Double(option("--interval") ?? "1") ?? 1
    while true {
        let r = conn.call("counters")
        if jsonOut { print(JSONWriter.write(r)) } else {
            print("\u{1B}[H\u{1B}[2J", terminator: "")
            print("generation \(r["generation"]?.text ?? "?")")
            printPorts(conn.call("info"), r)
            print()
            printDrops(r)
        }
        fflush(nil)
        usleep(UInt32(interval * 1_000_000))
    }

case "events":
    _ = conn.call("events.subscribe")
    while true {
        guard let v = conn.readLine(timeout: 0) else { continue }
        if v["method"]?.text == "event" { print(JSONWriter.write(v["params"] ?? .null)); fflush(nil) }
    }

case "call":
    guard rest.count > 1 else { fail("call METHOD [PARAMS]", code: 2) }
    var params: JSONValue = .object([])
    if rest.count > 2 {
        do { params = try JSONParser.parse(rest[2]) } catch { fail("PARAMS: \(error.description)", code: 2) }
    }
    print(JSONWriter.write(conn.call(rest[1], params)))

default:
    fail("unknown command \(command) (see --help)", code: 2)
}
