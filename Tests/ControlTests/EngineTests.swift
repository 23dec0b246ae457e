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

    @Test func aOneVNICommitCopiesOnePageAndKeepsOtherActions() throws {
        let e = try engine()
        defer { e.release() }
        func vni(_ v: UInt32, _ label: UInt32, vtep: UInt32 = 0xC000_0202) -> VNIEntrySpec {
            VNIEntrySpec(vni: v, push: [16001, label], controlWord: true, via: "p1", allowedVTEPs: [.v4(IPv4Address(value: vtep))])
        }
        // 10,000 VNIs over three pages.
        try e.apply((1..<10_001).map { .add(.vni(vni(UInt32($0), 1000))) })
        let before = e.snapshot.pointee
        let otherPage = before.vniDirectory[0]
        let action1 = before.vni(1)!
        try e.apply([.replace(.vni(vni(5000, 2000, vtep: 0xC000_0203)))])
        let page = MemoryLayout<UInt32>.stride * VNITable.pageSize
        let directory = MemoryLayout<UnsafeMutablePointer<UInt32>>.stride * VNITable.directorySize
        // One page, the directory, one VTEP list and the snapshot record: nothing proportional to the table.
        #expect(e.tables.lastCommitBytes >= page + directory)
        #expect(e.tables.lastCommitBytes < page + directory + 1024, "a one-VNI commit allocated \(e.tables.lastCommitBytes) bytes")
        let after = e.snapshot.pointee
        #expect(after.vniDirectory[0] == otherPage, "an untouched page is shared, not copied")
        #expect(after.vni(1) == action1, "untouched VNIs keep their action")
        let a = after.actions[Int(after.vni(5000)!.rawValue)]
        let list = UnsafePointer<IPv6Address>(bitPattern: UInt(a.vteps))!
        #expect(a.operation == .vxlanToMPLS && a.auxCount == 1 && list[0] == IPv6Address(.v4(IPv4Address(value: 0xC000_0203))))
        try e.apply([.delete(.vni(5000))])
        #expect(e.snapshot.pointee.vni(5000) == nil && e.snapshot.pointee.vni(4999) != nil)
    }

    /// Routes added, replaced and deleted over many commits (path copying, covers, pruning) must give the same
    /// longest-prefix matches as a linear search over the routes left, IPv4 and IPv6.
    @Test func incrementalTriesMatchALinearSearchThroughChurn() throws {
        let e = try engine()
        defer { e.release() }
        var rng = SystemRandomNumberGenerator()
        var routes: [String: (prefix: IPAddress, length: Int, label: UInt32)] = [:]
        func v4(_ bits: UInt32, _ len: Int) -> IPAddress {
            .v4(IPv4Address(value: len == 0 ? 0 : bits & ~(UInt32.max >> UInt32(len))))
        }
        func v6(_ hi: UInt64, _ len: Int) -> IPAddress {
            .v6(IPv6Address(high: len == 0 ? 0 : hi & ~(UInt64.max >> UInt64(min(len, 64))), low: 0))
        }
        // Prefixes crowded under 10.0.0.0/12 and 2001:db8::/32 so that covers and shared nodes are common.
        func randomRoute() -> (IPAddress, Int) {
            if Bool.random(using: &rng) {
                let len = [0, 8, 12, 14, 16, 20, 22, 23, 24, 25, 28, 32].randomElement(using: &rng)!
                return (v4(0x0A00_0000 | UInt32.random(in: 0..<(1 << 20), using: &rng), len), len)
            }
            let len = [0, 16, 32, 40, 44, 48, 56, 60, 64].randomElement(using: &rng)!
            return (v6(0x2001_0DB8_0000_0000 | UInt64.random(in: 0..<(1 << 32), using: &rng), len), len)
        }
        var label: UInt32 = 100
        for _ in 0..<60 {
            var changes: [FIBChange] = []
            var touched = Set<String>()
            for _ in 0..<Int.random(in: 1...25, using: &rng) {
                let (p, len) = randomRoute()
                let key = FTNEntrySpec(prefix: p, length: len, push: [], via: "p1").key
                guard touched.insert(key).inserted else { continue }
                label += 1
                let spec = FTNEntrySpec(prefix: p, length: len, push: [label], via: "p1")
                if routes[key] != nil {
                    if Bool.random(using: &rng) { changes.append(.delete(.ftn(key))); routes[key] = nil } else {
                        changes.append(.replace(.ftn(spec))); routes[key] = (p, len, label)
                    }
                } else {
                    changes.append(.add(.ftn(spec))); routes[key] = (p, len, label)
                }
            }
            try e.apply(changes)
            let s = e.snapshot.pointee
            for _ in 0..<300 {
                let (probe, _) = randomRoute()
                var best: (len: Int, label: UInt32)? = nil
                for r in routes.values {
                    let match: Bool
                    switch (probe, r.prefix) {
                    case (.v4(let a), .v4(let b)):
                        match = r.length == 0 || a.value & ~(UInt32.max >> UInt32(r.length)) == b.value
                    case (.v6(let a), .v6(let b)):
                        match = r.length == 0 || (a.high & ~(UInt64.max >> UInt64(min(r.length, 64)))) == b.high
                    default: match = false
                    }
                    if match && r.length >= (best?.len ?? -1) { best = (r.length, r.label) }
                }
                let leaf: UInt32
                switch probe {
                case .v4(let a): leaf = s.lookupV4(vrf: 0, a.value)
                case .v6(let a): leaf = s.lookupV6(vrf: 0, a)
                }
                let got = leaf == 0 ? nil : UInt32(truncatingIfNeeded: s.actions[Int(leaf - 1)].area.0) >> 12
                #expect(got == best?.label, "probe \(probe)")
            }
        }
        // One route more in a full table copies its path, not the table.
        try e.apply([.add(.ftn(FTNEntrySpec(prefix: v4(0x0B01_0200, 24), length: 24, push: [70_000], via: "p1")))])
        #expect(e.tables.lastCommitBytes < 4 * 2048 + 1024, "a one-route commit allocated \(e.tables.lastCommitBytes) bytes")
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
        var segmentsReset: [Int] = []
        func resetSegment(slot: Int) { segmentsReset.append(slot) }
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
        e.resetGeneration(7)
        _ = try StateFile.writeSnapshot(e.intent(), to: path, keepPrevious: true)
        e.resetGeneration(8)
        _ = try StateFile.writeSnapshot(e.intent(), to: path, keepPrevious: true)
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

    /// A state file path in a new directory of its own (`removeStateFiles` deletes both).
    static func stateFilePath(_ name: String) -> String {
        let dir = "/tmp/mplsgate-journal-\(name)-\(getpid())"
        mkdir(dir, 0o755)
        return dir + "/s.state"
    }

    static func removeStateFiles(_ path: String) {
        for f in ["", ".prev", ".journal", ".tmp", ".journal.tmp"] { unlink(path + f) }
        rmdir(String(path.dropLast("/s.state".count)))
    }

    /// Applies `changes` and returns what a journal record holds: each touched key and its entry after the commit.
    static func commit(_ e: FIBEngine, _ changes: [FIBChange]) throws -> (UInt64, [(key: EntryKey, entry: FIBEntry?)]) {
        let g = try e.apply(changes)
        var seen = Set<EntryKey>()
        let keys = changes.map(\.key).filter { seen.insert($0).inserted }
        return (g, keys.map { ($0, e.entry($0)) })
    }

    @Test func journalReplaysCommitsAfterTheSnapshotAndStopsAtATornTail() throws {
        let e = try engine()
        defer { e.release() }
        let path = Self.stateFilePath("test")
        defer { Self.removeStateFiles(path) }
        try e.apply([.add(.ilm(Self.swap(100, 200))), .add(.ilm(Self.swap(101, 201)))])
        let w = StateWriter(path: path, durableGeneration: 0, pathIsGood: false)
        #expect(w.nextWriteNeedsSnapshot && !w.retryWanted)
        w.submit(e.intent())
        let (g1, c1) = try Self.commit(e, [.replace(.ilm(Self.swap(100, 300)))])
        w.submit(generation: g1, changes: c1)
        let (g2, c2) = try Self.commit(e, [.delete(.ilm(101)), .add(.ilm(Self.swap(102, 202)))])
        w.submit(generation: g2, changes: c2)
        w.finish()
        #expect(w.durableGeneration == g2 && w.lastError == nil)
        #expect(w.counts.snapshots == 1 && w.counts.records == 2 && w.counts.journalBytes < 1024)
        let (l, problems) = StateFile.load(path: path)
        #expect(problems.isEmpty && l?.generation == g2 && l?.journalRecords == 2 && l?.fib == e.document() && l?.journalClean == true)

        // A torn record (a crash mid-append): the commits before it load, the tail is named.
        let (g3, c3) = try Self.commit(e, [.replace(.ilm(Self.swap(102, 400)))])
        let record = StateFile.encodeRecord(generation: g3, changes: c3)
        try StateFile.append(Array(record.dropLast(5)), toJournal: path + ".journal")
        let (torn, p2) = StateFile.load(path: path)
        #expect(torn?.generation == g2 && p2.count == 1 && p2[0].error.contains("torn") && torn?.journalClean == false)

        // A journal that names another snapshot (a crash after a new snapshot, before its journal): ignored.
        try StateFile.write(StateFile.journalHeader(generation: 1, checksum: "0123456789abcdef", id: "1") + record,
                            to: path + ".journal", keepPrevious: false)
        let (other, p3) = StateFile.load(path: path)
        #expect(other?.journalRecords == 0 && other?.generation == other?.snapshotGeneration && p3.isEmpty
                && other?.journalClean == false)
    }

    /// A write fails (the journal became a directory), commits keep coming: the writer must keep asking for a
    /// snapshot once per retry interval and become durable again once the path is writable.
    @Test func aFailedJournalRecoversWhileCommitsContinue() throws {
        let e = try engine()
        defer { e.release() }
        let path = Self.stateFilePath("fail")
        defer { Self.removeStateFiles(path) }
        let w = StateWriter(path: path, durableGeneration: 0, pathIsGood: false)
        defer { w.finish() }
        w.submit(e.intent())
        func waitUntil(_ what: () -> Bool) { for _ in 0..<400 where !what() { usleep(10_000) } }
        waitUntil { w.durableGeneration == e.generation }
        // The journal turns into a non-empty directory: appends and journal rewrites fail.
        unlink(path + ".journal")
        mkdir(path + ".journal", 0o755)
        let blocker = path + ".journal/x"
        close(open(blocker, O_WRONLY | O_CREAT, 0o600))
        var label: UInt32 = 200
        var retries = 0
        let clock = ContinuousClock()
        let start = clock.now
        // Commits every 50 ms for 2.5 s (the retry interval is 1 s), answering the writer's requests as the control
        // thread does.
        while clock.now - start < .milliseconds(2500) {
            label += 1
            let (g, c) = try Self.commit(e, [.add(.ilm(Self.swap(label, 300)))])
            if w.nextWriteNeedsSnapshot { w.submit(e.intent()) } else { w.submit(generation: g, changes: c) }
            usleep(50_000)
            if w.retryWanted { retries += 1; w.submit(e.intent()) }
        }
        #expect(w.lastError != nil && w.durableGeneration < e.generation)
        #expect(retries >= 1, "the writer asked for a snapshot while commits kept coming")
        unlink(blocker); rmdir(path + ".journal")
        waitUntil {
            if w.retryWanted { w.submit(e.intent()) }
            return w.durableGeneration == e.generation && w.lastError == nil
        }
        #expect(w.durableGeneration == e.generation && w.lastError == nil)
        let (l, _) = StateFile.load(path: path)
        #expect(l?.generation == e.generation && l?.fib == e.document())
    }

    @Test func retriesBackOffWhileWritesKeepFailing() {
        #expect((1...8).map { StateWriter.retryDelay(afterFailures: $0) } == [1, 2, 4, 8, 16, 30, 30, 30])
        #expect(StateWriter.retryDelay(afterFailures: 0) == 1)
    }

    @Test func journalWithAGapStopsAtTheGap() throws {
        let e = try engine()
        defer { e.release() }
        let path = Self.stateFilePath("gap")
        defer { Self.removeStateFiles(path) }
        let w = StateWriter(path: path, durableGeneration: 0, pathIsGood: false)
        w.submit(e.intent())
        let (g1, c1) = try Self.commit(e, [.add(.ilm(Self.swap(100, 200)))])
        let (_, _) = try Self.commit(e, [.add(.ilm(Self.swap(101, 200)))])
        let (g3, c3) = try Self.commit(e, [.add(.ilm(Self.swap(102, 200)))])
        w.submit(generation: g1, changes: c1)
        w.submit(generation: g3, changes: c3)
        w.finish()
        let (l, problems) = StateFile.load(path: path)
        #expect(l?.generation == g1 && problems.count == 1 && problems[0].error.contains("does not follow"))
    }
}

#if canImport(Glibc)
import Glibc
#endif
