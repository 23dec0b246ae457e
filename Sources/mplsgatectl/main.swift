#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import CLISupport
import ControlServer
import Logging

/// mplsgatectl: the operator's and scripts' client of a running agent's control socket (like vppctl / ovs-appctl).
/// Exit status: 0 success; 1 the agent refused the request; 2 usage error; 3 cannot reach the agent; 4 protocol
/// error or timeout.

/// Set once from the command's `ClientOptions` before anything talks to the agent.
nonisolated(unsafe) var jsonOut = false
nonisolated(unsafe) var timeout = 30.0
/// Our line format from the start, so errors before `ClientOptions.connect()` (a bad file) read like the rest.
nonisolated(unsafe) var log = Logger(label: "mplsgatectl") { LineLogHandler(program: $0, level: .info) }

func fail(_ message: String, code: Int32) -> Never {
    if log.logLevel <= .error { log.error("\(message)") } else {
        LineLogHandler.standardError(LineLogHandler.format(program: "mplsgatectl", message: message, metadata: [:]))
    }
    exit(code)
}

// MARK: connection


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
        log.debug("request", metadata: ["method": "\(method)", "id": "\(id)"])
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
            if let r = f.first(where: { $0.0 == "result" })?.1 {
                log.debug("reply", metadata: ["method": "\(method)", "id": "\(id)"])
                return r
            }
        }
    }
}

// MARK: JSON helpers

extension JSONValue {
    subscript(_ k: String) -> JSONValue? {
        if case .object(let f) = self { return f.first { $0.0 == k }?.1 }
        return nil
    }
    /// As `plainText`, with "-" for null (table cells).
    var text: String { self == .null ? "-" : plainText }
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
func dumpAll(_ c: Connection, _ kind: String) -> [JSONValue] {
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
        case "popToMultipoint": s += "vni \(e["vni"]?.text ?? "") from site \(e["site"]?.text ?? "")" + (e["controlWord"] == .bool(true) ? " cw" : "")
        default: break
        }
        if let m = e["ttlMode"] { s += " (\(m.text))" }
        return s
    case "vni" where e["multipoint"] != nil:
        let m = e["multipoint"]!
        var sites: [String] = []
        for s in m["sites"]?.items ?? [] {
            let push: String = (s["push"]?.items ?? []).map(\.text).joined(separator: ",")
            let cw: String = s["controlWord"] == .bool(true) ? " cw" : ""
            sites.append("\(s["name"]?.text ?? "")[\(push)] via \(s["via"]?.text ?? "")\(cw)")
        }
        var vteps: [String] = []
        for t in m["vteps"]?.items ?? [] { vteps.append("\(t["address"]?.text ?? "") via \(t["via"]?.text ?? "")") }
        let head: String = pad(e["vni"]?.text ?? "?", 9)
        return head + "multipoint vtep \(m["localVtep"]?.text ?? "") sites \(sites.joined(separator: "; ")) | vteps \(vteps.joined(separator: ", "))"
    case "mac":
        return pad(e["vni"]?.text ?? "?", 9) + pad(e["mac"]?.text ?? "", 19)
            + (e["site"].map { "site " + $0.text } ?? e["vtep"].map { "vtep " + $0.text } ?? "")
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
            + (e["backup"].map { " backup " + $0.text } ?? "")
    case "ecmpGroup":
        return pad(e["name"]?.text ?? "", 16) + (e["members"]?.items.map(\.text).joined(separator: " ") ?? "")
    default:
        return JSONWriter.write(e)
    }
}

