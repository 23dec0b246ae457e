#if canImport(Glibc)
import Glibc
#endif
internal import CXDP
import FIB

/// The fast tier (bpf/fast_tier.h): transit label switching done by a core port's XDP program itself, before
/// AF_XDP. Every core port's program reads one set of tables (loaded with the first, shared by the others), and
/// `FastTierTables` keeps them in step with the published FIB snapshots.
///
/// The fast tier's ILM holds only the labels it can switch completely (pop, swap and PHP with at most
/// `MG_FAST_OUT_LABELS` labels), each with the part of its action a swap reads; next-hop records are the
/// snapshot's byte for byte; group buckets and liveness are copied. A label not in it goes to AF_XDP.
public enum FastTier {
    /// The fast tier's entry for a label, or nil when its frames must go to AF_XDP.
    static func entry(_ e: ILMEntry, action a: Action) -> mg_fast_entry? {
        var f = mg_fast_entry()
        f.action = e.action.rawValue
        switch e.operation {
        case .pop:
            f.op = Operation.pop.rawValue
            f.flags = e.flags
            return f
        case .swap:
            let outLabels = Int(MG_FAST_OUT_LABELS)
            guard a.operation == .swap, Int(a.labelCount) <= outLabels, Int(a.backupLabelCount) <= outLabels else { return nil }
            f.op = Operation.swap.rawValue
            f.flags = a.flags
            f.label_count = a.labelCount
            f.payload = a.payload.rawValue
            f.backup_label_count = UInt8(a.backupLabelCount)
            f.target = a.target.rawValue
            let total = Int(a.labelCount) + Int(a.backupLabelCount)
            withUnsafeBytes(of: a.area) { area in
                withUnsafeMutableBytes(of: &f.labels) { labels in
                    for i in 0..<total {
                        labels.storeBytes(of: area.load(fromByteOffset: 4 * i, as: UInt32.self), toByteOffset: 4 * i, as: UInt32.self)
                    }
                }
            }
            return f
        default:
            return nil
        }
    }

    /// Groups the fast tier's bucket table holds; a FIB with more keeps every frame on AF_XDP (reported).
    public static let maxGroups = 128

    /// Table sizes: `entries` labels and counted slots (allocated as used), every next-hop slot, `maxGroups`.
    static func sizes(entries: Int) -> mg_fast_sizes {
        mg_fast_sizes(entries: UInt32(max(entries, 1)), next_hops: UInt32(Liveness.capacity),
                      buckets: UInt32(maxGroups * ECMP.bucketCount * 2))
    }

    /// True when the kernel says `ifindex` takes frames redirected by XDP (NETDEV_XDP_ACT_NDO_XMIT; a veth only
    /// while its peer has an XDP program or GRO on). nil when the kernel does not say.
    public static func takesRedirects(ifindex: Int32) -> Bool? {
        var features: UInt64 = 0
        let rc = mg_xdp_features(ifindex, &features)
        if rc != 0 { return nil }
        return features & UInt64(MG_XDP_ACT_NDO_XMIT) != 0
    }
}

/// What the program recorded for the last MPLS frame its fast tier looked at.
public struct FastTierVerdict: Equatable, Sendable {
    /// Forwarded by the fast tier (XDP_REDIRECT to `port`), or steered to AF_XDP untouched.
    public var forwarded: Bool
    public var port: UInt32
    /// Why it was steered (MG_SLOW_*), 0 when forwarded.
    public var why: UInt32
}

/// One map of a loaded program, by name.
struct BPFMap {
    let fd: Int32
    let name: String

    init(_ program: SteerProgram, _ name: String) throws(AgentError) {
        let fd = mg_prog_map_fd(program.prog, name)
        if fd < 0 { throw AgentError("the XDP program has no map \(name)") }
        self.fd = fd
        self.name = name
    }

