#if canImport(Glibc)
import Glibc
#endif
import Control
import ControlServer
import Dataplane
import FIB
import IO
import Wire
import BFD

/// The running agent as the control service sees it: port states and counters, drops, trace, and the per-slot
/// entry counters the engine folds across replaces.
final class AgentControl: DataPlaneView, EntryCounterStore {
    let agent: Agent
    let portNames: [String]
    let engine: FIBEngine
    let protection: Protection

    init(agent: Agent, portNames: [String], engine: FIBEngine, protection: Protection) {
        self.agent = agent; self.portNames = portNames; self.engine = engine; self.protection = protection
    }

    /// The protection thread's view of the next hops: slot, port, and whether traffic has somewhere to go while
    /// one is down (a backup, or a group that lists it).
    /// The engine's `segmentsVersion` the learner last saw.
    var learnedSegmentsVersion: UInt64 = .max

    func fibCommitted() {
        if engine.segmentsVersion != learnedSegmentsVersion {
            // Only the multipoint VNIs this commit touched (a commit of one VNI costs the learner one).
            learnedSegmentsVersion = engine.segmentsVersion
            let (changed, removed) = engine.takeSegmentChanges()
            agent.learner.update(changed: changed, removedSlots: removed)
        }
        protection.update(engine.nextHopTable().compactMap { n in
            guard let port = portNames.firstIndex(of: n.port) else { return nil }
            let portConfig = engine.config.ports[port]
            let bfd = n.spec.bfd.flatMap { b -> Protection.BFDSessionConfig? in
                guard let local = bfdLocal(b, port: portConfig) else { return nil }
                return Protection.BFDSessionConfig(
                    local: local, peer: b.peer, sourceMAC: n.spec.sourceMAC ?? portConfig.mac, destinationMAC: n.spec.mac,
                    vlan: n.spec.vlan,
                    timers: BFDTimers(desiredMinTxUs: UInt32(b.minTxMs) * 1000, requiredMinRxUs: UInt32(b.minRxMs) * 1000,
                                      multiplier: UInt8(b.multiplier)))
            }
            return Protection.NextHop(name: n.name, slot: n.slot, port: port, isProtected: n.backup != nil || n.inGroup,
                                      bfd: bfd)
        })
    }

    func revertNextHop(_ name: String) -> (result: JSONValue?, refusal: String?) {
        switch protection.revert(name) {
        case .success(let from): return (.object([("nextHop", .string(name)), ("from", .string(from)), ("requested", .bool(true))]), nil)
        case .failure(let e): return (nil, e.description)
        }
    }

    func bfdSessions() -> JSONValue {
        func n<T: BinaryInteger>(_ v: T) -> JSONValue { .number(String(v)) }
        func ms(_ us: UInt64) -> JSONValue { .number(format1(Double(us) / 1000)) }
        let (sessions, discards) = protection.bfdSessions()
        let list: [JSONValue] = sessions.map { s in
            let x = s.session
            return .object([
                ("port", .string(portNames[s.port])), ("interface", .string(agent.ports[s.port].interface)),
                ("local", .string(s.local.description)), ("peer", .string(s.peer.description)),
                ("sourcePort", n(s.sourcePort)), ("worker", n(s.worker)),
                ("nextHops", .array(s.nextHops.map { .string($0) })),
                ("state", .string(x.state.description)), ("remoteState", .string(x.remoteState.description)),
                ("diagnostic", .string(x.diagnostic.description)), ("remoteDiagnostic", .string(x.remoteDiagnostic.description)),
                ("localDiscriminator", n(x.localDiscriminator)), ("remoteDiscriminator", n(x.remoteDiscriminator)),
                ("sinceSeconds", .number(format1(s.sinceSeconds))),
                ("configured", .object([("minTxMs", ms(UInt64(x.timers.desiredMinTxUs))),
                                        ("minRxMs", ms(UInt64(x.timers.requiredMinRxUs))),
                                        ("multiplier", n(x.timers.multiplier))])),
                ("remote", .object([("minTxMs", ms(UInt64(x.remoteDesiredMinTxUs))), ("minRxMs", ms(UInt64(x.remoteMinRxUs))),
                                    ("multiplier", n(x.remoteMultiplier))])),
                // What runs now: the TX interval (before jitter) and the detection time, after Poll/Final.
                ("negotiated", .object([("txIntervalMs", ms(UInt64(x.transmitIntervalUs))),
                                        ("detectionTimeMs", ms(x.detectionTimeUs)), ("polling", .bool(x.polling))])),
                ("counters", .object([("packetsIn", n(x.packetsIn)), ("packetsOut", n(x.packetsOut)), ("ups", n(x.ups)),
                                      ("downs", n(x.downs)), ("pollsCompleted", n(x.pollsCompleted)),
                                      ("badTTL", n(s.badTTL)), ("txRingFull", n(s.txRingFull))])),
            ])
        }
        let rejected: [(String, JSONValue)] = discards.byReason.sorted { $0.key < $1.key }.map { ($0.key, n($0.value)) }
        return .object([("sessions", .array(list)),
                        ("discarded", .object([("noSession", n(discards.noSession))] + rejected))])
    }

