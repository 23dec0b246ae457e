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
import CLISupport
import Logging
import MetricsEndpoint

/// `mplsgate run`: the live agent. Logs go through swift-log (`LineLogHandler`: `mplsgate: MESSAGE key=value…` on
/// standard error); only this thread logs: workers report through counters and events.
func runAgent(_ o: RunCommand) -> Never {
    let log = o.log.bootstrap(program: "mplsgate")
    agentLog = log
    let cfgPath = o.config
    var options = AgentOptions()
    options.workers = o.workers
    options.framesPerPort = o.frames
    options.ringSize = o.ringSize
    options.txInflightCap = o.txInflight
    options.macCapacity = o.macCapacity
    let maxEntries = o.maxEntries
    if let list = o.cpuList { options.cpus = list }
    options.bind = o.bind
    options.xdpMode = o.xdpMode
    options.wait = o.wait
    options.force = o.force
    options.fastPath = o.fastPath
    options.fastTierEntries = o.fastTierEntries
    let json = o.json
    let instance = o.instance
    let socketPath = o.socket ?? "/run/mplsgate/\(instance).sock"
    let statePath: String? = o.noState ? nil : (o.stateFile ?? "/var/lib/mplsgate/\(instance).state")
    let policy = PeerPolicy(uids: RunCommand.ids(o.allowUid) ?? [], gids: RunCommand.ids(o.allowGid) ?? [])
    // One agent per state file: refused here, before any interface is touched.
    if let statePath {
        do {
            if let warning = try StateFile.lock(statePath) { log.warning("\(warning)") }
        } catch { fail(error.description) }
    }

    // The config, then the FIB to start from: --fib, else the state file, else empty.
    let config: InstanceConfig
    let engine: FIBEngine
    var source = "an empty FIB"
    var stateGeneration: UInt64 = 0
    // Whether the file at the state path is a good copy: the next write may then rotate it to `.prev`.
    var stateFileIntact = false
    // Whether the journal on disk continues the FIB loaded (then the writer appends to it; else it starts with a
    // snapshot).
    var journalContinues = false
    var journalRecords = 0
    // Whether a FIB was loaded (--fib, or the state file): only then does the state file start with a snapshot of
    // it; an agent that starts empty writes nothing until the first commit (a good state file that did not fit this
    // config stays for the next start).
    var fibLoaded = false
    do {
        config = try FIBCodec.decodeConfig(readFile(cfgPath))
        engine = try FIBEngine(config: config, maxEntries: maxEntries)
    } catch {
        fail("invalid config: \(error)")
    }
    if let fibPath = o.fib {
        do {
            let fib = try FIBCodec.decodeFIB(readFile(fibPath))
            try engine.replaceAll(with: fib)
            source = fibPath
            fibLoaded = true
        } catch let e as ValidationError { fail("invalid FIB: \(e)") } catch { fail("invalid FIB: \(error)") }
        stateFileIntact = statePath.map(StateFile.isIntact) ?? false
    } else if let statePath {
        let (loaded, problems) = StateFile.load(path: statePath)
        for p in problems { log.warning("state file not used", metadata: ["path": "\(p.path)", "error": "\(p.error)"]) }
        stateFileIntact = loaded?.path == statePath
        if let loaded {
            do {
                try engine.restore(loaded.fib, generation: loaded.generation)
                source = loaded.path + (loaded.journalRecords > 0
                    ? " + \(loaded.journalRecords) journal record\(loaded.journalRecords == 1 ? "" : "s") after generation \(loaded.snapshotGeneration)"
                    : "")
                stateGeneration = loaded.generation
                journalRecords = loaded.journalRecords
                // Appending goes on only to a journal that exists, names this snapshot and ends cleanly.
                journalContinues = loaded.journalClean && loaded.path == statePath && engine.generation == loaded.generation
                fibLoaded = true
            } catch {
                log.warning("state file does not fit this config; starting empty",
                            metadata: ["path": "\(loaded.path)", "error": "\(error)"])
            }
        }
    }

    // Signals arrive on a signalfd watched by the control loop; every thread started after this inherits the mask.
    let signals = SignalSource()
    // One malloc arena for every thread: the control side hands large buffers between threads (decoder → control →
    // builder), and with an arena per thread each one kept its own free memory; one arena reuses it and made a
    // million-entry resync ~15 % faster (docs/performance.md). Workers do not allocate while forwarding.
    _ = mg_single_malloc_arena()
    // A control client that goes away while we write to it must cost an EPIPE, not the agent.
    signal(SIGPIPE, SIG_IGN)

    let cell = SnapshotCell(engine.snapshot)
    let qsbr = QuiescentState(workers: options.workers)
    let agent: Agent
    do {
        if geteuid() != 0 {
            log.notice("not running as root: the agent needs CAP_NET_ADMIN, CAP_NET_RAW, CAP_BPF and CAP_IPC_LOCK (or a high LimitMEMLOCK)")
        }
        agent = try Agent(
            ports: config.ports.map { p in
                AgentPortConfig(name: p.name, interface: p.interface, role: p.role, mac: p.mac, vxlanPort: p.vxlanPort,
                                match: p.role == .dc ? p.vteps : p.role == .core ? p.bfdAddresses : p.addresses)
            },
            cell: cell, qsbr: qsbr, entryCapacity: engine.tables.maxActions, options: options)
    } catch {
        fail(error.description)
    }
    // Link protection: port state from rtnetlink into next-hop liveness (Protection.swift).
    let protection: Protection
    do {
        protection = try Protection(portNames: config.ports.map(\.name), interfaces: agent.ports.map(\.interface),
                                    liveness: engine.tables.liveness, portLive: agent.portLive,
                                    holdDownSeconds: o.holdDown, channels: agent.channels,
                                    controlWake: agent.controlWake)
    } catch {
        fail(error.description)
    }
    let view = AgentControl(agent: agent, portNames: config.ports.map(\.name), engine: engine, protection: protection)
    view.fibCommitted()
    // The fast tier (bpf/fast_tier.h) follows every published snapshot, before its grace period ends.
    let fast = agent.fastTier
    if let fast {
        do { try fast.sync(engine.snapshot.pointee) } catch { agent.stop(); fail(error.description) }
        protection.onLiveness = { slot in fast.setLiveness(slot: slot) }
        agent.refreshFastTierEgress()
        let on = agent.ports.filter { $0.role == .core }.map(\.name)
        let to = fast.redirectPorts.sorted().map { agent.ports[$0].name }
        log.info("fast tier on for \(on.joined(separator: ", ")); redirects to \(to.isEmpty ? "no port yet" : to.joined(separator: ", ")) (a port takes redirected frames while its device says so: a veth while its peer has XDP or GRO on)")
        log.info("fast tier tables: \(fast.capacity) entries, \(fast.mapBytes / 1024) KiB of maps (--fast-tier-entries)")
        if let why = fast.refusedNotCounted {
            log.warning("fast tier: frames an egress device refuses after a redirect are not counted: loading the tracing programs that count them failed (\(why); they need the kernel's BTF and CAP_PERFMON: bpf/xmit_errors.bpf.c)")
        }
    }
    engine.publish = { snapshot in
        _ = cell.exchange(snapshot)
        if let fast {
            do throws(AgentError) { try fast.sync(snapshot.pointee) } catch {
                log.error("the fast tier could not follow generation \(snapshot.pointee.generation): \(error.description); its frames go to AF_XDP until a sync succeeds")
            }
        }
    }
    // The workers' grace period; with the fast tier, also XDP programs still running on a frame that read the old
    // tables (NAPI runs them without preemption, well under a microsecond each): 20 µs more before a retired slot's
    // counters are read and its entry freed.
    engine.synchronize = fast == nil ? { qsbr.synchronize { usleep(20) } } : { qsbr.synchronize { usleep(20) }; usleep(20) }
    engine.counterStore = view
    for n in agent.notices { log.warning("\(n)") }
    do {
        try agent.start()
        try protection.start()
    } catch {
        agent.stop()
        fail(error.description)
    }

    let writer = statePath.map {
        StateWriter(path: $0, durableGeneration: stateGeneration, pathIsGood: stateFileIntact,
                    journalContinues: journalContinues)
    }
    // A FIB given with --fib, a start from `.prev`, a journal that does not continue cleanly, or a state file from an
    // older generation numbering: the state file starts over with a snapshot. A journal replayed at start is folded
    // into a new snapshot too, so restarts never replay a long journal twice.
    if let writer, fibLoaded,
       writer.nextWriteNeedsSnapshot || stateGeneration != engine.generation || journalRecords > 0 {
        writer.submit(engine.intent())
    }
    let service = ControlService(engine: engine, stateWriter: writer)
    service.dataplane = view
    // A resync this large (about 10 ms of compiling and more) is built on a builder thread: the control loop goes on
    // answering other clients and delivering events meanwhile.
    service.builderThreshold = ControlService.builderThreshold
    // Large requests (resync chunks, big applies) are parsed and decoded off the control thread too.
    service.decodeThreshold = ControlService.decodeThreshold
    service.log = { event in
        let metadata = Logger.Metadata(uniqueKeysWithValues: event.metadata.map { ($0.0, .string($0.1)) })
        log.log(level: event.isError ? .error : .notice, "\(event.message)", metadata: metadata)
    }
    let server: RPCServer
    do { server = try RPCServer(path: socketPath, policy: policy) } catch {
        protection.stop()
        agent.stop()
        fail(error.description)
    }
    server.handler = service
    service.controlLoopSteps = { [unowned server] in server.longestStep }
    // /metrics (docs/metrics.md): rendered at scrape time on the metrics server's own thread.
    var metricsServer: MetricsServer?
    if let endpoint = o.metricsEndpoint {
        let metrics = AgentMetrics(agent: agent, protection: protection, portNames: config.ports.map(\.name),
                                   entryKinds: o.metricsEntryKinds)
        service.observeRequest = { metrics.request(method: $0, ok: $1) }
        service.observeCommit = { metrics.commitSeconds.record($0) }
        service.afterTick = { metrics.publish(service, engine: engine) }
        metrics.publish(service, engine: engine)
        do {
            metricsServer = try MetricsServer(host: endpoint.host, port: endpoint.port) { metrics.render() }
        } catch {
            protection.stop()
            agent.stop()
            fail(error.description)
        }
        log.info("metrics at http://\(metricsServer!.boundAddress)/metrics")
    }
    var stopping = false
    server.watch(fd: signals.fd) {
        while let sig = signals.next() {
            switch sig {
            case SIGUSR1:
                // The report reads the engine, which a builder thread owns while it compiles a large resync or apply.
                if service.isCompiling { log.notice("SIGUSR1: a large resync or apply is being compiled; ask again when it is published") } else {
                    printReport(agent.report(), engine: engine, json: json)
                }
            case SIGHUP: log.notice("SIGHUP ignored (FIB updates come over the control socket)")
            default: stopping = true
            }
        }
    }
    if let writer { server.watch(fd: writer.done) { drainEventFD(writer.done) } }
    server.watch(fd: service.builderDone) { service.collectFinishedWork() }
    // Once a second: which ports take redirected frames (a veth peer's XDP or GRO may change), and the trace.
    // Also a sync owed (one failed, or labels waiting for a free entry), while no builder thread owns the engine.
    let fastTimer = fast.flatMap { _ in PeriodicTimer(milliseconds: 1000) }
    if let fast, fastTimer == nil {
        log.error("fast tier: no timer for its periodic checks; it stays off (every frame through AF_XDP)")
        try? fast.forceOff()
    }
    if let fast, let timer = fastTimer {
        // Which ports take redirected frames: re-read when the kernel announces a device change, and every second.
        func refreshEgress() {
            for i in agent.refreshFastTierEgress() {
                let on = fast.redirectPorts.contains(i)
                log.notice("fast tier: \(agent.ports[i].name) (\(agent.ports[i].interface)) \(on ? "takes redirected frames now: the fast tier forwards to it" : "no longer takes redirected frames: its frames go through AF_XDP")")
            }
        }
        switch DeviceFeatureEvents.subscribe() {
        case .success(let events):
            // The closure keeps the socket open for the agent's life.
            server.watch(fd: events.fd) { if events.drain() { refreshEgress() } }
        case .failure(let error):
            log.warning("fast tier: no device change notifications (\(error.description)); which ports take redirected frames is re-read once a second")
        }
        server.watch(fd: timer.fd) {
            timer.drain()
            refreshEgress()
            do throws(AgentError) { try fast.setTraceArmed(agent.trace.isArmed) } catch {
                log.error("fast tier: \(error.description)")
            }
            if !service.isCompiling && fast.needsSync {
                do throws(AgentError) { try fast.retryIfNeeded(engine.snapshot.pointee) } catch {
                    log.error("fast tier: a retried sync failed: \(error.description); its frames go through AF_XDP")
                }
            }
        }
    }

    var tv = timespec()
    clock_gettime(CLOCK_REALTIME, &tv)
    let ports = agent.ports.enumerated().map { i, p in
        "\(p.name)=\(p.interface)(\(p.role.name), \(agent.isZeroCopy(i) ? "zerocopy" : "copy"))"
    }.joined(separator: " ")
    let ms = String(1000 + Int(tv.tv_nsec) / 1_000_000).dropFirst()
    // The documented start line (docs/agent.md; harness.py and operators parse it): keep it byte for byte.
    let started = "forwarding since \(tv.tv_sec).\(ms): \(ports); generation \(engine.generation) from \(source), "
        + "\(engine.entryCount) entries, \(options.workers) worker(s), wait \(options.wait.rawValue); "
        + "control socket \(socketPath); state file \(statePath ?? "off"); pid \(getpid())"
    log.info("\(started)")

    // Ready: the FIB is loaded, XDP is attached, the workers forward and the socket listens.
    _ = mg_sd_notify("READY=1\nSTATUS=forwarding, generation \(engine.generation)\nMAINPID=\(getpid())")

    server.run { stopping }
    _ = mg_sd_notify("STOPPING=1")
    // A resync still compiling is finished (and published), and requests still being parsed are handled, before
    // anything stops.
    service.finishAll()
    server.flushAll()   // its reply, as far as the client takes it now

    server.shutdown()
    metricsServer?.stop()
    // BFD sessions say Down (Forwarding Plane Reset) through the workers, then the workers stop.
    protection.stop(goodbye: true)
    let report = agent.report()
    agent.stop()
    // A last attempt at a state file that failed: the whole FIB, since the journal is not trusted after a failure.
    if let writer, writer.lastError != nil { writer.submit(engine.intent()) }
    writer?.finish()
    log.info("stopped; XDP programs detached")
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
