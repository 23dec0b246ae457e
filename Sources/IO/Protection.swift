#if canImport(Glibc)
import Glibc
#endif
import FIB
import BFD
import Wire

/// Link protection without the controller (DESIGN §7): the protection thread hears port state from rtnetlink
/// (RTNLGRP_LINK) and turns it into next-hop liveness, the one byte per next hop that workers read when they
/// resolve a next hop (`FIBSnapshot.resolveLive`), and into the per-port flag that stops a worker kicking a dead
/// port's TX ring. It is the only writer of both; it never does commit work. A switch is a store: it changes
/// neither the FIB generation nor the digest, and is reported as an event.
///
/// - A port going down (admin down, or carrier loss: IFF_UP and IFF_LOWER_UP) takes every next hop on it down at
///   once: traffic moves to the backups, a group's buckets to their second choices, the rest is `nextHopDown`.
/// - A port coming back brings a protected next hop (one with a backup, or a group member) back after the
///   hold-down (each flap restarts it; 0 = not revertive: it stays on the backup until a commit replaces it);
///   an unprotected one at once.
/// - A failure that gives no carrier event at this host (the middle of a link, a hung neighbour) is BFD's job: the
///   same thread runs the BFD sessions of next hops that ask for one (`BFDRunner`), with packets received and sent
///   by the workers, so a session proves the forwarding path. A next hop with BFD is up only while its session is
///   Up, or Down because the peer said AdminDown (not a path failure, RFC 5882 §3.2); it comes back like a port
///   does (protected: after the hold-down, except the session's first Up; unprotected: at once).
public final class Protection: @unchecked Sendable {
    /// A next hop as the control side compiled it.
    public struct NextHop: Sendable, Equatable {
        public var name: String
        public var slot: UInt32
        public var port: Int
        /// Has a backup or is a group member: traffic has somewhere to go while it is down.
        public var isProtected: Bool
        public var bfd: BFDSessionConfig?
        public init(name: String, slot: UInt32, port: Int, isProtected: Bool, bfd: BFDSessionConfig? = nil) {
            self.name = name; self.slot = slot; self.port = port; self.isProtected = isProtected; self.bfd = bfd
        }
    }

    /// A next hop's BFD session: addresses, the frames' Ethernet header, timers.
    public struct BFDSessionConfig: Sendable, Equatable {
        public var local: IPAddress
        public var peer: IPAddress
        public var sourceMAC: MACAddress
        public var destinationMAC: MACAddress
        public var vlan: UInt16?
        public var timers: BFDTimers
        public init(local: IPAddress, peer: IPAddress, sourceMAC: MACAddress, destinationMAC: MACAddress, vlan: UInt16?,
                    timers: BFDTimers) {
            self.local = local; self.peer = peer; self.sourceMAC = sourceMAC; self.destinationMAC = destinationMAC
            self.vlan = vlan; self.timers = timers
        }
    }

    /// A BFD session for `show bfd`.
    public struct BFDStatus: Sendable {
        public var port: Int
        public var local: IPAddress
        public var peer: IPAddress
        public var sourcePort: UInt16
        public var worker: Int
        public var nextHops: [String]
        public var session: BFDSession
        public var sinceSeconds: Double
        public var badTTL: UInt64
        public var txRingFull: UInt64
    }

    /// Discards of received BFD frames that belong to no session (by reason).
    public struct BFDDiscards: Sendable {
        public var byReason: [String: UInt64] = [:]
        public var noSession: UInt64 = 0
    }

    /// One switch: a port or next hop changing state, with when the kernel's message was read and when the new
    /// state was stored (CLOCK_MONOTONIC ns; 0 when not from a netlink message).
    public struct Event: Sendable {
        public enum Kind: String, Sendable { case port, nextHop, bfd }
        public var kind: Kind
        public var name: String
        /// port: up / down; next hop: up, backup (down, traffic on its backup or group), down (nothing left).
        public var state: String
        public var reason: String
        public var receivedNs: UInt64
        public var storedNs: UInt64
        /// What the change came from: a netlink message, a BFD session (a packet or its detection time), or a timer.
        public var byBFD = false
    }

