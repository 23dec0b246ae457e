import Wire

/// The immutable forwarding state a worker reads: every table the data plane consults, in raw memory.
///
/// Built by `FIBSnapshotBuilder` on the control side, read by workers without locks, freed by its owner with
/// `deallocate()` once no worker can hold it. It is not an ARC object: copying the struct copies pointers.
@frozen
public struct FIBSnapshot: @unchecked Sendable {
    public let generation: UInt64
    /// ILM directory: `ILM.directorySize` page pointers.
    public let ilmDirectory: UnsafeMutablePointer<UnsafeMutablePointer<ILMEntry>>
    public let actions: UnsafeMutablePointer<Action>
    public let actionCount: Int
    public let nextHops: UnsafeMutablePointer<NextHopRecord>
    public let nextHopCount: Int
    /// `groupCount × ECMP.bucketCount` next-hop indices, then as many second choices (the member each bucket
    /// moves to while its own is down).
    public let groupBuckets: UnsafeMutablePointer<UInt32>
    public let groupCount: Int
    /// Next-hop liveness (`Liveness`), shared by every snapshot: not part of the generation.
    public let liveness: UnsafeMutablePointer<UInt8>
    /// VNI directory: `VNITable.directorySize` page pointers (entries are action + 1).
    public let vniDirectory: UnsafeMutablePointer<UnsafeMutablePointer<UInt32>>
    /// The static MAC table of multipoint VNIs (`MACTable`).
    public let macDirectory: UnsafeMutablePointer<UnsafeMutablePointer<MACSlot>>
    public let lpmV4: UnsafeMutablePointer<LPMSlot>
    public let lpmV6: UnsafeMutablePointer<LPMSlot>
    public let vrfs: UnsafeMutablePointer<VRFRecord>
    public let vrfCount: Int
    public let ports: UnsafeMutablePointer<PortRecord>
    public let portCount: Int
    /// The ports' addresses (`PortRecord.addressStart`). A VNI's allowed remote VTEPs are a list of their own,
    /// named by its action (`Action.vteps`).
    public let addresses: UnsafeMutablePointer<IPv6Address>
    public let addressCount: Int
    /// Bytes this snapshot owns, for reports and the allocation tests.
    public let bytesAllocated: Int

    init(generation: UInt64, ilmDirectory: UnsafeMutablePointer<UnsafeMutablePointer<ILMEntry>>,
         actions: UnsafeMutablePointer<Action>, actionCount: Int,
         nextHops: UnsafeMutablePointer<NextHopRecord>, nextHopCount: Int,
         groupBuckets: UnsafeMutablePointer<UInt32>, groupCount: Int, liveness: UnsafeMutablePointer<UInt8>,
         vniDirectory: UnsafeMutablePointer<UnsafeMutablePointer<UInt32>>,
         macDirectory: UnsafeMutablePointer<UnsafeMutablePointer<MACSlot>>,
         lpmV4: UnsafeMutablePointer<LPMSlot>, lpmV6: UnsafeMutablePointer<LPMSlot>,
         vrfs: UnsafeMutablePointer<VRFRecord>, vrfCount: Int,
         ports: UnsafeMutablePointer<PortRecord>, portCount: Int,
         addresses: UnsafeMutablePointer<IPv6Address>, addressCount: Int, bytesAllocated: Int) {
        self.generation = generation; self.ilmDirectory = ilmDirectory
        self.actions = actions; self.actionCount = actionCount
        self.nextHops = nextHops; self.nextHopCount = nextHopCount
        self.groupBuckets = groupBuckets; self.groupCount = groupCount; self.liveness = liveness
        self.vniDirectory = vniDirectory; self.macDirectory = macDirectory
        self.lpmV4 = lpmV4; self.lpmV6 = lpmV6; self.vrfs = vrfs; self.vrfCount = vrfCount
        self.ports = ports; self.portCount = portCount
        self.addresses = addresses; self.addressCount = addressCount; self.bytesAllocated = bytesAllocated
    }

    /// The ILM entry for a 20-bit label value: two dependent loads.
    @inlinable @inline(__always)
    public func ilm(_ label: UInt32) -> ILMEntry {
        ilmDirectory[Int(label >> UInt32(ILM.pageBits))][Int(label & ILM.pageMask)]
    }

    /// The action of a VNI, or nil: two dependent loads.
    @inlinable @inline(__always)
    public func vni(_ vni: UInt32) -> ActionID? {
        let v = VNITable.entry(vniDirectory, vni).pointee
        return v == 0 ? nil : ActionID(v &- 1)
    }

    /// Longest-prefix match of an IPv4 destination in a VRF: action index + 1, or 0.
    @inlinable @inline(__always)
    public func lookupV4(vrf: UInt16, _ address: UInt32) -> UInt32 {
        let v = vrfs[Int(vrf)]
        var best = v.v4Default
        var node = v.v4Root
        var shift: UInt32 = 24
        while true {
            let s = lpmV4[Int(node) << 8 | Int((address >> shift) & 0xFF)]
            if s.leaf != 0 { best = s.leaf }
            if s.child == 0 || shift == 0 { return best }
            node = s.child
            shift &-= 8
        }
    }

