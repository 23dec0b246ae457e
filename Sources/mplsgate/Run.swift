#if canImport(Glibc)
import Glibc
#endif
import Control
import ControlServer
import Dataplane
import FIB
import IO
import Wire
import CControlSocket

/// `mplsgate run`: the live agent.
func runCommand(_ args: ArraySlice<String>) -> Never {
    let opts = parseOptions(args, values: ["--config", "--fib", "--workers", "--cpus", "--bind", "--xdp-mode", "--wait",
                                           "--frames", "--ring-size", "--tx-inflight", "--instance", "--socket",
                                           "--state-file", "--allow-uid", "--allow-gid", "--max-entries"],
                            flags: ["--force", "--json", "--no-state"])
    guard let cfgPath = opts["--config"] else { fail("--config is required", code: 2) }
    var options = AgentOptions()
    func intOption(_ key: String, _ range: ClosedRange<Int>) -> Int? {
        guard let v = opts[key] else { return nil }
        guard let n = Int(v), range.contains(n) else { fail("\(key) \(v): expected an integer in \(range)", code: 2) }
        return n
    }
    if let n = intOption("--workers", 1...64) { options.workers = n }
    if let n = intOption("--frames", 128...1 << 20) { options.framesPerPort = n }
    if let n = intOption("--ring-size", 64...1 << 16) { options.ringSize = n }
    if let n = intOption("--tx-inflight", 64...1 << 20) { options.txInflightCap = n }
    let maxEntries = intOption("--max-entries", 1...16_000_000) ?? 2_000_000
    if let v = opts["--cpus"] {
        if v == "none" { options.cpus = [] } else {
            let list = v.split(separator: ",").map { Int($0) }
            guard !list.isEmpty, list.allSatisfy({ $0 != nil && $0! >= 0 }) else {
                fail("--cpus \(v): expected a comma-separated CPU list or none", code: 2)
            }
            options.cpus = list.map { $0! }
        }
    }
    if let v = opts["--bind"] {
        guard let m = BindMode(rawValue: v) else { fail("--bind \(v): expected auto, copy or zerocopy", code: 2) }
        options.bind = m
    }
    if let v = opts["--xdp-mode"] {
        guard let m = XDPMode(rawValue: v) else { fail("--xdp-mode \(v): expected native or generic", code: 2) }
        options.xdpMode = m
    }
    if let v = opts["--wait"] {
        guard let m = WaitMode(rawValue: v) else { fail("--wait \(v): expected poll or busy", code: 2) }
        options.wait = m
    }
    options.force = opts["--force"] != nil
    let json = opts["--json"] != nil
    let instance = opts["--instance"] ?? "mplsgate"
    guard !instance.isEmpty, instance.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }) else {
        fail("--instance \(instance): letters, digits, - and _ only", code: 2)
    }
    let socketPath = opts["--socket"] ?? "/run/mplsgate/\(instance).sock"
    let statePath: String? = opts["--no-state"] != nil ? nil : (opts["--state-file"] ?? "/var/lib/mplsgate/\(instance).state")
    func idList(_ key: String) -> Set<UInt32> {
        guard let v = opts[key] else { return [] }
        let ids = v.split(separator: ",").map { UInt32($0) }
        guard ids.allSatisfy({ $0 != nil }) else { fail("\(key) \(v): expected comma-separated numeric ids", code: 2) }
        return Set(ids.map { $0! })
    }
    let policy = PeerPolicy(uids: idList("--allow-uid"), gids: idList("--allow-gid"))
    // One agent per state file: refused here, before any interface is touched.
    if let statePath {
        do {
            if let warning = try StateFile.lock(statePath) { writeError("mplsgate: \(warning)\n") }
        } catch { fail(error.description) }
    }

    // The config, then the FIB to start from: --fib, else the state file, else empty.
    let config: InstanceConfig
    let engine: FIBEngine
    var source = "an empty FIB"
    var stateGeneration: UInt64 = 0
    // Whether the file at the state path is a good copy: the next write may then rotate it to `.prev`.
    var stateFileIntact = false
    do {
        config = try FIBCodec.decodeConfig(readFile(cfgPath))
        engine = try FIBEngine(config: config, maxEntries: maxEntries)
    } catch {
        fail("invalid config: \(error)")
    }
    if let fibPath = opts["--fib"] {
        do {
            let fib = try FIBCodec.decodeFIB(readFile(fibPath))
            try engine.replaceAll(with: fib)
            source = fibPath
        } catch let e as ValidationError { fail("invalid FIB: \(e)") } catch { fail("invalid FIB: \(error)") }
        stateFileIntact = statePath.map(StateFile.isIntact) ?? false
    } else if let statePath {
        let (loaded, problems) = StateFile.load(path: statePath)
        for p in problems { writeError("mplsgate: state file \(p); not used\n") }
        stateFileIntact = loaded?.path == statePath
        if let loaded {
            do {
                try engine.restore(loaded.fib, generation: loaded.generation)
                source = loaded.path
                stateGeneration = loaded.generation
            } catch {
                writeError("mplsgate: state file \(loaded.path) does not fit this config (\(error)); starting empty\n")
            }
        }
    }

    // Signals arrive on a signalfd watched by the control loop; every thread started after this inherits the mask.
    let signals = SignalSource()
    // A control client that goes away while we write to it must cost an EPIPE, not the agent.
    signal(SIGPIPE, SIG_IGN)

    let cell = SnapshotCell(engine.snapshot)
    let qsbr = QuiescentState(workers: options.workers)
    let agent: Agent
    do {
        if geteuid() != 0 {
            writeError("mplsgate: not running as root: the agent needs CAP_NET_ADMIN, CAP_NET_RAW, CAP_BPF and "
                       + "CAP_IPC_LOCK (or a high LimitMEMLOCK)\n")
        }
        agent = try Agent(
            ports: config.ports.map { p in
                AgentPortConfig(name: p.name, interface: p.interface, role: p.role, mac: p.mac, vxlanPort: p.vxlanPort,
                                match: p.role == .dc ? p.vteps : p.role == .vrf ? p.addresses : [])
            },
            cell: cell, qsbr: qsbr, entryCapacity: engine.tables.maxActions, options: options)
    } catch {
        fail(error.description)
    }
    let view = AgentControl(agent: agent, portNames: config.ports.map(\.name))
    engine.publish = { _ = cell.exchange($0) }
    engine.synchronize = { qsbr.synchronize { usleep(20) } }
    engine.counterStore = view
    for n in agent.notices { writeError("mplsgate: \(n)\n") }
    do { try agent.start() } catch {
        agent.stop()
        fail(error.description)
    }

    let writer = statePath.map { StateWriter(path: $0, durableGeneration: stateGeneration, pathIsGood: stateFileIntact) }
    // A FIB given with --fib (or a state file from an older generation numbering) becomes the state file.
    if let writer, stateGeneration != engine.generation { writer.submit(engine.intent()) }
    let service = ControlService(engine: engine, stateWriter: writer)
    service.dataplane = view
    service.log = { writeError("mplsgate: \($0)\n") }
    let server: RPCServer
    do { server = try RPCServer(path: socketPath, policy: policy) } catch {
        agent.stop()
        fail(error.description)
    }
    server.handler = service
    var stopping = false
    server.watch(fd: signals.fd) {
        while let sig = signals.next() {
            switch sig {
            case SIGUSR1: printReport(agent.report(), engine: engine, json: json)
            case SIGHUP: writeError("mplsgate: SIGHUP ignored (FIB updates come over the control socket)\n")
            default: stopping = true
            }
        }
    }
    if let writer { server.watch(fd: writer.done) { drainEventFD(writer.done) } }

    var tv = timespec()
    clock_gettime(CLOCK_REALTIME, &tv)
    let ports = agent.ports.enumerated().map { i, p in
        "\(p.name)=\(p.interface)(\(p.role.name), \(agent.isZeroCopy(i) ? "zerocopy" : "copy"))"
    }.joined(separator: " ")
    let ms = String(1000 + Int(tv.tv_nsec) / 1_000_000).dropFirst()
    writeError("mplsgate: forwarding since \(tv.tv_sec).\(ms): \(ports); generation \(engine.generation) from \(source), "
               + "\(engine.entryCount) entries, \(options.workers) worker(s), wait \(options.wait.rawValue); "
               + "control socket \(socketPath); state file \(statePath ?? "off"); pid \(getpid())\n")

    // Ready: the FIB is loaded, XDP is attached, the workers forward and the socket listens.
    _ = mg_sd_notify("READY=1\nSTATUS=forwarding, generation \(engine.generation)\nMAINPID=\(getpid())")

    server.run { stopping }
    _ = mg_sd_notify("STOPPING=1")

    server.shutdown()
    let report = agent.report()
    agent.stop()
    writer?.finish()
    writeError("mplsgate: stopped; XDP programs detached\n")
    printReport(report, engine: engine, json: json)
    exit(0)
}

