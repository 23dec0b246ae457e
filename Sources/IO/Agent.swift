#if canImport(Glibc)
import Glibc
#endif
internal import CXDP
import Dataplane
import FIB
import Wire

/// AF_XDP bind mode (DESIGN §6).
public enum BindMode: String, Sendable {
    /// Zero-copy where the driver supports it, else copy (the kernel decides).
    case auto
    /// Always copy (the only mode veth offers).
    case copy
    /// Zero-copy or fail.
    case zerocopy
    var raw: Int32 {
        switch self {
        case .auto: return Int32(MG_BIND_AUTO)
        case .copy: return Int32(MG_BIND_COPY)
        case .zerocopy: return Int32(MG_BIND_ZEROCOPY)
        }
    }
}

/// Where transit label switching runs (issue 19).
public enum FastPath: String, Sendable {
    /// In the core ports' XDP program when it can (bpf/fast_tier.h), else on AF_XDP.
    case xdp
    /// Every frame on AF_XDP.
    case off
}

/// How the agent runs its ports.
public struct AgentOptions: Sendable {
    public var fastPath = FastPath.xdp
    /// Entries of the fast tier's table: labels it switches at once (more go through AF_XDP).
    public var fastTierEntries = FastTier.defaultEntries
    public var workers = 1
    /// CPU of worker k is cpus[k]; nil: worker k on CPU k mod CPU count; empty: not pinned.
    public var cpus: [Int]?
    public var bind = BindMode.auto
    public var xdpMode = XDPMode.native
    public var wait = WaitMode.poll
    /// UMEM frames per port per worker (each one chunk).
    public var framesPerPort = 4096
    /// Entries of every ring (fill, completion, RX, TX); a power of two.
    public var ringSize = 2048
    /// Frames one port may have on its TX ring or awaiting completion.
    public var txInflightCap = 1024
    /// Learned MACs the agent holds at most, over all multipoint VNIs.
    public var macCapacity = 1 << 20
    /// Replace a foreign XDP program already attached to an interface.
    public var force = false
    public init() {}
}

/// What the agent needs to know about a port from the instance config.
public struct AgentPortConfig: Sendable {
    public var name: String
    public var interface: String?
    public var role: PortRole
    public var mac: MACAddress
    /// dc ports: the VXLAN UDP port steered.
    public var vxlanPort: UInt16
    /// Addresses the XDP program matches: dc ports' VTEPs, vrf ports' host addresses, core ports' BFD addresses.
    public var match: [IPAddress]
    public init(name: String, interface: String?, role: PortRole, mac: MACAddress, vxlanPort: UInt16, match: [IPAddress]) {
        self.name = name; self.interface = interface; self.role = role; self.mac = mac; self.vxlanPort = vxlanPort
        self.match = match
    }
}

/// One port of the running agent.
public struct AgentPort: Sendable {
    public let name: String
    public let interface: String
    public let ifindex: Int32
    public let role: PortRole
    public let rxQueues: Int
}

/// The kernel's XDP_STATISTICS of a port's sockets (summed over workers).
public struct KernelXSKStatistics: Sendable {
    /// Frames the kernel dropped on RX (e.g. larger than a UMEM chunk allows).
    public var rxDropped: UInt64 = 0
    public var rxInvalidDescs: UInt64 = 0
    public var txInvalidDescs: UInt64 = 0
    /// Frames dropped because our RX ring was full (the worker fell behind).
    public var rxRingFull: UInt64 = 0
    /// Times the kernel found the fill ring empty.
    public var rxFillRingEmpty: UInt64 = 0
    /// Times the kernel found the TX ring empty when woken.
    public var txRingEmpty: UInt64 = 0
    public init() {}
}

/// A port's fast-tier state and what the fast tier forwarded through it.
public struct FastTierPortReport: Sendable {
    public var rxPackets: UInt64
    public var txPackets: UInt64
    /// Frames that arrived here and that the fast tier redirected, refused by the egress device (also counted as
    /// this port's drops, xdpTransmitError; the egress port's tx leaves them out).
    public var transmitErrors: UInt64
    /// Its XDP program runs the fast tier (core ports).
    public var ingress: Bool
    /// The fast tier redirects to it (its device takes redirected frames).
    public var egress: Bool
}

