#if canImport(Glibc)
import Glibc
#endif
import Wire
import FIB
import Dataplane
import Control
import ControlServer
import Capture
import IO
import ArgumentParser
import CLISupport
import Logging

/// The MPLSGate agent's command line: `run`, `replay`, `check`, each a type with its options defined once (help and
/// parsing come from the same declarations).
struct MPLSGate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mplsgate",
        abstract: "MPLS / VXLAN fast-path forwarder.",
        discussion: """
            EXIT STATUS: 0 success; 1 invalid input (config, FIB, capture) or a failed start; 2 usage error.
            Shell completion: mplsgate --generate-completion-script bash|zsh|fish (docs/agent.md).
            """,
        version: "mplsgate \(ControlService.version)",
        subcommands: [RunCommand.self, ReplayCommand.self, CheckCommand.self])

    func run() throws { CommandLineRules.subcommandRequired(MPLSGate.self, MPLSGate.self) }
}

extension BindMode: ExpressibleByArgument {}
extension XDPMode: ExpressibleByArgument {}
extension WaitMode: ExpressibleByArgument {}
extension FastPath: ExpressibleByArgument {}

/// `mplsgate run`: the live agent (Run.swift).
struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Forward live traffic between the config's interfaces through AF_XDP.",
        discussion: """
            Needs root, or CAP_NET_ADMIN, CAP_NET_RAW, CAP_BPF and CAP_IPC_LOCK. Starts with --fib FILE, else the state \
            file, else an empty FIB. Attaches an XDP program to every port's interface; non-MPLSGate traffic (ARP, the \
            host's own) still reaches the host. SIGUSR1 prints the counters; SIGINT/SIGTERM detach the programs, print \
            the counters and exit 0. Every option, thread and counter: docs/agent.md.
            """)

    @Option(help: ArgumentHelp("Instance config (ports with \"interface\"), JSON (docs/fib-format.md).", valueName: "CFG"))
    var config: String
    @Option(help: ArgumentHelp("FIB document to start with (default: the state file, else empty).", valueName: "FIB"))
    var fib: String?
    @Option(help: ArgumentHelp("Worker threads; worker k serves queue k of every port (1-64).", valueName: "N"))
    var workers: Int = 1
    @Option(help: ArgumentHelp("CPUs for workers 0,1,... (default: worker k on CPU k mod CPUs); none: not pinned.",
                               valueName: "LIST|none"))
    var cpus: String?
    @Option(help: "AF_XDP bind: auto (zero-copy if the driver can, else copy), copy or zerocopy.")
    var bind: BindMode = .auto
    @Option(help: "XDP hook: native or generic.")
    var xdpMode: XDPMode = .native
    @Option(help: "poll (sleep in poll() when idle) or busy (spin).")
    var wait: WaitMode = .poll
    @Option(help: ArgumentHelp("Transit label switching in the core ports' XDP program where it can (xdp), or every frame on AF_XDP (off).",
                               valueName: "xdp|off"))
    var fastPath: FastPath = .xdp
    @Option(help: ArgumentHelp("Labels the fast tier switches at once (1-16000000); more go through AF_XDP. Each costs 48 bytes and 16 per CPU.",
                               valueName: "N"))
    var fastTierEntries = FastTier.defaultEntries
    @Option(help: ArgumentHelp("UMEM frames (4 KiB each) per port per worker (128-1048576).", valueName: "N"))
    var frames: Int = 4096
    @Option(help: ArgumentHelp("Entries of each fill / completion / RX / TX ring, a power of two (64-65536).", valueName: "N"))
    var ringSize: Int = 2048
    @Option(help: ArgumentHelp("Frames one port may have in flight on TX before new ones are dropped (64-1048576).",
                               valueName: "N"))
    var txInflight: Int = 1024
    @Flag(help: "Replace a foreign XDP program attached to a port's interface.")
    var force = false
    @Flag(help: "Print counters as JSON.")
    var json = false
    @Option(help: ArgumentHelp("Names this agent's socket and state file (letters, digits, - and _).", valueName: "NAME"))
    var instance = "mplsgate"
    @Option(help: ArgumentHelp("Control socket (default /run/mplsgate/NAME.sock).", valueName: "PATH"))
    var socket: String?
    @Option(help: ArgumentHelp("The last committed FIB, loaded at start (default /var/lib/mplsgate/NAME.state).",
                               valueName: "PATH"))
    var stateFile: String?
    @Flag(help: "No state file: start from --fib or empty, write nothing (wins over --state-file).")
    var noState = false
    @Option(help: ArgumentHelp("More users allowed on the control socket, comma-separated uids (root and the agent's own user always are).",
                               valueName: "LIST"))
    var allowUid: String?
    @Option(help: ArgumentHelp("More groups allowed on the control socket, comma-separated gids.", valueName: "LIST"))
    var allowGid: String?
    @Option(help: ArgumentHelp("ILM + VNI + FTN entries the FIB may hold (1-16000000).", valueName: "N"))
    var maxEntries = 2_000_000
    @Option(help: ArgumentHelp("Learned MACs the agent holds at most over all multipoint VNIs (1-16777216); beyond, sources are not learned.",
                               valueName: "N"))
    var macCapacity = 1_048_576
    @Option(help: ArgumentHelp("Seconds a protected next hop stays on its backup after its link comes back (each flap restarts it); 0: not revertive.",
                               valueName: "S"))
    var holdDown: Double = 2
    @Option(help: ArgumentHelp("Serve Prometheus metrics at http://ADDRESS:PORT/metrics (e.g. 127.0.0.1:9417 or [::1]:9417; a management address, not 0.0.0.0).",
                               valueName: "ADDRESS:PORT"))
    var metrics: String?
    @Option(help: ArgumentHelp("Also export per-entry packet and byte counters of these kinds, comma-separated (ilm, vni, ftn): one series per entry.",
                               valueName: "KINDS"))
    var metricsEntries: String?
    @OptionGroup var log: LogOptions

    /// Parsed --metrics: (host, port), nil when not given.
    var metricsEndpoint: (host: String, port: Int)? {
        guard let m = metrics else { return nil }
        var host: Substring
        var port: Substring
        if m.hasPrefix("[") {
            guard let close = m.firstIndex(of: "]"), m[m.index(after: close)...].hasPrefix(":") else { return ("", -1) }
            host = m[m.index(after: m.startIndex)..<close]
            port = m[m.index(close, offsetBy: 2)...]
        } else {
            guard let colon = m.lastIndex(of: ":"), !m[..<colon].contains(":") else { return ("", -1) }
            host = m[..<colon]
            port = m[m.index(after: colon)...]
        }
        guard !host.isEmpty, let p = Int(port), (0...65535).contains(p) else { return ("", -1) }
        return (String(host), p)
    }

    /// Parsed --metrics-entries, each kind once.
    var metricsEntryKinds: [String] {
        var seen = Set<String>()
        return (metricsEntries ?? "").split(separator: ",").map { String($0.filter { $0 != " " }) }.filter { seen.insert($0).inserted }
    }

    /// Parsed --cpus: nil (default placement), [] (not pinned) or the list.
    var cpuList: [Int]? {
        guard let cpus else { return nil }
        if cpus == "none" { return [] }
        return cpus.split(separator: ",").map { Int($0) ?? -1 }
    }

    static func ids(_ v: String?) -> Set<UInt32>? {
        guard let v else { return [] }
        let ids = v.split(separator: ",").map { UInt32($0) }
        return ids.allSatisfy({ $0 != nil }) ? Set(ids.map { $0! }) : nil
    }

    func validate() throws {
        func range(_ name: String, _ v: Int, _ r: ClosedRange<Int>) throws {
            guard r.contains(v) else { throw ValidationError("--\(name) \(v): expected an integer in \(r)") }
        }
        try range("workers", workers, 1...64)
        try range("frames", frames, 128...1 << 20)
        try range("ring-size", ringSize, 64...1 << 16)
        guard ringSize & (ringSize - 1) == 0 else { throw ValidationError("--ring-size \(ringSize): expected a power of two") }
        try range("tx-inflight", txInflight, 64...1 << 20)
        try range("max-entries", maxEntries, 1...16_000_000)
        try range("mac-capacity", macCapacity, 1...16_777_216)
        try range("fast-tier-entries", fastTierEntries, 1...16_000_000)
        guard holdDown >= 0 && holdDown <= 3600 else { throw ValidationError("--hold-down \(holdDown): expected 0-3600 seconds") }
        if let list = cpuList, list.isEmpty ? cpus != "none" : list.contains(where: { $0 < 0 }) {
            throw ValidationError("--cpus \(cpus!): expected a comma-separated CPU list or none")
        }
        guard !instance.isEmpty, instance.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }) else {
            throw ValidationError("--instance \(instance): letters, digits, - and _ only")
        }
        if RunCommand.ids(allowUid) == nil { throw ValidationError("--allow-uid \(allowUid!): expected comma-separated numeric ids") }
        if let e = metricsEndpoint, e.port < 0 {
            throw ValidationError("--metrics \(metrics!): expected ADDRESS:PORT, e.g. 127.0.0.1:9417 or [::1]:9417")
        }
        if metricsEntries != nil && metrics == nil { throw ValidationError("--metrics-entries needs --metrics") }
        for k in metricsEntryKinds where !["ilm", "vni", "ftn"].contains(k) {
            throw ValidationError("--metrics-entries: \"\(k)\" is not ilm, vni or ftn")
        }
        if RunCommand.ids(allowGid) == nil { throw ValidationError("--allow-gid \(allowGid!): expected comma-separated numeric ids") }
    }

    func run() throws { runAgent(self) }
}

