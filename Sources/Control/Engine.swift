#if canImport(Glibc)
import Glibc
#endif
import Wire
import FIB

/// The key of a FIB element: how apply, delete, dump and counters name it.
public enum EntryKey: Hashable, Sendable, CustomStringConvertible {
    case nextHop(String)
    case ecmpGroup(String)
    case ilm(UInt32)
    case vni(UInt32)
    /// "vrf:prefix/length"
    case ftn(String)
    /// A static MAC of a multipoint VNI.
    case mac(MACKey)

    public var kind: String {
        switch self {
        case .nextHop: return "nextHop"
        case .ecmpGroup: return "ecmpGroup"
        case .ilm: return "ilm"
        case .vni: return "vni"
        case .ftn: return "ftn"
        case .mac: return "mac"
        }
    }

    public var description: String {
        switch self {
        case .nextHop(let n): return "nextHop \(n)"
        case .ecmpGroup(let n): return "ecmpGroup \(n)"
        case .ilm(let l): return "ilm \(l)"
        case .vni(let v): return "vni \(v)"
        case .ftn(let k): return "ftn \(k)"
        case .mac(let k): return "mac \(k)"
        }
    }
}

/// One element of a FIB.
public enum FIBEntry: Sendable, Equatable {
    case nextHop(NextHopSpec)
    case ecmpGroup(ECMPGroupSpec)
    case ilm(ILMEntrySpec)
    case vni(VNIEntrySpec)
    case ftn(FTNEntrySpec)
    case mac(MACEntrySpec)

    public var key: EntryKey {
        switch self {
        case .nextHop(let e): return .nextHop(e.name)
        case .ecmpGroup(let e): return .ecmpGroup(e.name)
        case .ilm(let e): return .ilm(e.label)
        case .vni(let e): return .vni(e.vni)
        case .ftn(let e): return .ftn(e.key)
        case .mac(let e): return .mac(e.key)
        }
    }
}

/// One step of an atomic transaction.
public enum FIBChange: Sendable, Equatable {
    /// The key must not exist.
    case add(FIBEntry)
    /// The key must exist.
    case replace(FIBEntry)
    /// The key must exist and nothing may reference it.
    case delete(EntryKey)
}

/// Why a transaction was refused. `element` names the offending change, e.g. "operations[3] (ilm 100)".
public struct TransactionError: Error, Sendable, CustomStringConvertible {
    public enum Code: Sendable {
        case invalid        // a change is malformed or inconsistent with the FIB
        case notFound       // replace/delete of a missing key
        case exists         // add of an existing key
        case referenced     // delete of a next hop / group still in use
        case staleGeneration
        case tooLarge       // the FIB would exceed a limit
    }
    public var code: Code
    public var element: String
    public var message: String
    /// For `.invalid`: the validation error's kind.
    public var kind: ValidationError.Kind
    public var description: String { element.isEmpty ? message : "\(element): \(message)" }
    public init(_ code: Code, _ element: String, _ message: String, kind: ValidationError.Kind = .rule) {
        self.code = code; self.element = element; self.message = message; self.kind = kind
    }
    /// A refused entry: its validation error.
    public init(_ error: ValidationError) { self.init(.invalid, error.element, error.message, kind: error.kind) }

    /// The same mistake as a validation error (a document compiled offline): exists and referenced become
    /// duplicate and reference, limits stay limits.
    public var validationError: ValidationError {
        let k: ValidationError.Kind
        switch code {
        case .invalid: k = kind
        case .exists: k = .duplicate
        case .notFound, .referenced: k = .reference
        case .tooLarge: k = .limit
        case .staleGeneration: k = .rule
        }
        return ValidationError(element, message, kind: k)
    }
}

/// Reads and resets one action slot's counters summed over the workers (the agent's workers, or nothing).
public protocol EntryCounterStore: AnyObject {
    func read(slot: Int) -> (packets: UInt64, bytes: UInt64)
    func reset(slot: Int)
    /// Zeroes a multipoint VNI's counters (`SegmentCounters`) in every worker: a freed slot, after its grace period.
    func resetSegment(slot: Int)
}

/// The control model: the controller's intent (named next hops, groups and entries), validated transactions over
/// it, and their compilation into `FIBTables` commits. Single-threaded (the control thread).
///
/// Per-entry counters live in the workers, indexed by action slot. A replaced entry gets a new slot; after the
/// grace period the old slot's totals are folded into the entry's running total, so counters survive a replace;
/// a delete drops the running total, so delete + add restarts at zero.
public final class FIBEngine: @unchecked Sendable {
    public let config: InstanceConfig
    public let tables: FIBTables
    public private(set) var generation: UInt64 = 0

    /// Publishes a new snapshot (the agent's atomic store); nil when nothing reads it live (replay, tests).
    public var publish: ((UnsafeMutablePointer<FIBSnapshot>) -> Void)?
    /// Waits until no worker can hold the previous snapshot; nil: nobody reads it.
    public var synchronize: (() -> Void)?
    /// The workers' per-slot counters.
    public weak var counterStore: EntryCounterStore?

    public struct Installed<Spec: Sendable>: Sendable {
        var spec: Spec
        var action: ActionID
    }

    private(set) var nextHops: [String: NextHopSpec] = [:]
    private var nextHopSlot: [String: UInt32] = [:]
    private var freeNextHopSlots: [UInt32] = []
    private var nextHopSlotCount: UInt32 = 0
    private(set) var groups: [String: ECMPGroupSpec] = [:]
    private var groupSlot: [String: UInt32] = [:]
    private var freeGroupSlots: [UInt32] = []
    private var groupSlotCount: UInt32 = 0
    // Sharded, so the state writer's O(1) copy of the intent costs a commit only the shards it touches.
    private(set) var ilm = ShardedMap<UInt32, Installed<ILMEntrySpec>>()
    private(set) var vni = ShardedMap<UInt32, Installed<VNIEntrySpec>>()
    private(set) var ftn = ShardedMap<String, Installed<FTNEntrySpec>>()
    private(set) var macs = ShardedMap<MACKey, MACEntrySpec>()
    /// The static MACs of each multipoint VNI (to check and re-resolve them when the VNI changes).
    private(set) var macsOfVNI: [UInt32: Set<UInt64>] = [:]
    /// Each multipoint VNI's slot (`SegmentHeader.slot`): stable while it stays multipoint.
    private var segmentSlot: [UInt32: UInt32] = [:]
    private var freeSegmentSlots: [UInt32] = []
    private var segmentSlotCount: UInt32 = 0
    /// Changes whenever a multipoint VNI is compiled or removed: the MAC learner needs the new `learningSegments`.
    public private(set) var segmentsVersion: UInt64 = 0
    /// Multipoint VNIs compiled, and counter slots of VNIs that stopped being multipoint, since the last
    /// `takeSegmentChanges` (the learner's incremental update: a commit touching one VNI hands over one). Sets, so an
    /// engine nobody takes them from (a fuzz harness, replay) holds at most one entry per VNI and slot.
    private var changedSegments = Set<UInt32>()
    private var removedSegmentSlots = Set<UInt32>()
    /// How many entries and groups name each next hop or group.
    private var refs: [String: Int] = [:]
    /// The last commits' costs (a window of `CommitStats.window`), for `info` and the benchmarks.
    public private(set) var commitStats = CommitStats()
    /// Counts carried over from slots retired by replaces.
    private var carried: [EntryKey: (packets: UInt64, bytes: UInt64)] = [:]

    private let portNames: Set<String>
    private let vrfNames: [String]
    private let vrfSet: Set<String>
    /// The most entries (ILM + VNI + FTN) a FIB may hold: one action slot each, plus room for a full replace.
    public let maxEntries: Int

    public init(config: InstanceConfig, maxEntries: Int = 2_000_000) throws(ValidationError) {
        try validate(config)
        self.config = config
        self.maxEntries = maxEntries
        portNames = Set(config.ports.map(\.name))
        vrfNames = config.vrfNames
        vrfSet = Set(vrfNames)
        var records: [PortRecord] = []
        var addresses: [IPv6Address] = []
        for p in config.ports {
            let list = (p.role == .dc ? p.vteps : p.addresses).map(IPv6Address.init)
            records.append(PortRecord(mac: p.mac, role: p.role, vrf: UInt16(vrfNames.firstIndex(of: p.vrf)!),
                                      vxlanPort: p.vxlanPort, addressStart: UInt32(addresses.count),
                                      addressCount: UInt16(list.count)))
            addresses += list
        }
        tables = FIBTables(ports: records, addresses: addresses, vrfCount: vrfNames.count, maxActions: 2 * maxEntries + 16)
    }