/// What the agent reports: pipeline, ring, kernel and XDP program counters, summed over workers.
public struct AgentReport: Sendable {
    public struct Port: Sendable {
        public var name: String
        public var interface: String
        public var zerocopy: Bool
        public var pipeline = PortCounters()
        public var rings = XSKCounters()
        public var kernel = KernelXSKStatistics()
        public var program = SteerCounters()
        /// The fast tier's part (nil when it is off): included in `pipeline` too.
        public var fast: FastTierPortReport?
    }
    public var ports: [Port]
    public var drops: [UInt64]
    public var loop = WorkerLoopCounters()
}

/// The live forwarding agent: XDP steering programs on every port, AF_XDP sockets and worker threads, one FIB
/// snapshot published through a `SnapshotCell`.
public final class Agent: @unchecked Sendable {
    public let ports: [AgentPort]
    public let options: AgentOptions
    private var programs: [SteerProgram] = []
    private var umems: [UnsafeMutablePointer<mg_umem>] = []
    private var sockets: [[UnsafeMutablePointer<mg_xsk>]] = []   // [worker][port]
    private var workers: [Worker] = []
    private var threads: [NativeThread] = []
    private var locks: [Int32] = []
    private let cell: SnapshotCell
    private let qsbr: QuiescentState
    private let stopFlag = StopFlag()
    private let entryCapacity: Int
    /// "Trace the next N packets" (armed by the control thread).
    public let trace = TraceBuffer()
    /// Per port, 1 while its link is up (the protection thread writes it, workers read it).
    public let portLive: UnsafeMutablePointer<UInt8>
    /// Per worker: BFD frames to and from the protection thread.
    public private(set) var channels: [WorkerChannel] = []
    /// Wakes the protection thread when a worker punted a BFD frame.
    public let controlWake: WakeEvent
    /// MAC learning: the learned tables' writer, fed by every worker.
    public let learner: LearnerThread
    /// Messages worth logging at start (replaced stale programs, unserved queues).
    public private(set) var notices: [String] = []
    /// The fast tier's tables, shared by every core port's program (nil with --fast-path off or no core port).
    public private(set) var fastTier: FastTierTables?

