import Wire

/// Assembles a `FIBSnapshot` on the control side from resolved pieces (indices, not names). The control module
/// validates intent and calls this; the builder only lays out memory.
public struct FIBSnapshotBuilder {
    private var ilmPages: [Int: [ILMEntry]] = [:]
    private var actions: [Action] = []
    private var nextHops: [NextHopRecord] = []
    private var groupBuckets: [UInt32] = []
    private var groupSecond: [UInt32] = []
    private var vnis: [(vni: UInt32, action: ActionID)] = []
    private var routes: [(vrf: UInt16, v6: Bool, bytes: [UInt8], length: Int, action: ActionID)] = []
    private var vrfCount = 0
    private var ports: [PortRecord] = []
    private var addresses: [IPv6Address] = []

    public init() {}

    /// Adds a VRF and returns its index.
    public mutating func addVRF() -> UInt16 {
        vrfCount += 1
        return UInt16(vrfCount - 1)
    }

    /// Appends port addresses to the shared list; returns the first index.
    public mutating func addAddresses(_ list: [IPv6Address]) -> UInt32 {
        let start = UInt32(addresses.count)
        addresses += list
        return start
    }

    public mutating func addPort(_ port: PortRecord) -> PortID {
        ports.append(port)
        return PortID(UInt16(ports.count - 1))
    }

    public mutating func addNextHop(_ nh: NextHopRecord) -> UInt32 {
        nextHops.append(nh)
        return UInt32(nextHops.count - 1)
    }

    /// Adds an ECMP group over `members` (next-hop indices) named by `memberKeys`. Each bucket goes to the member with
    /// the highest rendezvous score for (bucket, member key), so a member's buckets do not depend on the others.
    public mutating func addGroup(members: [UInt32], memberKeys: [String]) -> UInt32 {
        let b = ECMP.bucketsWithSecondChoice(members: members, memberKeys: memberKeys)
        groupBuckets += b.primary
        groupSecond += b.second
        return UInt32(groupBuckets.count / ECMP.bucketCount - 1)
    }

    public mutating func addAction(_ a: Action) -> ActionID {
        actions.append(a)
        return ActionID(UInt32(actions.count - 1))
    }

    public mutating func setILM(_ label: UInt32, _ entry: ILMEntry) {
        let page = Int(label >> UInt32(ILM.pageBits))
        var p = ilmPages[page] ?? [ILMEntry](repeating: .empty, count: ILM.pageSize)
        p[Int(label & ILM.pageMask)] = entry
        ilmPages[page] = p
    }

    public mutating func setVNI(_ vni: UInt32, _ action: ActionID) { vnis.append((vni, action)) }

    /// A VNI's allowed remote VTEPs, for `Action.vteps` (freed with the snapshot's `deallocate`).
    public static func vtepList(_ list: [IPv6Address]) -> UInt64 {
        let p = UnsafeMutablePointer<IPv6Address>.allocate(capacity: max(list.count, 1))
        p.initialize(from: list, count: list.count)
        return UInt64(UInt(bitPattern: p))
    }

    /// Adds a route; `bytes` is the address in wire order (4 or 16 bytes).
    public mutating func addRoute(vrf: UInt16, v6: Bool, bytes: [UInt8], length: Int, action: ActionID) {
        routes.append((vrf, v6, bytes, length, action))
    }