/// `mplsgate replay`: a capture through the pipeline, offline.
struct ReplayCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Forward a capture offline through the forwarding pipeline, exactly as the agent forwards live.",
        discussion: """
            Each frame's ingress port is its pcapng interface name (a port's name or its interface), else --ingress \
            (required for classic pcap). Frames up to 16,128 bytes are handled; larger ones are counted frameTooLong.
            """)

    @Option(help: ArgumentHelp("Instance config (ports), JSON (docs/fib-format.md).", valueName: "CFG"))
    var config: String
    @Option(help: ArgumentHelp("FIB document, JSON (docs/fib-format.md).", valueName: "FIB"))
    var fib: String
    @Option(name: .customLong("in"), help: ArgumentHelp("pcap or pcapng input.", valueName: "CAPTURE"))
    var input: String
    @Option(help: ArgumentHelp("Every forwarded frame, in input order (classic pcap).", valueName: "FILE"))
    var out: String?
    @Option(help: ArgumentHelp("One pcap per egress port: DIR/PORT.pcap.", valueName: "DIR"))
    var outDir: String?
    @Option(help: ArgumentHelp("Dropped frames as they arrived (classic pcap).", valueName: "FILE"))
    var drops: String?
    @Option(help: ArgumentHelp("Ingress port for frames without a known interface name.", valueName: "PORT"))
    var ingress: String?
    @Flag(help: "Print the summary as one JSON object.")
    var json = false
    @Flag(help: "No progress display.")
    var quiet = false
    @Option(help: ArgumentHelp("1: read, forward and write on one thread; 2: write the outputs on a second thread.",
                               valueName: "N"))
    var threads = 1
    @Option(help: ArgumentHelp("Frames per batch (1–256). MACs learned from a batch's frames take effect at its end.",
                               valueName: "N"))
    var batch = 64
    @Option(help: ArgumentHelp("Learned MACs held at most over all multipoint VNIs.", valueName: "N"))
    var macCapacity = 1_048_576

    func validate() throws {
        guard (1...2).contains(threads) else { throw ValidationError("--threads \(threads): expected 1 or 2") }
        guard (1...256).contains(batch) else { throw ValidationError("--batch \(batch): expected 1-256") }
        guard (1...16_777_216).contains(macCapacity) else { throw ValidationError("--mac-capacity \(macCapacity): expected 1-16777216") }
    }

    func run() throws { replay(self) }
}