    /// Opens every port: checks the interfaces, loads and configures the XDP programs, creates the UMEMs and
    /// sockets, and attaches the programs last (so nothing is steered before a socket can take it).
    /// Workers read the FIB through `cell` and report quiescent states to `qsbr` (one slot per worker); the
    /// snapshots themselves belong to whoever publishes them. `entryCapacity` is the number of action slots.
    public init(ports config: [AgentPortConfig], cell: SnapshotCell, qsbr: QuiescentState, entryCapacity: Int,
                options: AgentOptions) throws(AgentError) {
        self.options = options
        self.cell = cell
        self.qsbr = qsbr
        self.entryCapacity = entryCapacity
        portLive = .allocate(capacity: max(config.count, 1))
        portLive.initialize(repeating: 1, count: max(config.count, 1))
        controlWake = try WakeEvent()
        learner = LearnerThread(workers: max(options.workers, 1), capacity: options.macCapacity, qsbr: qsbr)
        for _ in 0..<max(options.workers, 1) { channels.append(try WorkerChannel()) }
        guard qsbr.slots.count == options.workers else { throw AgentError("one quiescent-state slot per worker is needed") }
        guard options.workers >= 1 else { throw AgentError("--workers must be at least 1") }
        guard options.ringSize >= 64 && options.ringSize & (options.ringSize - 1) == 0 else {
            throw AgentError("--ring-size must be a power of two, at least 64")
        }
        guard options.framesPerPort >= 2 * options.ringSize else {
            throw AgentError("--frames (\(options.framesPerPort)) must be at least twice --ring-size (\(options.ringSize))")
        }
        var found: [AgentPort] = []
        for p in config {
            guard let ifname = p.interface else {
                throw AgentError("port \(p.name) has no \"interface\" in the config; mplsgate run needs one per port")
            }
            let ifindex = Int32(bitPattern: if_nametoindex(ifname))
            guard ifindex != 0 else {
                throw AgentError("interface \(ifname) (port \(p.name)) does not exist in this network namespace")
            }
            let queues = Agent.rxQueueCount(ifname)
            if options.workers > queues {
                throw AgentError("queue count mismatch: \(ifname) (port \(p.name)) has \(queues) receive queue(s) "
                                 + "but --workers is \(options.workers); worker k serves queue k of every port")
            }
            if queues > options.workers {
                notices.append("\(ifname) has \(queues) receive queues; only queues 0..<\(options.workers) are served "
                               + "(frames steered on others are passed to the host and counted as no-socket)")
            }
            if let actual = Agent.interfaceMAC(ifname), actual != p.mac {
                notices.append("port \(p.name): the config's MAC \(p.mac) is not \(ifname)'s MAC \(actual); frames "
                               + "addressed to the interface will be dropped as notForUs (set one to the other)")
            }
            found.append(AgentPort(name: p.name, interface: ifname, ifindex: ifindex, role: p.role, rxQueues: queues))
        }
        ports = found
        if Set(found.map(\.ifindex)).count != found.count {
            throw AgentError("two ports name the same interface; each port needs its own")
        }
        do {
            // Loading the programs touches no interface, and fails first (and clearly) without privileges.
            var owner: SteerProgram?
            for (i, p) in config.enumerated() {
                if p.role == .core && options.fastPath == .xdp {
                    let prog = try SteerProgram(fastTierPort: UInt16(i), mac: p.mac.value, entries: options.fastTierEntries,
                                                sharing: owner, addresses: p.match)
                    owner = owner ?? prog
                    programs.append(prog)
                } else {
                    let cfg = try SteerProgram.portConfig(role: p.role, vxlanPort: p.vxlanPort, addresses: p.match)
                    programs.append(try SteerProgram(config: cfg))
                }
            }
            if let owner {
                let fast = try FastTierTables(owner: owner, capacity: options.fastTierEntries)
                for (i, port) in found.enumerated() { try fast.setPort(i, ifindex: port.ifindex) }
                fastTier = fast
            }
            try lockInterfaces()
            _ = mg_raise_memlock()
            try openSockets()
            for w in workers { w.primeFillRings() }
            for (i, port) in ports.enumerated() {
                if let stale = try programs[i].attach(ifindex: port.ifindex, interface: port.interface,
                                                       mode: options.xdpMode, force: options.force) {
                    notices.append("\(port.interface): replaced the XDP program left attached before (id \(stale))")
                }
            }
        } catch {
            releaseAll()
            throw error
        }
    }

    private func lockInterfaces() throws(AgentError) {
        // One agent per interface: a lock per (network namespace, interface), released by the kernel even on
        // kill -9, so a restart after a crash never finds a stale lock.
        var st = stat()
        let ns = stat("/proc/self/ns/net", &st) == 0 ? st.st_ino : 0
        mkdir("/run/mplsgate", 0o755)
        mkdir("/run/mplsgate/lock", 0o755)
        for p in ports {
            let path = "/run/mplsgate/lock/\(ns)-\(p.interface)"
            let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
            guard fd >= 0 else {
                throw AgentError("cannot create the interface lock \(path): \(errnoText(errno)) (the agent needs "
                                 + "write access to /run/mplsgate)")
            }
            if flock(fd, LOCK_EX | LOCK_NB) != 0 {
                var buf = [UInt8](repeating: 0, count: 32)
                let n = pread(fd, &buf, 31, 0)
                let pid = n > 0 ? String(decoding: buf[0..<n], as: UTF8.self).trimmingNewline : "?"
                close(fd)
                throw AgentError("\(p.interface) is already served by another mplsgate (pid \(pid))")
            }
            let pid = Array("\(getpid())\n".utf8)
            _ = ftruncate(fd, 0)
            _ = pwrite(fd, pid, pid.count, 0)
            locks.append(fd)
        }
    }