    func protectionEvents(engineBusy: Bool) -> [JSONValue] {
        let events = protection.takeEvents()
        // A next hop down with no backup takes the MACs learned behind it away (the sites and local VTEPs it
        // carries): their frames flood until the MACs are learned again elsewhere. Finding them reads the engine:
        // while a builder thread compiles a resync, the flush waits for the next call after it.
        pendingFlush += events.filter { $0.kind == .nextHop && $0.state == "down" }.map(\.name)
        if !engineBusy && !pendingFlush.isEmpty {
            for name in pendingFlush { flushLearned(behind: name) }
            pendingFlush.removeAll()
        }
        return events.map { e in
            var f: [(String, JSONValue)] = [("type", .string(e.kind.rawValue))]
            f.append((e.kind == .port ? "port" : e.kind == .bfd ? "session" : "nextHop", .string(e.name)))
            if e.kind == .port, let i = portNames.firstIndex(of: e.name) { f.append(("interface", .string(agent.ports[i].interface))) }
            f.append(("state", .string(e.state)))
            f.append(("reason", .string(e.reason)))
            if e.receivedNs > 0 && e.kind != .bfd {
                // CLOCK_MONOTONIC: when the kernel's message was read (or BFD detected the change), and when the new
                // state was stored.
                f.append((e.byBFD ? "bfdDetectedNs" : "netlinkReceivedNs", .number(String(e.receivedNs))))
                f.append(("storedNs", .number(String(e.storedNs))))
                f.append(("switchMicroseconds", .number(String((e.storedNs &- e.receivedNs) / 1000))))
            }
            return .object(f)
        } + agent.learner.takeEvents().map { e in
            .object([("type", .string("mac")), ("vni", .number(String(e.vni))), ("mac", .string(e.mac.description)),
                     ("state", .string(e.kind.rawValue)), ("from", .string(e.from)), ("to", .string(e.to))])
        }
    }

    /// Next hops that went down while the engine was busy; their learned MACs are flushed once it is free.
    private var pendingFlush: [String] = []

    /// Flushes the learned MACs of every site and local VTEP whose next hop is `name`.
    func flushLearned(behind name: String) {
        for v in engine.multipointVNIs {
            guard case .vni(let e)? = engine.entry(.vni(v)), let m = e.multipoint else { continue }
            for site in m.sites where site.via == name {
                agent.learner.flush(vni: v, placeID: Segment.siteID(site.name), mac: nil)
            }
            for t in m.vteps where t.via == name {
                agent.learner.flush(vni: v, placeID: Segment.vtepID(IPv6Address(t.address)), mac: nil)
            }
        }
    }

    func learnedMACs(vni: UInt32) -> [LearnedMAC] { agent.learner.entries(vni: vni) }
    func learnCounters(vni: UInt32) -> LearnCounters? { agent.learner.counters(vni: vni) }
    func flushMACs(vni: UInt32, placeID: UInt64?, mac: UInt64?) -> Int {
        agent.learner.flush(vni: vni, placeID: placeID, mac: mac)
    }

