#if canImport(Glibc)
import Glibc
#endif
import FIB

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
/// - A failure that gives no carrier event at this host (the middle of a link, a hung neighbour) is not seen here:
///   that is BFD's job.
public final class Protection: @unchecked Sendable {
    /// A next hop as the control side compiled it.
    public struct NextHop: Sendable, Equatable {
        public var name: String
        public var slot: UInt32
        public var port: Int
        /// Has a backup or is a group member: traffic has somewhere to go while it is down.
        public var isProtected: Bool
        public init(name: String, slot: UInt32, port: Int, isProtected: Bool) {
            self.name = name; self.slot = slot; self.port = port; self.isProtected = isProtected
        }
    }

    /// One switch: a port or next hop changing state, with when the kernel's message was read and when the new
    /// state was stored (CLOCK_MONOTONIC ns; 0 when not from a netlink message).
    public struct Event: Sendable {
        public enum Kind: String, Sendable { case port, nextHop }
        public var kind: Kind
        public var name: String
        /// port: up / down; next hop: up, backup (down, traffic on its backup or group), down (nothing left).
        public var state: String
        public var reason: String
        public var receivedNs: UInt64
        public var storedNs: UInt64
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
    }

    private struct Tracked {
        var hop: NextHop
        var down: Bool
        var revertAt: UInt64?
        var changedAt: UInt64
        var downs: UInt64 = 0
        var reverts: UInt64 = 0
    }

    private let liveness: UnsafeMutablePointer<UInt8>
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
    private var events: [Event] = []
    private var status: [Status] = []
    private var stopping = false

    // The protection thread's own.
    private var portUp: [Bool]
    private var hops: [Tracked] = []

    /// Opens the rtnetlink socket (in the agent's network namespace) and reads each port's state now. `portLive`
    /// has one byte per port.
    public init(portNames: [String], interfaces: [String], liveness: UnsafeMutablePointer<UInt8>,
                portLive: UnsafeMutablePointer<UInt8>, holdDownSeconds: Double) throws(AgentError) {
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

    /// Stops the thread (the liveness bytes stay as they are).
    public func stop() {
        pthread_mutex_lock(&mutex)
        stopping = true
        pthread_mutex_unlock(&mutex)
        wake()
        thread?.join()
        thread = nil
    }

    /// The next hops after a commit (control thread). The thread recomputes every slot's liveness from the port
    /// states at once: a new next hop, or one in a reused slot, is never judged by its predecessor.
    public func update(_ table: [NextHop]) {
        pthread_mutex_lock(&mutex)
        pendingTable = table
        pthread_mutex_unlock(&mutex)
        wake()
    }

    private func wake() {
        var one: UInt8 = 1
        _ = write(wakeWriteFD, &one, 1)
    }

    /// The switches since the last call, oldest first (control thread).
    public func takeEvents() -> [Event] {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        let e = events
        events.removeAll(keepingCapacity: true)
        return e
    }

    /// Every next hop's state now (control thread).
    public func statuses() -> [Status] {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return status
    }

    /// Whether port `i` is up (control thread).
    public func portIsUp(_ i: Int) -> Bool { portLive[i] != 0 }

    // MARK: the thread

    private func loop() {
        var fds = [pollfd(fd: netlinkFD, events: Int16(POLLIN), revents: 0), pollfd(fd: wakeFD, events: Int16(POLLIN), revents: 0)]
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let now = Protection.now()
            var timeout: Int32 = 1000
            if let next = hops.compactMap(\.revertAt).min() {
                timeout = next <= now ? 0 : Int32(min(1000, (next - now) / 1_000_000 + 1))
            }
            fds[0].revents = 0; fds[1].revents = 0
            _ = poll(&fds, 2, timeout)
            let received = Protection.now()
            var newEvents: [Event] = []
            if fds[1].revents != 0 {
                var drain = [UInt8](repeating: 0, count: 64)
                while read(wakeFD, &drain, 64) > 0 {}
                pthread_mutex_lock(&mutex)
                let table = pendingTable
                pendingTable = nil
                let stop = stopping
                pthread_mutex_unlock(&mutex)
                if stop { return }
                if let table { adopt(table, now: received, into: &newEvents) }
            }
            if fds[0].revents != 0 { readLinks(&buffer, received: received, into: &newEvents) }
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
            for i in hops.indices where hops[i].hop.port == p && hops[i].down {
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

    private func set(_ i: Int, down: Bool, received: UInt64, reason: String, into out: inout [Event]) {
        let slot = Int(hops[i].hop.slot)
        guard slot < Liveness.capacity else { return }
        liveness[slot] = down ? Liveness.down : Liveness.up
        let stored = Protection.now()
        hops[i].down = down
        hops[i].changedAt = stored
        if down { hops[i].downs &+= 1 } else if hops[i].hop.isProtected { hops[i].reverts &+= 1 }
        out.append(Event(kind: .nextHop, name: hops[i].hop.name, state: stateName(hops[i]), reason: reason,
                         receivedNs: received, storedNs: stored))
    }

    private func stateName(_ t: Tracked) -> String { t.down ? (t.hop.isProtected ? "backup" : "down") : "up" }

    private func revertDue(now: UInt64, into out: inout [Event]) {
        for i in hops.indices {
            guard let at = hops[i].revertAt, at <= now else { continue }
            hops[i].revertAt = nil
            if portUp[hops[i].hop.port] {
                set(i, down: false, received: 0, reason: "hold-down of \(Double(holdDownNs) / 1e9) s over", into: &out)
            }
        }
    }

    /// Takes a new next-hop table: kept next hops keep their state, counters and timers; every slot's byte is
    /// written from its port's state.
    private func adopt(_ table: [NextHop], now: UInt64, into out: inout [Event]) {
        var old: [String: Tracked] = [:]
        for t in hops { old[t.hop.name] = t }
        hops = table.map { hop in
            if var t = old[hop.name], t.hop.port == hop.port {
                t.hop = hop
                if t.down && portUp[hop.port] {
                    // Still down on a port that is up: unprotected now, it comes back at once; protected, it waits
                    // for the hold-down (a pending one is kept).
                    if !hop.isProtected { t.down = false; t.changedAt = now; t.revertAt = nil }
                    else if t.revertAt == nil && holdDownNs > 0 { t.revertAt = now + holdDownNs }
                }
                return t
            }
            let down = !portUp[hop.port]
            return Tracked(hop: hop, down: down, revertAt: nil, changedAt: now)
        }
        for t in hops where Int(t.hop.slot) < Liveness.capacity {
            liveness[Int(t.hop.slot)] = t.down ? Liveness.down : Liveness.up
        }
    }

    private func publish(_ new: [Event]) {
        let now = Protection.now()
        let list = hops.map { t in
            Status(name: t.hop.name, port: t.hop.port, state: stateName(t), sinceSeconds: Double(now &- t.changedAt) / 1e9,
                   downs: t.downs, reverts: t.reverts,
                   revertInSeconds: t.revertAt.map { Double($0 > now ? $0 - now : 0) / 1e9 })
        }
        pthread_mutex_lock(&mutex)
        events += new
        status = list
        pthread_mutex_unlock(&mutex)
    }
}
