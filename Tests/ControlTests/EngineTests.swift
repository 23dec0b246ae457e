import Testing
import Wire
import FIB
import Control
import ControlServer

/// The control model's transactions: copy-on-write commits, all-or-nothing validation, references, generations,
/// counters across replace, and resync diffs.
@Suite struct EngineTests {
    static let config = InstanceConfig(ports: [
        PortConfig(name: "core0", mac: MACAddress(value: 0x0200_0000_0001), role: .core),
        PortConfig(name: "core1", mac: MACAddress(value: 0x0200_0000_0002), role: .core),
    ])

    static func nh(_ name: String, _ port: String = "core0", mac: UInt64 = 0x02AA_0000_0001) -> FIBChange {
        .add(.nextHop(NextHopSpec(name: name, port: port, mac: MACAddress(value: mac))))
    }

    static func swap(_ label: UInt32, _ out: UInt32, via: String = "p1") -> ILMEntrySpec {
        ILMEntrySpec(label: label, operation: .swap(out: [out], via: via, payload: nil, ttlMode: .uniform))
    }

    func engine() throws -> FIBEngine {
        let e = try FIBEngine(config: Self.config, maxEntries: 100_000)
        try e.apply([Self.nh("p1"), Self.nh("p2", "core1", mac: 0x02AA_0000_0002)])
        return e
    }

    /// Resyncs that move, drop or cross backups: every order the diff produces validates, in one commit.
    @Test func resyncsReorderBackupsAndGroups() throws {
        let e = try engine()
        defer { e.release() }
        func spec(_ n: String, _ port: String, _ backup: String? = nil) -> NextHopSpec {
            NextHopSpec(name: n, port: port, mac: MACAddress(value: 0x02AA_0000_0009), backup: backup)
        }
        // A next hop whose backup is a group that lists it.
        var fib = FIBSpec(nextHops: [spec("a", "core0", "g"), spec("b", "core1")],
                          ecmpGroups: [ECMPGroupSpec(name: "g", members: ["a", "b"])], ilm: [], vni: [], ftn: [])
        try e.replaceAll(with: fib)
        // ... and both deleted together.
        fib = FIBSpec(nextHops: [spec("b", "core1")], ecmpGroups: [], ilm: [], vni: [], ftn: [])
        try e.replaceAll(with: fib)
        #expect(e.keys(of: "nextHop").count == 1 && e.keys(of: "ecmpGroup").isEmpty)
        // x is a's backup... then a gets a backup of its own while x goes: no stale backup role.
        fib = FIBSpec(nextHops: [spec("x", "core0"), spec("a", "core0", "x"), spec("b", "core1")],
                      ecmpGroups: [], ilm: [], vni: [], ftn: [])
        try e.replaceAll(with: fib)
        fib = FIBSpec(nextHops: [spec("x", "core0", "b"), spec("a", "core0"), spec("b", "core1")],
                      ecmpGroups: [], ilm: [], vni: [], ftn: [])
        try e.replaceAll(with: fib)
        guard case .nextHop(let x)? = e.entry(.nextHop("x")) else { Issue.record("x is gone"); return }
        #expect(x.backup == "b")
    }

    /// A backup is content: adding one changes the digest (controllers compare it to decide on a resync).
    @Test func backupsAreInTheDigest() {
        let plain = NextHopSpec(name: "a", port: "core0", mac: MACAddress(value: 1))
        var protected = plain
        protected.backup = "b"
        #expect(ContentHash.of(.nextHop(plain)) != ContentHash.of(.nextHop(protected)))
        var entry = Self.swap(100, 200)
        let before = ContentHash.of(.ilm(entry))
        entry.backupOut = [300]
        #expect(ContentHash.of(.ilm(entry)) != before)
    }