    func nextHopStates() -> JSONValue {
        let table = Dictionary(engine.nextHopTable().map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let list: [JSONValue] = protection.statuses().map { s in
            var f: [(String, JSONValue)] = [("name", .string(s.name)), ("port", .string(portNames[s.port])),
                                             ("state", .string(s.state))]
            if let b = table[s.name]?.backup { f.append(("backup", .string(b))) }
            f.append(("sinceSeconds", .number(String(format1(s.sinceSeconds)))))
            f.append(("downs", .number(String(s.downs))))
            f.append(("reverts", .number(String(s.reverts))))
            if let r = s.revertInSeconds { f.append(("revertInSeconds", .number(format1(r)))) }
            if let h = s.heldBy { f.append(("heldBy", .string(h))) }
            return .object(f)
        }
        return .object([("holdDownSeconds", .number(format1(Double(protection.holdDownNs) / 1e9))),
                        ("nextHops", .array(list))])
    }

    func read(slot: Int) -> (packets: UInt64, bytes: UInt64) { agent.entryCounters(slot: slot) }
    func reset(slot: Int) { agent.resetEntryCounters(slot: slot) }

    func resetSegment(slot: Int) { agent.resetSegmentCounters(slot: slot) }

    func portStates() -> [(name: String, interface: String, role: String, up: Bool?, mode: String)] {
        agent.ports.enumerated().map { i, p in
            (p.name, p.interface, p.role.name, protection.portIsUp(i), agent.isZeroCopy(i) ? "zerocopy" : "copy")
        }
    }

    func portCounters() -> JSONValue { portsJSON(agent.report()) }

    func dropCounters() -> [(String, UInt64)] {
        let r = agent.report()
        return DropReason.allCases.dropFirst().map { ($0.name, r.drops[Int($0.rawValue)]) }
    }

    func segmentCounters(slot: Int) -> [(String, UInt64)] {
        let s = agent.segmentCounters(slot: slot)
        return [("unicast", s.unicast), ("flooded", s.flooded), ("copies", s.copies), ("noFrame", s.noFrame),
                ("splitHorizon", s.splitHorizon), ("rateLimited", s.rateLimited), ("staticMACMoved", s.staticMACMoved),
                ("learnDropped", s.learnDropped)]
    }

    func fastTierInfo() -> JSONValue? {
        guard let f = agent.fastTier else { return nil }
        func n(_ v: Int) -> JSONValue { .number(String(v)) }
        return .object([("labels", n(f.labels)), ("entriesInUse", n(f.entriesInUse)), ("capacity", n(f.capacity)),
                        ("labelsWithoutEntry", n(f.labelsWithoutEntry)), ("tooManyGroups", .bool(f.tooManyGroups)),
                        ("syncOwed", .bool(f.needsSync)), ("generationSwitches", n(f.generationSwitches)),
                        ("redirectsTo", .array(f.redirectPorts.sorted().map { .string(portNames[$0]) }))])
    }

    func armTrace(count: Int) {
        // Traced frames must reach a worker: the fast tier steps aside until the trace is done (the control loop's
        // one-second timer turns it back on once the trace has its frames).
        if let fast = agent.fastTier {
            do throws(AgentError) { try fast.setTraceArmed(count > 0) } catch {
                // Frames the fast tier forwards meanwhile are not traced; say so rather than lose them quietly.
                agentLog?.error("fast tier: could not step aside for the trace (\(error.description)); its frames are not traced")
            }
        }
        agent.trace.arm(count: count)
    }

    func takeTrace() -> [JSONValue] {
        agent.trace.take().map { t in
            var f: [(String, JSONValue)] = [
                ("worker", .number(String(t.worker))), ("ingress", .string(portNames[t.ingress])),
                ("length", .number(String(t.lengthIn))), ("headers", TraceDecoder.decode(t.headIn)),
            ]
            if let e = t.egress {
                f.append(("decision", .string("forward")))
                f.append(("egress", .string(portNames[e])))
                f.append(("lengthOut", .number(String(t.lengthOut))))
                f.append(("headersOut", TraceDecoder.decode(t.headOut)))
            } else {
                f.append(("decision", .string("drop")))
                f.append(("reason", .string(t.drop.name)))
            }
            return .object(f)
        }
    }
}

/// Per-port counters as JSON: pipeline, AF_XDP rings, the kernel's XDP_STATISTICS and the XDP program.
func portsJSON(_ r: AgentReport) -> JSONValue {
    func n(_ v: UInt64) -> JSONValue { .number(String(v)) }
    return .object(r.ports.map { p in
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
                ("rxWakeups", n(p.rings.rxWakeups)), ("txStranded", n(p.rings.txStranded)),
                ("sendtoPortDown", n(p.rings.sendtoPortDown)),
                ("controlRx", n(p.rings.controlRx)), ("controlRxDropped", n(p.rings.controlRxDropped)),
                ("controlTx", n(p.rings.controlTx)), ("controlTxDropped", n(p.rings.controlTxDropped)),
            ])),
            ("kernel", .object([
                ("rxDropped", n(p.kernel.rxDropped)), ("rxInvalidDescs", n(p.kernel.rxInvalidDescs)),
                ("txInvalidDescs", n(p.kernel.txInvalidDescs)), ("rxRingFull", n(p.kernel.rxRingFull)),
                ("rxFillRingEmpty", n(p.kernel.rxFillRingEmpty)), ("txRingEmpty", n(p.kernel.txRingEmpty)),
            ])),
            ("xdp", .object([("redirected", n(p.program.redirected)), ("passed", n(p.program.passed)),
                             ("noSocket", n(p.program.noSocket)), ("fastForwarded", n(p.fast?.rxPackets ?? 0))])),
            ("fastTier", p.fast.map { f in
                .object([("ingress", .bool(f.ingress)), ("egress", .bool(f.egress)),
                         ("rxPackets", n(f.rxPackets)), ("txPackets", n(f.txPackets)),
                         ("transmitErrors", n(f.transmitErrors))])
            } ?? .null),
        ]))
    })
}