func printPorts(_ info: JSONValue, _ counters: JSONValue) {
    print("port         interface     role  state  mode      rx packets   tx packets    dropped  xdp passed  fast tier  fast rx")
    var ins: [String] = [], outs: [String] = []
    for p in info["ports"]?.items ?? [] {
        let name = p["name"]?.text ?? ""
        let c = counters["ports"]?[name]
        let fast = c?["fastTier"]
        let isIn = fast?["ingress"] == .bool(true), isOut = fast?["egress"] == .bool(true)
        if isIn { ins.append(name) }
        if isOut { outs.append(name) }
        let tier = isIn && isOut ? "in, out" : isIn ? "in" : isOut ? "out" : "-"
        print(pad(name, 12) + " " + pad(p["interface"]?.text ?? "", 13) + pad(p["role"]?.text ?? "", 6)
              + pad(p["state"]?.text ?? "", 7) + pad(p["mode"]?.text ?? "", 8)
              + lpad(c?["rxPackets"]?.text ?? "-", 12) + lpad(c?["txPackets"]?.text ?? "-", 13)
              + lpad(c?["dropPackets"]?.text ?? "-", 11) + lpad(c?["xdp"]?["passed"]?.text ?? "-", 12)
              + "  " + pad(tier, 9) + lpad(fast?["rxPackets"]?.text ?? "-", 8))
    }
    if ins.isEmpty {
        print("fast tier: off (every frame goes through AF_XDP)")
    } else {
        print("fast tier: transit labels from \(ins.joined(separator: ", ")) to "
              + (outs.isEmpty ? "no port yet" : outs.joined(separator: ", "))
              + " stay in the XDP program; every other pair goes through AF_XDP")
    }
}

func printDrops(_ counters: JSONValue) {
    let nonzero = (counters["drops"]?.fields ?? []).filter { $0.1.text != "0" }
    if nonzero.isEmpty { print("no drops"); return }
    for (k, v) in nonzero { print(pad(k, 22) + lpad(v.text, 12)) }
}

// MARK: commands

/// Where the agent is and how to talk to it; every subcommand takes these.
struct ClientOptions: ParsableArguments {
    @Option(help: ArgumentHelp("The agent's socket (default /run/mplsgate/NAME.sock).", valueName: "PATH"))
    var socket: String?
    @Option(help: ArgumentHelp("The agent's --instance.", valueName: "NAME"))
    var instance = "mplsgate"
    @Flag(help: "Machine-readable output: the method's JSON result, one line.")
    var json = false
    @Option(help: ArgumentHelp("Seconds to wait for a reply (0 waits forever).", valueName: "S"))
    var timeout: Double = 30
    @OptionGroup var log: LogOptions

    func validate() throws {
        guard timeout >= 0 else { throw ValidationError("--timeout expects seconds (0 waits forever)") }
    }

    /// Applies the options and connects (exit 3 when the agent cannot be reached).
    func connect() -> Connection {
        jsonOut = json
        mplsgatectl.timeout = timeout
        mplsgatectl.log = log.bootstrap(program: "mplsgatectl")
        signal(SIGPIPE, SIG_IGN)
        return Connection(path: socket ?? "/run/mplsgate/\(instance).sock")
    }
}

struct MPLSGateCtl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mplsgatectl",
        abstract: "Talk to a running mplsgate agent over its control socket.",
        discussion: """
            Every subcommand takes --socket PATH, --instance NAME, --json, --timeout S and --log-level LEVEL, before \
            or after its name (mplsgatectl --socket /run/mplsgate/pe1.sock show labels).
            EXIT STATUS: 0 success; 1 the agent refused the request (the message names the element); 2 usage error; \
            3 cannot reach the agent (not running, wrong socket, permission); 4 protocol error or timeout.
            Shell completion: mplsgatectl --generate-completion-script bash|zsh|fish.
            """,
        version: "mplsgatectl \(ControlService.version)",
        subcommands: [Info.self, Show.self, Trace.self, Apply.self, Resync.self, Revert.self, FlushMACs.self, Watch.self, Events.self,
                      Call.self])

    func run() throws { CommandLineRules.subcommandRequired(MPLSGateCtl.self, MPLSGateCtl.self) }
}

struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Version, boot id, generation, digest, entry counts, ports, limits.")
    @OptionGroup var client: ClientOptions

    func run() throws {
        let conn = client.connect()
        let r = conn.call("info")
        if jsonOut { print(JSONWriter.write(r)); return }
        for (k, v) in r.fields where k != "ports" && k != "limits" && k != "entries" { print(pad(k, 20) + v.text) }
        print(pad("entries", 20) + (r["entries"]?.fields.map { "\($0.0) \($0.1.text)" }.joined(separator: ", ") ?? ""))
        print(pad("limits", 20) + (r["limits"]?.fields.map { "\($0.0) \($0.1.text)" }.joined(separator: ", ") ?? ""))
        print()
        printPorts(r, conn.call("counters"))
    }
}

struct Show: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Ports, the FIB or a part of it, counters, drops.",
        subcommands: [Ports.self, FIB.self, Labels.self, VNI.self, FTN.self, MACs.self, NextHops.self, BFD.self, Groups.self,
                      Counters.self, Drops.self])

    func run() throws { CommandLineRules.subcommandRequired(MPLSGateCtl.self, Show.self) }

    struct Ports: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Ports with link state and counters (pipeline, rings, kernel, XDP program).")
        @OptionGroup var client: ClientOptions
        func run() throws {
            let conn = client.connect()
            let info = conn.call("info"), counters = conn.call("counters")
            if jsonOut {
                print(JSONWriter.write(.object([("ports", info["ports"] ?? .null), ("counters", counters["ports"] ?? .null)])))
                return
            }
            printPorts(info, counters)
        }
    }

    struct FIB: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "fib", abstract: "Every next hop, group and entry.")
        @OptionGroup var client: ClientOptions
        func run() throws { showEntries(client, ["nextHop", "ecmpGroup", "ilm", "vni", "ftn", "mac"]) }
    }

    struct Labels: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The ILM (incoming label map).", aliases: ["ilm"])
        @OptionGroup var client: ClientOptions
        func run() throws { showEntries(client, ["ilm"]) }
    }

    struct VNI: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "vni", abstract: "The VNI table (VXLAN to MPLS).")
        @OptionGroup var client: ClientOptions
        func run() throws { showEntries(client, ["vni"]) }
    }

    struct FTN: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "ftn", abstract: "The FTN routes (IP to MPLS), per VRF.")
        @OptionGroup var client: ClientOptions
        func run() throws { showEntries(client, ["ftn"]) }
    }

    struct NextHops: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "next-hops",
            abstract: "The next hops and which path each uses now: up, backup (its backup or group carries it), down.")
        @OptionGroup var client: ClientOptions
        func run() throws {
            let conn = client.connect()
            let states = conn.call("nextHops")
            if jsonOut { print(JSONWriter.write(states)); return }
            let config = Dictionary(dumpAll(conn, "nextHop").map { ($0["name"]?.text ?? "", $0) }, uniquingKeysWith: { a, _ in a })
            print(pad("next hop", 16) + pad("port", 10) + pad("mac", 19) + pad("backup", 14) + pad("state", 8)
                  + lpad("since s", 9) + lpad("downs", 7) + lpad("reverts", 9))
            for h in states["nextHops"]?.items ?? [] {
                let name = h["name"]?.text ?? ""
                let revert = h["revertInSeconds"].map { " (revert in \($0.text) s)" } ?? ""
                print(pad(name, 16) + pad(h["port"]?.text ?? "", 10) + pad(config[name]?["mac"]?.text ?? "", 19)
                      + pad(h["backup"]?.text ?? "-", 14) + pad(h["state"]?.text ?? "", 8)
                      + lpad(h["sinceSeconds"]?.text ?? "", 9) + lpad(h["downs"]?.text ?? "", 7)
                      + lpad(h["reverts"]?.text ?? "", 9) + revert + (h["heldBy"].map { " (held: \($0.text))" } ?? ""))
            }
            print("hold-down \(states["holdDownSeconds"]?.text ?? "?") s")
        }
    }

    struct BFD: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "bfd",
            abstract: "BFD sessions: state, the peer's state, diagnostics, negotiated timers and counters.")
        @OptionGroup var client: ClientOptions
        func run() throws {
            let conn = client.connect()
            let r = conn.call("bfd")
            if jsonOut { print(JSONWriter.write(r)); return }
            print(pad("port", 8) + pad("peer", 26) + pad("local", 26) + pad("state", 7) + pad("remote", 10)
                  + lpad("tx ms", 7) + lpad("detect ms", 10) + lpad("in", 9) + lpad("out", 9) + lpad("downs", 6)
                  + "  diagnostic / next hops")
            for s in r["sessions"]?.items ?? [] {
                let neg = s["negotiated"]
                let c = s["counters"]
                let diag = s["diagnostic"]?.text ?? ""
                let remoteDiag = s["remoteDiagnostic"]?.text ?? ""
                let hops = (s["nextHops"]?.items ?? []).map(\.text).joined(separator: ",")
                print(pad(s["port"]?.text ?? "", 8) + pad(s["peer"]?.text ?? "", 26) + pad(s["local"]?.text ?? "", 26)
                      + pad(s["state"]?.text ?? "", 7) + pad(s["remoteState"]?.text ?? "", 10)
                      + lpad(neg?["txIntervalMs"]?.text ?? "", 7) + lpad(neg?["detectionTimeMs"]?.text ?? "", 10)
                      + lpad(c?["packetsIn"]?.text ?? "", 9) + lpad(c?["packetsOut"]?.text ?? "", 9)
                      + lpad(c?["downs"]?.text ?? "", 6)
                      + "  \(diag)\(remoteDiag == "none" ? "" : " (peer: \(remoteDiag))") / \(hops)")
            }
            if let d = r["discarded"], case .object(let f) = d, f.contains(where: { $0.1.text != "0" }) {
                print("discarded: " + f.filter { $0.1.text != "0" }.map { "\($0.0) \($0.1.text)" }.joined(separator: ", "))
            }
        }
    }

    struct MACs: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "macs",
            abstract: "Multipoint VNIs: their sites and local VTEPs, per-VNI counters and MAC tables (static and learned).",
            discussion: "Counters: unicast (known unicast sent to its one place), flooded (broadcast, multicast and "
                + "unknown unicast to replicate), copies (sent), noFrame (copies without a free frame or TX slot), "
                + "splitHorizon (destination on the side the frame came from), rateLimited (floods over bumPerSecond), "
                + "staticMACMoved (a static MAC's address seen as a source at another place: dropped), learnDropped "
                + "(learn records a worker could not hand over), learned, refreshed, moved, duplicate (frozen after too "
                + "many moves), overLimit (sources not learned: the VNI's macLimit or --mac-capacity), aged, flushed. "
                + "A learned MAC shows its age (seconds since last seen), moves in the current window, and "
                + "DUPLICATE while frozen.")
        @Argument(help: ArgumentHelp("Only this VNI.", valueName: "VNI"))
        var vni: UInt32?
        @OptionGroup var client: ClientOptions
        func run() throws {
            let conn = client.connect()
            let r = conn.call("macs", vni.map { .object([("vni", .number(String($0)))]) } ?? .object([]))
            if jsonOut { print(JSONWriter.write(r)); return }
            for v in r["vnis"]?.items ?? [] {
                let sites: String = (v["sites"]?.items ?? []).map(\.text).joined(separator: ",")
                let vteps: String = (v["vteps"]?.items ?? []).map(\.text).joined(separator: ",")
                let head: String = "vni \(v["vni"]?.text ?? "?")  local vtep \(v["localVtep"]?.text ?? "")"
                print(head + "  bum \(v["bumPerSecond"]?.text ?? "")/s  sites \(sites)  vteps \(vteps)")
                if case .object(let c)? = v["counters"] {
                    print("  " + c.map { "\($0.0) \($0.1.text)" }.joined(separator: "  "))
                }
                let macs = v["macs"]?.items ?? []
                print("  \(macs.count) MAC\(macs.count == 1 ? "" : "s")")
                for m in macs {
                    let mac: String = m["mac"]?.text ?? ""
                    let type: String = m["type"]?.text ?? ""
                    var place = ""
                    if let s = m["site"] { place = "site " + s.text } else if let t = m["vtep"] { place = "vtep " + t.text }
                    var line = "  " + pad(mac, 19) + pad(type, 8) + pad(place, 24)
                    if type == "learned" {
                        line += "age \(m["ageSeconds"]?.text ?? "?")s  moves \(m["moves"]?.text ?? "0")"
                        if m["duplicate"] != nil {
                            let left = m["frozenSeconds"]?.text ?? "0"
                            line += "  DUPLICATE (frozen" + (left == "0" ? " until flushed)" : " \(left)s more)")
                        }
                    }
                    print(line)
                }
            }
        }
    }

    struct Groups: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The ECMP groups.")
        @OptionGroup var client: ClientOptions
        func run() throws { showEntries(client, ["ecmpGroup"]) }
    }

    struct Counters: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Ports and drops; with a kind, per-entry packets and bytes.")
        @Argument(help: ArgumentHelp("ilm (or labels), vni or ftn.", valueName: "kind"))
        var kind: String?
        @OptionGroup var client: ClientOptions

        func validate() throws {
            if let kind, !["ilm", "labels", "vni", "ftn"].contains(kind) {
                throw ValidationError("show counters \(kind): expected ilm, labels, vni or ftn")
            }
        }

        func run() throws {
            let conn = client.connect()
            guard let kind else {
                let r = conn.call("counters")
                if jsonOut { print(JSONWriter.write(r)); return }
                printPorts(conn.call("info"), r)
                print()
                printDrops(r)
                return
            }
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
            if jsonOut { print(JSONWriter.write(.object([("generation", first["generation"] ?? .null), ("entries", .array(all))]))); return }
            print(pad(kindName, 30) + lpad("packets", 14) + lpad("bytes", 16))
            for e in all { print(pad(e["key"]?.text ?? "", 30) + lpad(e["packets"]?.text ?? "", 14) + lpad(e["bytes"]?.text ?? "", 16)) }
        }
    }

    struct Drops: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Drops per reason.")
        @OptionGroup var client: ClientOptions
        func run() throws {
            let r = client.connect().call("counters")
            if jsonOut { print(JSONWriter.write(r["drops"] ?? .null)); return }
            printDrops(r)
        }
    }
}