    /// A next hop's state for `show next-hops`.
    public struct Status: Sendable {
        public var name: String
        public var port: Int
        public var state: String
        /// Seconds since the last change.
        public var sinceSeconds: Double
        public var downs: UInt64
        public var reverts: UInt64
        /// Seconds until a pending revert, if one is pending.
        public var revertInSeconds: Double?
        /// Why it is down and cannot come back yet (its port, its BFD session); nil when nothing holds it.
        public var heldBy: String?
    }

    private struct Tracked {
        var hop: NextHop
        var down: Bool
        var bfdKey: BFDRunner.Key?
        /// Its BFD session has been Up since this next hop asked for it (later returns wait the hold-down).
        var bfdWasUp = false
        var revertAt: UInt64?
        var changedAt: UInt64
        var downs: UInt64 = 0
        var reverts: UInt64 = 0
    }

    private let liveness: UnsafeMutablePointer<UInt8>
    /// Told the slot of every liveness change, after the pipeline's copy is written: the fast tier copies it.
    /// Set before `start`.
    public var onLiveness: ((Int) -> Void)?
    /// Per port: 1 up, 0 down; read by the workers.
    private let portLive: UnsafeMutablePointer<UInt8>
    private let ifindexes: [Int32]
    private let interfaces: [String]
    private let portNames: [String]
    public let holdDownNs: UInt64
    private let netlinkFD: Int32
    /// A pipe: the control thread writes a byte to wake the protection thread.
    private let wakeFD: Int32
    private let wakeWriteFD: Int32
    private var thread: NativeThread?

    private var mutex = pthread_mutex_t()
    // Shared with the control thread, under `mutex`.
    private var pendingTable: [NextHop]?
    private var pendingReverts: [String] = []
    private var events: [Event] = []
    private var status: [Status] = []
    private var bfdStatus: [BFDStatus] = []
    private var bfdDiscards = BFDDiscards()
    private var stopping = false
    private var sayGoodbye = false

    private let bfd: BFDRunner
    private let controlWake: WakeEvent
    private let channels: [WorkerChannel]

    // The protection thread's own.
    private var portUp: [Bool]
    private var hops: [Tracked] = []