/// `mplsgate check`: validate a config and FIB.
struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check", abstract: "Validate a config and FIB and print what they compile to; exit 0 when valid.")

    @Option(help: ArgumentHelp("Instance config (ports), JSON (docs/fib-format.md).", valueName: "CFG"))
    var config: String
    @Option(help: ArgumentHelp("FIB document, JSON (docs/fib-format.md).", valueName: "FIB"))
    var fib: String

    func run() throws {
        let (_, compiled) = load(config: config, fib: fib)
        let s = compiled.snapshot
        print("valid: \(compiled.portNames.count) ports, \(s.nextHopCount) next hops, \(s.groupCount) ECMP groups, "
              + "\(compiled.actionNames.count) entries (\(s.bytesAllocated / 1024) KiB of tables)")
        compiled.release()
    }
}

/// Writes to standard error (fd 2) without touching the C `stderr` global.
func writeError(_ s: String) { LineLogHandler.standardError(s) }

/// The agent's logger once `run` has set it up (LogOptions.bootstrap).
nonisolated(unsafe) var agentLog: Logger?

/// Logs the error (our line format, whatever the log level) and exits with `code` (1: invalid input or a failed
/// start; 2: a usage error found after parsing).
func fail(_ message: String, code: Int32 = 1) -> Never {
    if let agentLog, agentLog.logLevel <= .error { agentLog.error("\(message)") } else {
        writeError(LineLogHandler.format(program: "mplsgate", message: message, metadata: [:]))
    }
    exit(code)
}