    /// Longest-prefix match of an IPv6 destination in a VRF: action index + 1, or 0.
    @inlinable @inline(__always)
    public func lookupV6(vrf: UInt16, _ address: IPv6Address) -> UInt32 {
        let v = vrfs[Int(vrf)]
        var best = v.v6Default
        var node = v.v6Root
        var depth = 0
        while depth < 16 {
            let word = depth < 8 ? address.high : address.low
            let byte = Int((word >> UInt64(56 - 8 * (depth & 7))) & 0xFF)
            let s = lpmV6[Int(node) << 8 | byte]
            if s.leaf != 0 { best = s.leaf }
            if s.child == 0 { return best }
            node = s.child
            depth &+= 1
        }
        return best
    }

    /// The next hop a target resolves to for a flow hash, ignoring liveness (the group's bucket member).
    @inlinable @inline(__always)
    public func resolve(_ target: ForwardTarget, hash: UInt32) -> UnsafeMutablePointer<NextHopRecord> {
        if target.isGroup {
            let nh = groupBuckets[Int(target.index) &* ECMP.bucketCount &+ Int(hash & ECMP.bucketMask)]
            return nextHops + Int(nh)
        }
        return nextHops + Int(target.index)
    }

    /// The next hop a target resolves to now: its own while up (one byte load); else a group bucket's second
    /// choice, else the next hop's backup (a next hop, or a group's bucket or second choice). nil when nothing
    /// usable is left. A backup's own backup is never followed.
    /// `flowHash` is asked only when a next hop (its own target carries no flow hash) falls back to a group backup,
    /// so the backup group still spreads flows.
    @inlinable @inline(__always)
    public func resolveLive(_ target: ForwardTarget, hash: UInt32,
                            flowHash: () -> UInt32) -> UnsafeMutablePointer<NextHopRecord>? {
        var slot: Int
        var bucket = Int(hash & ECMP.bucketMask)
        if target.isGroup {
            let b = Int(target.index) &* ECMP.bucketCount &+ bucket
            slot = Int(groupBuckets[b])
            if liveness[slot] == Liveness.up { return nextHops + slot }
            let second = Int(groupBuckets[groupCount &* ECMP.bucketCount &+ b])
            if liveness[second] == Liveness.up { return nextHops + second }
        } else {
            slot = Int(target.index)
            if liveness[slot] == Liveness.up { return nextHops + slot }
            if nextHops[slot].backup.isGroup { bucket = Int(flowHash() & ECMP.bucketMask) }
        }
        return resolveBackup(nextHops[slot].backup, bucket: bucket)
    }

    /// The backup's next hop (a group's bucket member, else its second choice) when up.
    @inlinable @inline(never)
    func resolveBackup(_ backup: ForwardTarget, bucket: Int) -> UnsafeMutablePointer<NextHopRecord>? {
        if backup == .none { return nil }
        var slot = Int(backup.index)
        if backup.isGroup {
            let b = slot &* ECMP.bucketCount &+ bucket
            slot = Int(groupBuckets[b])
            if liveness[slot] != Liveness.up { slot = Int(groupBuckets[groupCount &* ECMP.bucketCount &+ b]) }
        }
        return liveness[slot] == Liveness.up ? nextHops + slot : nil
    }

    /// Whether a next-hop target is down now (so entries with backup labels write those).
    @inlinable @inline(__always)
    public func isDown(_ target: ForwardTarget) -> Bool {
        !target.isGroup && liveness[Int(target.index)] != Liveness.up
    }

    /// True when `address` is in the port's address list.
    @inlinable @inline(__always)
    public func portOwns(_ port: UnsafeMutablePointer<PortRecord>, _ address: IPv6Address) -> Bool {
        var i = Int(port.pointee.addressStart)
        let end = i + Int(port.pointee.addressCount)
        while i < end {
            if addresses[i] == address { return true }
            i &+= 1
        }
        return false
    }

    /// Frees every table of a `FIBSnapshotBuilder` snapshot (FIBTables frees its own). Only the owner calls this,
    /// once no worker can still read the snapshot.
    public func deallocate() {
        for i in 0..<ILM.directorySize where ilmDirectory[i] != ILM.emptyPage {
            ilmDirectory[i].deallocate()
        }
        ilmDirectory.deallocate()
        for i in 0..<VNITable.directorySize where vniDirectory[i] != VNITable.emptyPage { vniDirectory[i].deallocate() }
        vniDirectory.deallocate()
        macDirectory.deallocate()
        for i in 0..<actionCount where actions[i].operation == .vxlanToMPLS && actions[i].vteps != 0 {
            UnsafeMutableRawPointer(bitPattern: UInt(actions[i].vteps))?.deallocate()
        }
        actions.deallocate(); nextHops.deallocate(); groupBuckets.deallocate(); liveness.deallocate()
        lpmV4.deallocate(); lpmV6.deallocate(); vrfs.deallocate(); ports.deallocate(); addresses.deallocate()
    }
}
