#if canImport(Glibc)
import Glibc
#endif
import Wire

/// The control side's owner of all FIB memory. It applies changes copy-on-write and produces one immutable
/// `FIBSnapshot` per commit (DESIGN §4):
///
/// - the ILM directory is copied per commit (2 KiB) and only the pages a commit touches are copied (32 KiB each);
/// - actions live in one slab that never moves (reserved virtual memory, touched as used); a changed entry gets a
///   fresh slot and its old slot is reused only after the grace period, so a worker never sees a torn action;
/// - next hops, ECMP buckets, the VNI table, the LPM tries and the address list are small or rebuilt whole when a
///   commit touches them.
///
/// Protocol: mutate, `commit()` (returns the previous snapshot and what it alone referenced), publish the new
/// snapshot, wait for a grace period, then `reclaim()`. Single-threaded: the control thread only.
public final class FIBTables: @unchecked Sendable {
    /// Action slots reserved (virtual memory; 128 bytes each, touched only as used).
    public let maxActions: Int
    public let actions: UnsafeMutablePointer<Action>
    private var freeActions: [UInt32] = []
    /// Slots ever handed out (the high-water mark).
    public private(set) var actionHighWater: UInt32 = 0

    private var directory: UnsafeMutablePointer<UnsafeMutablePointer<ILMEntry>>
    private var nextHops: (UnsafeMutablePointer<NextHopRecord>, Int)
    private var groupBuckets: (UnsafeMutablePointer<UInt32>, Int)
    /// Next-hop liveness, one byte per next-hop slot for the tables' lifetime (not copied per commit).
    public let liveness: UnsafeMutablePointer<UInt8>
    private var vni: (UnsafeMutablePointer<VNISlot>, UInt32)
    private var lpm: (v4: UnsafeMutablePointer<LPMSlot>, v6: UnsafeMutablePointer<LPMSlot>,
                      vrfs: UnsafeMutablePointer<VRFRecord>, vrfCount: Int)
    private let ports: (UnsafeMutablePointer<PortRecord>, Int)
    private var addresses: (UnsafeMutablePointer<IPv6Address>, Int)
    /// Bytes the current tables hold (actions counted by slots in use).
    private var tableBytes = 0

    // The commit being built.
    private var workingDirectory: UnsafeMutablePointer<UnsafeMutablePointer<ILMEntry>>?
    private var copiedPages = Set<Int>()
    private var pending = Retired()
    /// Bytes allocated by the last commit (what a one-entry change costs; asserted in tests).
    public private(set) var lastCommitBytes = 0
    private var commitBytes = 0

    /// The snapshot the tables describe now (the last committed one).
    public private(set) var current: UnsafeMutablePointer<FIBSnapshot>

    /// Memory only the previous snapshot referenced, freed by `reclaim` after a grace period.
    public struct Retired {
        var pointers: [UnsafeMutableRawPointer] = []
        var actions: [UInt32] = []
        var snapshot: UnsafeMutablePointer<FIBSnapshot>?
        /// Action slots the commit retired (their counters can be folded into the entry's running totals).
        public var retiredActions: [UInt32] { actions }
    }

    public init(ports: [PortRecord], addresses: [IPv6Address], vrfCount: Int, maxActions: Int = 1 << 22) {
        self.maxActions = maxActions
        let bytes = maxActions * MemoryLayout<Action>.stride
        guard let raw = LargeTable.reserve(bytes: bytes) else { preconditionFailure("cannot reserve \(bytes) bytes for the action slab") }
        actions = raw.bindMemory(to: Action.self, capacity: maxActions)
        directory = .allocate(capacity: ILM.directorySize)
        directory.initialize(repeating: ILM.emptyPage, count: ILM.directorySize)
        func array<T>(_ a: [T]) -> (UnsafeMutablePointer<T>, Int) {
            let p = UnsafeMutablePointer<T>.allocate(capacity: max(a.count, 1))
            a.withUnsafeBufferPointer { if let b = $0.baseAddress { p.initialize(from: b, count: a.count) } }
            return (p, a.count)
        }
        nextHops = array([NextHopRecord]())
        groupBuckets = array([UInt32]())
        liveness = .allocate(capacity: Liveness.capacity)
        liveness.initialize(repeating: Liveness.up, count: Liveness.capacity)
        let emptyVNI = UnsafeMutablePointer<VNISlot>.allocate(capacity: 16)
        emptyVNI.initialize(repeating: VNISlot(key: 0, action: ActionID(0)), count: 16)
        vni = (emptyVNI, 15)
        self.ports = array(ports)
        self.addresses = array(addresses)
        lpm = (.allocate(capacity: 1), .allocate(capacity: 1), .allocate(capacity: 1), 0)
        current = .allocate(capacity: 1)
        rebuildRoutes([], vrfCount: vrfCount, retireOld: false)
        current.initialize(to: makeSnapshot(generation: 0))
    }