func readFile(_ path: String) -> [UInt8] {
    guard let f = fopen(path, "rb") else { fail("\(path): \(String(cString: strerror(errno)))") }
    defer { fclose(f) }
    var out: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = fread(&chunk, 1, chunk.count, f)
        if n > 0 { out += chunk[0..<n] }
        if n < chunk.count { break }
        if out.count > FIBCodec.maxDocumentBytes { fail("\(path): larger than \(FIBCodec.maxDocumentBytes) bytes") }
    }
    return out
}

func load(config cfgPath: String, fib fibPath: String) -> (InstanceConfig, CompiledFIB) {
    do {
        let config = try FIBCodec.decodeConfig(readFile(cfgPath))
        let fib = try FIBCodec.decodeFIB(readFile(fibPath))
        return (config, try FIBCompiler.compile(config: config, fib: fib))
    } catch {
        fail("invalid config or FIB: \(error)")
    }
}

func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }
func lpad(_ s: String, _ n: Int) -> String { s.count >= n ? s : String(repeating: " ", count: n - s.count) + s }

func printSummary(_ s: ReplaySummary, _ compiled: CompiledFIB, json: Bool) {
    let c = s.counters
    let dropped = DropReason.allCases.dropFirst().filter { c.drops($0) > 0 }
    if json {
        var fields: [(String, JSONValue)] = [
            ("framesIn", .number(String(s.framesIn))), ("framesOut", .number(String(s.framesOut))),
            ("framesDropped", .number(String(c.totalDrops))), ("seconds", .number(String(s.seconds))),
            ("mpps", .number(String(s.mpps))),
        ]
        fields.append(("drops", .object(dropped.map { ($0.name, .number(String(c.drops($0)))) })))
        fields.append(("unmatchedInterfaces", .object(s.unmatchedInterfaces.map { ($0.name, .number(String($0.frames))) })))
        fields.append(("ports", .object(compiled.portNames.enumerated().map { i, name in
            let p = c.ports[i]
            return (name, .object([("rxPackets", .number(String(p.rxPackets))), ("txPackets", .number(String(p.txPackets))),
                                   ("txBytes", .number(String(p.txBytes))), ("dropPackets", .number(String(p.dropPackets)))]))
        })))
        fields.append(("entries", .object(compiled.actionNames.enumerated().map { i, name in
            (name, .object([("packets", .number(String(c.entries[i].packets))), ("bytes", .number(String(c.entries[i].bytes)))]))
        })))
        fields.append(("multipoint", .object(multipointCounters(c, compiled, s).map { vni, m in
            (String(vni), .object(m.map { ($0.0, .number(String($0.1))) }))
        })))
        print(JSONWriter.write(.object(fields)))
        return
    }
    print("replay: \(s.framesIn) frames in, \(s.framesOut) forwarded, \(c.totalDrops) dropped "
          + "in \(String(format3(s.seconds))) s (\(format3(s.mpps)) Mpps)")
    print("\nports        rx packets   tx packets     tx bytes   rx dropped")
    for (i, name) in compiled.portNames.enumerated() {
        let p = c.ports[i]
        print(pad("  " + name, 12) + lpad(String(p.rxPackets), 12) + lpad(String(p.txPackets), 13)
              + lpad(String(p.txBytes), 13) + lpad(String(p.dropPackets), 13))
    }
    if !dropped.isEmpty {
        print("\ndrops by reason")
        for r in dropped { print(pad("  " + r.name, 22) + lpad(String(c.drops(r)), 10)) }
    }
    print("\nentries                         packets        bytes")
    for (i, name) in compiled.actionNames.enumerated() {
        print(pad("  " + name, 30) + lpad(String(c.entries[i].packets), 9) + lpad(String(c.entries[i].bytes), 13))
    }
    let mp = multipointCounters(c, compiled, s)
    if !mp.isEmpty {
        print("\nmultipoint vni    unicast    flooded     copies  split horizon  rate limited")
        for (vni, m) in mp {
            let v = Dictionary(m, uniquingKeysWith: { a, _ in a })
            print(pad("  \(vni)", 14) + lpad(String(v["unicast"]!), 11) + lpad(String(v["flooded"]!), 11)
                  + lpad(String(v["copies"]!), 11) + lpad(String(v["splitHorizon"]!), 15) + lpad(String(v["rateLimited"]!), 14))
        }
    }
    if !s.learning.isEmpty {
        print("\nlearning vni   MACs  learned  refreshed    moved  duplicate  over limit     aged  static moved")
        for (vni, m) in mp {
            let v = Dictionary(m, uniquingKeysWith: { a, _ in a })
            guard let macs = v["learnedMACs"] else { continue }
            print(pad("  \(vni)", 12) + lpad(String(macs), 8) + lpad(String(v["learned"]!), 9) + lpad(String(v["refreshed"]!), 11)
                  + lpad(String(v["moved"]!), 9) + lpad(String(v["duplicate"]!), 11) + lpad(String(v["overLimit"]!), 12)
                  + lpad(String(v["aged"]!), 9) + lpad(String(v["staticMACMoved"]!), 14))
        }
    }
}