    private func openSockets() throws(AgentError) {
        let ncpu = Int(mg_cpu_count())
        for k in 0..<options.workers {
            let frames = UInt32(options.framesPerPort * ports.count)
            var u: UnsafeMutablePointer<mg_umem>?
            let node = ports.first.map { Agent.numaNode($0.interface) } ?? -1
            let rc = mg_umem_create(&u, frames, 4096, UInt32(options.ringSize), UInt32(options.ringSize), Int32(node))
            guard rc == 0, let u else {
                if rc == -ENOBUFS || rc == -ENOMEM || rc == -EPERM {
                    throw AgentError("registering \(Int(frames) * 4) KiB of UMEM failed (\(errnoText(rc))): the "
                                     + "memlock limit is too low; raise it (ulimit -l unlimited, systemd "
                                     + "LimitMEMLOCK=infinity) or run with CAP_IPC_LOCK, or lower --frames")
                }
                throw AgentError("creating the UMEM failed: \(errnoText(rc))")
            }
            umems.append(u)
            var mine: [UnsafeMutablePointer<mg_xsk>] = []
            for (i, port) in ports.enumerated() {
                var s: UnsafeMutablePointer<mg_xsk>?
                var rc: Int32 = 0
                // EBUSY: another AF_XDP socket holds (interface, queue). Right after the previous agent exited
                // (a restart), the kernel releases its socket asynchronously, for up to ~1 s here: wait up to 3 s.
                for attempt in 0..<60 {
                    rc = port.interface.withCString {
                        mg_xsk_create(&s, u, $0, UInt32(k), UInt32(options.ringSize), UInt32(options.ringSize),
                                      options.bind.raw, 1)
                    }
                    if rc != -EBUSY || attempt == 59 { break }
                    usleep(50_000)
                }
                guard rc == 0, let s else {
                    sockets.append(mine)
                    if options.bind == .zerocopy && (rc == -EOPNOTSUPP || rc == -EINVAL || rc == -ENOTSUP) {
                        throw AgentError("\(port.interface) does not support zero-copy AF_XDP (\(errnoText(rc))); "
                                         + "veth never does. Use --bind auto (falls back to copy) or --bind copy")
                    }
                    if rc == -EPERM || rc == -EACCES {
                        throw AgentError("creating an AF_XDP socket on \(port.interface): permission denied; needs "
                                         + "root or CAP_NET_RAW, CAP_NET_ADMIN")
                    }
                    if rc == -ENOBUFS || rc == -ENOMEM {
                        throw AgentError("creating an AF_XDP socket on \(port.interface) failed (\(errnoText(rc))): "
                                         + "memlock limit too low? raise it or lower --frames")
                    }
                    if rc == -EBUSY {
                        throw AgentError("binding AF_XDP to \(port.interface) queue \(k): another AF_XDP socket "
                                         + "still holds it after 3 s (another program using the queue?)")
                    }
                    throw AgentError("binding AF_XDP to \(port.interface) queue \(k) failed: \(errnoText(rc))")
                }
                mine.append(s)
                _ = mg_xsk_set_tx_budget(s, UInt32(Worker.batchSize))
                try programs[i].setSocket(queue: UInt32(k), fd: s.pointee.fd)
            }
            sockets.append(mine)
            let cpu: Int? = options.cpus.map { $0.isEmpty ? nil : $0[k % $0.count] } ?? (k % max(ncpu, 1))
            workers.append(Worker(index: k, cpu: cpu, umem: u, sockets: mine, fillSize: UInt32(options.ringSize),
                                  inflightCap: UInt32(options.txInflightCap), waitMode: options.wait,
                                  entryCapacity: entryCapacity, cell: cell, qsbr: qsbr,
                                  stop: stopFlag, trace: trace, portLive: portLive, channel: channels[k],
                                  controlWake: controlWake, learnRing: learner.rings[k], learnedTables: learner.root.tables))
        }
    }

    /// True when every socket of port `i` was bound zero-copy.
    public func isZeroCopy(_ i: Int) -> Bool { sockets.allSatisfy { $0[i].pointee.zerocopy != 0 } }

    /// Starts the workers.
    public func start() throws(AgentError) {
        for w in workers {
            threads.append(try NativeThread(name: "mplsgate-w\(w.index)") { w.run() })
        }
        try learner.start()
    }