    /// Frees all FIB memory. Only once nothing reads the snapshot.
    public func release() { tables.deallocateAll() }

    public var entryCount: Int { ilm.count + vni.count + ftn.count }
    public var snapshot: UnsafeMutablePointer<FIBSnapshot> { tables.current }

    // MARK: transactions

    /// Validates `changes` as a whole, in order (each against the state the previous ones leave), then commits
    /// them as one new snapshot. All or nothing: on error nothing changes. Returns the new generation.
    @discardableResult
    public func apply(_ changes: [FIBChange], expectedGeneration: UInt64? = nil,
                      elementName: (Int, FIBChange) -> String = FIBEngine.operationName) throws(TransactionError) -> UInt64 {
        if let g = expectedGeneration, g != generation {
            throw TransactionError(.staleGeneration, "expectedGeneration",
                                   "the FIB is at generation \(generation), not \(g); read it again and retry")
        }
        var overlay = Overlay(engine: self)
        overlay.reserve(changes)
        for (i, c) in changes.enumerated() {
            try overlay.stage(c, elementName(i, c))
        }
        if overlay.entryCount > maxEntries {
            throw TransactionError(.tooLarge, "", "the FIB would hold \(overlay.entryCount) entries; the limit is \(maxEntries)")
        }
        try checkTrieRoom(overlay)
        if !overlay.macs.isEmpty || !overlay.vni.isEmpty || overlay.macDelta != 0 { try overlay.checkMACs() }
        commit(overlay)
        return generation
    }

    /// Refuses a transaction whose route changes could need more trie nodes than the pools have left. A change makes
    /// or copies at most one node per level of its prefix, and a commit copies a node once: the bound is the number of
    /// distinct (VRF, family, level, leading bytes) paths the changes touch, counted only when the quick bound (one per
    /// level per change) does not fit.
    private func checkTrieRoom(_ o: Overlay) throws(TransactionError) {
        guard !o.ftn.isEmpty else { return }
        var specs: [FTNEntrySpec] = []
        specs.reserveCapacity(o.ftn.count)
        for (k, s) in o.ftn { if let e = s ?? ftn[k]?.spec { specs.append(e) } }
        try checkTrieRoom(specs)
    }

    private func checkTrieRoom(_ specs: [FTNEntrySpec]) throws(TransactionError) {
        guard !specs.isEmpty else { return }
        for v6 in [false, true] {
            let room = tables.lpmRoom(v6: v6)
            let mine = specs.filter { $0.prefix.isV6 == v6 && $0.length > 0 }
            var need = mine.reduce(0) { $0 + ($1.length - 1) / 8 + 1 }
            if need > room {
                // A node is named by its VRF, depth and the address bytes above it.
                struct Path: Hashable { var vrf: UInt16; var depth: UInt8; var high: UInt64; var low: UInt64 }
                var paths = Set<Path>()
                paths.reserveCapacity(mine.count * 2)
                for e in mine {
                    let (high, low): (UInt64, UInt64)
                    switch e.prefix {
                    case .v4(let a): (high, low) = (UInt64(a.value) << 32, 0)
                    case .v6(let a): (high, low) = (a.high, a.low)
                    }
                    let vrf = vrfIndex(e.vrf)
                    for d in 0...((e.length - 1) / 8) {
                        let bits = 8 * d
                        let h = bits >= 64 ? high : bits == 0 ? 0 : high & ~(UInt64.max >> UInt64(bits))
                        let l = bits <= 64 ? 0 : bits >= 128 ? low : low & ~(UInt64.max >> UInt64(bits - 64))
                        paths.insert(Path(vrf: vrf, depth: UInt8(d), high: h, low: l))
                    }
                }
                need = paths.count
            }
            if need > room {
                throw TransactionError(.tooLarge, "", "the \(v6 ? "IPv6" : "IPv4") FTN trie would need up to \(need) more "
                                       + "nodes; \(room) are left (fewer or shorter routes fit)")
            }
        }
    }

    public static func operationName(_ i: Int, _ c: FIBChange) -> String {
        switch c {
        case .add(let e), .replace(let e): return "operations[\(i)] (\(e.key))"
        case .delete(let k): return "operations[\(i)] (\(k))"
        }
    }

    /// Replaces the whole FIB with `fib` in one commit (resync end, --fib, state file): entries not in `fib` are
    /// deleted, changed ones replaced, the rest kept (with their counters).
    @discardableResult
    public func replaceAll(with fib: FIBSpec, expectedGeneration: UInt64? = nil) throws(TransactionError) -> UInt64 {
        do { try validateDocument(fib, config: config) } catch {
            throw TransactionError(error)
        }
        if isEmpty { return try installFresh(fib, expectedGeneration: expectedGeneration) }
        let changes = diff(to: fib)
        return try apply(changes, expectedGeneration: expectedGeneration) { _, c in
            switch c {
            case .add(let e), .replace(let e): return "\(e.key)"
            case .delete(let k): return "\(k)"
            }
        }
    }

    /// Loads a saved FIB (the state file) into an empty engine so that it continues at the saved generation: a
    /// controller that reconnects sees the generation and digest it last saw (and a new boot id).
    public func restore(_ fib: FIBSpec, generation saved: UInt64) throws(TransactionError) {
        precondition(entryCount == 0 && nextHops.isEmpty, "restore is for a fresh engine")
        let start = generation
        generation = saved > 0 ? saved - 1 : 0
        do { try replaceAll(with: fib) } catch {
            generation = start
            throw error
        }
    }

    /// Sets the generation number without a commit. For harnesses that put the engine back into one fixed state
    /// between runs (the request fuzz target: every input starts from the same FIB and generation); the FIB's
    /// content is the caller's to restore first.
    public func resetGeneration(_ g: UInt64) { generation = g }

    /// The counter slot of a multipoint VNI (`WorkerCounters.segments`), nil for others.
    public func segmentSlot(vni v: UInt32) -> Int? { segmentSlot[v].map(Int.init) }

    /// The static MACs of one VNI, or of all, sorted by key.
    public func staticMACs(vni v: UInt32? = nil) -> [MACEntrySpec] {
        if let v {
            return (macsOfVNI[v] ?? []).sorted().compactMap { macs[MACKey(vni: v, mac: $0)] }
        }
        return macs.keys.sorted().map { macs[$0]! }
    }

    /// Every multipoint VNI, sorted.
    public var multipointVNIs: [UInt32] { segmentSlot.keys.sorted() }