    /// Lays everything out in raw memory.
    public func build(generation: UInt64) -> FIBSnapshot {
        var bytes = 0
        func copy<T>(_ a: [T], minimum: Int = 1) -> UnsafeMutablePointer<T> {
            let p = UnsafeMutablePointer<T>.allocate(capacity: max(a.count, minimum))
            a.withUnsafeBufferPointer { b in if let base = b.baseAddress { p.initialize(from: base, count: a.count) } }
            bytes += MemoryLayout<T>.stride * max(a.count, minimum)
            return p
        }
        let dir = UnsafeMutablePointer<UnsafeMutablePointer<ILMEntry>>.allocate(capacity: ILM.directorySize)
        dir.initialize(repeating: ILM.emptyPage, count: ILM.directorySize)
        bytes += MemoryLayout<UnsafeMutablePointer<ILMEntry>>.stride * ILM.directorySize
        for (page, entries) in ilmPages { dir[page] = copy(entries) }

        let vniDir = UnsafeMutablePointer<UnsafeMutablePointer<UInt32>>.allocate(capacity: VNITable.directorySize)
        vniDir.initialize(repeating: VNITable.emptyPage, count: VNITable.directorySize)
        bytes += MemoryLayout<UnsafeMutablePointer<UInt32>>.stride * VNITable.directorySize
        for (vni, action) in vnis {
            let page = Int(vni >> UInt32(VNITable.pageBits))
            if vniDir[page] == VNITable.emptyPage {
                vniDir[page] = copy([UInt32](repeating: 0, count: VNITable.pageSize))
            }
            vniDir[page][Int(vni & VNITable.pageMask)] = action.rawValue &+ 1
        }
        let (v4, v6, vrfRecords) = LPMBuilder.build(routes.map {
            RouteSpec(vrf: $0.vrf, v6: $0.v6, bytes: $0.bytes, length: $0.length, action: $0.action)
        }, vrfCount: vrfCount)
        var a = actions
        if a.isEmpty { a.append(Action()) }
        // Its own liveness array, every next hop up (FIBTables shares one across its snapshots).
        let liveness = copy([UInt8](repeating: Liveness.up, count: Liveness.capacity))
        return FIBSnapshot(
            generation: generation, ilmDirectory: dir,
            actions: copy(a), actionCount: actions.count,
            nextHops: copy(nextHops), nextHopCount: nextHops.count,
            groupBuckets: copy(groupBuckets + groupSecond), groupCount: groupBuckets.count / ECMP.bucketCount,
            liveness: liveness,
            vniDirectory: vniDir,
            macDirectory: {
                let d = UnsafeMutablePointer<UnsafeMutablePointer<MACSlot>>.allocate(capacity: MACTable.directorySize)
                d.initialize(repeating: MACTable.emptyPage, count: MACTable.directorySize)
                return d
            }(),
            lpmV4: copy(v4), lpmV6: copy(v6),
            vrfs: copy(vrfRecords), vrfCount: vrfRecords.count,
            ports: copy(ports), portCount: ports.count,
            addresses: copy(addresses), addressCount: addresses.count,
            bytesAllocated: bytes)
    }

}

extension ECMP {
    /// The bucket arrays of a group over `members` (next-hop indices) named by `memberKeys`: each bucket goes to the
    /// member with the highest rendezvous score for (bucket, member key), so a member's buckets do not depend on the
    /// others and removing one moves only its share; its second choice is the next highest (the member itself in a
    /// one-member group): while a member is down its buckets move to their second choices, so only its flows move
    /// and each moved flow has one place to go.
    public static func bucketsWithSecondChoice(members: [UInt32], memberKeys: [String]) -> (primary: [UInt32], second: [UInt32]) {
        precondition(!members.isEmpty && members.count == memberKeys.count)
        let keyHashes = memberKeys.map(FIBSnapshotBuilder.stableHash)
        var out = [UInt32](repeating: 0, count: bucketCount)
        var second = [UInt32](repeating: 0, count: bucketCount)
        for bucket in 0..<bucketCount {
            var best = 0, next = 0
            var bestScore: UInt64 = 0, nextScore: UInt64 = 0
            for m in 0..<members.count {
                let score = FIBSnapshotBuilder.mix64(keyHashes[m] ^ UInt64(bucket) &* 0x9E37_79B9_7F4A_7C15)
                if m == 0 || score > bestScore {
                    if m > 0 { next = best; nextScore = bestScore }
                    best = m; bestScore = score
                } else if m == 1 || best == next || score > nextScore {
                    next = m; nextScore = score
                }
            }
            out[bucket] = members[best]
            second[bucket] = members[next]
        }
        return (out, second)
    }
}

extension FIBSnapshotBuilder {
    /// FNV-1a over UTF-8: stable across runs and platforms (Swift's Hasher is seeded per process).
    static func stableHash(_ s: String) -> UInt64 { stableHash(bytes: s.utf8) }

    /// FNV-1a over bytes.
    static func stableHash<S: Sequence>(bytes: S) -> UInt64 where S.Element == UInt8 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01B3 }
        return h
    }

    /// SplitMix64 finaliser.
    static func mix64(_ x: UInt64) -> UInt64 {
        var z = x &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
