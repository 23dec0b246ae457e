#if canImport(Glibc)
import Glibc
#endif
import Wire

/// The control side's owner of all FIB memory. It applies changes copy-on-write and produces one immutable
/// `FIBSnapshot` per commit (DESIGN §4):
///
/// - the ILM directory is copied per commit (2 KiB) and only the pages a commit touches are copied (32 KiB each);
/// - so is the VNI directory (32 KiB, pages of 16 KiB; both are a `PagedTable`); each VNI's allowed-VTEP list is an
///   allocation of its own,
///   replaced with its entry;
/// - actions live in one slab that never moves (reserved virtual memory, touched as used); a changed entry gets a
///   fresh slot and its old slot is reused only after the grace period, so a worker never sees a torn action;
/// - the LPM tries change by path copying in address-stable node pools (`LPMPool`): a route change copies the
///   nodes on its path (2 KiB each) and the VRF records;
/// - next hops and ECMP buckets are small and rebuilt whole when a commit touches them.
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

    private var ilm = PagedTable<ILMEntry>(pageBits: ILM.pageBits, directorySize: ILM.directorySize, emptyPage: ILM.emptyPage)
    private var nextHops: (UnsafeMutablePointer<NextHopRecord>, Int)
    private var groupBuckets: (UnsafeMutablePointer<UInt32>, Int)
    /// Next-hop liveness, one byte per next-hop slot for the tables' lifetime (not copied per commit).
    public let liveness: UnsafeMutablePointer<UInt8>
    private var vni = PagedTable<UInt32>(pageBits: VNITable.pageBits, directorySize: VNITable.directorySize,
                                         emptyPage: VNITable.emptyPage)
    /// Every live allowed-VTEP list and multipoint block, with its size (freed when retired, or with the tables).
    private var vtepLists: [UnsafeMutableRawPointer: Int] = [:]
    private var vtepBytes = 0
    /// The static MAC table of multipoint VNIs.
    private var macs = MACTableWriter()
    private let v4: LPMPool
    private let v6: LPMPool
    private var vrfs: (UnsafeMutablePointer<VRFRecord>, Int)
    /// The VRF records being changed by the commit being built (roots and default routes).
    private var workingVRFs: [VRFRecord]?
    private let ports: (UnsafeMutablePointer<PortRecord>, Int)
    private let addresses: (UnsafeMutablePointer<IPv6Address>, Int)
    /// Bytes the current tables hold (actions counted by slots in use).
    private var tableBytes = 0

    // The commit being built.
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
        var nodesV4: [UInt32] = []
        var nodesV6: [UInt32] = []
        var snapshot: UnsafeMutablePointer<FIBSnapshot>?
        /// Action slots the commit retired (their counters can be folded into the entry's running totals).
        public var retiredActions: [UInt32] { actions }
    }

    public init(ports: [PortRecord], addresses: [IPv6Address], vrfCount: Int, maxActions: Int = 1 << 22) {
        self.maxActions = maxActions
        let bytes = maxActions * MemoryLayout<Action>.stride
        guard let raw = LargeTable.reserve(bytes: bytes) else { preconditionFailure("cannot reserve \(bytes) bytes for the action slab") }
        actions = raw.bindMemory(to: Action.self, capacity: maxActions)
        func array<T>(_ a: [T]) -> (UnsafeMutablePointer<T>, Int) {
            let p = UnsafeMutablePointer<T>.allocate(capacity: max(a.count, 1))
            a.withUnsafeBufferPointer { if let b = $0.baseAddress { p.initialize(from: b, count: a.count) } }
            return (p, a.count)
        }
        nextHops = array([NextHopRecord]())
        groupBuckets = array([UInt32]())
        liveness = .allocate(capacity: Liveness.capacity)
        liveness.initialize(repeating: Liveness.up, count: Liveness.capacity)
        self.ports = array(ports)
        self.addresses = array(addresses)
        // Nodes: 4M per family (8 GiB of address space, reserved, resident only where used: 1M IPv4 /24s use ~4k
        // nodes, 1M IPv6 /56–/64s ~70k); a transaction that could need more than is left is refused (FIBEngine).
        let nodes = 1 << 22
        guard let v4 = LPMPool(capacity: nodes), let v6 = LPMPool(capacity: nodes) else {
            preconditionFailure("cannot reserve the LPM node pools (\(nodes) nodes each)")
        }
        self.v4 = v4
        self.v6 = v6
        var records: [VRFRecord] = []
        for _ in 0..<max(vrfCount, 1) {
            records.append(VRFRecord(v4Root: v4.allocate(), v6Root: v6.allocate(), v4Default: 0, v6Default: 0))
        }
        _ = v4.commit(); _ = v6.commit()
        vrfs = array(records)
        current = .allocate(capacity: 1)
        current.initialize(to: makeSnapshot(generation: 0))
    }

    private var released = false

    /// Whoever drops the last reference to the tables no longer publishes them: free what is left.
    deinit { deallocateAll() }

    /// Frees everything, including the current snapshot. Only once no worker can read it. Idempotent.
    public func deallocateAll() {
        guard !released else { return }
        released = true
        ilm.deallocate()
        vni.deallocate()
        macs.table.deallocate()
        for (l, _) in vtepLists { l.deallocate() }
        vtepLists.removeAll()
        nextHops.0.deallocate(); groupBuckets.0.deallocate(); liveness.deallocate()
        v4.release(); v6.release(); vrfs.0.deallocate()
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

    public func ilm(_ label: UInt32) -> ILMEntry { ilm.read(label) }

    /// Sets one label's entry (`.empty` removes it), copying its page on first touch in this commit.
    public func setILM(_ label: UInt32, _ entry: ILMEntry) {
        ilm.write(label, entry, retired: &pending.pointers, copiedBytes: &commitBytes)
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

    /// Sets one VNI's action (nil removes it), copying its page (and once per commit the directory) on first touch.
    public func setVNI(_ key: UInt32, _ action: ActionID?) {
        vni.write(key, action.map { $0.rawValue &+ 1 } ?? 0, retired: &pending.pointers, copiedBytes: &commitBytes)
    }

    /// A new allowed-VTEP list for a vxlanToMPLS action (`Action.vteps`).
    public func allocateVTEPs(_ list: [IPv6Address]) -> UInt64 {
        let p = UnsafeMutablePointer<IPv6Address>.allocate(capacity: max(list.count, 1))
        p.initialize(from: list, count: list.count)
        return track(UnsafeMutableRawPointer(p), bytes: MemoryLayout<IPv6Address>.stride * max(list.count, 1))
    }

    /// A new block for a multipoint action (`Action.vteps`, `Segment`).
    public func allocateSegment(_ header: SegmentHeader, vteps: [IPv6Address], places: [Action], ids: [UInt64]) -> UInt64 {
        let (p, size) = Segment.makeBlock(header, vteps: vteps, places: places, ids: ids)
        return track(p, bytes: size)
    }

    private func track(_ raw: UnsafeMutableRawPointer, bytes n: Int) -> UInt64 {
        vtepLists[raw] = n
        commitBytes += n
        vtepBytes += n
        return UInt64(UInt(bitPattern: raw))
    }

    /// Frees an allowed-VTEP list or multipoint block after the grace period of the next commit.
    public func retireVTEPs(_ list: UInt64) {
        guard let raw = UnsafeMutableRawPointer(bitPattern: UInt(list)), let n = vtepLists.removeValue(forKey: raw) else { return }
        vtepBytes -= n
        pending.pointers.append(raw)
    }

    /// Static MAC entries in the table.
    public var macCount: Int { macs.count }

    /// The place (+ 1) the table holds for (vni, mac) in the commit being built, or 0.
    public func macPlace(vni: UInt32, mac: UInt64) -> UInt32 { macs.place(vni: vni, mac: mac) }

    /// Sets (place + 1) or removes (0) a static MAC, copying its page on first touch in this commit.
    public func setMAC(vni: UInt32, mac: UInt64, place: UInt32) {
        if place == 0 {
            macs.remove(vni: vni, mac: mac, retired: &pending.pointers, copiedBytes: &commitBytes)
        } else {
            macs.set(vni: vni, mac: mac, place: place, retired: &pending.pointers, copiedBytes: &commitBytes)
        }
    }

    /// Nodes either pool can still make: a transaction must fit (`FIBEngine` checks before it commits).
    public func lpmRoom(v6 isV6: Bool) -> Int { isV6 ? v6.room : v4.room }

    /// Adds or replaces a route (`bytes`: the prefix in wire order, 4 or 16 bytes); `leaf` is action index + 1.
    public func setRoute(vrf: UInt16, v6 isV6: Bool, bytes: [UInt8], length: Int, leaf: UInt32) {
        var r = workingVRFs ?? Array(UnsafeBufferPointer(start: vrfs.0, count: vrfs.1))
        let before = (v4.allocated, v6.allocated)
        let i = Int(vrf)
        if length == 0 {
            if isV6 { r[i].v6Default = leaf } else { r[i].v4Default = leaf }
        } else if isV6 {
            r[i].v6Root = v6.insert(root: r[i].v6Root, bytes: bytes, length: length, leaf: leaf)
        } else {
            r[i].v4Root = v4.insert(root: r[i].v4Root, bytes: bytes, length: length, leaf: leaf)
        }
        commitBytes += (v4.allocated - before.0 + v6.allocated - before.1) * 256 * MemoryLayout<LPMSlot>.stride
        workingVRFs = r
    }

    /// Removes a route; `cover` is the longest shorter prefix ending in the same trie node (stride of 8 bits) that
    /// covers it (leaf, length), or (0, 0): its slots fall back to that.
    public func removeRoute(vrf: UInt16, v6 isV6: Bool, bytes: [UInt8], length: Int, cover: (leaf: UInt32, length: UInt8)) {
        var r = workingVRFs ?? Array(UnsafeBufferPointer(start: vrfs.0, count: vrfs.1))
        let before = (v4.allocated, v6.allocated)
        let i = Int(vrf)
        if length == 0 {
            if isV6 { r[i].v6Default = 0 } else { r[i].v4Default = 0 }
        } else if isV6 {
            r[i].v6Root = v6.remove(root: r[i].v6Root, bytes: bytes, length: length, cover: cover)
        } else {
            r[i].v4Root = v4.remove(root: r[i].v4Root, bytes: bytes, length: length, cover: cover)
        }
        commitBytes += (v4.allocated - before.0 + v6.allocated - before.1) * 256 * MemoryLayout<LPMSlot>.stride
        workingVRFs = r
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
        ilm.commit()
        if let r = workingVRFs {
            pending.pointers.append(UnsafeMutableRawPointer(vrfs.0))
            vrfs = copyOut(r)
            workingVRFs = nil
        }
        pending.nodesV4 = v4.commit()
        pending.nodesV6 = v6.commit()
        vni.commit()
        macs.table.commit()
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
        v4.reclaim(r.nodesV4)
        v6.reclaim(r.nodesV6)
        r.snapshot?.deallocate()
    }

    private func makeSnapshot(generation: UInt64) -> FIBSnapshot {
        let actionsInUse = Int(actionHighWater) - freeActions.count - pending.actions.count
        var bytes = ilm.bytes
        bytes += actionsInUse * MemoryLayout<Action>.stride
        bytes += vni.bytes + vtepBytes + macs.table.bytes
            + (v4.inUse + v6.inUse) * 256 * MemoryLayout<LPMSlot>.stride
        return FIBSnapshot(
            generation: generation, ilmDirectory: ilm.directory,
            actions: actions, actionCount: Int(actionHighWater),
            nextHops: nextHops.0, nextHopCount: nextHops.1,
            groupBuckets: groupBuckets.0, groupCount: groupBuckets.1 / (2 * ECMP.bucketCount), liveness: liveness,
            vniDirectory: vni.directory, macDirectory: macs.table.directory,
            lpmV4: v4.slots, lpmV6: v6.slots, vrfs: vrfs.0, vrfCount: vrfs.1,
            ports: ports.0, portCount: ports.1,
            addresses: addresses.0, addressCount: addresses.1,
            bytesAllocated: bytes)
    }
}