/// Parses a frame's first bytes into JSON for trace output: Ethernet, 802.1Q, label stack, control word, IPv4/IPv6,
/// UDP, VXLAN (and the inner Ethernet header).
enum TraceDecoder {
    static func decode(_ bytes: [UInt8]) -> JSONValue {
        var f: [(String, JSONValue)] = []
        func be16(_ o: Int) -> Int { Int(bytes[o]) << 8 | Int(bytes[o + 1]) }
        func be32(_ o: Int) -> UInt32 { UInt32(bytes[o]) << 24 | UInt32(bytes[o + 1]) << 16 | UInt32(bytes[o + 2]) << 8 | UInt32(bytes[o + 3]) }
        func mac(_ o: Int) -> String { bytes[o..<o + 6].map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined(separator: ":") }
        func ethernet(_ o: Int, _ into: inout [(String, JSONValue)]) -> (type: Int, next: Int)? {
            guard bytes.count >= o + 14 else { return nil }
            into.append(("ethDst", .string(mac(o)))); into.append(("ethSrc", .string(mac(o + 6))))
            var type = be16(o + 12), next = o + 14
            if type == 0x8100, bytes.count >= next + 4 {
                into.append(("vlan", .number(String(be16(next) & 0xFFF))))
                type = be16(next + 2); next += 4
            }
            into.append(("ethType", .string("0x" + String(type, radix: 16))))
            return (type, next)
        }
        guard var (type, off) = ethernet(0, &f) else { return .object([("truncated", .bool(true))]) }
        if type == 0x8847 {
            var labels: [JSONValue] = []
            while bytes.count >= off + 4 && labels.count < 16 {
                let lse = LabelStackEntry(bits: be32(off))
                labels.append(.object([("label", .number(String(lse.labelValue))), ("tc", .number(String(lse.tc))),
                                       ("s", .bool(lse.bottomOfStack)), ("ttl", .number(String(lse.ttl)))]))
                off += 4
                if lse.bottomOfStack { break }
            }
            f.append(("labels", .array(labels)))
            if bytes.count > off { type = bytes[off] >> 4 == 4 ? 0x0800 : bytes[off] >> 4 == 6 ? 0x86DD : 0 }
            if type == 0 { return .object(f) }
        }
        if type == 0x0800, bytes.count >= off + 20 {
            let ihl = Int(bytes[off] & 0xF) * 4
            let proto = Int(bytes[off + 9])
            f.append(("ipv4", .object([("src", .string(IPv4Address(value: be32(off + 12)).description)),
                                       ("dst", .string(IPv4Address(value: be32(off + 16)).description)),
                                       ("ttl", .number(String(bytes[off + 8]))), ("proto", .number(String(proto)))])))
            off += ihl
            if proto == 17, bytes.count >= off + 8 { udp(off, &f) }
        } else if type == 0x86DD, bytes.count >= off + 40 {
            let src = IPv6Address(high: UInt64(be32(off + 8)) << 32 | UInt64(be32(off + 12)), low: UInt64(be32(off + 16)) << 32 | UInt64(be32(off + 20)))
            let dst = IPv6Address(high: UInt64(be32(off + 24)) << 32 | UInt64(be32(off + 28)), low: UInt64(be32(off + 32)) << 32 | UInt64(be32(off + 36)))
            let next = Int(bytes[off + 6])
            f.append(("ipv6", .object([("src", .string(src.description)), ("dst", .string(dst.description)),
                                       ("hopLimit", .number(String(bytes[off + 7]))), ("next", .number(String(next)))])))
            off += 40
            if next == 17, bytes.count >= off + 8 { udp(off, &f) }
        }
        return .object(f)

        func udp(_ o: Int, _ into: inout [(String, JSONValue)]) {
            let sport = be16(o), dport = be16(o + 2)
            into.append(("udp", .object([("src", .number(String(sport))), ("dst", .number(String(dport)))])))
            if bytes.count >= o + 16 && bytes[o + 8] & 0x08 != 0 && (dport == 4789 || dport == 8472) {
                let vni = Int(be32(o + 12) >> 8)
                var inner: [(String, JSONValue)] = []
                _ = ethernet(o + 16, &inner)
                into.append(("vxlan", .object([("vni", .number(String(vni))), ("inner", .object(inner))])))
            }
        }
    }
}

/// One decimal, for seconds in JSON.
func format1(_ x: Double) -> String {
    let tenths = Int((x * 10).rounded())
    return "\(tenths / 10).\(abs(tenths % 10))"
}
