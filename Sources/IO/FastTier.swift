#if canImport(Glibc)
import Glibc
#endif
internal import CXDP
import FIB
import Synchronization

/// The fast tier (bpf/fast_tier.h): transit label switching done by a core port's XDP program itself, before
/// AF_XDP. Every core port's program reads one set of tables (loaded with the first, shared by the others), and
/// `FastTierTables` keeps them in step with the published FIB snapshots.
///
/// The fast tier's ILM points the labels it can switch completely (pop, swap and PHP with at most
/// `MG_FAST_OUT_LABELS` labels) at entries of its table, each with the part of its action a swap reads and its own
/// counters; next-hop records are the snapshot's byte for byte; group buckets and liveness are copied. A label
/// without an entry goes to AF_XDP.
public enum FastTier {
    /// The fast tier's entry for a label, or nil when its frames must go to AF_XDP.
    static func entry(_ e: ILMEntry, action a: Action) -> mg_fast_entry? {
        var f = mg_fast_entry()
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
    public static let maxGroups = Int(MG_FAST_MAX_GROUPS)

    /// Entries the fast tier holds by default (`--fast-tier-entries`): labels it switches at once, each with its
    /// counters (48 bytes, and 16 per CPU).
    public static let defaultEntries = 65_536

    /// Table sizes: `entries` fast-tier entries, every next-hop slot, `maxGroups` (records and buckets in two
    /// halves, one per generation).
    static func sizes(entries: Int) -> mg_fast_sizes {
        mg_fast_sizes(entries: UInt32(max(entries, 1)), next_hops: UInt32(Liveness.capacity),
                      buckets: UInt32(2 * maxGroups * ECMP.bucketCount))
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

    /// `owned`: a duplicate of the program's fd, for a holder that outlives the program (it closes it).
    init(_ program: SteerProgram, _ name: String, owned: Bool = false) throws(AgentError) {
        let fd = mg_prog_map_fd(program.prog, name)
        if fd < 0 { throw AgentError("the XDP program has no map \(name)") }
        self.fd = owned ? dup(fd) : fd
        if self.fd < 0 { throw AgentError("duplicating the fd of map \(name) failed: \(errnoText(errno))") }
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

}

/// An mmapable array map (BPF_F_MMAPABLE) mapped into the agent: the program's values, written in place.
final class MappedArray {
    let base: UnsafeMutableRawPointer
    let bytes: Int, stride: Int, count: Int

    init(_ map: BPFMap) throws(AgentError) {
        var bytes = 0, stride: UInt32 = 0, count: UInt32 = 0
        guard let p = mg_map_mmap(map.fd, &bytes, &stride, &count) else {
            throw AgentError("mapping the fast tier's \(map.name) map failed: \(errnoText(errno))")
        }
        base = p; self.bytes = bytes; self.stride = Int(stride); self.count = Int(count)
    }

    deinit { munmap(base, bytes) }

    /// Value `i` (in range: the caller's indexes come from the sizes the maps were loaded with).
    @inline(__always) func at(_ i: Int) -> UnsafeMutableRawPointer {
        precondition(i >= 0 && i < count, "fast tier map index out of range")
        return base + i * stride
    }
}

/// The fast tier's tables of a running agent (or a test), written through the owner program's maps and read by
/// every program that shares them.
///
/// **One generation per frame.** The label slots, next-hop records and group buckets hold two halves; a frame
/// reads the half that the generation slot (`mg_fast_generation`, one ARRAY_OF_MAPS slot) names, and looks that
/// slot up once. Both halves hold the same tables between syncs. A sync that changes more than one label, or any
/// next-hop record or bucket, writes its change into the half no frame reads, points the slot at the other
/// generation (the kernel returns after an RCU grace period: no frame still reads the old half), then writes the
/// same change into the old half. A sync that changes one label only and nothing else writes that label's 32-bit
/// slot in place, in both halves: a frame sees the old or the new value, each a whole generation.
///
/// `sync` brings them to each published snapshot (on the control thread, or on a builder thread for large
/// commits): only ILM pages whose pointer changed are compared with a copy of what was written, and only changed
/// labels are written, each label's entry (at an index no label points at yet) before the label. Entry indexes
/// follow action slots, whose actions never change; a retired slot's index is reused only after a kernel grace
/// period (a flip, or one waited for when no other index is free). A sync that fails leaves the fast tier paused
/// and everything marked for a full rewrite, which the next sync (a commit, or `retryIfNeeded` from the control
/// loop's timer) does.
public final class FastTierTables {
    let ilm: BPFMap, table: BPFMap, entries: BPFMap, nextHops: BPFMap, liveness: BPFMap, buckets: BPFMap, config: BPFMap
    let devmap: BPFMap, egress: BPFMap, cpu: BPFMap
    let generation: BPFMap, generations: [BPFMap]
    let ifindexes: BPFMap, refused: BPFMap
    /// Why the frames an egress device refuses after a redirect are not counted (bpf/xmit_errors.bpf.c did not
    /// load or attach), or nil when they are.
    public let refusedNotCounted: String?
    /// The generational tables and the entry table, written in place.
    private let ilmSlots: MappedArray, entryTable: MappedArray, records: MappedArray, bucketPairs: MappedArray

    /// What the maps hold, as far as the syncs know (guarded by `lock`).
    private struct Synced {
        /// The directory pages last synced, compared by identity (a page never changes once published, and the one
        /// last synced stays allocated until a later snapshot replaces it), and a copy of the entries written.
        var pages: [UnsafeMutablePointer<ILMEntry>?]
        var shadow: [UnsafeMutablePointer<ILMEntry>?]
        var nextHops: [NextHopRecord] = []
        var buckets: [mg_fast_bucket] = []
        var groupCount = 0
        /// The half frames read (the generation slot points at `generations[half]`).
        var half = 0
        var flips = 0
        /// Action slot -> its entry index: from the sync that first writes the slot until the engine resets it
        /// (after the grace period of the commit that retired it).
        var indexOf: [UInt32: UInt32] = [:]
        var freeIndexes: [UInt32] = []
        /// Reset slots' indexes: free after the next kernel grace period (a frame may have read one just before).
        var retiredIndexes: [UInt32] = []
        var nextIndex: UInt32 = 0
        /// Labels the fast tier could switch but had no entry for: tried again at every sync.
        var waiting: Set<UInt32> = []
        /// Labels whose ILM slot points at an entry (one bit per label): what the map holds, without asking it.
        var fast = [UInt64](repeating: 0, count: Int(MG_FAST_ILM_SIZE) / 64)
        var labels = 0
        var lastSyncWrites = 0

        func isFast(_ label: UInt32) -> Bool { fast[Int(label >> 6)] & (1 << UInt64(label & 63)) != 0 }
        mutating func setFast(_ label: UInt32, _ on: Bool) {
            if on { fast[Int(label >> 6)] |= 1 << UInt64(label & 63) } else { fast[Int(label >> 6)] &= ~(1 << UInt64(label & 63)) }
        }
        var hasFreeIndex: Bool { !freeIndexes.isEmpty || !retiredIndexes.isEmpty }
    }
    private let state: Mutex<Synced>
    /// What `info` and the control loop read without waiting for a sync (a builder thread's may take seconds).
    private struct Stats {
        var labels = 0, waiting = 0, lastSyncWrites = 0, entriesInUse = 0, flips = 0
        var hasFreeEntry = true, tooManyGroups = false
        /// A sync failed (or a liveness write did): everything is rewritten by the next one.
        var owed = false
    }
    private let stats = Mutex<Stats>(Stats())
    /// The shared config map's value, and the egress ports (any thread: control, builder, metrics, protection).
    private struct Shared {
        var config = mg_fast_config()
        var redirectPorts: Set<Int> = []
        /// Kept stepped aside whatever the syncs do (`forceOff`).
        var forcedOff = false
    }
    private let shared = Mutex<Shared>(Shared())
    /// The engine's liveness array (shared by its snapshots), and the lock that makes "read it, write the map" one
    /// step for the sync and the protection thread, so the map ends with the array's last value.
    private let livenessLock = Mutex<(array: UnsafeMutablePointer<UInt8>?, written: [UInt8])>((nil, []))

    /// Entries of the fast tier's table (`--fast-tier-entries`).
    public let capacity: Int
    /// Next-hop slots and group buckets in one half.
    private let halfRecords: Int, halfBuckets: Int

    /// Bytes of the fast tier's maps (all preallocated by the kernel at load): the label slots, the entry table,
    /// the per-CPU entry counters, next hops (two halves), liveness, buckets (two halves) and the per-CPU port block.
    public var mapBytes: Int {
        let cpus = Int(mg_possible_cpus())
        return ilmSlots.count * ilmSlots.stride + entryTable.count * entryTable.stride
            + capacity * MemoryLayout<mg_fast_counter>.stride * cpus
            + records.count * records.stride + Liveness.capacity * 8 + bucketPairs.count * bucketPairs.stride
            + MemoryLayout<mg_fast_cpu>.stride * cpus
    }

    public init(owner: SteerProgram, capacity: Int) throws(AgentError) {
        self.capacity = capacity
        ilm = try BPFMap(owner, "mg_fast_ilm", owned: true); table = try BPFMap(owner, "mg_fast_table", owned: true)
        entries = try BPFMap(owner, "mg_fast_entries", owned: true)
        nextHops = try BPFMap(owner, "mg_fast_next_hops", owned: true); liveness = try BPFMap(owner, "mg_fast_liveness", owned: true)
        buckets = try BPFMap(owner, "mg_fast_buckets", owned: true); config = try BPFMap(owner, "mg_fast_config", owned: true)
        devmap = try BPFMap(owner, "mg_fast_tx", owned: true); egress = try BPFMap(owner, "mg_fast_egress", owned: true)
        cpu = try BPFMap(owner, "mg_fast_cpu", owned: true)
        generation = try BPFMap(owner, "mg_fast_generation", owned: true)
        generations = [try BPFMap(owner, "mg_fast_gen0", owned: true), try BPFMap(owner, "mg_fast_gen1", owned: true)]
        ifindexes = try BPFMap(owner, "mg_fast_ifindex", owned: true)
        refused = try BPFMap(owner, "mg_fast_refused", owned: true)
        // The counters count the agent's own namespace only (tracepoints fire for every one).
        var st = stat()
        guard stat("/proc/self/ns/net", &st) == 0 else {
            throw AgentError("reading the agent's network namespace (/proc/self/ns/net) failed: \(errnoText(errno))")
        }
        try BPFMap(owner, "mg_fast_netns").update(UInt32(0), UInt32(truncatingIfNeeded: st.st_ino))
        var why: String? = nil
        do throws(AgentError) { try owner.countRefusedRedirects() } catch { why = error.description }
        refusedNotCounted = why
        ilmSlots = try MappedArray(ilm); entryTable = try MappedArray(table)
        records = try MappedArray(nextHops); bucketPairs = try MappedArray(buckets)
        halfRecords = records.count / 2; halfBuckets = bucketPairs.count / 2
        guard ilmSlots.count == Int(MG_FAST_ILM_SIZE), entryTable.count >= capacity,
              halfRecords >= Liveness.capacity, halfBuckets >= FastTier.maxGroups * ECMP.bucketCount else {
            throw AgentError("the fast tier's maps are smaller than its tables (loaded without fast-tier sizes)")
        }
        state = Mutex(Synced(pages: [UnsafeMutablePointer<ILMEntry>?](repeating: nil, count: ILM.directorySize),
                             shadow: [UnsafeMutablePointer<ILMEntry>?](repeating: nil, count: ILM.directorySize)))
        for h in 0..<2 {
            try generations[h].update(UInt32(0), mg_fast_generation(half: UInt32(h), next_hop_base: UInt32(h * halfRecords),
                                                                    bucket_base: UInt32(h * halfBuckets), pad: 0))
        }
        try setGeneration(0)
    }

    deinit {
        state.withLock { s in for p in s.shadow { p?.deallocate() } }
        for m in [ilm, table, entries, nextHops, liveness, buckets, config, devmap, egress, cpu, generation, ifindexes,
                  refused] + generations {
            close(m.fd)
        }
    }

    /// Points the generation slot at half `h`; returns after a kernel RCU grace period.
    private func setGeneration(_ h: Int) throws(AgentError) {
        let rc = mg_map_set_inner(generation.fd, generations[h].fd)
        if rc != 0 { throw AgentError("switching the fast tier's generation failed: \(errnoText(rc))") }
    }

    /// Changes the shared config and writes it.
    private func setConfig(_ change: (inout mg_fast_config) -> Void) throws(AgentError) {
        try shared.withLock { (s: inout Shared) throws(AgentError) in
            var c = s.config
            change(&c)
            try config.update(UInt32(0), c)
            s.config = c
        }
    }

    /// Every frame to AF_XDP until a sync succeeds.
    public func pause() throws(AgentError) { try setConfig { $0.paused = 1 } }

    /// Every frame to AF_XDP for good (the agent cannot run the fast tier's periodic checks).
    public func forceOff() throws(AgentError) {
        shared.withLock { $0.forcedOff = true }
        try setConfig { $0.paused = 1 }
    }

    /// Labels the fast tier switches now; labels it could switch but has no entry for; label writes of the last
    /// sync; entries in use (action slots with an entry, live or retired and not yet reset); generation switches
    /// so far; whether a sync is owed.
    public var labels: Int { stats.withLock { $0.labels } }
    public var labelsWithoutEntry: Int { stats.withLock { $0.waiting } }
    public var lastSyncWrites: Int { stats.withLock { $0.lastSyncWrites } }
    public var entriesInUse: Int { stats.withLock { $0.entriesInUse } }
    public var generationSwitches: Int { stats.withLock { $0.flips } }
    /// A sync is owed: one failed, or labels wait for an entry and one is free.
    public var needsSync: Bool { stats.withLock { $0.owed || ($0.waiting > 0 && $0.hasFreeEntry) } }
    /// True while the FIB has more groups than the fast tier holds (every frame goes to AF_XDP then).
    public var tooManyGroups: Bool { stats.withLock { $0.tooManyGroups } }

    private func publishStats(_ s: Synced, owed: Bool) {
        let free = s.hasFreeIndex || Int(s.nextIndex) < capacity
        stats.withLock {
            $0 = Stats(labels: s.labels, waiting: s.waiting.count, lastSyncWrites: s.lastSyncWrites,
                       entriesInUse: s.indexOf.count, flips: s.flips, hasFreeEntry: free,
                       tooManyGroups: s.groupCount > FastTier.maxGroups, owed: owed)
        }
    }
    /// Egress ports (by index) that take redirected frames.
    public var redirectPorts: Set<Int> { shared.withLock { $0.redirectPorts } }

    /// Brings the tables to `fib`. Call with every snapshot published, before its grace period ends.
    public func sync(_ fib: FIBSnapshot) throws(AgentError) {
        try state.withLock { (s: inout Synced) throws(AgentError) in
            do throws(AgentError) {
                try syncLocked(fib, &s, full: stats.withLock { $0.owed })
                publishStats(s, owed: false)
            } catch {
                // Whatever was half written is rewritten next time; until then every frame goes to AF_XDP.
                try? setConfig { $0.paused = 1 }
                publishStats(s, owed: true)
                throw error
            }
        }
    }

    /// The entry index of an action slot, allocated (with zeroed counters) on first use; nil when the table is full.
    private func index(for slot: UInt32, _ s: inout Synced) throws(AgentError) -> UInt32? {
        if let i = s.indexOf[slot] { return i }
        if s.freeIndexes.isEmpty && Int(s.nextIndex) >= capacity && !s.retiredIndexes.isEmpty {
            // Reset slots' indexes wait for a grace period: wait for one now rather than leave the label on AF_XDP.
            try setGeneration(s.half)
            s.freeIndexes += s.retiredIndexes
            s.retiredIndexes = []
        }
        let i: UInt32
        if let f = s.freeIndexes.last { i = f } else {
            guard Int(s.nextIndex) < capacity else { return nil }
            i = s.nextIndex
        }
        try entries.update(i, perCPU: [mg_fast_counter](repeating: mg_fast_counter(), count: Int(mg_possible_cpus())))
        if s.freeIndexes.last == i { s.freeIndexes.removeLast() } else { s.nextIndex += 1 }
        s.indexOf[slot] = i
        return i
    }

    /// Plans one label: writes its entry (at an index no label points at, or the same entry again) when the fast
    /// tier can switch it and has an entry, and returns the label slot's new value (index + 1, or 0), or nil when
    /// the slot stays as it is.
    private func plan(label: UInt32, _ e: ILMEntry, _ fib: FIBSnapshot, wasFast: Bool, _ s: inout Synced) throws(AgentError) -> UInt32? {
        var value: UInt32? = nil
        s.waiting.remove(label)
        if e.operation != .none, var f = FastTier.entry(e, action: fib.actions[Int(e.action.rawValue)]) {
            if let index = try index(for: e.action.rawValue, &s) {
                f.index = index
                entryTable.at(Int(index)).storeBytes(of: f, as: mg_fast_entry.self)
                value = index + 1
            } else {
                s.waiting.insert(label)
            }
        }
        if value == nil && wasFast { value = 0 }
        let fast = (value ?? 0) != 0
        s.labels += (fast ? 1 : 0) - (wasFast ? 1 : 0)
        s.setFast(label, fast)
        return value
    }

    /// One sync's writes to the generational tables.
    private struct Change {
        var labels: [(label: UInt32, value: UInt32)] = []
        var records: [Int] = []
        var buckets: [Int] = []
        /// Every label slot of the half is cleared first (a full rewrite).
        var clear = false
    }

    /// Writes `c` into half `h` (no frame reads it, or `c` is one label).
    private func write(_ c: Change, half h: Int, _ s: Synced) {
        if c.clear {
            for label in 0..<ilmSlots.count { mg_store_u32(ilmSlots.at(label).assumingMemoryBound(to: UInt32.self) + h, 0) }
        }
        for (label, value) in c.labels {
            mg_store_u32(ilmSlots.at(Int(label)).assumingMemoryBound(to: UInt32.self) + h, value)
        }
        for i in c.records { records.at(h * halfRecords + i).storeBytes(of: s.nextHops[i], as: NextHopRecord.self) }
        for i in c.buckets { bucketPairs.at(h * halfBuckets + i).storeBytes(of: s.buckets[i], as: mg_fast_bucket.self) }
    }

    private func syncLocked(_ fib: FIBSnapshot, _ s: inout Synced, full: Bool) throws(AgentError) {
        let tooMany = fib.groupCount > FastTier.maxGroups
        let off = shared.withLock { $0.forcedOff }
        // Stepped aside before anything is written when the tables cannot hold this FIB (its buckets are not
        // written) or everything is rewritten (a failed sync left entries that labels of the active half may reach).
        if tooMany || off || full { try setConfig { $0.paused = 1 } }
        var c = Change()
        c.clear = full
        // Next hops and groups: the records and bucket pairs that differ from what was written.
        let newRecords = Array(UnsafeBufferPointer(start: fib.nextHops, count: min(fib.nextHopCount, halfRecords)))
        var pairs: [mg_fast_bucket] = []
        if fib.groupCount <= FastTier.maxGroups {
            let n = fib.groupCount * ECMP.bucketCount
            pairs.reserveCapacity(n)
            for i in 0..<n { pairs.append(mg_fast_bucket(primary: fib.groupBuckets[i], second: fib.groupBuckets[n + i])) }
        }
        func same(_ a: NextHopRecord, _ b: NextHopRecord) -> Bool {
            withUnsafeBytes(of: a) { x in withUnsafeBytes(of: b) { y in memcmp(x.baseAddress!, y.baseAddress!, x.count) == 0 } }
        }
        c.records = (0..<newRecords.count).filter { i in full || i >= s.nextHops.count || !same(newRecords[i], s.nextHops[i]) }
        c.buckets = (0..<pairs.count).filter { i in
            full || i >= s.buckets.count || pairs[i].primary != s.buckets[i].primary || pairs[i].second != s.buckets[i].second
        }
        try writeLiveness(fib, full: full)
        if full {
            // Every label again, from nothing: the halves' label slots are cleared before they are written.
            for d in 0..<ILM.directorySize { s.pages[d] = nil }
            for w in s.fast.indices { s.fast[w] = 0 }
            s.labels = 0
        }
        for d in 0..<ILM.directorySize {
            let page = fib.ilmDirectory[d]
            if page == s.pages[d] { continue }
            let copy = s.shadow[d] ?? {
                let p = UnsafeMutablePointer<ILMEntry>.allocate(capacity: ILM.pageSize)
                p.initialize(repeating: .empty, count: ILM.pageSize)
                return p
            }()
            s.shadow[d] = copy
            for i in 0..<ILM.pageSize {
                let new = page[i], old = copy[i]
                let same = new.action == old.action && new.operation == old.operation && new.flags == old.flags
                    && new.payload == old.payload
                let label = UInt32(d << ILM.pageBits | i)
                if label < 16 || (same && !full) { continue }
                let wasFast = s.isFast(label)
                if new.operation == .none && !wasFast { copy[i] = new; s.waiting.remove(label); continue }
                if let v = try plan(label: label, new, fib, wasFast: wasFast, &s) { c.labels.append((label, v)) }
                copy[i] = new
            }
            s.pages[d] = page
        }
        // Labels that had no entry: entries freed since (reset slots) may take them now, until none is left.
        if !s.waiting.isEmpty && (s.hasFreeIndex || Int(s.nextIndex) < capacity) {
            for label in Array(s.waiting) {
                if !s.hasFreeIndex && Int(s.nextIndex) >= capacity { break }
                if let v = try plan(label: label, fib.ilm(label), fib, wasFast: false, &s) { c.labels.append((label, v)) }
            }
        }
        s.nextHops = newRecords; s.buckets = pairs; s.groupCount = fib.groupCount
        if full || !c.records.isEmpty || !c.buckets.isEmpty || c.labels.count > 1 {
            // A new generation: the change into the half no frame reads, the switch, then the same into the old.
            let next = 1 - s.half
            write(c, half: next, s)
            try setGeneration(next)
            write(c, half: s.half, s)
            s.half = next
            s.flips += 1
            s.freeIndexes += s.retiredIndexes
            s.retiredIndexes = []
        } else if !c.labels.isEmpty {
            // One label: its slot in both halves, the one frames read first.
            write(c, half: s.half, s)
            write(c, half: 1 - s.half, s)
        }
        try setConfig { $0.paused = tooMany || off ? 1 : 0 }
        s.lastSyncWrites = c.labels.count
    }

    /// A sync owed (one failed, or labels wait for entries): done now, from the snapshot the workers use. Only
    /// while nothing else publishes (the caller checks that no builder thread owns the engine).
    public func retryIfNeeded(_ fib: FIBSnapshot) throws(AgentError) {
        if needsSync { try sync(fib) }
    }

    /// Whether the fast tier switches `label` now: its slot in the half frames read points at an entry.
    public func switches(label: UInt32) -> Bool {
        guard label < MG_FAST_ILM_SIZE else { return false }
        let h = state.withLock { $0.half }
        return ilmSlots.at(Int(label)).load(fromByteOffset: 4 * h, as: UInt32.self) != 0
    }

    /// Whether both halves hold the same tables (between syncs they must): the label slots, the records and
    /// buckets of the last synced FIB.
    func halvesAgree() -> Bool {
        state.withLock { s in
            for label in 0..<ilmSlots.count {
                let p = ilmSlots.at(label)
                if p.load(as: UInt32.self) != p.load(fromByteOffset: 4, as: UInt32.self) { return false }
            }
            for i in 0..<s.nextHops.count where memcmp(records.at(i), records.at(halfRecords + i), MemoryLayout<NextHopRecord>.size) != 0 {
                return false
            }
            for i in 0..<s.buckets.count where memcmp(bucketPairs.at(i), bucketPairs.at(halfBuckets + i), 8) != 0 { return false }
            return true
        }
    }

    /// Copies the engine's liveness (0 up) for every next-hop slot, under the lock `setLiveness` takes.
    private func writeLiveness(_ fib: FIBSnapshot, full: Bool) throws(AgentError) {
        try livenessLock.withLock { (l: inout (array: UnsafeMutablePointer<UInt8>?, written: [UInt8])) throws(AgentError) in
            l.array = fib.liveness
            if full || l.written.count != Liveness.capacity { l.written = [UInt8](repeating: 0xFF, count: Liveness.capacity) }
            for slot in 0..<fib.nextHopCount where l.written[slot] != fib.liveness[slot] {
                let v = fib.liveness[slot]
                l.written[slot] = 0xFF        // unknown until written
                try liveness.update(UInt32(slot), UInt32(v))
                l.written[slot] = v
            }
        }
    }

    /// A next hop's liveness changed (the protection thread, after writing the engine's array): the map gets the
    /// array's value. If the write fails, the fast tier pauses rather than send to a dead next hop.
    public func setLiveness(slot: Int) {
        let ok: Bool = livenessLock.withLock { l in
            guard let array = l.array, slot >= 0 && slot < Liveness.capacity && slot < l.written.count else { return true }
            let v = array[slot]
            l.written[slot] = 0xFF
            guard (try? liveness.update(UInt32(slot), UInt32(v))) != nil else { return false }
            l.written[slot] = v
            return true
        }
        if !ok {
            // Not sending to a next hop that may be dead: step aside until a full sync (the timer's) succeeds.
            stats.withLock { $0.owed = true }
            try? pause()
        }
    }

    /// While a trace is armed every frame goes to AF_XDP, where the trace records it.
    public func setTraceArmed(_ armed: Bool) throws(AgentError) {
        let v: UInt32 = armed ? 1 : 0
        if shared.withLock({ $0.config.trace_armed }) == v { return }
        try setConfig { $0.trace_armed = v }
    }

    /// Whether port `index` (device `ifindex`) takes redirected frames; the fast tier redirects only to those.
    /// The devmap entry stays once written (a frame already past the check still has somewhere to go).
    public func setEgress(port index: Int, ifindex: Int32, takesRedirects: Bool) throws(AgentError) {
        try shared.withLock { (s: inout Shared) throws(AgentError) in
            if takesRedirects == s.redirectPorts.contains(index) { return }
            if takesRedirects {
                try devmap.update(UInt32(index), UInt32(bitPattern: ifindex))
                try egress.update(UInt32(index), UInt32(1))
                s.redirectPorts.insert(index)
            } else {
                try egress.update(UInt32(index), UInt32(0))
                s.redirectPorts.remove(index)
            }
        }
    }

    /// One action slot's fast-tier packets and bytes (summed over CPUs).
    public func entryCounter(slot: Int) -> (packets: UInt64, bytes: UInt64) {
        guard let index = state.withLock({ $0.indexOf[UInt32(truncatingIfNeeded: slot)] }) else { return (0, 0) }
        return entries.withPerCPU(index, valueSize: MemoryLayout<mg_fast_counter>.size) { raw, stride, cpus in
            (0..<cpus).reduce(into: (UInt64(0), UInt64(0))) { sum, c in
                let v = raw.load(fromByteOffset: c * stride, as: mg_fast_counter.self)
                sum.0 &+= v.packets; sum.1 &+= v.bytes
            }
        } ?? (0, 0)
    }

    /// A retired slot's counters are folded and reset (after the grace period of the commit that retired it, so
    /// no label points at its entry any more): its entry is free again after the next kernel grace period.
    public func resetEntryCounter(slot: Int) {
        state.withLock { s in
            guard let index = s.indexOf.removeValue(forKey: UInt32(truncatingIfNeeded: slot)) else { return }
            s.retiredIndexes.append(index)
            let count = s.indexOf.count
            stats.withLock { $0.entriesInUse = count; $0.hasFreeEntry = true }
        }
    }

    /// Names port `index`'s device, so that its frames the egress device refuses are counted on it.
    public func setPort(_ index: Int, ifindex: Int32) throws(AgentError) {
        try ifindexes.update(UInt32(bitPattern: ifindex), UInt32(index))
    }

    /// Frames the fast tier redirected that the egress device refused, for port `index` (summed over CPUs): those
    /// that arrived on it (drops), and those redirected to it (counted as sent, never left). nil when the map
    /// cannot be read.
    public func refusedRedirects(_ index: Int) -> (dropped: UInt64, notSent: UInt64)? {
        guard index >= 0 && index < Int(MG_FAST_MAX_PORTS) else { return nil }
        return refused.withPerCPU(UInt32(index), valueSize: MemoryLayout<mg_fast_refused>.size) { raw, stride, cpus in
            (0..<cpus).reduce(into: (dropped: UInt64(0), notSent: UInt64(0))) { sum, c in
                let v = raw.load(fromByteOffset: c * stride, as: mg_fast_refused.self)
                sum.dropped &+= v.dropped; sum.notSent &+= v.not_sent
            }
        }
    }

    /// A port's fast-tier counters (summed over CPUs): received and sent by the fast tier.
    public func portCounters(_ index: Int) -> (rxPackets: UInt64, rxBytes: UInt64, txPackets: UInt64, txBytes: UInt64) {
        var sum = (UInt64(0), UInt64(0), UInt64(0), UInt64(0))
        guard index >= 0 && index < Int(MG_FAST_MAX_PORTS) else { return sum }
        let offset = MemoryLayout<mg_fast_cpu>.offset(of: \mg_fast_cpu.ports)! + index * MemoryLayout<mg_fast_port_counters>.stride
        _ = cpu.withPerCPU(UInt32(0), valueSize: MemoryLayout<mg_fast_cpu>.size) { raw, stride, cpus in
            for c in 0..<cpus {
                let v = raw.load(fromByteOffset: c * stride + offset, as: mg_fast_port_counters.self)
                sum.0 &+= v.rx_packets; sum.1 &+= v.rx_bytes; sum.2 &+= v.tx_packets; sum.3 &+= v.tx_bytes
            }
        }
        return sum
    }
}

extension BPFMap {
    /// Reads a per-CPU value (one per possible CPU, each `valueSize` rounded up to 8 bytes) and hands it to `body`
    /// with its stride and CPU count; nil when the key is not there.
    func withPerCPU<R>(_ key: UInt32, valueSize: Int, _ body: (UnsafeMutableRawBufferPointer, Int, Int) -> R) -> R? {
        let cpus = Int(mg_possible_cpus())
        let stride = (valueSize + 7) & ~7
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: stride * cpus, alignment: 8)
        defer { buffer.deallocate() }
        var k = key
        let rc = withUnsafeBytes(of: &k) { mg_map_lookup(fd, $0.baseAddress, buffer.baseAddress) }
        if rc != 0 { return nil }
        return body(buffer, stride, cpus)
    }

    /// Writes a whole per-CPU value back (after `withPerCPU` changed it).
    func writePerCPU(_ key: UInt32, _ buffer: UnsafeMutableRawBufferPointer) -> Int32 {
        var k = key
        return withUnsafeBytes(of: &k) { mg_map_update(fd, $0.baseAddress, buffer.baseAddress) }
    }
}

extension SteerProgram {
    /// Runs the program once on `frame` (BPF_PROG_TEST_RUN): the XDP action, the frame as the program left it,
    /// and what the fast tier recorded (nil when it did not look at the frame).
    public func testRunFast(_ frame: [UInt8], ifindex: UInt32 = 1) throws(AgentError)
        -> (action: UInt32, bytes: [UInt8], verdict: FastTierVerdict?) {
        let cpu = try BPFMap(self, "mg_fast_cpu")
        let size = MemoryLayout<mg_fast_cpu>.size
        let unset: UInt32 = 0xFFFF_FFFF
        // Mark every CPU's record unset (the rest of the block, the port counters, is written back as it was).
        _ = cpu.withPerCPU(0, valueSize: size) { raw, stride, cpus in
            for c in 0..<cpus { raw.storeBytes(of: unset, toByteOffset: c * stride, as: UInt32.self) }
            return cpu.writePerCPU(0, raw)
        }
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
        let seen: mg_fast_last? = cpu.withPerCPU(0, valueSize: size) { raw, stride, cpus in
            (0..<cpus).lazy.map { raw.load(fromByteOffset: $0 * stride, as: mg_fast_last.self) }.first { $0.verdict != unset }
        } ?? nil
        return (action, Array(out.prefix(Int(outSize))),
                seen.map { FastTierVerdict(forwarded: $0.verdict == MG_FAST_FORWARDED, port: $0.port, why: $0.why) })
    }
}