/// Prints every entry of `kinds`, page by page.
func showEntries(_ client: ClientOptions, _ kinds: [String]) {
    let conn = client.connect()
    var doc: [(String, JSONValue)] = []
    for k in kinds {
        let entries = dumpAll(conn, k)
        if jsonOut { doc.append((k, .array(entries))); continue }
        if kinds.count > 1 { print("\(k) (\(entries.count))") }
        for e in entries { print((kinds.count > 1 ? "  " : "") + describeEntry(k, e)) }
    }
    if jsonOut { print(JSONWriter.write(.object(doc))) }
}

struct FlushMACs: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flush-macs",
        abstract: "Forget learned MACs of a multipoint VNI: all, those at one site or local VTEP, or one MAC.",
        discussion: "Flushing one MAC also releases it if it was frozen as a duplicate. Static MACs are FIB entries "
            + "(remove them with apply). Frames to a flushed MAC flood until it is learned again.")
    @Argument(help: ArgumentHelp("The multipoint VNI.", valueName: "VNI"))
    var vni: UInt32
    @Option(help: ArgumentHelp("Only MACs learned at this site.", valueName: "NAME"))
    var site: String?
    @Option(help: ArgumentHelp("Only MACs learned at this local VTEP.", valueName: "ADDRESS"))
    var vtep: String?
    @Option(help: ArgumentHelp("Only this MAC.", valueName: "MAC"))
    var mac: String?
    @OptionGroup var client: ClientOptions

    func validate() throws {
        guard [site, vtep, mac].compactMap({ $0 }).count <= 1 else { throw ValidationError("give at most one of --site, --vtep and --mac") }
    }

    func run() throws {
        let conn = client.connect()
        var params: [(String, JSONValue)] = [("vni", .number(String(vni)))]
        if let site { params.append(("site", .string(site))) }
        if let vtep { params.append(("vtep", .string(vtep))) }
        if let mac { params.append(("mac", .string(mac))) }
        let r = conn.call("macs.flush", .object(params))
        if jsonOut { print(JSONWriter.write(r)); return }
        print("vni \(vni): \(r["flushed"]?.text ?? "0") learned MAC(s) flushed")
    }
}