    func update<K: BitwiseCopyable, V: BitwiseCopyable>(_ key: K, _ value: V) throws(AgentError) {
        var k = key, v = value
        let rc = withUnsafeBytes(of: &k) { kp in withUnsafeBytes(of: &v) { vp in mg_map_update(fd, kp.baseAddress, vp.baseAddress) } }
        if rc != 0 { throw AgentError("writing the fast tier's \(name) map failed: \(errnoText(rc))") }
    }

    /// Writes a per-CPU value: `values` holds one per possible CPU.
    func update<K: BitwiseCopyable, V: BitwiseCopyable>(_ key: K, perCPU values: [V]) throws(AgentError) {
        var k = key
        let rc = withUnsafeBytes(of: &k) { kp in values.withUnsafeBytes { mg_map_update(fd, kp.baseAddress, $0.baseAddress) } }
        if rc != 0 { throw AgentError("writing the fast tier's \(name) map failed: \(errnoText(rc))") }
    }

    /// Deletes a key; a key that is not there is fine.
    func delete<K: BitwiseCopyable>(_ key: K) {
        var k = key
        _ = withUnsafeBytes(of: &k) { mg_map_delete(fd, $0.baseAddress) }
    }

    /// A per-CPU value, one per possible CPU; nil when the key is not there.
    func perCPU<K: BitwiseCopyable, V: BitwiseCopyable>(_ key: K, zero: V) -> [V]? {
        var k = key
        var values = [V](repeating: zero, count: Int(mg_possible_cpus()))
        let rc = withUnsafeBytes(of: &k) { kp in values.withUnsafeMutableBytes { mg_map_lookup(fd, kp.baseAddress, $0.baseAddress) } }
        return rc == 0 ? values : nil
    }
}

/// The fast tier's tables of a running agent (or a test), written through the program that owns them and read by
/// every program that shares them. Synced from each published snapshot by `sync`: only changed ILM pages are
/// compared, only changed labels written (the action's part first, then the label); next hops and groups are
/// rewritten when the snapshot has new tables for them, with the fast tier paused meanwhile.
public final class FastTierTables {
    let ilm: BPFMap, entries: BPFMap, nextHops: BPFMap, liveness: BPFMap, buckets: BPFMap, config: BPFMap
    let devmap: BPFMap, egress: BPFMap, ports: BPFMap
    /// The directory pages last synced (compared by identity: a page is never changed once published, and the one
    /// last synced stays allocated until a later snapshot replaces it) and a copy of their entries.
    private var pages: [UnsafeMutablePointer<ILMEntry>]
    private var shadow: [UnsafeMutablePointer<ILMEntry>?]
    private var syncedNextHops: UnsafeMutablePointer<NextHopRecord>?
    private var syncedNextHopCount = -1
    private var syncedBuckets: UnsafeMutablePointer<UInt32>?
    private var syncedGroupCount = -1
    private var current = mg_fast_config()
    /// Labels the fast tier switches now.
    public private(set) var labels = 0
    /// Label writes and deletes of the last sync, and of all syncs.
    public private(set) var lastSyncWrites = 0
    public private(set) var totalWrites = 0
    /// True while the FIB has more groups than the fast tier holds (every frame goes to AF_XDP then).
    public private(set) var tooManyGroups = false
    /// Egress ports (by index) that take redirected frames.
    public private(set) var redirectPorts: Set<Int> = []

    public init(owner: SteerProgram) throws(AgentError) {
        ilm = try BPFMap(owner, "mg_fast_ilm"); entries = try BPFMap(owner, "mg_fast_entries")
        nextHops = try BPFMap(owner, "mg_fast_next_hops"); liveness = try BPFMap(owner, "mg_fast_liveness")
        buckets = try BPFMap(owner, "mg_fast_buckets"); config = try BPFMap(owner, "mg_fast_config")
        devmap = try BPFMap(owner, "mg_fast_tx"); egress = try BPFMap(owner, "mg_fast_egress")
        ports = try BPFMap(owner, "mg_fast_ports")
        pages = [UnsafeMutablePointer<ILMEntry>](repeating: ILM.emptyPage, count: ILM.directorySize)
        shadow = [UnsafeMutablePointer<ILMEntry>?](repeating: nil, count: ILM.directorySize)
    }