    /// Stops the workers, detaches the programs (if still ours) and frees everything.
    public func stop() {
        stopFlag.set()
        for t in threads { t.join() }
        threads = []
        learner.stop()
        releaseAll()
    }

    private func releaseAll() {
        for p in programs { p.detach() }
        for row in sockets { for s in row { mg_xsk_destroy(s) } }
        sockets = []
        for u in umems { _ = mg_umem_destroy(u) }
        umems = []
        // Workers stay (stopped): their counters are still read for the final report.
        programs = []
        for fd in locks { close(fd) }
        locks = []
    }

    /// Sums every worker's counters (reads racing with the single writers; each value is a plain 64-bit load).
    /// A multipoint VNI's counters summed over the workers.
    public func segmentCounters(slot: Int) -> SegmentCounters {
        var s = SegmentCounters()
        guard slot >= 0 && slot < Segment.maxSlots else { return s }
        for w in workers {
            let c = w.counters.segments[slot]
            s.unicast &+= c.unicast; s.flooded &+= c.flooded; s.copies &+= c.copies
            s.noFrame &+= c.noFrame; s.splitHorizon &+= c.splitHorizon; s.rateLimited &+= c.rateLimited
            s.staticMACMoved &+= c.staticMACMoved; s.learnDropped &+= c.learnDropped
        }
        return s
    }

    public func report() -> AgentReport {
        var r = AgentReport(ports: ports.enumerated().map { i, p in
            AgentReport.Port(name: p.name, interface: p.interface, zerocopy: isZeroCopy(i))
        }, drops: [UInt64](repeating: 0, count: DropReason.allCases.count))
        for (k, w) in workers.enumerated() {
            for d in 0..<r.drops.count { r.drops[d] &+= w.counters.drops[d] }
            r.loop.loops &+= w.loop.pointee.loops
            r.loop.polls &+= w.loop.pointee.polls
            r.loop.pollWakeups &+= w.loop.pointee.pollWakeups
            for i in 0..<ports.count {
                let c = w.counters.ports[i]
                r.ports[i].pipeline.rxPackets &+= c.rxPackets; r.ports[i].pipeline.rxBytes &+= c.rxBytes
                r.ports[i].pipeline.txPackets &+= c.txPackets; r.ports[i].pipeline.txBytes &+= c.txBytes
                r.ports[i].pipeline.dropPackets &+= c.dropPackets
                r.ports[i].rings += w.io[i]
                var ks = xdp_statistics()
                if mg_xsk_statistics(sockets[k][i], &ks) == 0 {
                    r.ports[i].kernel.rxDropped &+= ks.rx_dropped
                    r.ports[i].kernel.rxInvalidDescs &+= ks.rx_invalid_descs
                    r.ports[i].kernel.txInvalidDescs &+= ks.tx_invalid_descs
                    r.ports[i].kernel.rxRingFull &+= ks.rx_ring_full
                    r.ports[i].kernel.rxFillRingEmpty &+= ks.rx_fill_ring_empty_descs
                    r.ports[i].kernel.txRingEmpty &+= ks.tx_ring_empty_descs
                }
            }
        }
        for i in 0..<ports.count { r.ports[i].program = programs[i].counters() }
        if let fast = fastTier {
            // Frames the fast tier forwarded never reach a worker: its counters are the ports' too.
            for i in 0..<ports.count {
                // Redirected frames the egress device refused: drops of the port they came in on, and not sent
                // by the port they were redirected to (read first: the fast tier counted them as sent before).
                let refused = fast.refusedRedirects(i) ?? (0, 0)
                var c = fast.portCounters(i)
                c.txPackets &-= min(refused.notSent, c.txPackets)
                r.ports[i].pipeline.rxPackets &+= c.rxPackets; r.ports[i].pipeline.rxBytes &+= c.rxBytes
                r.ports[i].pipeline.txPackets &+= c.txPackets; r.ports[i].pipeline.txBytes &+= c.txBytes
                r.ports[i].pipeline.dropPackets &+= refused.dropped
                r.drops[Int(DropReason.xdpTransmitError.rawValue)] &+= refused.dropped
                r.ports[i].fast = FastTierPortReport(rxPackets: c.rxPackets, txPackets: c.txPackets,
                                                    transmitErrors: refused.dropped, ingress: programs[i].fastTierOn,
                                                    egress: fast.redirectPorts.contains(i))
            }
        }
        return r
    }

