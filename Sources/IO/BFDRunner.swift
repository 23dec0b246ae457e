#if canImport(Glibc)
import Glibc
#endif
import BFD
import Wire

/// The BFD sessions of the protection thread (RFC 5880, 5881; DESIGN §7): it alone owns them. Received frames come
/// from every worker's `punted` ring; frames to send go on the `outgoing` ring of the worker the session is given
/// to, which puts them on its own TX ring. A session is shared by the next hops that name the same port, local
/// and peer address. Nothing here blocks: a full ring loses a packet (counted), as a wire would.
final class BFDRunner {
    /// What identifies a session on this host.
    struct Key: Hashable, Sendable {
        var port: Int
        var vlan: UInt16?
        var local: IPAddress
        var peer: IPAddress
    }

    /// A session as next hops ask for it (Protection.NextHop.bfd).
    struct Request: Equatable, Sendable {
        var key: Key
        var sourceMAC: MACAddress
        var destinationMAC: MACAddress
        var vlan: UInt16?
        var timers: BFDTimers
    }

    struct Entry {
        var key: Key
        var path: BFDPath
        var session: BFDSession
        var worker: Int
        var nextHops: [String]
        var badTTL: UInt64 = 0
        var txRingFull: UInt64 = 0
        /// Set once no next hop asks for the session: it says AdminDown until then, and is removed after.
        var retireAt: UInt64?
    }

    /// One state change, for Protection (next-hop liveness) and the event log.
    struct Change {
        var key: Key
        var transition: BFDSession.Transition
        var session: BFDSession
    }

    private(set) var entries: [Entry] = []
    private var index: [Key: Int] = [:]
    private var byDiscriminator: [UInt32: Int] = [:]
    private var nextDiscriminator: UInt32
    private var usedPorts = Set<UInt16>()
    private let channels: [WorkerChannel]
    /// Discards before a session was found, by reason, and frames for no session.
    private(set) var rejects: [BFDControlPacket.Reject: UInt64] = [:]
    private(set) var noSession: UInt64 = 0
    private var frame = [UInt8](repeating: 0, count: PacketRing.maxFrame)

    init(channels: [WorkerChannel]) {
        self.channels = channels
        // Discriminators differ across restarts, so a peer never mistakes a new session for the old one.
        var t = timespec()
        clock_gettime(CLOCK_REALTIME, &t)
        nextDiscriminator = UInt32(truncatingIfNeeded: t.tv_sec &* 7919 &+ t.tv_nsec / 1000) | 1
    }

    var isEmpty: Bool { entries.isEmpty }

    func entry(_ key: Key) -> Entry? { index[key].map { entries[$0] } }

    /// Takes the sessions the next hops ask for now: kept ones keep their state and discriminators (new timers
    /// start a Poll Sequence while Up), new ones start Down. One no next hop asks for any more goes AdminDown
    /// (diagnostic 7) and keeps saying so for a few seconds before it is removed (RFC 5880 §6.8.16), so the peer
    /// takes it for a decision, not a failure.
    func adopt(_ requests: [Request], nextHops: [Key: [String]], now: UInt64) {
        var old: [Key: Entry] = [:]
        for e in entries { old[e.key] = e }
        var kept: [Entry] = []
        let wanted = Set(requests.map(\.key))
        usedPorts = Set(entries.map(\.path.sourcePort))
        for (n, r) in requests.enumerated() {
            if var e = old[r.key] {
                e.path.sourceMAC = r.sourceMAC; e.path.destinationMAC = r.destinationMAC; e.path.vlan = r.vlan
                if e.retireAt != nil { e.retireAt = nil; e.session.enable(now: now) }
                e.session.reconfigure(r.timers, now: now)
                e.nextHops = nextHops[r.key] ?? []
                kept.append(e)
                continue
            }
            let port = freeSourcePort()
            let d = newDiscriminator(avoiding: Set(old.values.map(\.session.localDiscriminator)))
            let path = BFDPath(sourceMAC: r.sourceMAC, destinationMAC: r.destinationMAC, vlan: r.vlan,
                               local: r.key.local, peer: r.key.peer, sourcePort: port)
            kept.append(Entry(key: r.key, path: path,
                              session: BFDSession(localDiscriminator: d, timers: r.timers, now: now, seed: UInt64(d) &* 31 &+ UInt64(n)),
                              worker: n % max(channels.count, 1), nextHops: nextHops[r.key] ?? []))
        }
        for var e in entries where !wanted.contains(e.key) {
            if e.retireAt == nil {
                e.session.disable(now: now)
                e.retireAt = now + 3 * max(UInt64(e.session.detectionTimeUs) * 1000, 1_000_000_000)
                e.nextHops = []
            }
            kept.append(e)
        }
        entries = kept
        reindex()
        let smallest = entries.filter { $0.retireAt == nil }.map { Int($0.session.timers.desiredMinTxUs / 1000) }.min() ?? 100
        for c in channels { c.pollTimeoutMs.store(Int32(max(1, min(100, smallest))), ordering: .relaxed) }
    }

