#if canImport(Glibc)
import Glibc
#endif
import Control
import ControlServer
import Dataplane
import FIB
import IO
import Wire

/// `mplsgate run`: the live agent.
func runCommand(_ args: ArraySlice<String>) -> Never {
    let opts = parseOptions(args, values: ["--config", "--fib", "--workers", "--cpus", "--bind", "--xdp-mode", "--wait",
                                           "--frames", "--ring-size", "--tx-inflight"],
                            flags: ["--force", "--json"])
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

    let config: InstanceConfig
    let compiled: CompiledFIB
    do {
        config = try FIBCodec.decodeConfig(readFile(cfgPath))
        let fib = try opts["--fib"].map { try FIBCodec.decodeFIB(readFile($0)) } ?? FIBSpec()
        compiled = try FIBCompiler.compile(config: config, fib: fib)
    } catch {
        fail("invalid config or FIB: \(error)")
    }

    // Signals go to this thread only (sigwait below); workers inherit the blocked mask.
    var set = sigset_t()
    sigemptyset(&set)
    for s in [SIGINT, SIGTERM, SIGUSR1, SIGHUP] { sigaddset(&set, s) }
    pthread_sigmask(SIG_BLOCK, &set, nil)

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
            snapshot: compiled.snapshot, entryCapacity: compiled.actionNames.count, options: options)
    } catch {
        compiled.snapshot.deallocate()   // not the agent's: its init failed
        fail(error.description)
    }
    for n in agent.notices { writeError("mplsgate: \(n)\n") }
    do { try agent.start() } catch {
        agent.stop()
        fail(error.description)
    }
    var tv = timespec()
    clock_gettime(CLOCK_REALTIME, &tv)
    let ports = agent.ports.enumerated().map { i, p in
        "\(p.name)=\(p.interface)(\(p.role.name), \(agent.isZeroCopy(i) ? "zerocopy" : "copy"))"
    }.joined(separator: " ")
    writeError("mplsgate: forwarding since \(tv.tv_sec).\(String(format3(Double(tv.tv_nsec) / 1e9).dropFirst(2))): "
               + "\(ports); generation \(compiled.snapshot.generation), \(compiled.actionNames.count) entries, "
               + "\(options.workers) worker(s), wait \(options.wait.rawValue); pid \(getpid())\n")

    while true {
        var sig: Int32 = 0
        sigwait(&set, &sig)
        if sig == SIGUSR1 {
            printReport(agent.report(portNames: compiled.actionNames), compiled, json: json)
            continue
        }
        if sig == SIGHUP {
            writeError("mplsgate: SIGHUP ignored (FIB updates come over the control socket)\n")
            continue
        }
        break
    }
    let report = agent.report(portNames: compiled.actionNames)
    agent.stop()
    writeError("mplsgate: stopped; XDP programs detached\n")
    printReport(report, compiled, json: json)
    exit(0)
}

func printReport(_ r: AgentReport, _ compiled: CompiledFIB, json: Bool) {
    func n(_ v: UInt64) -> JSONValue { .number(String(v)) }
    if json {
        let ports: [(String, JSONValue)] = r.ports.map { p in
            (p.name, .object([
                ("interface", .string(p.interface)), ("mode", .string(p.zerocopy ? "zerocopy" : "copy")),
                ("rxPackets", n(p.pipeline.rxPackets)), ("rxBytes", n(p.pipeline.rxBytes)),
                ("txPackets", n(p.pipeline.txPackets)), ("txBytes", n(p.pipeline.txBytes)),
                ("dropPackets", n(p.pipeline.dropPackets)),
                ("rings", .object([
                    ("rxPackets", n(p.rings.rxPackets)), ("rxBatches", n(p.rings.rxBatches)),
                    ("txPackets", n(p.rings.txPackets)), ("txBatches", n(p.rings.txBatches)),
                    ("txRingFull", n(p.rings.txRingFull)), ("txInflightCap", n(p.rings.txInflightCap)),
                    ("sendtoCalls", n(p.rings.sendtoCalls)), ("sendtoRetry", n(p.rings.sendtoRetry)),
                    ("sendtoErrors", n(p.rings.sendtoErrors)), ("completions", n(p.rings.completions)),
                    ("filled", n(p.rings.filled)), ("fillPoolEmpty", n(p.rings.fillPoolEmpty)),
                    ("rxWakeups", n(p.rings.rxWakeups)),
                ])),
                ("kernel", .object([
                    ("rxDropped", n(p.kernel.rxDropped)), ("rxInvalidDescs", n(p.kernel.rxInvalidDescs)),
                    ("txInvalidDescs", n(p.kernel.txInvalidDescs)), ("rxRingFull", n(p.kernel.rxRingFull)),
                    ("rxFillRingEmpty", n(p.kernel.rxFillRingEmpty)), ("txRingEmpty", n(p.kernel.txRingEmpty)),
                ])),
                ("xdp", .object([("redirected", n(p.program.redirected)), ("passed", n(p.program.passed)),
                                 ("noSocket", n(p.program.noSocket))])),
            ]))
        }
        let drops: [(String, JSONValue)] = DropReason.allCases.dropFirst().map { ($0.name, n(r.drops[Int($0.rawValue)])) }
        let entries: [(String, JSONValue)] = compiled.actionNames.enumerated().map { i, name in
            (name, .object([("packets", n(r.entries[i].packets)), ("bytes", n(r.entries[i].bytes))]))
        }
        print(JSONWriter.write(.object([
            ("generation", n(compiled.snapshot.generation)), ("ports", .object(ports)), ("drops", .object(drops)),
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
    print("\nentries                         packets        bytes")
    for (i, name) in compiled.actionNames.enumerated() {
        print(pad("  " + name, 30) + lpad(String(r.entries[i].packets), 9) + lpad(String(r.entries[i].bytes), 13))
    }
    fflush(nil)
}