    @Test func aOneEntryCommitCopiesOnePage() throws {
        let e = try engine()
        defer { e.release() }
        // 10,000 labels over three pages.
        try e.apply((16..<10_016).map { .add(.ilm(Self.swap(UInt32($0), 20_000))) })
        // Read what is needed of the old snapshot now: the commit frees what only it referenced.
        let before = e.snapshot.pointee
        let oldPage = before.ilmDirectory[1], otherPage = before.ilmDirectory[0]
        let action16 = before.ilm(16).action
        try e.apply([.replace(.ilm(Self.swap(5000, 30_000)))])
        let page = MemoryLayout<ILMEntry>.stride * ILM.pageSize
        let directory = MemoryLayout<UnsafeMutablePointer<ILMEntry>>.stride * ILM.directorySize
        // One page, the directory and the snapshot record: nothing proportional to the table.
        #expect(e.tables.lastCommitBytes >= page + directory)
        #expect(e.tables.lastCommitBytes < page + directory + 1024, "a one-entry commit allocated \(e.tables.lastCommitBytes) bytes")
        let after = e.snapshot.pointee
        #expect(after.ilmDirectory[1] != oldPage, "the touched page is a copy")
        #expect(after.ilmDirectory[0] == otherPage, "an untouched page is shared, not copied")
        #expect(after.ilm(5000).operation == .swap)
        #expect(after.actions[Int(after.ilm(5000).action.rawValue)].labelCount == 1)
        #expect(after.ilm(16).action == action16, "untouched entries keep their action")
    }