struct Revert: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Bring a next hop back from its backup now, without waiting for the hold-down (or with --hold-down 0).",
        discussion: "Refused while its port or its BFD session still holds it down (the message says which). The "
            + "switch shows in mplsgatectl events and show next-hops.")
    @Argument(help: ArgumentHelp("The next hop.", valueName: "NAME"))
    var name: String
    @OptionGroup var client: ClientOptions

    func run() throws {
        let conn = client.connect()
        let r = conn.call("nextHops.revert", .object([("name", .string(name))]))
        if jsonOut { print(JSONWriter.write(r)); return }
        print("next hop \(name): revert requested (was \(r["from"]?.text ?? "?"))")
    }
}

struct Trace: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The next N packets: headers in and out, and the decision.")
    @Argument(help: ArgumentHelp("Packets to record (1-1000).", valueName: "N"))
    var count = 10
    @Option(help: ArgumentHelp("How long to wait for them.", valueName: "MS"))
    var waitMs = 5000
    @OptionGroup var client: ClientOptions

    func validate() throws {
        guard (1...1000).contains(count) else { throw ValidationError("trace \(count): expected 1-1000 packets") }
        guard (0...60_000).contains(waitMs) else { throw ValidationError("--wait-ms \(waitMs): expected 0-60000") }
    }

    func run() throws {
        let conn = client.connect()
        let r = conn.call("trace", .object([("count", .number(String(count))), ("timeoutMs", .number(String(waitMs)))]),
                          timeout: max(timeout, Double(waitMs) / 1000 + 5))
        if jsonOut { print(JSONWriter.write(r)); return }
        let packets = r["packets"]?.items ?? []
        if packets.isEmpty { print("no packets within \(waitMs) ms") }
        for (k, p) in packets.enumerated() {
            print("#\(k + 1) \(p["ingress"]?.text ?? "") \(p["length"]?.text ?? "") bytes: \(JSONWriter.write(p["headers"] ?? .null))")
            if p["decision"]?.text == "forward" {
                print("   -> \(p["egress"]?.text ?? "") \(p["lengthOut"]?.text ?? "") bytes: \(JSONWriter.write(p["headersOut"] ?? .null))")
            } else {
                print("   -> drop: \(p["reason"]?.text ?? "")")
            }
        }
    }
}