    private var released = false

    /// Whoever drops the last reference to the tables no longer publishes them: free what is left.
    deinit { deallocateAll() }

    /// Frees everything, including the current snapshot. Only once no worker can read it. Idempotent.
    public func deallocateAll() {
        guard !released else { return }
        released = true
        for i in 0..<ILM.directorySize where directory[i] != ILM.emptyPage { directory[i].deallocate() }
        directory.deallocate()
        nextHops.0.deallocate(); groupBuckets.0.deallocate(); vni.0.deallocate(); liveness.deallocate()
        lpm.v4.deallocate(); lpm.v6.deallocate(); lpm.vrfs.deallocate()
        ports.0.deallocate(); addresses.0.deallocate()
        LargeTable.release(UnsafeMutableRawPointer(actions), bytes: maxActions * MemoryLayout<Action>.stride)
        current.deallocate()
    }

    // MARK: changes

    /// Stores an action in a slot no snapshot references. The engine's entry limit keeps the slab from filling:
    /// it reserves two slots per entry (one live, one retired during a replace).
    public func addAction(_ a: Action) -> ActionID {
        let slot: UInt32
        if let s = freeActions.popLast() { slot = s } else {
            precondition(Int(actionHighWater) < maxActions, "action slab full")
            slot = actionHighWater
            actionHighWater += 1
        }
        actions[Int(slot)] = a
        return ActionID(slot)
    }

    /// The slot stays readable until the grace period after the next commit, then is reused.
    public func retireAction(_ id: ActionID) { pending.actions.append(id.rawValue) }

    public func ilm(_ label: UInt32) -> ILMEntry {
        let dir = workingDirectory ?? directory
        return dir[Int(label >> UInt32(ILM.pageBits))][Int(label & ILM.pageMask)]
    }

    /// Sets one label's entry (`.empty` removes it), copying its page on first touch in this commit.
    public func setILM(_ label: UInt32, _ entry: ILMEntry) {
        if workingDirectory == nil {
            let d = UnsafeMutablePointer<UnsafeMutablePointer<ILMEntry>>.allocate(capacity: ILM.directorySize)
            d.initialize(from: directory, count: ILM.directorySize)
            workingDirectory = d
            commitBytes += MemoryLayout<UnsafeMutablePointer<ILMEntry>>.stride * ILM.directorySize
            pending.pointers.append(UnsafeMutableRawPointer(directory))
        }
        let dir = workingDirectory!
        let page = Int(label >> UInt32(ILM.pageBits))
        if !copiedPages.contains(page) {
            let old = dir[page]
            let fresh = UnsafeMutablePointer<ILMEntry>.allocate(capacity: ILM.pageSize)
            fresh.initialize(from: old, count: ILM.pageSize)
            commitBytes += MemoryLayout<ILMEntry>.stride * ILM.pageSize
            if old != ILM.emptyPage { pending.pointers.append(UnsafeMutableRawPointer(old)) }
            dir[page] = fresh
            copiedPages.insert(page)
        }
        dir[page][Int(label & ILM.pageMask)] = entry
    }

    public func replaceNextHops(_ records: [NextHopRecord]) {
        pending.pointers.append(UnsafeMutableRawPointer(nextHops.0))
        nextHops = copyOut(records)
    }

    /// `buckets`: groupCount × ECMP.bucketCount next-hop indices, then as many second choices.
    public func replaceGroups(_ buckets: [UInt32]) {
        pending.pointers.append(UnsafeMutableRawPointer(groupBuckets.0))
        groupBuckets = copyOut(buckets)
    }