    /// Opens the rtnetlink socket (in the agent's network namespace) and reads each port's state now. `portLive`
    /// has one byte per port.
    public init(portNames: [String], interfaces: [String], liveness: UnsafeMutablePointer<UInt8>,
                portLive: UnsafeMutablePointer<UInt8>, holdDownSeconds: Double, channels: [WorkerChannel],
                controlWake: WakeEvent) throws(AgentError) {
        self.channels = channels
        self.controlWake = controlWake
        bfd = BFDRunner(channels: channels)
        self.liveness = liveness
        self.portLive = portLive
        self.portNames = portNames
        self.interfaces = interfaces
        holdDownNs = UInt64(max(0, holdDownSeconds) * 1e9)
        ifindexes = interfaces.map { Int32(if_nametoindex($0)) }
        let fd = socket(16 /* AF_NETLINK */, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue),
                        0 /* NETLINK_ROUTE */)
        guard fd >= 0 else { throw AgentError("rtnetlink socket: \(errnoText(errno))") }
        // struct sockaddr_nl { sa_family_t nl_family; unsigned short nl_pad; __u32 nl_pid; __u32 nl_groups; }
        var address: (UInt16, UInt16, UInt32, UInt32) = (16, 0, 0, 1 /* RTMGRP_LINK */)
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, 12) }
        }
        guard rc == 0 else {
            let e = errno
            close(fd)
            throw AgentError("rtnetlink bind (link events): \(errnoText(e))")
        }
        // A burst of link messages must not overflow the socket before the thread reads it.
        var size: Int32 = 1 << 20
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        netlinkFD = fd
        var pipeFDs: [Int32] = [0, 0]
        guard pipe(&pipeFDs) == 0 else { close(fd); throw AgentError("pipe: \(errnoText(errno))") }
        for p in pipeFDs {
            _ = fcntl(p, F_SETFL, fcntl(p, F_GETFL) | O_NONBLOCK)
            _ = fcntl(p, F_SETFD, FD_CLOEXEC)
        }
        wakeFD = pipeFDs[0]
        wakeWriteFD = pipeFDs[1]
        portUp = interfaces.map { Protection.linkIsUp($0) }
        pthread_mutex_init(&mutex, nil)
        for (i, up) in portUp.enumerated() { portLive[i] = up ? 1 : 0 }
    }

    deinit {
        close(netlinkFD)
        close(wakeFD)
        close(wakeWriteFD)
    }

    /// The port's state now (start, and after a lost netlink message): administratively up with carrier. Not
    /// operstate: the kernel's linkwatch updates that up to a second late, carrier is set at once.
    static func linkIsUp(_ interface: String) -> Bool {
        func read(_ file: String) -> String? {
            guard let f = fopen("/sys/class/net/\(interface)/\(file)", "r") else { return nil }
            defer { fclose(f) }
            var buf = [CChar](repeating: 0, count: 32)
            guard fgets(&buf, 32, f) != nil else { return nil }
            return String(decoding: buf.prefix { $0 != 0 && $0 != 10 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
        guard let flags = read("flags").flatMap({ UInt32($0.dropFirst(2), radix: 16) }), flags & 0x1 != 0 else { return false }
        return read("carrier") == "1"
    }

    static func now() -> UInt64 {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return UInt64(t.tv_sec) * 1_000_000_000 + UInt64(t.tv_nsec)
    }

    /// Starts the protection thread.
    public func start() throws(AgentError) {
        thread = try NativeThread(name: "protection") { [self] in self.loop() }
    }

    /// Stops the thread (the liveness bytes stay as they are). With `goodbye`, every BFD session first sends
    /// state Down with diagnostic 4 (Forwarding Plane Reset; never AdminDown, which would tell the peer to keep
    /// using us), and this waits up to 200 ms for the workers to take those frames (so stop the workers after).
    public func stop(goodbye: Bool = false) {
        pthread_mutex_lock(&mutex)
        stopping = true
        sayGoodbye = goodbye
        pthread_mutex_unlock(&mutex)
        wake()
        thread?.join()
        thread = nil
        if goodbye {
            for _ in 0..<200 where !channels.allSatisfy({ $0.outgoing.isEmpty }) { usleep(1000) }
            // Taken off the rings is not yet sent in zero-copy mode: give the NIC a moment.
            usleep(5000)
        }
    }

    /// The next hops after a commit (control thread). The thread recomputes every slot's liveness from the port
    /// states at once: a new next hop, or one in a reused slot, is never judged by its predecessor.
    public func update(_ table: [NextHop]) {
        pthread_mutex_lock(&mutex)
        pendingTable = table
        pthread_mutex_unlock(&mutex)
        wake()
    }

    /// Brings a next hop back from its backup now, without waiting for the hold-down (or, with `--hold-down 0`, at
    /// all): the operator's word that the primary path is good. Refused while its port or BFD session still holds
    /// it down. The switch itself is made by the protection thread and reported as an event.
    public func revert(_ name: String) -> Result<String, AgentError> {
        guard let s = statuses().first(where: { $0.name == name }) else { return .failure(AgentError("no next hop named \(name)")) }
        guard s.state != "up" else { return .failure(AgentError("next hop \(name) is up already")) }
        if let held = s.heldBy { return .failure(AgentError("next hop \(name) is still held down: \(held)")) }
        pthread_mutex_lock(&mutex)
        pendingReverts.append(name)
        pthread_mutex_unlock(&mutex)
        wake()
        return .success(s.state)
    }

    private func wake() {
        var one: UInt8 = 1
        _ = write(wakeWriteFD, &one, 1)
    }

    /// The switches since the last call, oldest first (control thread: it takes them).
    public func takeEvents() -> [Event] {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        let e = events
        events.removeAll(keepingCapacity: true)
        return e
    }

    /// Every next hop's state now (any thread: a copy taken under the mutex).
    public func statuses() -> [Status] {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return status
    }

    /// Whether port `i` is up (any thread: one byte the protection thread stores).
    public func portIsUp(_ i: Int) -> Bool { portLive[i] != 0 }

    /// Every BFD session now, and the discards that found no session (any thread: a copy taken under the mutex).
    public func bfdSessions() -> (sessions: [BFDStatus], discards: BFDDiscards) {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return (bfdStatus, bfdDiscards)
    }

    // MARK: the thread

    private func loop() {
        var fds = [pollfd(fd: netlinkFD, events: Int16(POLLIN), revents: 0), pollfd(fd: wakeFD, events: Int16(POLLIN), revents: 0),
                   pollfd(fd: controlWake.fd, events: Int16(POLLIN), revents: 0)]
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let now = Protection.now()
            var next = hops.compactMap(\.revertAt).min() ?? UInt64.max
            if let b = bfd.nextDeadline { next = min(next, b) }
            // ms resolution, rounded up: a BFD packet is never early, at most 1 ms late.
            let timeout: Int32 = next == .max ? 1000 : next <= now ? 0 : Int32(min(1000, (next - now + 999_999) / 1_000_000))
            fds[0].revents = 0; fds[1].revents = 0; fds[2].revents = 0
            _ = poll(&fds, 3, timeout)
            let received = Protection.now()
            var newEvents: [Event] = []
            if fds[1].revents != 0 {
                var drain = [UInt8](repeating: 0, count: 64)
                while read(wakeFD, &drain, 64) > 0 {}
                pthread_mutex_lock(&mutex)
                let table = pendingTable
                pendingTable = nil
                let reverts = pendingReverts
                pendingReverts.removeAll()
                let stop = stopping
                let goodbye = sayGoodbye
                pthread_mutex_unlock(&mutex)
                if stop {
                    if goodbye { bfd.goodbye(now: received) }
                    return
                }
                if let table { adopt(table, now: received, into: &newEvents) }
                for name in reverts {
                    guard let i = hops.firstIndex(where: { $0.hop.name == name }), hops[i].down, !shouldBeDown(hops[i]) else { continue }
                    hops[i].revertAt = nil
                    set(i, down: false, received: 0, reason: "reverted by the operator", into: &newEvents)
                }
            }
            if fds[2].revents != 0 { controlWake.drain() }
            if fds[0].revents != 0 { readLinks(&buffer, received: received, into: &newEvents) }
            if !bfd.isEmpty { bfdChanges(bfd.run(now: Protection.now()), into: &newEvents) }
            revertDue(now: Protection.now(), into: &newEvents)
            publish(newEvents)
        }
    }

    /// Reads every pending rtnetlink message; RTM_NEWLINK / RTM_DELLINK of our ports change their state.
    private func readLinks(_ buffer: inout [UInt8], received: UInt64, into out: inout [Event]) {
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(netlinkFD, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if n < 0 {
                if errno == ENOBUFS {
                    // Messages were lost: read every port's state again.
                    for i in 0..<portUp.count { setPort(i, up: Protection.linkIsUp(interfaces[i]), received: received,
                                                        reason: "state re-read after lost link messages", into: &out) }
                    continue
                }
                return
            }
            if n == 0 { return }
            var o = 0
            buffer.withUnsafeBytes { raw in
                while o + 16 <= n {
                    let length = Int(raw.loadUnaligned(fromByteOffset: o, as: UInt32.self))
                    let type = raw.loadUnaligned(fromByteOffset: o + 4, as: UInt16.self)
                    guard length >= 16, o + length <= n else { break }
                    // struct ifinfomsg { u8 family, pad; u16 type; s32 index; u32 flags, change; } after the header.
                    if (type == 16 || type == 17) && length >= 32 {  // RTM_NEWLINK, RTM_DELLINK
                        let index = raw.loadUnaligned(fromByteOffset: o + 20, as: Int32.self)
                        let flags = raw.loadUnaligned(fromByteOffset: o + 24, as: UInt32.self)
                        if let p = ifindexes.firstIndex(of: index) {
                            // IFF_UP and IFF_LOWER_UP (carrier, set at once; IFF_RUNNING follows linkwatch's delay).
                            let up = type == 16 && flags & 0x1 != 0 && flags & 0x10000 != 0
                            let reason = type == 17 ? "interface removed" : flags & 0x1 == 0 ? "admin down"
                                : flags & 0x10000 == 0 ? "no carrier" : "link up"
                            setPort(p, up: up, received: received, reason: reason, into: &out)
                        }
                    }
                    o += (length + 3) & ~3
                }
            }
        }
    }

    private func setPort(_ p: Int, up: Bool, received: UInt64, reason: String, into out: inout [Event]) {
        guard portUp[p] != up else { return }
        portUp[p] = up
        if up {
            portLive[p] = 1
            for i in hops.indices where hops[i].hop.port == p && hops[i].down && !bfdHolds(hops[i]) {
                if hops[i].hop.isProtected {
                    // Back after the hold-down; each flap starts it again. 0: not revertive.
                    hops[i].revertAt = holdDownNs > 0 ? received + holdDownNs : nil
                } else {
                    set(i, down: false, received: received, reason: reason, into: &out)
                }
            }
        } else {
            // Next hops first, so no new frame is sent to the port, then the workers stop kicking its TX ring.
            for i in hops.indices where hops[i].hop.port == p {
                hops[i].revertAt = nil
                if !hops[i].down { set(i, down: true, received: received, reason: reason, into: &out) }
            }
            portLive[p] = 0
        }
        out.append(Event(kind: .port, name: portNames[p], state: up ? "up" : "down", reason: reason,
                         receivedNs: received, storedNs: Protection.now()))
    }

    private func set(_ i: Int, down: Bool, received: UInt64, reason: String, byBFD: Bool = false, into out: inout [Event]) {
        let slot = Int(hops[i].hop.slot)
        guard slot < Liveness.capacity else { return }
        liveness[slot] = down ? Liveness.down : Liveness.up
        onLiveness?(slot)
        let stored = Protection.now()
        hops[i].down = down
        hops[i].changedAt = stored
        if down { hops[i].downs &+= 1 } else if hops[i].hop.isProtected { hops[i].reverts &+= 1 }
        out.append(Event(kind: .nextHop, name: hops[i].hop.name, state: stateName(hops[i]), reason: reason,
                         receivedNs: received, storedNs: stored, byBFD: byBFD))
    }

    private func stateName(_ t: Tracked) -> String { t.down ? (t.hop.isProtected ? "backup" : "down") : "up" }

    private func revertDue(now: UInt64, into out: inout [Event]) {
        for i in hops.indices {
            guard let at = hops[i].revertAt, at <= now else { continue }
            hops[i].revertAt = nil
            if !shouldBeDown(hops[i]) {
                set(i, down: false, received: 0, reason: "hold-down of \(Double(holdDownNs) / 1e9) s over", into: &out)
            }
        }
    }

    /// Takes a new next-hop table: kept next hops keep their state, counters and timers; every slot's byte is
    /// written from its port's state.
    private func adopt(_ table: [NextHop], now: UInt64, into out: inout [Event]) {
        // BFD sessions first: a next hop's state below depends on its session's.
        var requests: [BFDRunner.Key: BFDRunner.Request] = [:]
        var users: [BFDRunner.Key: [String]] = [:]
        var order: [BFDRunner.Key] = []
        for hop in table {
            guard let b = hop.bfd else { continue }
            let key = BFDRunner.Key(port: hop.port, vlan: b.vlan, local: b.local, peer: b.peer)
            users[key, default: []].append(hop.name)
            if var r = requests[key] {
                // Shared by several next hops: the fastest timers asked for.
                r.timers.desiredMinTxUs = min(r.timers.desiredMinTxUs, b.timers.desiredMinTxUs)
                r.timers.requiredMinRxUs = min(r.timers.requiredMinRxUs, b.timers.requiredMinRxUs)
                r.timers.multiplier = min(r.timers.multiplier, b.timers.multiplier)
                requests[key] = r
            } else {
                order.append(key)
                requests[key] = BFDRunner.Request(key: key, sourceMAC: b.sourceMAC, destinationMAC: b.destinationMAC,
                                                  vlan: b.vlan, timers: b.timers)
            }
        }
        bfd.adopt(order.map { requests[$0]! }, nextHops: users, now: now)
        var old: [String: Tracked] = [:]
        for t in hops { old[t.hop.name] = t }
        hops = table.map { hop in
            let key = hop.bfd.map { BFDRunner.Key(port: hop.port, vlan: $0.vlan, local: $0.local, peer: $0.peer) }
            if var t = old[hop.name], t.hop.port == hop.port {
                t.hop = hop
                if t.bfdKey != key { t.bfdWasUp = false }
                t.bfdKey = key
                if !t.down && shouldBeDown(t) {
                    // BFD added to a next hop in use: down until its session comes up.
                    t.down = true; t.changedAt = now; t.downs &+= 1; t.revertAt = nil
                    out.append(Event(kind: .nextHop, name: hop.name, state: stateName(t),
                                     reason: "BFD session to \(hop.bfd.map { "\($0.peer)" } ?? "?") not up yet",
                                     receivedNs: 0, storedNs: now, byBFD: true))
                } else if t.down && !shouldBeDown(t) {
                    // Still down on a port that is up: unprotected now, it comes back at once; protected, it waits
                    // for the hold-down (a pending one is kept).
                    if !hop.isProtected { t.down = false; t.changedAt = now; t.revertAt = nil }
                    else if t.revertAt == nil && holdDownNs > 0 { t.revertAt = now + holdDownNs }
                }
                return t
            }
            var t = Tracked(hop: hop, down: false, bfdKey: key, revertAt: nil, changedAt: now)
            t.down = shouldBeDown(t)
            return t
        }
        for t in hops where Int(t.hop.slot) < Liveness.capacity {
            liveness[Int(t.hop.slot)] = t.down ? Liveness.down : Liveness.up
            onLiveness?(Int(t.hop.slot))
        }
    }

    /// Whether a next hop's BFD session keeps it down: it has one, and the session is neither Up nor Down by the
    /// peer's AdminDown.
    private func bfdHolds(_ t: Tracked) -> Bool {
        guard let k = t.bfdKey else { return false }
        guard let s = bfd.entry(k)?.session else { return true }
        return s.state != .up && !s.downByRemoteAdminDown
    }

    private func shouldBeDown(_ t: Tracked) -> Bool { !portUp[t.hop.port] || bfdHolds(t) }

    private func heldBy(_ t: Tracked) -> String? {
        if !portUp[t.hop.port] { return "port \(portNames[t.hop.port]) down" }
        if bfdHolds(t), let k = t.bfdKey {
            return "BFD session to \(k.peer) \(bfd.entry(k)?.session.state.description ?? "missing")"
        }
        return nil
    }

    /// BFD state changes: an event each, and their next hops follow.
    private func bfdChanges(_ changes: [BFDRunner.Change], into out: inout [Event]) {
        let now = Protection.now()
        for c in changes {
            let t = c.transition
            let what = t.byRemoteAdminDown ? "peer AdminDown (not a path failure)" : t.diagnostic.description
            let name = "\(portNames[c.key.port]) \(c.key.local)->\(c.key.peer)"
            out.append(Event(kind: .bfd, name: name, state: t.to.description, reason: "\(t.from) -> \(t.to): \(what)",
                             receivedNs: now, storedNs: now, byBFD: true))
            let reason = "BFD \(c.key.peer) \(t.to): \(what)"
            for i in hops.indices where hops[i].bfdKey == c.key {
                if !hops[i].down && shouldBeDown(hops[i]) {
                    hops[i].revertAt = nil
                    set(i, down: true, received: now, reason: reason, byBFD: true, into: &out)
                } else if hops[i].down && !shouldBeDown(hops[i]) {
                    // The first Up since a next hop asked for the session brings it in at once; later ones wait
                    // the hold-down, as a port coming back does (protected next hops only).
                    if hops[i].hop.isProtected && hops[i].bfdWasUp {
                        hops[i].revertAt = holdDownNs > 0 ? now + holdDownNs : nil
                    } else {
                        set(i, down: false, received: now, reason: reason, byBFD: true, into: &out)
                    }
                }
                if t.to == .up { hops[i].bfdWasUp = true }
            }
        }
    }

    private func publish(_ new: [Event]) {
        let now = Protection.now()
        let list = hops.map { t in
            Status(name: t.hop.name, port: t.hop.port, state: stateName(t), sinceSeconds: Double(now &- t.changedAt) / 1e9,
                   downs: t.downs, reverts: t.reverts,
                   revertInSeconds: t.revertAt.map { Double($0 > now ? $0 - now : 0) / 1e9 },
                   heldBy: heldBy(t))
        }
        let sessions = bfd.entries.map { e in
            BFDStatus(port: e.key.port, local: e.key.local, peer: e.key.peer, sourcePort: e.path.sourcePort,
                      worker: e.worker, nextHops: e.nextHops, session: e.session,
                      sinceSeconds: Double(now &- e.session.lastChangeNs) / 1e9, badTTL: e.badTTL, txRingFull: e.txRingFull)
        }
        var discards = BFDDiscards()
        for (r, n) in bfd.rejects { discards.byReason[r.rawValue] = n }
        discards.noSession = bfd.noSession
        pthread_mutex_lock(&mutex)
        events += new
        status = list
        bfdStatus = sessions
        bfdDiscards = discards
        pthread_mutex_unlock(&mutex)
    }
}