struct Apply: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "An atomic transaction from a file: {\"operations\": [...], \"expectedGeneration\": N}.")
    @Argument(help: ArgumentHelp("The transaction, JSON (an object, or just the operations array).", valueName: "FILE"))
    var file: String
    @OptionGroup var client: ClientOptions

    func run() throws {
        var params = parseJSONFile(file)
        let conn = client.connect()
        if case .array(let ops) = params { params = .object([("operations", .array(ops))]) }
        let r = conn.call("apply", params)
        if jsonOut { print(JSONWriter.write(r)) } else { print("applied \(r["applied"]?.text ?? "?") operations: generation \(r["generation"]?.text ?? "?")") }
    }
}

struct Resync: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Replace the whole FIB with a FIB document, sent in chunks.")
    @Argument(help: ArgumentHelp("The FIB document (docs/fib-format.md).", valueName: "FILE"))
    var file: String
    @Option(help: ArgumentHelp("Entries per chunk (1-100000).", valueName: "N"))
    var chunk = 10_000
    @Flag(help: ArgumentHelp("Send the entries in the compact form (columns and rows): fewer bytes to encode and parse. "
                             + "Sections already in the compact form are always sent that way."))
    var compact = false
    @OptionGroup var client: ClientOptions

    func validate() throws {
        guard (1...100_000).contains(chunk) else { throw ValidationError("--chunk must be 1–100000") }
    }

    /// `entries` (objects) as one compact table: the union of their fields as columns, null where one is absent.
    static func table(_ entries: ArraySlice<JSONValue>) -> JSONValue {
        var columns: [String] = []
        for e in entries { for (k, _) in e.fields where !columns.contains(k) { columns.append(k) } }
        let rows: [JSONValue] = entries.map { e in .array(columns.map { e[$0] ?? .null }) }
        return .object([("columns", .array(columns.map { .string($0) })), ("rows", .array(rows))])
    }

    func run() throws {
        let doc = parseJSONFile(file)
        guard case .object = doc else { fail("\(file): a FIB document is a JSON object", code: 2) }
        if let v = doc["version"], v != .number("1") { fail("\(file): schema version \(v.text) is not 1", code: 2) }
        let conn = client.connect()
        let begin = conn.call("resync.begin")
        let session = begin["session"] ?? .null
        var chunks = 0
        for kind in ["nextHops", "ecmpGroups", "ilm", "vni", "ftn", "macs"] {
            let section = doc[kind] ?? .null
            // A section in the compact form keeps its columns; its rows go out in chunks.
            let columns = section["columns"]
            let all = columns == nil ? section.items : (section["rows"]?.items ?? [])
            var start = 0
            while start < all.count {
                let end = min(start + chunk, all.count)
                let part: JSONValue
                if let columns {
                    part = .object([("columns", columns), ("rows", .array(Array(all[start..<end])))])
                } else {
                    part = compact ? Resync.table(all[start..<end]) : .array(Array(all[start..<end]))
                }
                _ = conn.call("resync.chunk", .object([("session", session), (kind, part)]))
                chunks += 1
                start = end
            }
        }
        let r = conn.call("resync.end", .object([("session", session)]))
        if jsonOut { print(JSONWriter.write(r)); return }
        print("resync in \(chunks) chunk(s): generation \(r["generation"]?.text ?? "?"), added \(r["added"]?.text ?? "0"), "
              + "replaced \(r["replaced"]?.text ?? "0"), deleted \(r["deleted"]?.text ?? "0")")
    }
}