    deinit { for p in shadow { p?.deallocate() } }

    private func writeConfig() throws(AgentError) { try config.update(UInt32(0), current) }

    /// Brings the tables to `fib`. Call with every snapshot published, before its grace period ends.
    public func sync(_ fib: FIBSnapshot) throws(AgentError) {
        var writes = 0
        let nhChanged = fib.nextHops != syncedNextHops || fib.nextHopCount != syncedNextHopCount
        let groupsChanged = fib.groupBuckets != syncedBuckets || fib.groupCount != syncedGroupCount
        if nhChanged || groupsChanged {
            // Pause: frames go to AF_XDP (which reads one snapshot per frame) while records and buckets change
            // together. XDP programs run for well under a microsecond; 1 ms covers any frame already past the check.
            current.paused = 1
            try writeConfig()
            usleep(1000)
            for slot in 0..<fib.nextHopCount { try nextHops.update(UInt32(slot), fib.nextHops[slot]) }
            for slot in 0..<fib.nextHopCount { try liveness.update(UInt32(slot), UInt32(fib.liveness[slot])) }
            tooManyGroups = fib.groupCount > FastTier.maxGroups
            if !tooManyGroups {
                for i in 0..<(fib.groupCount * ECMP.bucketCount * 2) { try buckets.update(UInt32(i), fib.groupBuckets[i]) }
            }
            current.group_count = UInt32(fib.groupCount)
            syncedNextHops = fib.nextHops; syncedNextHopCount = fib.nextHopCount
            syncedBuckets = fib.groupBuckets; syncedGroupCount = fib.groupCount
        }
        for d in 0..<ILM.directorySize {
            let page = fib.ilmDirectory[d]
            if page == pages[d] { continue }
            let copy = shadow[d] ?? {
                let p = UnsafeMutablePointer<ILMEntry>.allocate(capacity: ILM.pageSize)
                p.initialize(repeating: .empty, count: ILM.pageSize)
                shadow[d] = p
                return p
            }()
            for i in 0..<ILM.pageSize {
                let new = page[i], old = copy[i]
                if new.action == old.action && new.operation == old.operation && new.flags == old.flags
                    && new.payload == old.payload { continue }
                let label = UInt32(d << ILM.pageBits | i)
                if label < 16 { continue }
                let wasFast = old.operation != .none && ilmHas(label)
                if new.operation != .none, let e = FastTier.entry(new, action: fib.actions[Int(new.action.rawValue)]) {
                    // The slot's counter first (per-CPU zeros), then the label that counts into it.
                    if entries.perCPU(e.action, zero: mg_fast_counter()) == nil {
                        try entries.update(e.action, perCPU: [mg_fast_counter](repeating: mg_fast_counter(), count: Int(mg_possible_cpus())))
                    }
                    try ilm.update(label, e)
                    if !wasFast { labels += 1 }
                } else if wasFast {
                    ilm.delete(label)
                    labels -= 1
                }
                copy[i] = new
                writes += 1
            }
            pages[d] = page
        }
        if current.paused != 0 {
            current.paused = tooManyGroups ? 1 : 0
            try writeConfig()
        } else if syncedGroupCount >= 0 && current.group_count != UInt32(fib.groupCount) {
            current.group_count = UInt32(fib.groupCount)
            try writeConfig()
        }
        lastSyncWrites = writes
        totalWrites += writes
    }

    private func ilmHas(_ label: UInt32) -> Bool {
        var k = label
        var v = mg_fast_entry()
        return withUnsafeBytes(of: &k) { kp in withUnsafeMutableBytes(of: &v) { mg_map_lookup(ilm.fd, kp.baseAddress, $0.baseAddress) } } == 0
    }

    /// Every frame to AF_XDP until the next sync that succeeds (one failed half-way: what it wrote is in the copy,
    /// what it did not is compared again next time).
    public func pause() throws(AgentError) {
        current.paused = 1
        try writeConfig()
    }