    /// Rebuilds the VNI table.
    public func replaceVNIs(_ entries: [(vni: UInt32, action: ActionID)]) {
        let (slots, mask) = VNIHash.table(entries)
        pending.pointers.append(UnsafeMutableRawPointer(vni.0))
        vni = (copyOut(slots).0, mask)
    }

    /// The address list: the ports' addresses first, then VNI allowed-VTEP lists (the caller keeps the order).
    public func replaceAddresses(_ list: [IPv6Address]) {
        pending.pointers.append(UnsafeMutableRawPointer(addresses.0))
        addresses = copyOut(list)
    }

    /// Rebuilds every VRF's tries from `routes`.
    public func replaceRoutes(_ routes: [RouteSpec], vrfCount: Int) {
        rebuildRoutes(routes, vrfCount: vrfCount, retireOld: true)
    }

    private func rebuildRoutes(_ routes: [RouteSpec], vrfCount: Int, retireOld: Bool) {
        let (v4, v6, records) = LPMBuilder.build(routes, vrfCount: vrfCount)
        if retireOld {
            pending.pointers.append(UnsafeMutableRawPointer(lpm.v4))
            pending.pointers.append(UnsafeMutableRawPointer(lpm.v6))
            pending.pointers.append(UnsafeMutableRawPointer(lpm.vrfs))
        } else {
            lpm.v4.deallocate(); lpm.v6.deallocate(); lpm.vrfs.deallocate()
        }
        lpm = (copyOut(v4).0, copyOut(v6).0, copyOut(records).0, records.count)
    }

    private func copyOut<T>(_ a: [T]) -> (UnsafeMutablePointer<T>, Int) {
        let p = UnsafeMutablePointer<T>.allocate(capacity: max(a.count, 1))
        a.withUnsafeBufferPointer { if let b = $0.baseAddress { p.initialize(from: b, count: a.count) } }
        commitBytes += MemoryLayout<T>.stride * max(a.count, 1)
        return (p, a.count)
    }

    // MARK: commit

    /// Makes the changes since the last commit into a new current snapshot. The caller publishes it, waits for a
    /// grace period, then passes the result to `reclaim`.
    public func commit(generation: UInt64) -> Retired {
        if let d = workingDirectory { directory = d }
        workingDirectory = nil
        copiedPages.removeAll(keepingCapacity: true)
        let snap = UnsafeMutablePointer<FIBSnapshot>.allocate(capacity: 1)
        snap.initialize(to: makeSnapshot(generation: generation))
        var r = pending
        r.snapshot = current
        current = snap
        pending = Retired()
        lastCommitBytes = commitBytes + MemoryLayout<FIBSnapshot>.stride
        commitBytes = 0
        return r
    }

    /// Frees what only older snapshots referenced. Call after a grace period following the commit.
    public func reclaim(_ r: Retired) {
        for p in r.pointers { p.deallocate() }
        freeActions.append(contentsOf: r.actions)
        r.snapshot?.deallocate()
    }

    private func makeSnapshot(generation: UInt64) -> FIBSnapshot {
        let actionsInUse = Int(actionHighWater) - freeActions.count - pending.actions.count
        var bytes = MemoryLayout<UnsafeMutablePointer<ILMEntry>>.stride * ILM.directorySize
        for i in 0..<ILM.directorySize where directory[i] != ILM.emptyPage { bytes += MemoryLayout<ILMEntry>.stride * ILM.pageSize }
        bytes += actionsInUse * MemoryLayout<Action>.stride
        return FIBSnapshot(
            generation: generation, ilmDirectory: directory,
            actions: actions, actionCount: Int(actionHighWater),
            nextHops: nextHops.0, nextHopCount: nextHops.1,
            groupBuckets: groupBuckets.0, groupCount: groupBuckets.1 / (2 * ECMP.bucketCount), liveness: liveness,
            vniSlots: vni.0, vniMask: vni.1,
            lpmV4: lpm.v4, lpmV6: lpm.v6, vrfs: lpm.vrfs, vrfCount: lpm.vrfCount,
            ports: ports.0, portCount: ports.1,
            addresses: addresses.0, addressCount: addresses.1,
            bytesAllocated: bytes)
    }
}