    /// The changes that turn the current FIB into `fib`, ordered so references always resolve: next hops and groups
    /// added or replaced first, entries next, deletions of entries, then of groups, then of next hops.
    public func diff(to fib: FIBSpec) -> [FIBChange] {
        var out: [FIBChange] = []
        let newNH = Dictionary(fib.nextHops.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let newGroups = Dictionary(fib.ecmpGroups.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        // Backups that go away or change are dropped first (the same transaction puts the new ones in), so no check
        // sees a stale backup role and a next hop and a group that name each other can both be deleted.
        for (n, old) in nextHops where old.backup != nil && newNH[n]?.backup != old.backup {
            var stripped = old
            stripped.backup = nil
            out.append(.replace(.nextHop(stripped)))
        }
        // Next hops first (those whose backup is a group without it yet), then groups over them, then the group
        // backups (FIBEngine.nextHopPhases).
        let (early, late) = FIBEngine.nextHopPhases(fib)
        for nh in early {
            if let old = nextHops[nh.name] {
                // Unchanged ones stay; a stripped one (phase above) gets its new spec here or in `late`.
                let stripped = old.backup != nil && newNH[nh.name]?.backup != old.backup
                if (old != nh && old != newNH[nh.name]) || (stripped && nh.backup != nil) { out.append(.replace(.nextHop(nh))) }
            } else { out.append(.add(.nextHop(nh))) }
        }
        // A group whose members change may reference next hops added above; groups that will be deleted are
        // deleted after the entries that use them.
        for g in fib.ecmpGroups {
            if let old = groups[g.name] { if old != g { out.append(.replace(.ecmpGroup(g))) } } else { out.append(.add(.ecmpGroup(g))) }
        }
        for nh in late where nextHops[nh.name] != nh || nextHops[nh.name]?.backup != newNH[nh.name]?.backup {
            out.append(.replace(.nextHop(nh)))
        }
        var seenILM = Set<UInt32>(), seenVNI = Set<UInt32>(), seenFTN = Set<String>(), seenMAC = Set<MACKey>()
        for e in fib.ilm {
            seenILM.insert(e.label)
            if let old = ilm[e.label] { if old.spec != e { out.append(.replace(.ilm(e))) } } else { out.append(.add(.ilm(e))) }
        }
        for e in fib.vni {
            seenVNI.insert(e.vni)
            if let old = vni[e.vni] { if old.spec != e { out.append(.replace(.vni(e))) } } else { out.append(.add(.vni(e))) }
        }
        for e in fib.ftn {
            seenFTN.insert(e.key)
            if let old = ftn[e.key] { if old.spec != e { out.append(.replace(.ftn(e))) } } else { out.append(.add(.ftn(e))) }
        }
        for e in fib.macs {
            seenMAC.insert(e.key)
            if let old = macs[e.key] { if old != e { out.append(.replace(.mac(e))) } } else { out.append(.add(.mac(e))) }
        }
        for k in macs.keys where !seenMAC.contains(k) { out.append(.delete(.mac(k))) }
        for l in ilm.keys where !seenILM.contains(l) { out.append(.delete(.ilm(l))) }
        for v in vni.keys where !seenVNI.contains(v) { out.append(.delete(.vni(v))) }
        for k in ftn.keys where !seenFTN.contains(k) { out.append(.delete(.ftn(k))) }
        // Deleted next hops lost their backups above: groups go first, then the next hops.
        for g in groups.keys where newGroups[g] == nil { out.append(.delete(.ecmpGroup(g))) }
        for n in nextHops.keys where newNH[n] == nil { out.append(.delete(.nextHop(n))) }
        return out
    }

    /// Next hops in an order each can be validated in: `early` has every next hop, those without a backup first, then
    /// those whose backup is a next hop, then those whose backup is a group with the backup left out (the group may
    /// list them as members, so it comes after them); `late` has those last ones again, whole, to replace after the
    /// groups. One transaction either way, so the intermediate state is never published.
    public static func nextHopPhases(_ fib: FIBSpec) -> (early: [NextHopSpec], late: [NextHopSpec]) {
        let groupNames = Set(fib.ecmpGroups.map(\.name))
        var none: [NextHopSpec] = [], viaNextHop: [NextHopSpec] = [], viaGroup: [NextHopSpec] = [], late: [NextHopSpec] = []
        for nh in fib.nextHops {
            guard let b = nh.backup else { none.append(nh); continue }
            if groupNames.contains(b) {
                var stripped = nh
                stripped.backup = nil
                viaGroup.append(stripped)
                late.append(nh)
            } else {
                viaNextHop.append(nh)
            }
        }
        return (none + viaNextHop + viaGroup, late)
    }

    /// The FIB as a document (for the state file and dumps): entries sorted by key.
    public func document() -> FIBSpec { intent().document() }

    /// The intent as it is now, in O(1) (copy-on-write): another thread may turn it into a document while the
    /// control thread goes on changing the engine.
    public func intent() -> FIBIntent {
        FIBIntent(generation: generation, nextHops: nextHops, groups: groups, ilm: ilm, vni: vni, ftn: ftn, macs: macs)
    }

    /// Every element, in no particular order (for sums over the FIB, like its digest).
    public func forEachEntry(_ body: (FIBEntry) -> Void) {
        for (_, e) in nextHops { body(.nextHop(e)) }
        for (_, e) in groups { body(.ecmpGroup(e)) }
        for (_, e) in ilm { body(.ilm(e.spec)) }
        for (_, e) in vni { body(.vni(e.spec)) }
        for (_, e) in ftn { body(.ftn(e.spec)) }
        for (_, e) in macs { body(.mac(e)) }
    }

    /// The current element of a key, if any.
    public func entry(_ key: EntryKey) -> FIBEntry? {
        switch key {
        case .nextHop(let n): return nextHops[n].map { .nextHop($0) }
        case .ecmpGroup(let n): return groups[n].map { .ecmpGroup($0) }
        case .ilm(let l): return ilm[l].map { .ilm($0.spec) }
        case .vni(let v): return vni[v].map { .vni($0.spec) }
        case .ftn(let k): return ftn[k].map { .ftn($0.spec) }
        case .mac(let k): return macs[k].map { .mac($0) }
        }
    }

    /// The keys of one kind, sorted (labels and VNIs numerically, names and prefixes as text).
    public func keys(of kind: String) -> [EntryKey] {
        switch kind {
        case "nextHop": return nextHops.keys.sorted().map { .nextHop($0) }
        case "ecmpGroup": return groups.keys.sorted().map { .ecmpGroup($0) }
        case "ilm": return ilm.keys.sorted().map { .ilm($0) }
        case "vni": return vni.keys.sorted().map { .vni($0) }
        case "ftn": return ftn.keys.sorted().map { .ftn($0) }
        case "mac": return macs.keys.sorted().map { .mac($0) }
        default: return []
        }
    }

    public var staticMACCount: Int { macs.count }

    public var counts: (nextHops: Int, groups: Int, ilm: Int, vni: Int, ftn: Int) {
        (nextHops.count, groups.count, ilm.count, vni.count, ftn.count)
    }

    // MARK: counters

    /// The action slot counting an entry now.
    public func actionSlot(_ key: EntryKey) -> Int? {
        switch key {
        case .ilm(let l): return ilm[l].map { Int($0.action.rawValue) }
        case .vni(let v): return vni[v].map { Int($0.action.rawValue) }
        case .ftn(let k): return ftn[k].map { Int($0.action.rawValue) }
        default: return nil
        }
    }

    /// An entry's packets and bytes since it was added (surviving replaces).
    public func counters(_ key: EntryKey) -> (packets: UInt64, bytes: UInt64)? {
        guard let slot = actionSlot(key) else { return nil }
        let base: (packets: UInt64, bytes: UInt64) = carried[key] ?? (0, 0)
        let now: (packets: UInt64, bytes: UInt64) = counterStore?.read(slot: slot) ?? (0, 0)
        return (base.packets &+ now.packets, base.bytes &+ now.bytes)
    }

    /// Every next hop with its liveness slot, port, backup and whether a group lists it (for the protection thread).
    public func nextHopTable() -> [(name: String, slot: UInt32, port: String, backup: String?, inGroup: Bool, spec: NextHopSpec)] {
        let members = Set(groups.values.flatMap(\.members))
        return nextHops.keys.sorted().map { n in
            let s = nextHops[n]!
            return (n, nextHopSlot[n]!, s.port, s.backup, members.contains(n), s)
        }
    }

    /// The liveness slot of a next hop (`FIBSnapshot.liveness`), nil when there is none of that name.
    public func nextHopSlot(named name: String) -> UInt32? { nextHopSlot[name] }

    /// Names of the entries by action slot (for replay's per-slot counters).
    public func slotNames() -> [String] {
        var names = [String](repeating: "", count: Int(tables.actionHighWater))
        for (l, e) in ilm { names[Int(e.action.rawValue)] = "ilm \(l)" }
        for (v, e) in vni { names[Int(e.action.rawValue)] = "vni \(v)" }
        for (k, e) in ftn { names[Int(e.action.rawValue)] = "ftn \(k)" }
        return names
    }

    // MARK: staging

    /// A transaction's view: the engine's intent plus the changes staged so far.
    struct Overlay {
        unowned let engine: FIBEngine
        var nextHops: [String: NextHopSpec?] = [:]
        var groups: [String: ECMPGroupSpec?] = [:]
        var ilm: [UInt32: ILMEntrySpec?] = [:]
        var vni: [UInt32: VNIEntrySpec?] = [:]
        var ftn: [String: FTNEntrySpec?] = [:]
        var macs: [MACKey: MACEntrySpec?] = [:]
        var macDelta = 0
        /// VNIs this transaction makes multipoint that were not: each needs a counter slot.
        var segmentAdds = 0
        var refDelta: [String: Int] = [:]
        /// The keys staged, each once, in the order of their first change.
        var order: [EntryKey] = []
        /// Keys deleted at some point of the transaction: their counters restart even if they are added again.
        var deleted = Set<EntryKey>()
        var entryDelta = 0
        var nextHopDelta = 0

        init(engine: FIBEngine) { self.engine = engine }

        var entryCount: Int { engine.entryCount + entryDelta }

        func nextHop(_ n: String) -> NextHopSpec? { nextHops[n] ?? engine.nextHops[n] }
        func group(_ n: String) -> ECMPGroupSpec? { groups[n] ?? engine.groups[n] }
        func resolves(_ n: String) -> Bool { nextHop(n) != nil || group(n) != nil }
        /// nil: no next hop of that name; else its backup (nil: none).
        func backupOf(_ n: String) -> String?? { nextHop(n).map { $0.backup } }
        /// Whether some next hop (after the changes staged so far) names `n` as its backup.
        func usedAsBackup(_ n: String) -> Bool {
            nextHops.values.contains { $0?.backup == n }
                || engine.nextHops.contains { nextHops[$0.key] == nil && $0.value.backup == n }
        }
        func refs(_ n: String) -> Int { (engine.refs[n] ?? 0) + (refDelta[n] ?? 0) }
        func exists(_ k: EntryKey) -> Bool {
            switch k {
            case .nextHop(let n): return nextHop(n) != nil
            case .ecmpGroup(let n): return group(n) != nil
            case .ilm(let l): if let o = ilm[l] { return o != nil }; return engine.ilm[l] != nil
            case .vni(let v): if let o = vni[v] { return o != nil }; return engine.vni[v] != nil
            case .ftn(let f): if let o = ftn[f] { return o != nil }; return engine.ftn[f] != nil
            case .mac(let m): if let o = macs[m] { return o != nil }; return engine.macs[m] != nil
            }
        }

        func vniSpec(_ v: UInt32) -> VNIEntrySpec? {
            if let o = vni[v] { return o }
            return engine.vni[v]?.spec
        }

        /// After every change is staged (so their order does not matter): each staged MAC names a place of its VNI
        /// as the transaction leaves it, and each staged VNI still has every place its unstaged MACs name.
        func checkMACs() throws(TransactionError) {
            for (k, spec) in macs {
                guard let m = spec else { continue }
                do { try checkMAC(m, "mac \(k)", vni: vniSpec(m.vni)) } catch {
                    throw TransactionError(error)
                }
            }
            for (v, spec) in vni {
                guard let set = engine.macsOfVNI[v], !set.isEmpty else { continue }
                for mac in set where macs[MACKey(vni: v, mac: mac)] == nil {
                    guard let m = engine.macs[MACKey(vni: v, mac: mac)] else { continue }
                    if spec?.multipoint?.place(of: m) == nil {
                        let place = m.site.map { "site \"\($0)\"" } ?? "vtep \(m.vtep!)"
                        throw TransactionError(.referenced, "vni \(v)",
                                               "static MAC \(m.mac) names \(place), which this change removes; "
                                               + "delete or move the MAC in the same transaction")
                    }
                }
            }
            if engine.macs.count + macDelta > MACTable.maxEntries {
                throw TransactionError(.tooLarge, "", "the FIB would hold \(engine.macs.count + macDelta) static MACs; the limit is \(MACTable.maxEntries)")
            }
            // Slots freed by this commit are reused only after its grace period, so additions need slots free now.
            if engine.segmentSlot.count + segmentAdds > Segment.maxSlots {
                throw TransactionError(.tooLarge, "", "at most \(Segment.maxSlots) multipoint VNIs")
            }
        }

        func current(_ k: EntryKey) -> FIBEntry? {
            switch k {
            case .nextHop(let n): return nextHop(n).map { .nextHop($0) }
            case .ecmpGroup(let n): return group(n).map { .ecmpGroup($0) }
            case .ilm(let l): if let o = ilm[l] { return o.map { .ilm($0) } }; return engine.ilm[l].map { .ilm($0.spec) }
            case .vni(let v): if let o = vni[v] { return o.map { .vni($0) } }; return engine.vni[v].map { .vni($0.spec) }
            case .ftn(let f): if let o = ftn[f] { return o.map { .ftn($0) } }; return engine.ftn[f].map { .ftn($0.spec) }
            case .mac(let m): if let o = macs[m] { return o.map { .mac($0) } }; return engine.macs[m].map { .mac($0) }
            }
        }

        static func references(_ e: FIBEntry) -> [String] {
            switch e {
            case .nextHop(let nh): return nh.backup.map { [$0] } ?? []
            case .ecmpGroup(let g): return g.members
            case .ilm(let s):
                switch s.operation {
                case .swap(_, let via, _, _): return [via]
                case .popToIP(_, let via, _, _): return via.map { [$0] } ?? []
                case .popToVXLAN(let pw): return [pw.via]
                case .pop, .drop, .popToMultipoint: return []
                }
            case .vni(let s):
                if let m = s.multipoint { return m.sites.map(\.via) + m.vteps.map(\.via) }
                return [s.via]
            case .ftn(let s): return [s.via]
            case .mac: return []
            }
        }

        mutating func stage(_ c: FIBChange, _ el: @autoclosure () -> String) throws(TransactionError) {
            switch c {
            case .add(let e):
                if exists(e.key) { throw TransactionError(.exists, el(), "already exists; use replace") }
                if case .nextHop = e, engine.nextHops.count + nextHopDelta >= Liveness.capacity {
                    throw TransactionError(.tooLarge, el(), "at most \(Liveness.capacity) next hops")
                }
                if case .nextHop(let nh) = e, group(nh.name) != nil { throw TransactionError(.exists, el(), "an ECMP group has this name") }
                if case .ecmpGroup(let g) = e, nextHop(g.name) != nil { throw TransactionError(.exists, el(), "a next hop has this name") }
                try check(e, el())
                if set(e.key, e) { order.append(e.key) }
                for r in Overlay.references(e) { refDelta[r, default: 0] += 1 }
                if isEntry(e.key) { entryDelta += 1 }
                if case .nextHop = e { nextHopDelta += 1 }
                if case .mac = e { macDelta += 1 }
                if case .vni(let s) = e, s.multipoint != nil { segmentAdds += 1 }
            case .replace(let e):
                guard let old = current(e.key) else { throw TransactionError(.notFound, el(), "does not exist; use add") }
                if case .vni(let s) = e, case .vni(let o) = old, s.multipoint != nil, o.multipoint == nil { segmentAdds += 1 }
                try check(e, el())
                for r in Overlay.references(old) { refDelta[r, default: 0] -= 1 }
                for r in Overlay.references(e) { refDelta[r, default: 0] += 1 }
                if set(e.key, e) { order.append(e.key) }
            case .delete(let k):
                guard let old = current(k) else { throw TransactionError(.notFound, el(), "does not exist") }
                switch k {
                case .nextHop(let n), .ecmpGroup(let n):
                    let r = refs(n)
                    if r > 0 { throw TransactionError(.referenced, el(), "still referenced by \(r) entr\(r == 1 ? "y" : "ies") or groups") }
                default: break
                }
                for r in Overlay.references(old) { refDelta[r, default: 0] -= 1 }
                if set(k, nil) { order.append(k) }
                deleted.insert(k)
                if isEntry(k) { entryDelta -= 1 }
                if case .nextHop = k { nextHopDelta -= 1 }
                if case .mac = k { macDelta -= 1 }
            }
        }

        func isEntry(_ k: EntryKey) -> Bool {
            switch k { case .ilm, .vni, .ftn: return true; default: return false }
        }

        /// Stages a key's new state; true when the transaction had not touched the key before.
        @discardableResult
        mutating func set(_ k: EntryKey, _ e: FIBEntry?) -> Bool {
            switch k {
            case .nextHop(let n):
                if case .nextHop(let s)? = e { return nextHops.updateValue(.some(s), forKey: n) == nil }
                return nextHops.updateValue(NextHopSpec?.none, forKey: n) == nil
            case .ecmpGroup(let n):
                if case .ecmpGroup(let s)? = e { return groups.updateValue(.some(s), forKey: n) == nil }
                return groups.updateValue(ECMPGroupSpec?.none, forKey: n) == nil
            case .ilm(let l):
                if case .ilm(let s)? = e { return ilm.updateValue(.some(s), forKey: l) == nil }
                return ilm.updateValue(ILMEntrySpec?.none, forKey: l) == nil
            case .vni(let v):
                if case .vni(let s)? = e { return vni.updateValue(.some(s), forKey: v) == nil }
                return vni.updateValue(VNIEntrySpec?.none, forKey: v) == nil
            case .ftn(let f):
                if case .ftn(let s)? = e { return ftn.updateValue(.some(s), forKey: f) == nil }
                return ftn.updateValue(FTNEntrySpec?.none, forKey: f) == nil
            case .mac(let m):
                if case .mac(let s)? = e { return macs.updateValue(.some(s), forKey: m) == nil }
                return macs.updateValue(MACEntrySpec?.none, forKey: m) == nil
            }
        }

        /// Room for a large transaction (a resync): no rehashing while staging.
        mutating func reserve(_ changes: [FIBChange]) {
            guard changes.count > 1024 else { return }
            var counts = (ilm: 0, vni: 0, ftn: 0, mac: 0)
            for c in changes {
                switch c.key {
                case .ilm: counts.ilm += 1
                case .vni: counts.vni += 1
                case .ftn: counts.ftn += 1
                case .mac: counts.mac += 1
                default: break
                }
            }
            ilm.reserveCapacity(counts.ilm); vni.reserveCapacity(counts.vni); ftn.reserveCapacity(counts.ftn)
            macs.reserveCapacity(counts.mac)
            order.reserveCapacity(changes.count)
        }

        func check(_ e: FIBEntry, _ el: @autoclosure () -> String) throws(TransactionError) {
            do throws(ValidationError) {
                switch e {
                case .nextHop(let nh):
                    if nh.name.isEmpty { throw ValidationError(el(), "name must not be empty", kind: .empty) }
                    try checkNextHop(nh, el(), ports: engine.portNames)
                    try checkBFD(nh, el(), config: engine.config)
                    try checkBackup(nh, el(), resolves: resolves, backupOf: backupOf, usedAsBackup: usedAsBackup)
                case .ecmpGroup(let g):
                    if g.name.isEmpty { throw ValidationError(el(), "name must not be empty", kind: .empty) }
                    try checkGroup(g, el()) { nextHop($0) != nil }
                case .ilm(let s): try checkILM(s, el(), resolves: resolves, vrfs: engine.vrfSet, backupOf: backupOf)
                case .vni(let s): try checkVNI(s, el(), resolves: resolves, backupOf: backupOf)
                case .ftn(let s): try checkFTN(s, el(), resolves: resolves, vrfs: engine.vrfSet, backupOf: backupOf)
                case .mac: break  // against its VNI once the whole transaction is staged (checkMACs)
                }
            } catch {
                throw TransactionError(error)
            }
        }
    }

    // MARK: commit

    /// What a commit changes, each key once in the order of its first change: from a transaction's overlay, or
    /// straight from a validated document (`installFresh`).
    struct Staged {
        var nextHops: [String: NextHopSpec?] = [:]
        var groups: [String: ECMPGroupSpec?] = [:]
        var refDelta: [String: Int] = [:]
        var deleted = Set<EntryKey>()
        var ilm: [(UInt32, ILMEntrySpec?)] = []
        var vni: [(UInt32, VNIEntrySpec?)] = []
        var ftn: [(String, FTNEntrySpec?)] = []
        var macs: [(MACKey, MACEntrySpec?)] = []

        init() {}

        init(_ o: Overlay) {
            nextHops = o.nextHops; groups = o.groups; refDelta = o.refDelta; deleted = o.deleted
            for k in o.order {
                switch k {
                case .ilm(let l): ilm.append((l, o.ilm[l]!))
                case .vni(let v): vni.append((v, o.vni[v]!))
                case .ftn(let f): ftn.append((f, o.ftn[f]!))
                case .mac(let m): macs.append((m, o.macs[m]!))
                default: break
                }
            }
        }
    }

    /// Loads a validated document into an empty engine in one commit, without staging each change (a resync into
    /// an empty FIB, a state file at start): `validateDocument` already checked every element and reference as a
    /// whole, so only the limits are checked here.
    @discardableResult
    public func installFresh(_ fib: FIBSpec, expectedGeneration: UInt64? = nil) throws(TransactionError) -> UInt64 {
        precondition(isEmpty, "installFresh is for an empty engine")
        if let g = expectedGeneration, g != generation {
            throw TransactionError(.staleGeneration, "expectedGeneration",
                                   "the FIB is at generation \(generation), not \(g); read it again and retry")
        }
        let count = fib.ilm.count + fib.vni.count + fib.ftn.count
        if count > maxEntries {
            throw TransactionError(.tooLarge, "", "the FIB would hold \(count) entries; the limit is \(maxEntries)")
        }
        if fib.nextHops.count > Liveness.capacity {
            throw TransactionError(.tooLarge, "", "at most \(Liveness.capacity) next hops")
        }
        try checkTrieRoom(fib.ftn)
        var st = Staged()
        for nh in fib.nextHops { st.nextHops[nh.name] = .some(nh) }
        for g in fib.ecmpGroups { st.groups[g.name] = .some(g) }
        func ref(_ e: FIBEntry) { for r in Overlay.references(e) { st.refDelta[r, default: 0] += 1 } }
        for nh in fib.nextHops { ref(.nextHop(nh)) }
        for g in fib.ecmpGroups { ref(.ecmpGroup(g)) }
        // Entries name few distinct next hops: count by name once per run of equal names.
        func refs<S>(_ list: [S], _ via: (S) -> String?) {
            var last: String?
            var run = 0
            for e in list {
                let v = via(e)
                if v != last {
                    if let l = last, run > 0 { st.refDelta[l, default: 0] += run }
                    last = v
                    run = 0
                }
                run += 1
            }
            if let l = last, run > 0 { st.refDelta[l, default: 0] += run }
        }
        refs(fib.ilm) { e in Overlay.references(.ilm(e)).first }
        refs(fib.vni.filter { $0.multipoint == nil }) { $0.via }
        for e in fib.vni where e.multipoint != nil { ref(.vni(e)) }
        refs(fib.ftn) { $0.via }
        if fib.macs.count > MACTable.maxEntries {
            throw TransactionError(.tooLarge, "", "the FIB would hold \(fib.macs.count) static MACs; the limit is \(MACTable.maxEntries)")
        }
        if fib.vni.lazy.filter({ $0.multipoint != nil }).count > Segment.maxSlots {
            throw TransactionError(.tooLarge, "", "at most \(Segment.maxSlots) multipoint VNIs")
        }
        st.ilm = fib.ilm.map { ($0.label, $0) }
        st.vni = fib.vni.map { ($0.vni, $0) }
        st.ftn = fib.ftn.map { ($0.key, $0) }
        st.macs = fib.macs.map { ($0.key, $0) }
        commit(st)
        return generation
    }

    /// Whether the engine holds nothing (no next hop, group or entry).
    public var isEmpty: Bool { entryCount == 0 && nextHops.isEmpty && groups.isEmpty }

    private func commit(_ o: Overlay) { commit(Staged(o)) }

    private func commit(_ o: Staged) {
        let started = CommitStats.now()
        // Intent and references.
        var nhChanged = false, groupsChanged = false
        var retiredCarry: [(slot: ActionID, key: EntryKey?)] = []
        var remapped: [(UInt32, Set<UInt64>)] = []
        // Counter slots of VNIs that stop being multipoint: free only after this commit's grace period (workers on
        // the old snapshot still count into them), and zeroed then, before anything can reuse them.
        var freedSegments: [UInt32] = []
        for (v, spec) in o.vni where spec?.multipoint == nil {
            if let slot = segmentSlot.removeValue(forKey: v) {
                freedSegments.append(slot)
                segmentsVersion &+= 1
                removedSegmentSlots.insert(slot)
                changedSegments.remove(v)
            }
        }
        for k in o.deleted { carried[k] = nil }
        func carryKey(_ k: EntryKey, _ stays: Bool) -> EntryKey? { stays && !o.deleted.contains(k) ? k : nil }
        for (n, spec) in o.nextHops {
            nhChanged = true
            if let s = spec {
                if nextHops[n] == nil {
                    nextHopSlot[n] = freeNextHopSlots.popLast() ?? { nextHopSlotCount += 1; return nextHopSlotCount - 1 }()
                }
                nextHops[n] = s
            } else {
                nextHops[n] = nil
                if let slot = nextHopSlot.removeValue(forKey: n) { freeNextHopSlots.append(slot) }
            }
        }
        for (n, spec) in o.groups {
            groupsChanged = true
            if let s = spec {
                if groups[n] == nil {
                    groupSlot[n] = freeGroupSlots.popLast() ?? { groupSlotCount += 1; return groupSlotCount - 1 }()
                }
                groups[n] = s
            } else {
                groups[n] = nil
                if let slot = groupSlot.removeValue(forKey: n) { freeGroupSlots.append(slot) }
            }
        }
        for (n, d) in o.refDelta where d != 0 {
            let v = (refs[n] ?? 0) + d
            refs[n] = v == 0 ? nil : v
        }
        if nhChanged || groupsChanged { rebuildNextHopsAndGroups(nh: nhChanged || groupsChanged) }

        // ILM: one action per changed label, pages copied on first touch; in the order the changes came.
        if o.ilm.count > 1024 { ilm.reserveCapacity(ilm.count + o.ilm.count) }
        if o.vni.count > 1024 { vni.reserveCapacity(vni.count + o.vni.count) }
        if o.ftn.count > 1024 { ftn.reserveCapacity(ftn.count + o.ftn.count) }
        for (label, spec) in o.ilm {
            if let old = ilm[label] {
                tables.retireAction(old.action)
                retiredCarry.append((old.action, carryKey(.ilm(label), spec != nil)))
            }
            if let s = spec {
                let (action, entry) = ilmAction(s)
                let id = tables.addAction(action)
                tables.setILM(label, ILMEntry(action: id, operation: entry.operation, flags: entry.flags,
                                              payload: entry.payload, reserved: 0))
                ilm[label] = Installed(spec: s, action: id)
            } else {
                tables.setILM(label, .empty)
                ilm[label] = nil
                carried[.ilm(label)] = nil
            }
        }
        // VNI: one action and one allowed-VTEP list per changed VNI; directory pages copied on first touch.
        for (v, spec) in o.vni {
            if let old = vni[v] {
                let a = tables.actions[Int(old.action.rawValue)]
                tables.retireVTEPs(a.vteps)
                tables.retireAction(old.action)
                retiredCarry.append((old.action, carryKey(.vni(v), spec != nil)))
            }
            if let e = spec, let m = e.multipoint {
                let slot = segmentSlot[v] ?? {
                    let s = freeSegmentSlots.popLast() ?? { segmentSlotCount += 1; return segmentSlotCount - 1 }()
                    precondition(Int(s) < Segment.maxSlots, "multipoint VNI slots exhausted past the transaction check")
                    segmentSlot[v] = s
                    return s
                }()
                let id = tables.addAction(multipointAction(e, m, slot: slot))
                tables.setVNI(v, id)
                vni[v] = Installed(spec: e, action: id)
                if let set = macsOfVNI[v] { remapped.append((v, set)) }
            } else if let e = spec {
                var a = FIBCompiler.pushAction(e.push, mode: .pipe, tc: e.tc, ttl: e.ttl, backup: e.backupPush)
                a.operation = .vxlanToMPLS
                a.target = target(e.via)
                if e.controlWord { a.flags |= ActionFlags.controlWord }
                a.auxCount = UInt32(e.allowedVTEPs.count)
                a.vteps = tables.allocateVTEPs(e.allowedVTEPs.map(IPv6Address.init))
                let id = tables.addAction(a)
                tables.setVNI(v, id)
                vni[v] = Installed(spec: e, action: id)
            } else {
                tables.setVNI(v, nil)
                vni[v] = nil
                carried[.vni(v)] = nil
            }
        }
        // Static MACs: one slot each in the MAC table (pages copied on first touch), then every MAC of a multipoint
        // VNI that changed, whose places may have been renumbered.
        if o.macs.count > 1024 { macs.reserveCapacity(macs.count + o.macs.count) }
        for (k, spec) in o.macs {
            if let m = spec {
                if macs[k] == nil { macsOfVNI[k.vni, default: []].insert(k.mac) }
                macs[k] = m
                let place = vni[k.vni]?.spec.multipoint?.place(of: m) ?? -1
                tables.setMAC(vni: k.vni, mac: k.mac, place: UInt32(place + 1))
            } else if macs[k] != nil {
                macs[k] = nil
                macsOfVNI[k.vni]?.remove(k.mac)
                if macsOfVNI[k.vni]?.isEmpty == true { macsOfVNI[k.vni] = nil }
                tables.setMAC(vni: k.vni, mac: k.mac, place: 0)
            }
        }
        for (v, set) in remapped {
            guard let mp = vni[v]?.spec.multipoint else { continue }
            for mac in set {
                let key = MACKey(vni: v, mac: mac)
                guard let m = macs[key], let place = mp.place(of: m) else { continue }
                if tables.macPlace(vni: v, mac: mac) != UInt32(place + 1) { tables.setMAC(vni: v, mac: mac, place: UInt32(place + 1)) }
            }
        }
        // FTN: one action per changed route; the route's trie path is copied (LPMPool).
        for (k, spec) in o.ftn {
            let old = ftn[k]
            if let old {
                tables.retireAction(old.action)
                retiredCarry.append((old.action, carryKey(.ftn(k), spec != nil)))
            }
            if let s = spec {
                var a = FIBCompiler.pushAction(s.push, mode: s.ttlMode, tc: s.tc, ttl: s.ttl, backup: s.backupPush)
                a.operation = .push
                a.target = target(s.via)
                let id = tables.addAction(a)
                ftn[k] = Installed(spec: s, action: id)
                tables.setRoute(vrf: vrfIndex(s.vrf), v6: s.prefix.isV6, bytes: addressBytes(s.prefix), length: s.length,
                                leaf: id.rawValue + 1)
            } else if let old {
                let e = old.spec
                ftn[k] = nil
                carried[.ftn(k)] = nil
                tables.removeRoute(vrf: vrfIndex(e.vrf), v6: e.prefix.isV6, bytes: addressBytes(e.prefix), length: e.length,
                                   cover: cover(of: e))
            }
        }
        // Entries whose target is a group or next hop need no new action when only a next hop's record changed:
        // actions name next hops and groups by slot, and slots are stable per name.

        generation += 1
        let retired = tables.commit(generation: generation)
        publish?(tables.current)
        let published = CommitStats.now()
        synchronize?()
        let synchronized = CommitStats.now()
        for s in freedSegments { counterStore?.resetSegment(slot: Int(s)) }
        freeSegmentSlots += freedSegments
        if let store = counterStore {
            for (slot, key) in retiredCarry {
                if let key {
                    let c = store.read(slot: Int(slot.rawValue))
                    let b: (packets: UInt64, bytes: UInt64) = carried[key] ?? (0, 0)
                    carried[key] = (b.packets &+ c.packets, b.bytes &+ c.bytes)
                }
                store.reset(slot: Int(slot.rawValue))
            }
        }
        tables.reclaim(retired)
        commitStats.record(build: published - started, grace: synchronized - published,
                           total: CommitStats.now() - started, bytes: tables.lastCommitBytes)
    }

    private func rebuildNextHopsAndGroups(nh: Bool) {
        var records = [NextHopRecord](repeating: NextHopRecord(port: PortID(0), destination: MACAddress(value: 0),
                                                               source: MACAddress(value: 0), vlan: 0, mtu: 0),
                                      count: Int(nextHopSlotCount))
        for (name, spec) in nextHops {
            let pi = config.ports.firstIndex { $0.name == spec.port }!
            let port = config.ports[pi]
            var r = NextHopRecord(port: PortID(UInt16(pi)), destination: spec.mac, source: spec.sourceMAC ?? port.mac,
                                  vlan: spec.vlan ?? 0, mtu: UInt16(spec.mtu ?? port.mtu))
            if let b = spec.backup { r.backup = target(b) }
            records[Int(nextHopSlot[name]!)] = r
        }
        tables.replaceNextHops(records)
        // Every group's buckets, then every group's second choices (FIBSnapshot.groupBuckets).
        let half = Int(groupSlotCount) * ECMP.bucketCount
        var buckets = [UInt32](repeating: 0, count: 2 * half)
        for (name, g) in groups {
            let b = ECMP.bucketsWithSecondChoice(members: g.members.map { nextHopSlot[$0]! }, memberKeys: g.members)
            let base = Int(groupSlot[name]!) * ECMP.bucketCount
            for i in 0..<ECMP.bucketCount { buckets[base + i] = b.primary[i]; buckets[half + base + i] = b.second[i] }
        }
        tables.replaceGroups(buckets)
    }

    private func target(_ via: String) -> ForwardTarget {
        if let s = nextHopSlot[via] { return .nextHop(s) }
        return .group(groupSlot[via]!)
    }

    private func vrfIndex(_ name: String) -> UInt16 { UInt16(vrfNames.firstIndex(of: name)!) }

    /// The longest route shorter than `e` that covers it and ends in the same 8-bit trie stride (its leaf and
    /// length), or (0, 0): what `e`'s trie slots fall back to when it goes.
    private func cover(of e: FTNEntrySpec) -> (leaf: UInt32, length: UInt8) {
        guard e.length > 0 else { return (0, 0) }
        let floor = (e.length - 1) / 8 * 8
        var l = e.length - 1
        while l > floor {
            let key = FTNEntrySpec(vrf: e.vrf, prefix: masked(e.prefix, l), length: l, push: [], via: "").key
            if let c = ftn[key] { return (c.action.rawValue + 1, UInt8(l)) }
            l -= 1
        }
        return (0, 0)
    }

    /// `a` with the bits after the first `length` cleared.
    private func masked(_ a: IPAddress, _ length: Int) -> IPAddress {
        switch a {
        case .v4(let v):
            return .v4(IPv4Address(value: length == 0 ? 0 : v.value & ~(UInt32.max >> UInt32(length))))
        case .v6(let v):
            func keep(_ w: UInt64, _ bits: Int) -> UInt64 { bits <= 0 ? 0 : bits >= 64 ? w : w & ~(UInt64.max >> UInt64(bits)) }
            return .v6(IPv6Address(high: keep(v.high, length), low: keep(v.low, length - 64)))
        }
    }

    /// A multipoint VNI's action and its block: each site a push action (its labels, control word, next hop),
    /// each local VTEP a VXLAN encapsulation from our VTEP address (`Segment`).
    private func multipointAction(_ e: VNIEntrySpec, _ m: MultipointSpec, slot: UInt32) -> Action {
        var places: [Action] = []
        places.reserveCapacity(m.sites.count + m.vteps.count)
        for s in m.sites {
            var a = FIBCompiler.pushAction(s.push, mode: .pipe, tc: e.tc, ttl: e.ttl)
            a.operation = .vxlanToMPLS
            a.target = target(s.via)
            if s.controlWord { a.flags |= ActionFlags.controlWord }
            places.append(a)
        }
        for t in m.vteps {
            let pw = PseudowireEgress(vni: e.vni, controlWord: false, localVTEP: m.localVTEP, remoteVTEP: t.address,
                                      via: t.via, udpPort: m.udpPort, ttl: m.underlayTTL)
            places.append(ilmAction(ILMEntrySpec(label: 16, operation: .popToVXLAN(pw))).0)
        }
        let header = SegmentHeader(siteCount: UInt32(m.sites.count), vtepCount: UInt32(m.vteps.count), slot: slot,
                                   bumPerSecond: m.bumPerSecond, bumBurst: max(m.bumPerSecond / 10, 32), vni: e.vni,
                                   learning: m.learning.enabled)
        var a = Action()
        a.operation = .multipoint
        a.aux = e.vni
        a.vteps = tables.allocateSegment(header, vteps: m.vteps.map { IPv6Address($0.address) }, places: places,
                                         ids: FIBEngine.placeIDs(m))
        segmentsVersion &+= 1
        changedSegments.insert(e.vni)
        return a
    }

    /// The multipoint VNIs compiled since the last call (as the learner needs them) and the counter slots of those
    /// that stopped being multipoint, in that order of application: removals first.
    public func takeSegmentChanges() -> (changed: [LearningSegment], removedSlots: [UInt32]) {
        let changed = changedSegments.sorted().compactMap(learningSegment)
        let removed = removedSegmentSlots.sorted()
        changedSegments.removeAll(keepingCapacity: true)
        removedSegmentSlots.removeAll(keepingCapacity: true)
        return (changed, removed)
    }

    /// The places' IDs of a multipoint VNI, in place order (`Segment`).
    static func placeIDs(_ m: MultipointSpec) -> [UInt64] {
        m.sites.map { Segment.siteID($0.name) } + m.vteps.map { Segment.vtepID(IPv6Address($0.address)) }
    }

    /// What the MAC learner needs of every multipoint VNI (the agent hands it over when `segmentsVersion` changed).
    public func learningSegments() -> [LearningSegment] {
        segmentSlot.keys.sorted().compactMap(learningSegment)
    }

    /// What the MAC learner needs of multipoint VNI `v`, or nil.
    public func learningSegment(_ v: UInt32) -> LearningSegment? {
        guard let slot = segmentSlot[v], let m = vni[v]?.spec.multipoint else { return nil }
        let ids = FIBEngine.placeIDs(m)
        return LearningSegment(
            slot: slot, vni: v, layout: Segment.layout(sites: m.sites.count, ids: ids), placeIDs: ids,
            placeNames: m.sites.map(\.name) + m.vteps.map(\.address.description), siteCount: m.sites.count,
            learning: m.learning.enabled, macLimit: Int(m.learning.macLimit), agingSeconds: m.learning.agingSeconds,
            moveLimit: m.learning.moveLimit, moveWindowSeconds: m.learning.moveWindowSeconds,
            holdSeconds: m.learning.holdSeconds)
    }

    /// The action of an ILM entry and the fields its ILM entry repeats.
    private func ilmAction(_ e: ILMEntrySpec) -> (Action, (operation: Operation, flags: UInt8, payload: Payload)) {
        var a = Action()
        var flags: UInt8 = 0
        switch e.operation {
        case .swap(let out, let via, let payload, let mode):
            a.operation = .swap
            a.target = target(via)
            if mode == .uniform { flags |= ActionFlags.uniform }
            if out == [3] {
                a.labelCount = 0
                a.payload = payload ?? .mpls
            } else {
                a.labelCount = UInt8(out.count)
                // Label and S=0; TC, TTL and the S of the last label come from the packet.
                for (i, l) in out.enumerated() { a.setLabelTemplate(i, l << 12) }
                if let b = e.backupOut {
                    for (i, l) in b.enumerated() { a.setLabelTemplate(out.count + i, l << 12) }
                    a.backupLabelCount = UInt32(b.count)
                }
            }
        case .pop(let mode):
            a.operation = .pop
            if mode == .uniform { flags |= ActionFlags.uniform }
        case .popToIP(let payload, let via, let vrf, let mode):
            a.operation = .popToIP
            a.payload = payload
            if mode == .uniform { flags |= ActionFlags.uniform }
            if let via { a.target = target(via) }
            if let vrf { flags |= ActionFlags.lookupInVRF; a.vrf = vrfIndex(vrf) }
        case .popToVXLAN(let pw):
            a.operation = .popToVXLAN
            a.target = target(pw.via)
            a.ttl = pw.ttl
            a.aux = UInt32(pw.udpPort)
            if pw.controlWord { flags |= ActionFlags.controlWord }
            var ip: [UInt8]
            switch (pw.localVTEP, pw.remoteVTEP) {
            case (.v4(let l), .v4(let r)):
                ip = [0x45, 0, 0, 0, 0, 0, 0x40, 0, pw.ttl, UDP.protocolNumber, 0, 0]
                ip += addressBytes(.v4(l)) + addressBytes(.v4(r))
                // Sum of the constant words; the data plane adds the total length and folds.
                var s: UInt32 = 0
                for i in stride(from: 0, to: 20, by: 2) { s += UInt32(ip[i]) << 8 | UInt32(ip[i + 1]) }
                a.auxCount = s
            default:
                flags |= ActionFlags.ipv6Underlay
                ip = [0x60, 0, 0, 0, 0, 0, UDP.protocolNumber, pw.ttl]
                ip += addressBytes(pw.localVTEP) + addressBytes(pw.remoteVTEP)
            }
            a.setAreaBytes(ip, at: 0)
            a.setAreaBytes([VXLAN.flagI, 0, 0, 0, UInt8(pw.vni >> 16), UInt8(pw.vni >> 8 & 0xFF), UInt8(pw.vni & 0xFF), 0], at: 40)
        case .popToMultipoint(let m):
            a.operation = .popToMultipoint
            a.aux = m.vni
            // The site's place ID (`Segment.siteID`): where learned sources of this pseudowire are.
            a.area.0 = Segment.siteID(m.site)
            if m.controlWord { flags |= ActionFlags.controlWord }
        case .drop:
            a.operation = .drop
        }
        a.flags = flags
        return (a, (a.operation, flags, a.payload))
    }
}

extension FIBChange {
    public var key: EntryKey {
        switch self {
        case .add(let e), .replace(let e): return e.key
        case .delete(let k): return k
        }
    }
}

/// A FIB's intent at one generation, detached from the engine (copy-on-write dictionaries).
public struct FIBIntent: Sendable {
    public let generation: UInt64
    let nextHops: [String: NextHopSpec]
    let groups: [String: ECMPGroupSpec]
    let ilm: ShardedMap<UInt32, FIBEngine.Installed<ILMEntrySpec>>
    let vni: ShardedMap<UInt32, FIBEngine.Installed<VNIEntrySpec>>
    let ftn: ShardedMap<String, FIBEngine.Installed<FTNEntrySpec>>
    let macs: ShardedMap<MACKey, MACEntrySpec>

    /// Entries sorted by key.
    public func document() -> FIBSpec {
        FIBSpec(nextHops: nextHops.keys.sorted().map { nextHops[$0]! },
                ecmpGroups: groups.keys.sorted().map { groups[$0]! },
                ilm: ilm.keys.sorted().map { ilm[$0]!.spec },
                vni: vni.keys.sorted().map { vni[$0]!.spec },
                ftn: ftn.keys.sorted().map { ftn[$0]!.spec },
                macs: macs.keys.sorted().map { macs[$0]! })
    }

    /// The document's sections in order ("nextHops", "ecmpGroups", "ilm", "vni", "ftn"), each entry sorted by key,
    /// without building the document (the state writer streams a snapshot this way).
    public func forEachSection(_ section: (String, Int) -> Void, _ entry: (FIBEntry) -> Void) {
        section("nextHops", nextHops.count)
        for k in nextHops.keys.sorted() { entry(.nextHop(nextHops[k]!)) }
        section("ecmpGroups", groups.count)
        for k in groups.keys.sorted() { entry(.ecmpGroup(groups[k]!)) }
        section("ilm", ilm.count)
        for k in ilm.keys.sorted() { entry(.ilm(ilm[k]!.spec)) }
        section("vni", vni.count)
        for k in vni.keys.sorted() { entry(.vni(vni[k]!.spec)) }
        section("ftn", ftn.count)
        for k in ftn.keys.sorted() { entry(.ftn(ftn[k]!.spec)) }
        section("macs", macs.count)
        for k in macs.keys.sorted() { entry(.mac(macs[k]!)) }
    }
}

/// A stable 64-bit hash of an element's content (FNV-1a over its fields), for the FIB digest: the digest is the
/// wrapping sum over all elements, so a commit updates it in O(changes) and equal FIBs have equal digests.
public struct ContentHash {
    public private(set) var value: UInt64 = 0xCBF2_9CE4_8422_2325
    public init() {}
    mutating func byte(_ b: UInt8) { value = (value ^ UInt64(b)) &* 0x100_0000_01B3 }
    mutating func u32(_ v: UInt32) { for s in stride(from: 0, to: 32, by: 8) { byte(UInt8(truncatingIfNeeded: v >> UInt32(s))) } }
    mutating func u64(_ v: UInt64) { for s in stride(from: 0, to: 64, by: 8) { byte(UInt8(truncatingIfNeeded: v >> UInt64(s))) } }
    mutating func string(_ s: String) { for b in s.utf8 { byte(b) }; byte(0xFF) }
    mutating func labels(_ l: [UInt32]) { u32(UInt32(l.count)); for x in l { u32(x) } }
    mutating func address(_ a: IPAddress) {
        switch a {
        case .v4(let v): byte(4); u32(v.value)
        case .v6(let v): byte(6); u64(v.high); u64(v.low)
        }
    }
    mutating func optional<T>(_ v: T?, _ f: (inout ContentHash, T) -> Void) {
        if let v { byte(1); f(&self, v) } else { byte(0) }
    }

    public static func of(_ e: FIBEntry) -> UInt64 {
        var h = ContentHash()
        switch e {
        case .nextHop(let n):
            h.byte(1); h.string(n.name); h.string(n.port); h.u64(n.mac.value)
            h.optional(n.sourceMAC) { $0.u64($1.value) }; h.optional(n.vlan) { $0.u32(UInt32($1)) }
            h.optional(n.mtu) { $0.u64(UInt64($1)) }
            // Hashed only when present, so digests of FIBs without backups are what they were.
            if let b = n.backup { h.byte(0xB0); h.string(b) }
        case .ecmpGroup(let g):
            h.byte(2); h.string(g.name); h.u32(UInt32(g.members.count)); for m in g.members { h.string(m) }
        case .ilm(let i):
            h.byte(3); h.u32(i.label)
            switch i.operation {
            case .swap(let out, let via, let payload, let mode):
                h.byte(1); h.labels(out); h.string(via); h.optional(payload) { $0.byte($1.rawValue) }; h.string(mode.rawValue)
            case .pop(let mode): h.byte(2); h.string(mode.rawValue)
            case .popToIP(let payload, let via, let vrf, let mode):
                h.byte(3); h.byte(payload.rawValue); h.optional(via) { $0.string($1) }; h.optional(vrf) { $0.string($1) }
                h.string(mode.rawValue)
            case .popToVXLAN(let pw):
                h.byte(4); h.u32(pw.vni); h.byte(pw.controlWord ? 1 : 0); h.address(pw.localVTEP); h.address(pw.remoteVTEP)
                h.string(pw.via); h.u32(UInt32(pw.udpPort)); h.byte(pw.ttl)
            case .drop: h.byte(5)
            case .popToMultipoint(let m): h.byte(6); h.u32(m.vni); h.string(m.site); h.byte(m.controlWord ? 1 : 0)
            }
            if let b = i.backupOut { h.byte(0xB0); h.labels(b) }
        case .vni(let v):
            h.byte(4); h.u32(v.vni); h.labels(v.push); h.byte(v.controlWord ? 1 : 0); h.string(v.via)
            h.u32(UInt32(v.allowedVTEPs.count)); for a in v.allowedVTEPs { h.address(a) }; h.byte(v.tc); h.byte(v.ttl)
            if let b = v.backupPush { h.byte(0xB0); h.labels(b) }
            if let m = v.multipoint {
                h.byte(0xC0); h.address(m.localVTEP); h.u32(UInt32(m.udpPort)); h.byte(m.underlayTTL); h.u32(m.bumPerSecond)
                h.u32(UInt32(m.sites.count))
                for s in m.sites { h.string(s.name); h.labels(s.push); h.string(s.via); h.byte(s.controlWord ? 1 : 0) }
                h.u32(UInt32(m.vteps.count))
                for t in m.vteps { h.address(t.address); h.string(t.via) }
                // Hashed only when not the defaults, so digests of FIBs that never set it are unchanged.
                if m.learning != MACLearningSpec() {
                    let l = m.learning
                    h.byte(0xC1); h.byte(l.enabled ? 1 : 0); h.u32(l.macLimit); h.u32(l.agingSeconds); h.u32(l.moveLimit)
                    h.u32(l.moveWindowSeconds); h.u32(l.holdSeconds)
                }
            }
        case .mac(let m):
            h.byte(6); h.u32(m.vni); h.u64(m.mac.value); h.optional(m.site) { $0.string($1) }; h.optional(m.vtep) { $0.address($1) }
        case .ftn(let f):
            h.byte(5); h.string(f.vrf); h.address(f.prefix); h.u32(UInt32(f.length)); h.labels(f.push); h.string(f.via)
            h.string(f.ttlMode.rawValue); h.byte(f.tc); h.byte(f.ttl)
            if let b = f.backupPush { h.byte(0xB0); h.labels(b) }
        }
        return h.value
    }
}

/// What the engine's last commits cost: time to build and publish the new tables, the grace-period wait, the whole
/// commit, and the bytes of table memory a commit copied or allocated. Percentiles over the last `window` commits.
public struct CommitStats: Sendable {
    public static let window = 1024
    public private(set) var commits: UInt64 = 0
    private var build: [UInt64] = [], grace: [UInt64] = [], total: [UInt64] = [], bytes: [Int] = []

    public init() {}

    static func now() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    mutating func record(build b: UInt64, grace g: UInt64, total t: UInt64, bytes n: Int) {
        let i = Int(commits % UInt64(Self.window))
        if build.count < Self.window { build.append(b); grace.append(g); total.append(t); bytes.append(n) } else {
            build[i] = b; grace[i] = g; total[i] = t; bytes[i] = n
        }
        commits += 1
    }

    /// (p50, p99, max) of a series over the window, in its unit.
    static func percentiles<T: BinaryInteger>(_ v: [T]) -> (p50: T, p99: T, max: T) {
        guard !v.isEmpty else { return (0, 0, 0) }
        let s = v.sorted()
        return (s[s.count / 2], s[min(s.count - 1, s.count * 99 / 100)], s[s.count - 1])
    }
    public var buildNs: (p50: UInt64, p99: UInt64, max: UInt64) { Self.percentiles(build) }
    public var graceNs: (p50: UInt64, p99: UInt64, max: UInt64) { Self.percentiles(grace) }
    public var totalNs: (p50: UInt64, p99: UInt64, max: UInt64) { Self.percentiles(total) }
    public var bytesCopied: (p50: Int, p99: Int, max: Int) { Self.percentiles(bytes) }
}

extension IPAddress {
    var isV6: Bool {
        if case .v6 = self { return true }
        return false
    }
}