    @Test func anInvalidOperationChangesNothing() throws {
        let e = try engine()
        defer { e.release() }
        try e.apply([.add(.ilm(Self.swap(100, 200)))])
        let g = e.generation
        let snap = e.snapshot
        #expect {
            try e.apply([.add(.ilm(Self.swap(101, 201))), .replace(.ilm(Self.swap(100, 300))),
                         .add(.ilm(Self.swap(102, 5)))])
        } throws: { error in
            let t = error as! TransactionError
            return t.code == .invalid && t.element.hasPrefix("operations[2] (ilm 102)") && t.message.contains("reserved")
        }
        #expect(e.generation == g && e.snapshot == snap)
        #expect(e.entry(.ilm(101)) == nil)
        #expect(e.entry(.ilm(100)) == .ilm(Self.swap(100, 200)))
    }

    @Test func referencesAreChecked() throws {
        let e = try engine()
        defer { e.release() }
        try e.apply([.add(.ilm(Self.swap(100, 200))), .add(.ecmpGroup(ECMPGroupSpec(name: "g", members: ["p1", "p2"])))])
        func code(_ c: [FIBChange]) -> TransactionError.Code? {
            do { try e.apply(c); return nil } catch { return error.code }
        }
        #expect(code([.delete(.nextHop("p1"))]) == .referenced)
        #expect(code([.delete(.nextHop("p2"))]) == .referenced, "a group member is a reference")
        #expect(code([.add(.ilm(Self.swap(101, 200, via: "nowhere")))]) == .invalid)
        #expect(code([.add(.ilm(Self.swap(100, 200)))]) == .exists)
        #expect(code([.replace(.ilm(Self.swap(999, 200)))]) == .notFound)
        #expect(code([.delete(.ilm(999))]) == .notFound)
        // In order: remove the last user, then the next hop.
        #expect(code([.delete(.ilm(100)), .replace(.ecmpGroup(ECMPGroupSpec(name: "g", members: ["p2"]))),
                      .delete(.nextHop("p1"))]) == nil)
        #expect(e.entry(.nextHop("p1")) == nil)
    }

    @Test func staleGenerationIsRefused() throws {
        let e = try engine()
        defer { e.release() }
        let g = e.generation
        try e.apply([.add(.ilm(Self.swap(100, 200)))], expectedGeneration: g)
        #expect(throws: TransactionError.self) { try e.apply([.delete(.ilm(100))], expectedGeneration: g) }
        #expect(e.entry(.ilm(100)) != nil)
    }

    final class FakeCounters: EntryCounterStore {
        var slots: [Int: (UInt64, UInt64)] = [:]
        func read(slot: Int) -> (packets: UInt64, bytes: UInt64) { let v = slots[slot] ?? (0, 0); return (v.0, v.1) }
        func reset(slot: Int) { slots[slot] = nil }
    }

    @Test func countersSurviveReplaceAndRestartAfterDeleteAdd() throws {
        let e = try engine()
        defer { e.release() }
        let store = FakeCounters()
        e.counterStore = store
        try e.apply([.add(.ilm(Self.swap(100, 200)))])
        store.slots[e.actionSlot(.ilm(100))!] = (10, 1000)
        try e.apply([.replace(.ilm(Self.swap(100, 300)))])
        store.slots[e.actionSlot(.ilm(100))!] = (5, 500)
        #expect(e.counters(.ilm(100))! == (15, 1500))
        try e.apply([.delete(.ilm(100)), .add(.ilm(Self.swap(100, 300)))])
        #expect(e.counters(.ilm(100))! == (0, 0))
    }

    @Test func replaceAllDiffsAndKeepsUnchangedEntries() throws {
        let e = try engine()
        defer { e.release() }
        try e.apply([.add(.ilm(Self.swap(100, 200))), .add(.ilm(Self.swap(101, 201)))])
        let keep = e.actionSlot(.ilm(100))
        var fib = e.document()
        fib.ilm = [Self.swap(100, 200), Self.swap(102, 202)]
        let changes = e.diff(to: fib)
        #expect(changes.count == 2)   // add 102, delete 101
        try e.replaceAll(with: fib)
        #expect(e.entry(.ilm(101)) == nil && e.entry(.ilm(102)) != nil)
        #expect(e.actionSlot(.ilm(100)) == keep, "an unchanged entry is not rewritten")
        #expect(e.snapshot.pointee.ilm(101).operation == .none)
    }

    @Test func retiredSlotsAreReused() throws {
        let e = try engine()
        defer { e.release() }
        try e.apply([.add(.ilm(Self.swap(100, 200)))])
        for i in 0..<1000 { try e.apply([.replace(.ilm(Self.swap(100, UInt32(300 + i % 2))))]) }
        #expect(e.tables.actionHighWater < 8, "slots freed after the grace period are reused (\(e.tables.actionHighWater))")
    }

    @Test func vniAndFTNChangesRebuildTheirTables() throws {
        let e = try engine()
        defer { e.release() }
        try e.apply([
            .add(.vni(VNIEntrySpec(vni: 5000, push: [16001, 1000], controlWord: true, via: "p1",
                                   allowedVTEPs: [.v4(IPv4Address(value: 0xC000_0202))]))),
            .add(.ftn(FTNEntrySpec(prefix: .v4(IPv4Address(value: 0x0A00_0000)), length: 8, push: [16001], via: "p2"))),
        ])
        let s = e.snapshot.pointee
        #expect(s.vni(5000) != nil && s.vni(5001) == nil)
        #expect(s.lookupV4(vrf: 0, 0x0A01_0203) != 0 && s.lookupV4(vrf: 0, 0x0B00_0001) == 0)
        try e.apply([.delete(.vni(5000)), .delete(.ftn("default:10.0.0.0/8"))])
        let t = e.snapshot.pointee
        #expect(t.vni(5000) == nil && t.lookupV4(vrf: 0, 0x0A01_0203) == 0)
    }

    @Test func stateFileRoundTripsAndRejectsCorruption() throws {
        let e = try engine()
        defer { e.release() }
        try e.apply([.add(.ilm(Self.swap(100, 200)))])
        let dir = "/tmp/mplsgate-engine-test-\(getpid())"
        mkdir(dir, 0o755)
        let path = dir + "/s.state"
        try StateFile.write(StateFile.encode(e.document(), generation: 7), to: path)
        try StateFile.write(StateFile.encode(e.document(), generation: 8), to: path)
        let (ok, problems) = StateFile.load(path: path)
        #expect(problems.isEmpty && ok?.generation == 8 && ok?.fib == e.document())
        // Corrupt the newest copy: the previous one is used, and the problem is named.
        let f = fopen(path, "r+b")!
        fseek(f, -3, SEEK_END)
        fputc(0x21, f)
        fclose(f)
        let (prev, problems2) = StateFile.load(path: path)
        #expect(prev?.generation == 7 && prev?.path == path + ".prev")
        #expect(problems2.count == 1 && problems2[0].path == path && problems2[0].error.contains("checksum"))
        unlink(path); unlink(path + ".prev"); rmdir(dir)
    }
}

#if canImport(Glibc)
import Glibc
#endif