/// Each multipoint VNI's counters (`SegmentCounters`, and the learner's for a VNI that learns), by VNI.
func multipointCounters(_ c: WorkerCounters, _ compiled: CompiledFIB, _ summary: ReplaySummary) -> [(UInt32, [(String, UInt64)])] {
    compiled.engine.multipointVNIs.compactMap { v in
        guard let slot = compiled.engine.segmentSlot(vni: v) else { return nil }
        let s = c.segments[slot]
        var fields: [(String, UInt64)] = [
            ("unicast", s.unicast), ("flooded", s.flooded), ("copies", s.copies), ("noFrame", s.noFrame),
            ("splitHorizon", s.splitHorizon), ("rateLimited", s.rateLimited), ("staticMACMoved", s.staticMACMoved)]
        if let l = summary.learning.first(where: { $0.vni == v }) {
            fields += [("learnedMACs", UInt64(l.macs)), ("learned", l.counters.learned), ("refreshed", l.counters.refreshed),
                       ("moved", l.counters.moved), ("duplicate", l.counters.duplicate), ("overLimit", l.counters.overLimit),
                       ("aged", l.counters.aged), ("learnDropped", s.learnDropped)]
        }
        return (v, fields)
    }
}

func format3(_ x: Double) -> String {
    let scaled = Int((x * 1000).rounded())
    let frac = String(scaled % 1000)
    return "\(scaled / 1000).\(String(repeating: "0", count: 3 - frac.count))\(frac)"
}

/// `mplsgate replay`.
func replay(_ o: ReplayCommand) {
    let (config, compiled) = load(config: o.config, fib: o.fib)
    var ingress: PortID?
    if let name = o.ingress {
        guard let i = config.ports.firstIndex(where: { $0.name == name }) else { fail("--ingress \(name): no such port", code: 2) }
        ingress = PortID(UInt16(i))
    }
    let replayer = Replayer(fib: compiled.snapshot, portNames: config.ports.map(\.name),
                            interfaceNames: config.ports.map(\.interface), defaultIngress: ingress, batch: o.batch,
                            learning: compiled.engine.learningSegments(), macCapacity: o.macCapacity)
    let showProgress = !o.quiet && isatty(2) != 0
    do {
        let summary = try replayer.run(
            input: o.input, outputs: ReplayOutputs(all: o.out, perPortDirectory: o.outDir, drops: o.drops),
            threads: o.threads, progress: showProgress ? { pos, size, frames in
                let pct = size > 0 ? Int(pos * 100 / size) : 0
                writeError("\rreplay: \(frames) frames, \(pct) %")
            } : nil)
        if showProgress { writeError("\r\u{1B}[K") }
        for (name, frames) in summary.unmatchedInterfaces {
            let fate = o.ingress.map { "taken as arriving on --ingress \($0)" } ?? "dropped as unknownPort"
            writeError("mplsgate: replay: capture interface \"\(name)\" matches no port's name or interface: \(frames) "
                       + "frame(s) \(fate)\n")
        }
        printSummary(summary, compiled, json: o.json)
        summary.counters.deallocate()
    } catch {
        fail(error.description)
    }
    compiled.release()
}

CommandLineRules.main(MPLSGate.self)