    /// Each worker's loop counters (racing with their single writers): a worker whose `loops` stops growing is stalled
    /// (a poll worker loops at least every 100 ms even when idle).
    public func workerLoops() -> [WorkerLoopCounters] { workers.map { $0.loop.pointee } }

    /// One action slot's packets and bytes summed over the workers (racing with their single writers).
    public func entryCounters(slot: Int) -> (packets: UInt64, bytes: UInt64) {
        var p: UInt64 = 0, b: UInt64 = 0
        for w in workers where slot < w.counters.entryCapacity {
            p &+= w.counters.entries[slot].packets
            b &+= w.counters.entries[slot].bytes
        }
        if let fast = fastTier {
            let c = fast.entryCounter(slot: slot)
            p &+= c.packets; b &+= c.bytes
        }
        return (p, b)
    }

    /// Zeroes a slot no snapshot references any more (after its grace period, so no worker writes it).
    /// Zeroes a multipoint VNI's counters in every worker (its slot is free and past its grace period).
    public func resetSegmentCounters(slot: Int) {
        guard slot >= 0 && slot < Segment.maxSlots else { return }
        for w in workers { w.counters.segments[slot] = SegmentCounters() }
    }

    public func resetEntryCounters(slot: Int) {
        for w in workers where slot < w.counters.entryCapacity { w.counters.entries[slot] = EntryCounters() }
        fastTier?.resetEntryCounter(slot: slot)
    }

    /// Re-reads which ports take redirected frames (the kernel's xdp-features: a veth only while its peer has an
    /// XDP program or GRO on) and tells the fast tier; returns the ports whose state changed.
    @discardableResult
    public func refreshFastTierEgress() -> [Int] {
        guard let fast = fastTier else { return [] }
        var changed: [Int] = []
        let current = fast.redirectPorts
        for (i, p) in ports.enumerated() {
            // Unknown (the kernel did not answer, or has no netdev family): keep what we knew.
            guard let takes = FastTier.takesRedirects(ifindex: p.ifindex) else { continue }
            if takes != current.contains(i) {
                if (try? fast.setEgress(port: i, ifindex: p.ifindex, takesRedirects: takes)) != nil { changed.append(i) }
            }
        }
        return changed
    }

    /// Receive queues of an interface (sysfs).
    static func rxQueueCount(_ ifname: String) -> Int {
        guard let d = opendir("/sys/class/net/\(ifname)/queues") else { return 1 }
        defer { closedir(d) }
        var n = 0
        while let e = readdir(d) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name.hasPrefix("rx-") { n += 1 }
        }
        return max(n, 1)
    }

    /// The interface's MAC address (sysfs), or nil.
    static func interfaceMAC(_ ifname: String) -> MACAddress? {
        guard let f = fopen("/sys/class/net/\(ifname)/address", "r") else { return nil }
        defer { fclose(f) }
        var buf = [CChar](repeating: 0, count: 64)
        guard fgets(&buf, 64, f) != nil else { return nil }
        let text = String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self).trimmingNewline
        return MACAddress(text)
    }

    /// The device's NUMA node from sysfs, or -1.
    static func numaNode(_ ifname: String) -> Int {
        guard let f = fopen("/sys/class/net/\(ifname)/device/numa_node", "r") else { return -1 }
        defer { fclose(f) }
        var v: Int32 = -1
        return withUnsafeMutablePointer(to: &v) { p in fscanfInt(f, p) } ? Int(v) : -1
    }
}

private func fscanfInt(_ f: UnsafeMutablePointer<FILE>, _ p: UnsafeMutablePointer<Int32>) -> Bool {
    var buf = [CChar](repeating: 0, count: 32)
    guard fgets(&buf, 32, f) != nil else { return false }
    p.pointee = atoi(buf)
    return true
}

extension String {
    var trimmingNewline: String { var s = self; while s.last == "\n" { s.removeLast() }; return s }
}
