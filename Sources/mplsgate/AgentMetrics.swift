#if canImport(Glibc)
import Glibc
#endif
import Control
import ControlServer
import Dataplane
import FIB
import IO
import MetricsEndpoint
import Prometheus
import Synchronization

/// `/metrics` of the live agent (docs/metrics.md). The exposition is written at scrape time, on the metrics
/// server's thread, from the same counters `show counters` reads: port, ring, drop, XDP-program and worker-loop
/// counters straight from their single writers (no locks), link, next-hop and BFD state from the protection
/// thread's published copy. What only the control thread may read (the FIB's generation and counts, the state
/// file, per-entry counters) it hands over after every turn of its loop (`publish`): a scrape never waits for the
/// control thread and never touches a worker's hot path. The agent's own measurements (commit latency, control
/// requests) are swift-prometheus metrics in `registry`.
final class AgentMetrics: @unchecked Sendable {
    let agent: Agent
    let protection: Protection
    let portNames: [String]
    let entryKinds: [String]
    let registry = PrometheusCollectorRegistry()
    let commitSeconds: ValueHistogram
    private let requests = Mutex<[String: Counter]>([:])

    private struct Handed {
        var control = ControlService.MetricsState()
        var entries: [(kind: String, key: String, packets: UInt64, bytes: UInt64)] = []
        /// Multipoint VNIs and their counter slots, as of `generation`.
        var segments: [(vni: UInt32, slot: Int)] = []
        var segmentsGeneration: UInt64 = .max
    }
    private let handed = Mutex(Handed())
    private var lastEntries = 0.0
    /// The keys of each asked-for kind, kept until a commit changes the generation (sorting a million keys every
    /// second would cost the control thread more than reading their counters).
    private var keyCache: (generation: UInt64, keys: [(kind: String, key: EntryKey, label: String)])?