    private func reindex() {
        index = [:]
        byDiscriminator = [:]
        for (i, e) in entries.enumerated() {
            index[e.key] = i
            byDiscriminator[e.session.localDiscriminator] = i
        }
    }

    private func freeSourcePort() -> UInt16 {
        var p: UInt16 = 49152
        while usedPorts.contains(p) && p < 65535 { p += 1 }
        usedPorts.insert(p)
        return p
    }

    private func newDiscriminator(avoiding: Set<UInt32>) -> UInt32 {
        repeat {
            nextDiscriminator &+= 1
        } while nextDiscriminator == 0 || avoiding.contains(nextDiscriminator) || byDiscriminator[nextDiscriminator] != nil
        return nextDiscriminator
    }

    /// The earliest time a session needs the thread (nil: none).
    var nextDeadline: UInt64? {
        let d = entries.map(\.session.nextDeadline).min()
        let r = entries.compactMap(\.retireAt).min()
        switch (d, r) { case let (a?, b?): return min(a, b); default: return d ?? r }
    }

    /// Reads every punted frame, checks its detection timers and sends what is due. Returns the state changes.
    func run(now: UInt64) -> [Change] {
        var changes: [Change] = []
        for c in channels {
            while c.punted.pop({ port, bytes in receive(port: port, bytes: bytes, now: now, into: &changes) }) {}
        }
        if entries.contains(where: { $0.retireAt.map { $0 <= now } ?? false }) {
            entries.removeAll { $0.retireAt.map { $0 <= now } ?? false }
            reindex()
        }
        for i in entries.indices {
            if let t = entries[i].session.expire(now: now) {
                changes.append(Change(key: entries[i].key, transition: t, session: entries[i].session))
            }
            while let p = entries[i].session.packetDue(now: now) { send(i, p) }
        }
        return changes
    }

    /// The last packets before the forwarding plane stops: every session says Down, Forwarding Plane Reset.
    func goodbye(now: UInt64) {
        for i in entries.indices where entries[i].retireAt == nil
            && (entries[i].session.state != .down || entries[i].session.remoteDiscriminator != 0) {
            let p = entries[i].session.goodbye(now: now)
            send(i, p)
        }
    }

    private func send(_ i: Int, _ p: BFDControlPacket) {
        let bytes = BFDFrame.build(p, path: entries[i].path)
        let c = channels[entries[i].worker]
        if c.outgoing.push(port: entries[i].key.port, bytes) { c.wake.signal() } else { entries[i].txRingFull &+= 1 }
    }

    private func receive(port: Int, bytes: UnsafeRawBufferPointer, now: UInt64, into changes: inout [Change]) {
        let f = Array(bytes)
        let datagram: BFDFrame.Received
        switch BFDFrame.parse(f) {
        case .success(let d): datagram = d
        case .failure(let r): rejects[r, default: 0] &+= 1; return
        }
        let packet: BFDControlPacket
        switch BFDControlPacket.decode(datagram.payload) {
        case .success(let p): packet = p
        case .failure(let r): rejects[r, default: 0] &+= 1; return
        }
        // Your Discriminator selects the session; zero (the peer does not know us yet): the port and addresses.
        let found: Int?
        if packet.yourDiscriminator != 0 {
            found = byDiscriminator[packet.yourDiscriminator]
            if found == nil { rejects[.unknownYourDiscriminator, default: 0] &+= 1; return }
        } else {
            found = index[Key(port: port, vlan: datagram.vlan, local: datagram.destination, peer: datagram.source)]
        }
        guard let i = found, entries[i].key.port == port, entries[i].key.peer == datagram.source else {
            noSession &+= 1
            return
        }
        // GTSM (RFC 5881 §5): a single-hop packet comes with TTL / hop limit 255 or is not from the neighbour.
        guard datagram.ttl == 255 else { entries[i].badTTL &+= 1; rejects[.badTTL, default: 0] &+= 1; return }
        if let t = entries[i].session.receive(packet, now: now) {
            changes.append(Change(key: entries[i].key, transition: t, session: entries[i].session))
        }
        // A Final owed to the peer's Poll goes out at once.
        while let p = entries[i].session.packetDue(now: now) { send(i, p) }
    }
}