struct Watch: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Redraw counters until Ctrl-C.", subcommands: [Counters.self])

    func run() throws { CommandLineRules.subcommandRequired(MPLSGateCtl.self, Watch.self) }

    struct Counters: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Port and drop counters every S seconds until Ctrl-C.")
        @Option(help: ArgumentHelp("Seconds between redraws.", valueName: "S"))
        var interval: Double = 1
        @OptionGroup var client: ClientOptions

        func validate() throws {
            guard interval > 0 else { throw ValidationError("--interval \(interval): expected seconds above 0") }
        }

        func run() throws {
            let conn = client.connect()
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
        }
    }
}

struct Events: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print generation and port events until Ctrl-C.")
    @OptionGroup var client: ClientOptions

    func run() throws {
        let conn = client.connect()
        _ = conn.call("events.subscribe")
        while true {
            guard let v = conn.readLine(timeout: 0) else { continue }
            if v["method"]?.text == "event" { print(JSONWriter.write(v["params"] ?? .null)); fflush(nil) }
        }
    }
}

struct Call: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Any method with a JSON params object; prints the raw result.")
    @Argument(help: "The method (docs/control-protocol.md).")
    var method: String
    @Argument(help: ArgumentHelp("A JSON object.", valueName: "PARAMS"))
    var params: String?
    @OptionGroup var client: ClientOptions

    func run() throws {
        var p: JSONValue = .object([])
        if let params {
            do { p = try JSONParser.parse(params) } catch { fail("PARAMS: \(error.description)", code: 2) }
        }
        print(JSONWriter.write(client.connect().call(method, p)))
    }
}

// The client's options may also come before the subcommand, as in `mplsgatectl --socket PATH info`.
CommandLineRules.main(MPLSGateCtl.self, arguments: CommandLineRules.hoisting(
    ["--socket": true, "--instance": true, "--json": false, "--timeout": true, "--log-level": true],
    in: Array(CommandLine.arguments.dropFirst())))