    /// A next hop's liveness changed (the protection thread): the fast tier sees it with the pipeline.
    public func setLiveness(slot: Int, down: Bool) {
        try? liveness.update(UInt32(slot), UInt32(down ? Liveness.down : Liveness.up))
    }

    /// While a trace is armed every frame goes to AF_XDP, where the trace records it.
    public func setTraceArmed(_ armed: Bool) throws(AgentError) {
        let v: UInt32 = armed ? 1 : 0
        if current.trace_armed == v { return }
        current.trace_armed = v
        try writeConfig()
    }

    /// Whether port `index` (device `ifindex`) takes redirected frames; the fast tier redirects only to those.
    public func setEgress(port index: Int, ifindex: Int32, takesRedirects: Bool) throws(AgentError) {
        if takesRedirects == redirectPorts.contains(index) { return }
        if takesRedirects {
            try devmap.update(UInt32(index), UInt32(bitPattern: ifindex))
            try egress.update(UInt32(index), UInt32(1))
            redirectPorts.insert(index)
        } else {
            try egress.update(UInt32(index), UInt32(0))
            devmap.delete(UInt32(index))
            redirectPorts.remove(index)
        }
    }

    /// One action slot's fast-tier packets and bytes (summed over CPUs).
    public func entryCounter(slot: Int) -> (packets: UInt64, bytes: UInt64) {
        guard let values = entries.perCPU(UInt32(slot), zero: mg_fast_counter()) else { return (0, 0) }
        return values.reduce(into: (UInt64(0), UInt64(0))) { $0.0 &+= $1.packets; $0.1 &+= $1.bytes }
    }

    /// Forgets a retired slot's counter (after its grace period; the slot's label is gone from the fast tier).
    public func resetEntryCounter(slot: Int) { entries.delete(UInt32(slot)) }

    /// A port's fast-tier counters (summed over CPUs): received and sent by the fast tier.
    public func portCounters(_ index: Int) -> (rxPackets: UInt64, rxBytes: UInt64, txPackets: UInt64, txBytes: UInt64) {
        guard let values = ports.perCPU(UInt32(index), zero: mg_fast_port_counters()) else { return (0, 0, 0, 0) }
        return values.reduce(into: (UInt64(0), UInt64(0), UInt64(0), UInt64(0))) {
            $0.0 &+= $1.rx_packets; $0.1 &+= $1.rx_bytes; $0.2 &+= $1.tx_packets; $0.3 &+= $1.tx_bytes
        }
    }
}

extension SteerProgram {
    /// Runs the program once on `frame` (BPF_PROG_TEST_RUN): the XDP action, the frame as the program left it,
    /// and what the fast tier recorded (nil when it did not look at the frame).
    public func testRunFast(_ frame: [UInt8], ifindex: UInt32 = 1) throws(AgentError)
        -> (action: UInt32, bytes: [UInt8], verdict: FastTierVerdict?) {
        let last = try BPFMap(self, "mg_fast_last")
        let unset = mg_fast_last(verdict: 0xFFFF_FFFF, port: 0, why: 0, pad: 0)
        try last.update(UInt32(0), perCPU: [mg_fast_last](repeating: unset, count: Int(mg_possible_cpus())))
        var out = [UInt8](repeating: 0, count: frame.count + 512)
        var outSize: UInt32 = 0
        var action: UInt32 = 0
        let cap = UInt32(out.count)
        let rc = frame.withUnsafeBytes { f in
            out.withUnsafeMutableBytes { o in
                mg_prog_test_run_out(prog, f.baseAddress, UInt32(f.count), ifindex, 0, o.baseAddress, cap, &outSize, &action)
            }
        }
        if rc != 0 { throw AgentError("BPF_PROG_TEST_RUN failed: \(errnoText(rc))") }
        let seen = last.perCPU(UInt32(0), zero: unset)?.first { $0.verdict != 0xFFFF_FFFF }
        return (action, Array(out.prefix(Int(outSize))),
                seen.map { FastTierVerdict(forwarded: $0.verdict == MG_FAST_FORWARDED, port: $0.port, why: $0.why) })
    }
}