func printReport(_ r: AgentReport, engine: FIBEngine, json: Bool) {
    func n(_ v: UInt64) -> JSONValue { .number(String(v)) }
    // Per-entry counters in this report only for small FIBs; larger ones: mplsgatectl show counters.
    let keys = engine.entryCount <= 10_000 ? ["ilm", "vni", "ftn"].flatMap { engine.keys(of: $0) } : []
    if json {
        let drops: [(String, JSONValue)] = DropReason.allCases.dropFirst().map { ($0.name, n(r.drops[Int($0.rawValue)])) }
        let entries: [(String, JSONValue)] = keys.compactMap { k in
            engine.counters(k).map { c in ("\(k)", .object([("packets", n(c.packets)), ("bytes", n(c.bytes))])) }
        }
        print(JSONWriter.write(.object([
            ("generation", n(engine.generation)), ("ports", portsJSON(r)), ("drops", .object(drops)),
            ("entries", .object(entries)),
            ("workers", .object([("loops", n(r.loop.loops)), ("polls", n(r.loop.polls)),
                                 ("pollWakeups", n(r.loop.pollWakeups))])),
        ])))
        fflush(nil)
        return
    }
    print("ports        interface     rx packets   tx packets   dropped  xdp steered  xdp passed  no socket")
    for p in r.ports {
        print(pad(p.name, 12) + " " + pad(p.interface, 12) + lpad(String(p.pipeline.rxPackets), 12)
              + lpad(String(p.pipeline.txPackets), 13) + lpad(String(p.pipeline.dropPackets), 10)
              + lpad(String(p.program.redirected), 13) + lpad(String(p.program.passed), 12)
              + lpad(String(p.program.noSocket), 11))
    }
    print("\nrings        tx full  tx capped  sendto  retries  errors  fill short  kernel rx drop  rx ring full")
    for p in r.ports {
        print(pad(p.name, 12) + lpad(String(p.rings.txRingFull), 8) + lpad(String(p.rings.txInflightCap), 11)
              + lpad(String(p.rings.sendtoCalls), 8) + lpad(String(p.rings.sendtoRetry), 9)
              + lpad(String(p.rings.sendtoErrors), 8) + lpad(String(p.rings.fillPoolEmpty), 12)
              + lpad(String(p.kernel.rxDropped), 16) + lpad(String(p.kernel.rxRingFull), 14))
    }
    let dropped = DropReason.allCases.dropFirst().filter { r.drops[Int($0.rawValue)] > 0 }
    if !dropped.isEmpty {
        print("\ndrops by reason")
        for d in dropped { print(pad("  " + d.name, 22) + lpad(String(r.drops[Int(d.rawValue)]), 10)) }
    }
    print("\nentries (generation \(engine.generation))        packets        bytes")
    for k in keys {
        guard let c = engine.counters(k) else { continue }
        print(pad("  \(k)", 30) + lpad(String(c.packets), 9) + lpad(String(c.bytes), 13))
    }
    if keys.isEmpty && engine.entryCount > 0 { print("  (\(engine.entryCount) entries: mplsgatectl show counters ilm)") }
    fflush(nil)
}

/// Signals as a file descriptor for the control loop.
final class SignalSource {
    let fd: Int32
    init() {
        fd = mg_signalfd_standard()
        if fd < 0 { fail("signalfd failed") }
    }
    func next() -> Int32? {
        let s = mg_signalfd_read(fd)
        return s > 0 ? s : nil
    }
}

func drainEventFD(_ fd: Int32) { mg_eventfd_drain(fd) }