    init(agent: Agent, protection: Protection, portNames: [String], entryKinds: [String]) {
        self.agent = agent; self.protection = protection; self.portNames = portNames; self.entryKinds = entryKinds
        commitSeconds = registry.makeValueHistogram(
            descriptor: MetricNameDescriptor(
                namespace: "mplsgate", metricName: "commit_duration", unitName: "seconds",
                helpText: "Time to commit one FIB transaction (apply, resync end): validate, compile, publish, grace period."),
            buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10])
    }

    /// Control thread: one request answered.
    func request(method: String, ok: Bool) {
        let key = method + (ok ? "/ok" : "/error")
        let c = requests.withLock { counters -> Counter in
            if let c = counters[key] { return c }
            let c = registry.makeCounter(
                descriptor: MetricNameDescriptor(namespace: "mplsgate", subsystem: "control", metricName: "requests",
                                                 unitName: "total", helpText: "Control socket requests by method and result."),
                labels: [("method", method), ("result", ok ? "ok" : "error")])
            counters[key] = c
            return c
        }
        c.increment()
    }

    /// Control thread, after each turn of its loop: the state only it may read. Per-entry counters (only the
    /// kinds asked for) at most once a second, read between commits so no total ever goes down across a slot
    /// retirement (the engine folds a retired slot into its entry's total within the commit).
    func publish(_ service: ControlService, engine: FIBEngine) {
        let state = service.metricsState()
        var entries: [(kind: String, key: String, packets: UInt64, bytes: UInt64)]?
        let now = monotonicSeconds()
        if !entryKinds.isEmpty && now - lastEntries >= 1 {
            lastEntries = now
            if keyCache?.generation != engine.generation {
                var keys: [(kind: String, key: EntryKey, label: String)] = []
                for kind in entryKinds {
                    for k in engine.keys(of: kind) {
                        let label: String
                        switch k {
                        case .ilm(let l): label = String(l)
                        case .vni(let v): label = String(v)
                        case .ftn(let f): label = f
                        case .mac(let m): label = m.description
                        case .nextHop(let n), .ecmpGroup(let n): label = n
                        }
                        keys.append((kind, k, label))
                    }
                }
                keyCache = (engine.generation, keys)
            }
            var list: [(kind: String, key: String, packets: UInt64, bytes: UInt64)] = []
            list.reserveCapacity(keyCache!.keys.count)
            for k in keyCache!.keys {
                guard let c = engine.counters(k.key) else { continue }
                list.append((k.kind, k.label, c.packets, c.bytes))
            }
            entries = list
        }
        let segmentsStale = handed.withLock { $0.segmentsGeneration != engine.generation }
        let segments = segmentsStale
            ? engine.multipointVNIs.compactMap { v in engine.segmentSlot(vni: v).map { (vni: v, slot: $0) } } : nil
        handed.withLock {
            $0.control = state
            if let entries { $0.entries = entries }
            if let segments { $0.segments = segments; $0.segmentsGeneration = engine.generation }
        }
    }

    /// Metrics thread: the whole exposition.
    func render() -> [UInt8] {
        var x = Exposition()
        let r = agent.report()
        let ports = r.ports.enumerated().map { i, p in (i, p, [("port", p.name)]) }

        x.family("mplsgate_build_info", .gauge, "Always 1; the labels say which build runs.")
        x.sample("mplsgate_build_info", [("version", Release.version)], UInt64(1))

        x.family("mplsgate_port_up", .gauge, "1 while the port's interface is up with carrier (as the protection thread sees it).")
        for (i, p, l) in ports { x.sample("mplsgate_port_up", l + [("interface", p.interface)], protection.portIsUp(i)) }
        func counter(_ name: String, _ help: String, _ value: (AgentReport.Port) -> UInt64) {
            x.family(name, .counter, help)
            for (_, p, l) in ports { x.sample(name, l, value(p)) }
        }
        counter("mplsgate_port_rx_packets_total", "Frames the pipeline received on the port.") { $0.pipeline.rxPackets }
        counter("mplsgate_port_rx_bytes_total", "Bytes the pipeline received on the port.") { $0.pipeline.rxBytes }
        counter("mplsgate_port_tx_packets_total", "Frames the pipeline forwarded out of the port.") { $0.pipeline.txPackets }
        counter("mplsgate_port_tx_bytes_total", "Bytes the pipeline forwarded out of the port.") { $0.pipeline.txBytes }
        counter("mplsgate_port_dropped_packets_total", "Frames received on the port and not forwarded (reasons: mplsgate_drops_total).") { $0.pipeline.dropPackets }
        counter("mplsgate_xdp_redirected_packets_total", "Frames the XDP program steered to AF_XDP.") { $0.program.redirected }
        counter("mplsgate_xdp_passed_packets_total", "Frames the XDP program left to the host.") { $0.program.passed }
        counter("mplsgate_xdp_no_socket_packets_total", "Frames the XDP program would steer but found no socket on the queue.") { $0.program.noSocket }
        counter("mplsgate_xsk_tx_ring_full_total", "Frames dropped because the port's TX ring was full.") { $0.rings.txRingFull }
        counter("mplsgate_xsk_tx_inflight_cap_total", "Frames dropped because the port had --tx-inflight frames in flight.") { $0.rings.txInflightCap }
        counter("mplsgate_xsk_sendto_errors_total", "TX kicks (sendto) that failed other than try-again.") { $0.rings.sendtoErrors }
        counter("mplsgate_xsk_fill_pool_empty_total", "Times the fill ring had room but the worker's pool had no frames.") { $0.rings.fillPoolEmpty }
        counter("mplsgate_xsk_tx_stranded_total", "Frames on the TX ring when the port went down.") { $0.rings.txStranded }
        counter("mplsgate_xsk_kernel_rx_dropped_total", "Frames the kernel dropped on AF_XDP receive (XDP_STATISTICS rx_dropped).") { $0.kernel.rxDropped }
        counter("mplsgate_xsk_kernel_rx_ring_full_total", "Frames the kernel dropped because the RX ring was full (the worker fell behind).") { $0.kernel.rxRingFull }
        counter("mplsgate_xsk_kernel_fill_ring_empty_total", "Times the kernel found the fill ring empty.") { $0.kernel.rxFillRingEmpty }
        counter("mplsgate_port_bfd_rx_packets_total", "BFD frames received on the port and handed to the BFD sessions.") { $0.rings.controlRx }
        counter("mplsgate_port_bfd_tx_packets_total", "BFD frames sent on the port.") { $0.rings.controlTx }
        counter("mplsgate_port_bfd_dropped_packets_total", "BFD frames lost between the worker and the BFD sessions, either way.") {
            $0.rings.controlRxDropped &+ $0.rings.controlTxDropped
        }

        x.family("mplsgate_drops_total", .counter, "Frames not forwarded, by reason (docs/fib-format.md); control is BFD, not a traffic drop.")
        for d in DropReason.allCases.dropFirst() { x.sample("mplsgate_drops_total", [("reason", d.name)], r.drops[Int(d.rawValue)]) }

        let loops = agent.workerLoops()
        x.family("mplsgate_worker_loops_total", .counter, "Worker loop turns; a poll worker turns at least every 100 ms, so a flat rate means a stalled worker.")
        for (k, l) in loops.enumerated() { x.sample("mplsgate_worker_loops_total", [("worker", String(k))], l.loops) }
        x.family("mplsgate_worker_idle_polls_total", .counter, "Times a worker found nothing to do and slept in poll().")
        for (k, l) in loops.enumerated() { x.sample("mplsgate_worker_idle_polls_total", [("worker", String(k))], l.polls) }

        let s = handed.withLock { $0 }
        x.family("mplsgate_fib_generation", .gauge, "The FIB generation in use (bumped by every commit).")
        x.sample("mplsgate_fib_generation", [], s.control.generation)
        x.family("mplsgate_fib_entries", .gauge, "FIB entries by kind.")
        for e in s.control.entries { x.sample("mplsgate_fib_entries", [("kind", e.kind)], UInt64(e.count)) }
        if let d = s.control.durableGeneration {
            x.family("mplsgate_fib_durable_generation", .gauge, "The newest generation the state file holds.")
            x.sample("mplsgate_fib_durable_generation", [], d)
            x.family("mplsgate_state_file_failures_total", .counter, "Failed state-file writes (retried after 1 s, then twice as long each time, up to 30 s).")
            x.sample("mplsgate_state_file_failures_total", [], s.control.stateFileFailures)
            x.family("mplsgate_state_file_failing", .gauge, "1 while the last state-file write failed (commits are not durable).")
            x.sample("mplsgate_state_file_failing", [], s.control.stateFileFailing)
        }
        x.family("mplsgate_control_subscribers", .gauge, "Control connections subscribed to events.")
        x.sample("mplsgate_control_subscribers", [], UInt64(s.control.subscribers))

        let hops = protection.statuses()
        x.family("mplsgate_next_hop_up", .gauge, "1 while the next hop is used; 0 while it is down (on its backup, or dropping).")
        for h in hops { x.sample("mplsgate_next_hop_up", [("next_hop", h.name), ("port", portNames[h.port])], h.state == "up") }
        x.family("mplsgate_next_hop_on_backup", .gauge, "1 while the next hop is down and its backup or group carries its traffic.")
        for h in hops { x.sample("mplsgate_next_hop_on_backup", [("next_hop", h.name)], h.state == "backup") }
        x.family("mplsgate_next_hop_downs_total", .counter, "Times the next hop went down (link events, BFD).")
        for h in hops { x.sample("mplsgate_next_hop_downs_total", [("next_hop", h.name)], h.downs) }

        let bfd = protection.bfdSessions().sessions
        if !bfd.isEmpty {
            func l(_ b: Protection.BFDStatus) -> [(String, String)] {
                [("port", portNames[b.port]), ("local", b.local.description), ("peer", b.peer.description)]
            }
            x.family("mplsgate_bfd_session_up", .gauge, "1 while the BFD session is Up.")
            for b in bfd { x.sample("mplsgate_bfd_session_up", l(b), b.session.state == .up) }
            x.family("mplsgate_bfd_session_downs_total", .counter, "Times the BFD session went from Up to Down.")
            for b in bfd { x.sample("mplsgate_bfd_session_downs_total", l(b), b.session.downs) }
            x.family("mplsgate_bfd_detection_time_seconds", .gauge, "The session's detection time now (0 before the peer is heard).")
            for b in bfd { x.sample("mplsgate_bfd_detection_time_seconds", l(b), Double(b.session.detectionTimeUs) / 1e6) }
            x.family("mplsgate_bfd_packets_received_total", .counter, "BFD control packets the session accepted.")
            for b in bfd { x.sample("mplsgate_bfd_packets_received_total", l(b), b.session.packetsIn) }
            x.family("mplsgate_bfd_packets_sent_total", .counter, "BFD control packets the session sent.")
            for b in bfd { x.sample("mplsgate_bfd_packets_sent_total", l(b), b.session.packetsOut) }
        }

        if !s.segments.isEmpty {
            // The workers' counters, and the learner's (MAC learning: one lock round per VNI).
            let rows = s.segments.map { (vni: String($0.vni), seg: agent.segmentCounters(slot: $0.slot),
                                         learned: agent.learner.count(vni: $0.vni),
                                         learn: agent.learner.counters(vni: $0.vni) ?? LearnCounters()) }
            func family(_ name: String, _ help: String, _ type: Exposition.Kind = .counter,
                        _ value: ((vni: String, seg: SegmentCounters, learned: Int, learn: LearnCounters)) -> UInt64) {
                x.family(name, type, help)
                for r in rows { x.sample(name, [("vni", r.vni)], value(r)) }
            }
            family("mplsgate_multipoint_unicast_packets_total", "Known unicast of a multipoint VNI sent to its one place.") { $0.seg.unicast }
            family("mplsgate_multipoint_flooded_packets_total", "Broadcast, multicast and unknown-unicast frames of a multipoint VNI to replicate.") { $0.seg.flooded }
            family("mplsgate_multipoint_copies_total", "Flood copies sent.") { $0.seg.copies }
            family("mplsgate_multipoint_copies_not_sent_total", "Flood copies without a free frame, TX ring slot or in-flight room, or too long to copy.") { $0.seg.noFrame }
            family("mplsgate_multipoint_split_horizon_drops_total", "Frames whose destination is on the side they came from.") { $0.seg.splitHorizon }
            family("mplsgate_multipoint_rate_limited_total", "Floods over the VNI's BUM rate limit.") { $0.seg.rateLimited }
            family("mplsgate_multipoint_static_mac_moved_drops_total", "Frames whose source is a static MAC of another place.") { $0.seg.staticMACMoved }
            family("mplsgate_multipoint_learn_records_dropped_total", "Learn records a worker could not hand to the learner (ring full).") { $0.seg.learnDropped }
            family("mplsgate_multipoint_learned_macs", "MACs the VNI has learned now.", .gauge) { UInt64($0.learned) }
            family("mplsgate_multipoint_macs_learned_total", "Source MACs learned.") { $0.learn.learned }
            family("mplsgate_multipoint_mac_moves_total", "Learned MACs that moved to another place.") { $0.learn.moved }
            family("mplsgate_multipoint_mac_duplicates_total", "Learned MACs frozen as duplicates (too many moves).") { $0.learn.duplicate }
            family("mplsgate_multipoint_macs_over_limit_total", "Learn records refused at the VNI's macLimit or --mac-capacity (a full VNI's workers stop posting new sources).") { $0.learn.overLimit }
            family("mplsgate_multipoint_macs_aged_total", "Learned MACs aged out.") { $0.learn.aged }
            family("mplsgate_multipoint_macs_flushed_total", "Learned MACs flushed (request, removed place, next hop down).") { $0.learn.flushed }
        }

        if !entryKinds.isEmpty {
            x.family("mplsgate_entry_packets_total", .counter, "Packets matched by one FIB entry (--metrics-entries).")
            for e in s.entries { x.sample("mplsgate_entry_packets_total", [("kind", e.kind), ("key", e.key)], e.packets) }
            x.family("mplsgate_entry_bytes_total", .counter, "Bytes matched by one FIB entry (--metrics-entries).")
            for e in s.entries { x.sample("mplsgate_entry_bytes_total", [("kind", e.kind), ("key", e.key)], e.bytes) }
        }
        x.appendRaw(registry.emitToBuffer())
        return x.bytes
    }
}

private func monotonicSeconds() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
}
