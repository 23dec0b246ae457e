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

/// The MPLSGate agent's command line. Subcommands: run, replay, check.
/// One version for the binary and the control socket's `info`.
let version = ControlService.version

let usage = """
    mplsgate \(version): MPLS / VXLAN fast-path forwarder

    USAGE
      mplsgate run    --config CFG [--fib FIB] [options]
      mplsgate replay --config CFG --fib FIB --in CAPTURE [options]
      mplsgate check  --config CFG --fib FIB
      mplsgate --help | --version

    run     forwards live traffic between the config's interfaces through AF_XDP (needs root, or CAP_NET_ADMIN,
            CAP_NET_RAW, CAP_BPF and CAP_IPC_LOCK). Starts with --fib FILE, or an empty FIB. Attaches an XDP
            program to every port's interface; non-MPLSGate traffic (ARP, the host's own) still reaches the host.
            SIGUSR1 prints the counters; SIGINT/SIGTERM detach the programs, print the counters and exit 0.
      --config CFG       instance config (ports with "interface"), JSON (docs/fib-format.md)
      --fib FIB          FIB document to start with (default: empty)
      --workers N        worker threads; worker k serves queue k of every port (default 1)
      --cpus LIST|none   CPUs for workers 0,1,... (default: worker k on CPU k mod CPUs); none: not pinned
      --bind MODE        AF_XDP bind: auto (zero-copy if the driver can, else copy), copy, zerocopy (default auto)
      --xdp-mode MODE    native or generic XDP hook (default native)
      --wait MODE        poll (sleep in poll() when idle, default) or busy (spin)
      --frames N         UMEM frames (4 KiB each) per port per worker (default 4096)
      --ring-size N      entries of each fill / completion / RX / TX ring, a power of two (default 2048)
      --tx-inflight N    frames one port may have in flight on TX before new ones are dropped (default 1024)
      --force            replace a foreign XDP program attached to a port's interface
      --json             print counters as JSON
      --instance NAME    names this agent's socket and state file (default mplsgate)
      --socket PATH      control socket (default /run/mplsgate/NAME.sock)
      --state-file PATH  the last committed FIB, loaded at start (default /var/lib/mplsgate/NAME.state)
      --no-state         no state file: start from --fib or empty, write nothing
      --allow-uid LIST   more users allowed on the control socket, comma-separated uids (root and the agent's own
                         user always are)
      --allow-gid LIST   more groups allowed on the control socket, comma-separated gids
      --max-entries N    ILM + VNI + FTN entries the FIB may hold (default 2000000)

    replay  forwards a capture offline through the forwarding pipeline, exactly as the agent forwards live.
            Each frame's ingress port is its pcapng interface name (a port name or its interface), else --ingress.
      --config CFG     instance config (ports), JSON (docs/fib-format.md)
      --fib FIB        FIB document, JSON (docs/fib-format.md)
      --in CAPTURE     pcap or pcapng input
      --out FILE       every forwarded frame, in input order (classic pcap)
      --out-dir DIR    one pcap per egress port: DIR/PORT.pcap
      --drops FILE     dropped frames as they arrived (classic pcap)
      --ingress PORT   ingress port for frames without a known interface name (required for classic pcap)
      --json           print the summary as one JSON object
      --quiet          no progress display

    check   validates a config and FIB and prints what they compile to; exit 0 when valid.

    EXIT STATUS
      0 success; 1 invalid input (config, FIB, capture); 2 usage error.
    """

/// Writes to standard error (fd 2) without touching the C `stderr` global.
func writeError(_ s: String) {
    var bytes = Array(s.utf8)
    _ = write(2, &bytes, bytes.count)
}

func fail(_ message: String, code: Int32 = 1) -> Never {
    writeError("mplsgate: \(message)\n")
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

/// Parses `--key value` and `--flag` options.
func parseOptions(_ args: ArraySlice<String>, values: Set<String>, flags: Set<String>) -> [String: String] {
    var out: [String: String] = [:]
    var i = args.startIndex
    while i < args.endIndex {
        let a = args[i]
        if flags.contains(a) { out[a] = "1"; i += 1; continue }
        guard values.contains(a) else { fail("unknown option \(a) (see --help)", code: 2) }
        guard i + 1 < args.endIndex else { fail("\(a) needs a value", code: 2) }
        out[a] = args[i + 1]
        i += 2
    }
    return out
}

func load(_ opts: [String: String]) -> (InstanceConfig, CompiledFIB) {
    guard let cfgPath = opts["--config"] else { fail("--config is required", code: 2) }
    guard let fibPath = opts["--fib"] else { fail("--fib is required", code: 2) }
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
}

func format3(_ x: Double) -> String {
    let scaled = Int((x * 1000).rounded())
    let frac = String(scaled % 1000)
    return "\(scaled / 1000).\(String(repeating: "0", count: 3 - frac.count))\(frac)"
}

let args = CommandLine.arguments
guard args.count >= 2 else { print(usage); exit(2) }
switch args[1] {
case "--help", "-h", "help":
    print(usage)
case "--version":
    print("mplsgate \(version)")
case "run":
    runCommand(args.dropFirst(2))
case "check":
    let opts = parseOptions(args.dropFirst(2), values: ["--config", "--fib"], flags: [])
    let (config, compiled) = load(opts)
    let s = compiled.snapshot
    print("valid: \(config.ports.count) ports, \(s.nextHopCount) next hops, \(s.groupCount) ECMP groups, "
          + "\(compiled.actionNames.count) entries (\(s.bytesAllocated / 1024) KiB of tables)")
    compiled.release()
case "replay":
    let opts = parseOptions(args.dropFirst(2),
                            values: ["--config", "--fib", "--in", "--out", "--out-dir", "--drops", "--ingress"],
                            flags: ["--json", "--quiet"])
    guard let input = opts["--in"] else { fail("--in is required", code: 2) }
    let (config, compiled) = load(opts)
    var ingress: PortID?
    if let name = opts["--ingress"] {
        guard let i = config.ports.firstIndex(where: { $0.name == name }) else { fail("--ingress \(name): no such port", code: 2) }
        ingress = PortID(UInt16(i))
    }
    let replayer = Replayer(fib: compiled.snapshot, portNames: config.ports.map(\.name),
                            interfaceNames: config.ports.map(\.interface), defaultIngress: ingress)
    let showProgress = opts["--quiet"] == nil && isatty(2) != 0
    do {
        let summary = try replayer.run(
            input: input, outputs: ReplayOutputs(all: opts["--out"], perPortDirectory: opts["--out-dir"], drops: opts["--drops"]),
            progress: showProgress ? { pos, size, frames in
                let pct = size > 0 ? Int(pos * 100 / size) : 0
                writeError("\rreplay: \(frames) frames, \(pct) %")
            } : nil)
        if showProgress { writeError("\r\u{1B}[K") }
        for (name, frames) in summary.unmatchedInterfaces {
            let fate = opts["--ingress"].map { "taken as arriving on --ingress \($0)" } ?? "dropped as unknownPort"
            writeError("mplsgate: replay: capture interface \"\(name)\" matches no port's name or interface: \(frames) "
                       + "frame(s) \(fate)\n")
        }
        printSummary(summary, compiled, json: opts["--json"] != nil)
        summary.counters.deallocate()
    } catch {
        fail(error.description)
    }
    compiled.release()
default:
    fail("unknown command \(args[1]) (see --help)", code: 2)
}
