#if canImport(Glibc)
import Glibc
#endif
import Control
import ControlServer
import CXDP
import Dataplane
import FIB
import Foundation
@testable import IO
import Testing
import Wire

/// The fast tier (bpf/fast_tier.h) against the Swift pipeline, through BPF_PROG_TEST_RUN (root): on the lab FIB,
/// every frame the fast tier forwards must come out with the pipeline's bytes and egress port, and every frame it
/// does not forward must go to AF_XDP untouched (the pipeline then decides). Its counters must be the pipeline's.
@Suite(.enabled(if: geteuid() == 0, "BPF_PROG_TEST_RUN needs root"), .serialized)
struct FastTierTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static func bytes(_ relative: String) -> [UInt8] { [UInt8](try! Data(contentsOf: root.appendingPathComponent(relative))) }
    static let config = try! FIBCodec.decodeConfig(bytes("examples/config.json"))
    static func compile() -> CompiledFIB {
        try! FIBCompiler.compile(config: config, fib: try! FIBCodec.decodeFIB(bytes("examples/fib.json")))
    }
    static func portIndex(_ name: String) -> Int { config.ports.firstIndex { $0.name == name }! }

    static func hex(_ s: String) -> [UInt8] {
        var out: [UInt8] = []
        var i = s.startIndex
        while i < s.endIndex {
            let j = s.index(i, offsetBy: 2)
            out.append(UInt8(s[i..<j], radix: 16)!)
            i = j
        }
        return out
    }

    /// One loaded program per core port of `fib`, every port an egress that takes redirected frames (the devmap
    /// points at lo: BPF_PROG_TEST_RUN does not transmit).
    static func programs(_ fib: FIBSnapshot) throws -> [Int: SteerProgram] {
        try loaded(fib).programs
    }

    /// The programs and their shared tables (`capacity` entries), synced to `fib`.
    static func loaded(_ fib: FIBSnapshot, capacity: Int = 1 << 16) throws -> (programs: [Int: SteerProgram], tables: FastTierTables) {
        var out: [Int: SteerProgram] = [:]
        var owner: SteerProgram?
        for i in 0..<fib.portCount where fib.ports[i].role == .core {
            let p = try SteerProgram(fastTierPort: UInt16(i), mac: fib.ports[i].mac.value, entries: capacity, sharing: owner)
            owner = owner ?? p
            out[i] = p
        }
        let tables = try FastTierTables(owner: owner!, capacity: capacity)
        try tables.sync(fib)
        for i in 0..<fib.portCount { try tables.setEgress(port: i, ifindex: 1, takesRedirects: true) }
        return (out, tables)
    }

    /// The pipeline's verdict: (egress, drop, bytes out).
    static func pipeline(_ input: [UInt8], port: Int, fib: FIBSnapshot, counters: WorkerCounters)
        -> (PortID, DropReason, [UInt8]) {
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: Frame.headroom + 16384, alignment: 64)
        defer { buffer.deallocate() }
        input.withUnsafeBytes { if let b = $0.baseAddress { (buffer + Frame.headroom).copyMemory(from: b, byteCount: input.count) } }
        let batch = UnsafeMutableBufferPointer<Frame>.allocate(capacity: 1)
        defer { batch.deallocate() }
        batch[0] = Frame(buffer: buffer, offset: Int32(Frame.headroom), length: Int32(input.count), ingress: PortID(UInt16(port)))
        Pipeline.process(batch, fib: fib, counters: counters)
        let f = batch[0]
        return (f.egress, f.drop, [UInt8](UnsafeRawBufferPointer(start: f.buffer + Int(f.offset), count: Int(f.length))))
    }

    enum Outcome: Equatable { case fast, steered }

    /// Runs one frame through both; fails the test when the fast tier's result is not the pipeline's.
    static func compare(_ name: String, _ input: [UInt8], port: Int, fib: FIBSnapshot, program: SteerProgram,
                        counters: WorkerCounters) throws -> Outcome {
        let (action, out, verdict): (UInt32, [UInt8], FastTierVerdict?)
        do { (action, out, verdict) = try program.testRunFast(input) } catch {
            Issue.record("\(name) (\(input.count) bytes): \(error)")
            return .steered
        }
        let (egress, drop, bytes) = pipeline(input, port: port, fib: fib, counters: counters)
        if let verdict, verdict.forwarded {
            #expect(action == UInt32(XDP_REDIRECT.rawValue), "\(name): action \(action)")
            #expect(drop == .none, "\(name): the fast tier forwarded what the pipeline drops as \(drop)")
            #expect(Int(verdict.port) == Int(egress.rawValue), "\(name): egress \(verdict.port), pipeline \(egress)")
            #expect(out == bytes, "\(name): bytes differ\n fast     \(out.map { String(format: "%02x", $0) }.joined())\n pipeline \(bytes.map { String(format: "%02x", $0) }.joined())")
            return .fast
        }
        // Steered (MPLS) or not the fast tier's (anything else): passed on untouched, as the steering program does
        // without a socket bound.
        if ProcessInfo.processInfo.environment["MPLSGATE_FAST_VERBOSE"] != nil {
            print("steered: \(name): why \(verdict?.why ?? 0), pipeline \(drop)")
        }
        #expect(action == UInt32(XDP_PASS.rawValue), "\(name): action \(action)")
        #expect(out == input, "\(name): a frame the fast tier did not forward was changed")
        return .steered
    }

    @Test func fixturesGiveThePipelinesBytes() throws {
        let doc = try JSONSerialization.jsonObject(with: Data(Self.bytes("Tests/Fixtures/cases.json"))) as! [String: Any]
        let shared = Self.compile()
        defer { shared.release() }
        let sharedPrograms = try Self.programs(shared.snapshot)
        var fast: [String] = []
        var steered = 0
        for c in doc["cases"] as! [[String: Any]] {
            let name = c["name"] as! String
            let port = Self.portIndex(c["port"] as! String)
            guard Self.config.ports[port].role == .core, c["copies"] == nil else { continue }
            let down = c["down"] as? [String] ?? []
            var own: CompiledFIB?
            var programs = sharedPrograms
            if !down.isEmpty {
                let o = Self.compile()
                for n in down { o.snapshot.liveness[Int(o.engine.nextHopSlot(named: n)!)] = Liveness.down }
                programs = try Self.programs(o.snapshot)
                own = o
            }
            let fib = own?.snapshot ?? shared.snapshot
            let counters = WorkerCounters.allocate(entryCapacity: fib.actionCount)
            let input = Self.hex(c["input"] as! String)
            // BPF_PROG_TEST_RUN takes a linear frame of at most a page less head- and tailroom; the jumbo fixture
            // would need xdp.frags, which this program does not declare (such frames go to AF_XDP live).
            // It also refuses frames shorter than an Ethernet header (the pipeline drops them as tooShort).
            if input.count > 3000 || input.count < 14 { continue }
            if try Self.compare(name, input, port: port, fib: fib, program: programs[port]!, counters: counters) == .fast {
                fast.append(name)
            } else {
                steered += 1
            }
            counters.deallocate()
            own?.release()
        }
        // What the fast tier must take from the fixtures: swap (1, 2 and 4 labels), PHP to MPLS, IPv4 and IPv6,
        // pop to a next label, explicit null at S=0, ECMP, and the protection cases it can resolve itself.
        for wanted in ["swap ttl 2 -> 1, tc kept", "swap ttl 64, S=0 kept, label below untouched"] {
            #expect(fast.contains(wanted), "\(wanted) was not forwarded by the fast tier")
        }
        #expect(fast.count >= 20, "the fast tier forwarded only \(fast.count) fixtures: \(fast)")
        print("fast tier: \(fast.count) fixtures forwarded, \(steered) steered: \(fast)")
    }

    /// splitmix64: a seeded generator, so a failure can be replayed (the seed is in the failure message).
    struct Rng {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
        mutating func byte() -> UInt8 { UInt8(truncatingIfNeeded: next()) }
    }

    /// A random frame for a core port: mostly well-formed label stacks over the lab FIB's labels, with special
    /// labels, odd TTLs, missing bottom-of-stack bits, IP payloads with odd headers, and truncation.
    static func randomFrame(_ r: inout Rng, mac: UInt64, labels: [UInt32]) -> [UInt8] {
        var f: [UInt8] = []
        if r.below(10) == 0 { f += (0..<6).map { _ in r.byte() } } else { f += (0..<6).map { UInt8(truncatingIfNeeded: mac >> UInt64(40 - 8 * $0)) } }
        f += [0x02, 0xee, 0, 0, 0, 0x99]
        if r.below(5) == 0 { f += [0x81, 0x00, 0, UInt8(r.below(4))] }
        f += [0x88, 0x47]
        let depth = 1 + r.below(r.below(4) == 0 ? 34 : 5)
        let bottomMissing = r.below(12) == 0
        for i in 0..<depth {
            var label: UInt32
            switch r.below(10) {
            case 0: label = [0, 2, 7, 3, 1, 13, 15][r.below(7)]
            case 1: label = UInt32(16 + r.below(1 << 20 - 16))
            default: label = labels[r.below(labels.count)]
            }
            let ttls: [UInt32] = [0, 1, 2, 3, 64, 255]
            let ttl = r.below(3) == 0 ? UInt32(r.byte()) : ttls[r.below(ttls.count)]
            let tc = UInt32(r.below(8))
            let s: UInt32 = (i == depth - 1 && !bottomMissing) ? 1 : (r.below(30) == 0 ? 1 : 0)
            let lse = label << 12 | tc << 9 | s << 8 | ttl
            f += [UInt8(lse >> 24), UInt8(lse >> 16 & 0xFF), UInt8(lse >> 8 & 0xFF), UInt8(lse & 0xFF)]
        }
        let body = 20 + r.below(60)
        switch r.below(4) {
        case 0, 1:  // IPv4, sometimes with a bad version, header length or total length
            var ip: [UInt8] = [0x45, 0, 0, UInt8(20 + body), 0, 1, 0, 0, [0, 1, 2, 64][r.below(4)], 17, 0, 0,
                               10, 0, 0, 1, 10, 0, 0, 2]
            if r.below(8) == 0 { ip[0] = [0x44, 0x46, 0x65, 0x4f][r.below(4)] }
            if r.below(8) == 0 { ip[3] = r.byte() }
            ip[10] = r.byte(); ip[11] = r.byte()
            f += ip + (0..<body).map { _ in r.byte() }
        case 2:  // IPv6
            var ip: [UInt8] = [0x60, 0, 0, 0, 0, UInt8(body), 17, [0, 1, 2, 64][r.below(4)]]
            if r.below(8) == 0 { ip[0] = 0x40 }
            ip += [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [1]
            ip += [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [2]
            f += ip + (0..<body).map { _ in r.byte() }
        default:
            f += (0..<body).map { _ in r.byte() }
        }
        if r.below(8) == 0 { f = Array(f.prefix(14 + r.below(max(1, f.count - 14)))) }
        return f
    }

    /// Random frames over the lab FIB through both, every next hop up and then with next hops down: the same
    /// bytes, egress port and counters whenever the fast tier forwards. MPLSGATE_FAST_DIFF_FRAMES sets the number
    /// (20,000 by default; the long run is ≥ 1M), MPLSGATE_FAST_DIFF_SEED the seed.
    @Test(arguments: [[], ["p1"], ["p1", "p2"]])
    func randomFramesAgree(down: [String]) throws {
        let env = ProcessInfo.processInfo.environment
        let frames = Int(env["MPLSGATE_FAST_DIFF_FRAMES"] ?? "") ?? 20_000
        let seed = UInt64(env["MPLSGATE_FAST_DIFF_SEED"] ?? "") ?? 0x4D50_4C53_4741_5445
        let compiled = Self.compile()
        defer { compiled.release() }
        for n in down { compiled.snapshot.liveness[Int(compiled.engine.nextHopSlot(named: n)!)] = Liveness.down }
        let fib = compiled.snapshot
        let (programs, tables) = try Self.loaded(fib)
        let labels = (UInt32(16)..<(1 << 20)).filter { fib.ilm($0).operation != .none }
        // The pipeline's counters of what the fast tier forwarded, to compare with the program's own.
        let fastCounters = WorkerCounters.allocate(entryCapacity: fib.actionCount)
        let otherCounters = WorkerCounters.allocate(entryCapacity: fib.actionCount)
        defer { fastCounters.deallocate(); otherCounters.deallocate() }
        var r = Rng(state: seed)
        var fast = 0
        let cores = programs.keys.sorted()
        for i in 0..<frames {
            let port = cores[r.below(cores.count)]
            let frame = Self.randomFrame(&r, mac: fib.ports[port].mac.value, labels: labels)
            let (action, out, verdict) = try programs[port]!.testRunFast(frame)
            let forwarded = verdict?.forwarded == true
            let (egress, drop, bytes) = Self.pipeline(frame, port: port, fib: fib, counters: forwarded ? fastCounters : otherCounters)
            let hex = frame.map { String(format: "%02x", $0) }.joined()
            if forwarded {
                fast += 1
                #expect(action == UInt32(XDP_REDIRECT.rawValue) && drop == .none && Int(verdict!.port) == Int(egress.rawValue)
                        && out == bytes, "frame \(i) (seed \(seed), down \(down)): fast tier \(verdict!) vs pipeline \(egress) \(drop)\n in  \(hex)")
            } else {
                #expect(action == UInt32(XDP_PASS.rawValue) && out == frame, "frame \(i) (seed \(seed)): steered but changed\n in \(hex)")
            }
        }
        #expect(fast > frames / 40, "the fast tier forwarded only \(fast) of \(frames) random frames")
        // One set of counters, shared by both ports' programs (as the tables are).
        for port in 0..<fib.portCount {
            let c = tables.portCounters(port)
            let p = fastCounters.ports[port]
            #expect(c.rxPackets == p.rxPackets && c.rxBytes == p.rxBytes && c.txPackets == p.txPackets && c.txBytes == p.txBytes,
                    "port \(port): fast \(c), pipeline rx \(p.rxPackets)/\(p.rxBytes) tx \(p.txPackets)/\(p.txBytes)")
        }
        for slot in 0..<fib.actionCount {
            let c = tables.entryCounter(slot: slot)
            #expect(c.packets == fastCounters.entries[slot].packets && c.bytes == fastCounters.entries[slot].bytes, "action \(slot) counters")
        }
        print("fast tier, random frames (down \(down)): \(fast) of \(frames) forwarded by the fast tier, the rest steered")
    }

    /// Commits reach the fast tier label by label: a replaced, a removed and an added label are each written once,
    /// nothing else is, and frames agree with the pipeline on the new snapshot afterwards.
    @Test func commitsSyncOnlyTheChangedLabels() throws {
        let compiled = Self.compile()
        defer { compiled.release() }
        let engine = compiled.engine
        let (programs, tables) = try Self.loaded(engine.tables.current.pointee)
        var syncError: String?
        engine.publish = { snapshot in
            do throws(AgentError) { try tables.sync(snapshot.pointee) } catch { syncError = error.description }
        }
        let before = tables.labels
        let switches = tables.generationSwitches
        let swapped = (UInt32(16)..<(1 << 20)).filter { engine.tables.current.pointee.ilm($0).operation == .swap }
        let replaced = swapped[0], removed = swapped[1]
        let added: UInt32 = 777_777
        try engine.apply([
            .replace(.ilm(ILMEntrySpec(label: replaced, operation: .swap(out: [4242, 4343], via: "p1", payload: nil, ttlMode: .uniform)))),
            .delete(.ilm(removed)),
            .add(.ilm(ILMEntrySpec(label: added, operation: .swap(out: [99_999], via: "p2", payload: nil, ttlMode: .pipe)))),
        ])
        #expect(syncError == nil)
        #expect(tables.lastSyncWrites == 3, "a commit of three labels wrote \(tables.lastSyncWrites)")
        #expect(tables.labels == before, "labels \(tables.labels), before \(before)")
        // Three labels: one new generation, after which both halves hold it.
        #expect(tables.generationSwitches == switches + 1, "switches \(tables.generationSwitches), before \(switches)")
        #expect(tables.halvesAgree())
        let fib = engine.tables.current.pointee
        let counters = WorkerCounters.allocate(entryCapacity: fib.actionCount)
        defer { counters.deallocate() }
        let core0 = Self.portIndex("core0")
        for label in [replaced, removed, added] {
            let lse: UInt32 = label << 12 | 1 << 8 | 64
            let mac = fib.ports[core0].mac.value
            var frame: [UInt8] = (0..<6).map { UInt8(truncatingIfNeeded: mac >> UInt64(40 - 8 * $0)) }
            frame += [0x02, 0xee, 0, 0, 0, 0x99, 0x88, 0x47]
            frame += [UInt8(lse >> 24), UInt8(lse >> 16 & 0xFF), UInt8(lse >> 8 & 0xFF), UInt8(lse & 0xFF)]
            frame += [0x45, 0, 0, 28, 0, 1, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]
            frame += [UInt8](repeating: 7, count: 8)
            let outcome = try Self.compare("label \(label)", frame, port: core0, fib: fib, program: programs[core0]!, counters: counters)
            #expect(outcome == (label == removed ? .steered : .fast), "label \(label): \(outcome)")
        }
        // One label: written in place (a frame sees the old or the new slot, each a whole generation).
        try engine.apply([.replace(.ilm(ILMEntrySpec(label: added, operation: .swap(out: [88_888], via: "p1", payload: nil, ttlMode: .pipe))))])
        #expect(syncError == nil && tables.lastSyncWrites == 1)
        #expect(tables.generationSwitches == switches + 1, "one label switched the generation")
        #expect(tables.halvesAgree() && tables.switches(label: added))
        // A next hop's record: a new generation.
        try engine.apply([.replace(.nextHop(NextHopSpec(name: "p1", port: "core0", mac: MACAddress(value: 0x02BB_0000_0001), backup: "p2")))])
        #expect(syncError == nil && tables.lastSyncWrites == 0)
        #expect(tables.generationSwitches == switches + 2, "a changed next hop switches the generation")
        #expect(tables.halvesAgree())
    }

    /// With the kernel's BTF, the tables load and attach the programs that count refused redirects (test_fast_tier.py
    /// checks the counts on veths).
    @Test func theOwnerCountsTransmitErrors() throws {
        let compiled = Self.compile()
        defer { compiled.release() }
        let (_, tables) = try Self.loaded(compiled.snapshot, capacity: 16)
        var st = stat()
        let btf = stat("/sys/kernel/btf/vmlinux", &st) == 0 && st.st_size > 0
        #expect((tables.refusedNotCounted == nil) == btf, "BTF \(btf), not counted: \(tables.refusedNotCounted ?? "-")")
        try tables.setPort(0, ifindex: 1)
        let zero = tables.refusedRedirects(0)
        #expect(zero != nil && zero!.dropped == 0 && zero!.notSent == 0)
    }

    /// A full table: the labels without an entry go to AF_XDP (and still agree), and a reset slot frees its entry.
    @Test func aFullTableSendsTheRestThroughAFXDP() throws {
        let compiled = Self.compile()
        defer { compiled.release() }
        let fib = compiled.snapshot
        let (programs, tables) = try Self.loaded(fib, capacity: 3)
        #expect(tables.labels == 3 && tables.labelsWithoutEntry > 0, "labels \(tables.labels), without \(tables.labelsWithoutEntry)")
        let counters = WorkerCounters.allocate(entryCapacity: fib.actionCount)
        defer { counters.deallocate() }
        let labels = (UInt32(16)..<(1 << 20)).filter { fib.ilm($0).operation != .none }
        var r = Rng(state: 7)
        var fast = 0
        let cores = programs.keys.sorted()
        for i in 0..<3000 {
            let port = cores[r.below(cores.count)]
            let frame = Self.randomFrame(&r, mac: fib.ports[port].mac.value, labels: labels)
            if try Self.compare("frame \(i)", frame, port: port, fib: fib, program: programs[port]!, counters: counters) == .fast { fast += 1 }
        }
        #expect(fast > 0, "the three labels with an entry are forwarded by the fast tier")
        #expect(tables.entriesInUse == 3)
        // A fast label deleted: once the engine resets its retired slot, a waiting label takes the free entry.
        let engine = compiled.engine
        engine.publish = { snapshot in try? tables.sync(snapshot.pointee) }
        let waitingBefore = tables.labelsWithoutEntry
        // A label with an entry that nothing references (a swap, not a pop a test frame relies on).
        let gone = labels.first { tables.switches(label: $0) && engine.tables.current.pointee.ilm($0).operation == .swap }!
        let slot = Int(engine.tables.current.pointee.ilm(gone).action.rawValue)
        try engine.apply([.delete(.ilm(gone))])
        #expect(tables.entriesInUse == 3, "the retired slot keeps its entry until the engine resets it")
        tables.resetEntryCounter(slot: slot)
        #expect(tables.needsSync)
        try tables.retryIfNeeded(engine.tables.current.pointee)
        #expect(!tables.switches(label: gone))
        #expect(tables.labels == 3 && tables.labelsWithoutEntry == waitingBefore - 1,
                "labels \(tables.labels), waiting \(tables.labelsWithoutEntry), before \(waitingBefore)")
    }

    /// A random FIB on the lab ports: next hops with and without VLAN tags, small MTUs, source MACs and backups (next
    /// hops or groups), groups of 1-4 members, and labels that swap (1-6 labels, some with backup labels), PHP to
    /// MPLS/IPv4/IPv6, pop (uniform or pipe), pop to IP, VXLAN or drop; some next hops down.
    static func randomFIB(_ r: inout Rng) -> (FIBEngine, [UInt32]) {
        let engine = try! FIBEngine(config: config, maxEntries: 10_000)
        let ports = ["core0", "core1", "dc0", "vrf0"]
        func mac() -> MACAddress { MACAddress(value: 0x02AA_0000_0000 | UInt64(r.below(1 << 16))) }
        let hops = (0..<8).map { "n\($0)" }
        for h in hops {
            let spec = NextHopSpec(name: h, port: r.below(4) == 0 ? ports[r.below(4)] : ports[r.below(2)], mac: mac(),
                                   sourceMAC: r.below(5) == 0 ? mac() : nil, vlan: r.below(3) == 0 ? UInt16(1 + r.below(4094)) : nil,
                                   mtu: [nil, nil, 100, 200, 1500][r.below(5)])
            try! engine.apply([.add(.nextHop(spec))])
        }
        let groups = (0..<3).map { "g\($0)" }
        for g in groups {
            let members = Array(Set((0..<(1 + r.below(4))).map { _ in hops[r.below(hops.count)] })).sorted()
            try! engine.apply([.add(.ecmpGroup(ECMPGroupSpec(name: g, members: members)))])
        }
        var protected: [String] = []
        for h in hops where r.below(2) == 0 {
            guard case .nextHop(var spec)? = engine.entry(.nextHop(h)) else { continue }
            spec.backup = r.below(4) == 0 ? groups[r.below(groups.count)] : hops[r.below(hops.count)]
            if (try? engine.apply([.replace(.nextHop(spec))])) != nil { protected.append(h) }
        }
        func label() -> UInt32 { [0, 2, UInt32(16 + r.below(1000)), UInt32(16 + r.below((1 << 20) - 16))][r.below(4) == 0 ? r.below(2) : 2 + r.below(2)] }
        func via() -> String { r.below(4) == 0 ? groups[r.below(groups.count)] : hops[r.below(hops.count)] }
        var labels: [UInt32] = []
        for _ in 0..<60 {
            let l = UInt32(16 + (r.below(2) == 0 ? r.below(64) : r.below((1 << 20) - 16)))
            let mode: TTLMode = r.below(2) == 0 ? .uniform : .pipe
            var spec: ILMEntrySpec
            switch r.below(10) {
            case 0...3:
                var out = (0..<(1 + r.below(r.below(3) == 0 ? 6 : 3))).map { _ in label() }
                out[out.count - 1] = UInt32(16 + r.below(1000))
                // Backup labels go with a next hop that has a backup.
                let backup = !protected.isEmpty && r.below(2) == 0
                spec = ILMEntrySpec(label: l, operation: .swap(out: out, via: backup ? protected[r.below(protected.count)] : via(),
                                                               payload: nil, ttlMode: mode),
                                    backupOut: backup ? (0..<(1 + r.below(5))).map { _ in UInt32(16 + r.below(1000)) } : nil)
            case 4, 5:
                spec = ILMEntrySpec(label: l, operation: .swap(out: [3], via: via(), payload: [.mpls, .ipv4, .ipv6][r.below(3)], ttlMode: mode))
            case 6, 7:
                spec = ILMEntrySpec(label: l, operation: .pop(ttlMode: mode))
            case 8:
                spec = ILMEntrySpec(label: l, operation: .popToIP(payload: r.below(2) == 0 ? .ipv4 : .ipv6, via: via(), vrf: nil, ttlMode: mode))
            default:
                spec = ILMEntrySpec(label: l, operation: .drop)
            }
            if (try? engine.apply([.add(.ilm(spec))])) != nil { labels.append(l) }
        }
        for h in hops where r.below(3) == 0 {
            if let slot = engine.nextHopSlot(named: h) { engine.tables.liveness[Int(slot)] = Liveness.down }
        }
        return (engine, labels)
    }

    /// Resets retired slots as the agent does (after each commit's grace period): frees their fast-tier entries.
    final class ResettingStore: EntryCounterStore {
        let tables: FastTierTables
        let pipeline: WorkerCounters
        init(_ tables: FastTierTables, _ pipeline: WorkerCounters) { self.tables = tables; self.pipeline = pipeline }
        func read(slot: Int) -> (packets: UInt64, bytes: UInt64) { tables.entryCounter(slot: slot) }
        func reset(slot: Int) {
            tables.resetEntryCounter(slot: slot)
            pipeline.entries[slot] = EntryCounters()
        }
        func resetSegment(slot: Int) {}
    }

    /// Random frames over random FIBs through both tiers (MPLSGATE_FAST_DIFF_FIBS FIBs, default 12, each with
    /// MPLSGATE_FAST_DIFF_FRAMES / 4 frames), the FIB changed by random commits half-way (synced incrementally,
    /// retired entries freed and reused): the same rule as on the lab FIB.
    @Test func randomFIBsAgree() throws {
        let env = ProcessInfo.processInfo.environment
        let fibs = Int(env["MPLSGATE_FAST_DIFF_FIBS"] ?? "") ?? 12
        let frames = (Int(env["MPLSGATE_FAST_DIFF_FRAMES"] ?? "") ?? 20_000) / 4
        let seed = UInt64(env["MPLSGATE_FAST_DIFF_SEED"] ?? "") ?? 0x5EED_F1B5
        var r = Rng(state: seed)
        var fast = 0, total = 0
        for k in 0..<fibs {
            let (engine, initialLabels) = Self.randomFIB(&r)
            defer { engine.release() }
            let fib = engine.snapshot.pointee
            guard !initialLabels.isEmpty else { continue }
            // A small table, so that commits must free and reuse entries and some labels wait for one.
            let (programs, tables) = try Self.loaded(fib, capacity: 24)
            // Room for every slot the commits may use.
            let counters = WorkerCounters.allocate(entryCapacity: engine.tables.maxActions)
            let fastCounters = WorkerCounters.allocate(entryCapacity: engine.tables.maxActions)
            defer { counters.deallocate(); fastCounters.deallocate() }
            let cores = programs.keys.sorted()
            var labels = initialLabels
            for i in 0..<frames {
                if i == frames / 2 {
                    // Commits: replaced, deleted and added labels, synced as the agent syncs them.
                    let store = ResettingStore(tables, fastCounters)
                    engine.counterStore = store
                    var failure: String?
                    engine.publish = { snapshot in
                        do throws(AgentError) { try tables.sync(snapshot.pointee) } catch { failure = error.description }
                        if !tables.halvesAgree() { failure = "the halves differ after a sync" }
                    }
                    for _ in 0..<20 {
                        let l = labels[r.below(labels.count)]
                        if r.below(3) == 0 {
                            if (try? engine.apply([.delete(.ilm(l))])) != nil { labels.removeAll { $0 == l } }
                        } else {
                            let out = (0..<(1 + r.below(4))).map { _ in UInt32(16 + r.below(1000)) }
                            let spec = ILMEntrySpec(label: r.below(2) == 0 ? l : UInt32(16 + r.below(100_000)),
                                                    operation: r.below(3) == 0 ? .pop(ttlMode: .uniform)
                                                        : .swap(out: out, via: "n\(r.below(8))", payload: nil, ttlMode: .pipe))
                            let op: FIBChange = labels.contains(spec.label) ? .replace(.ilm(spec)) : .add(.ilm(spec))
                            if (try? engine.apply([op])) != nil, !labels.contains(spec.label) { labels.append(spec.label) }
                        }
                        if labels.isEmpty { break }
                    }
                    #expect(failure == nil, "FIB \(k): a sync failed: \(failure ?? "")")
                    try tables.retryIfNeeded(engine.snapshot.pointee)
                    if labels.isEmpty { break }
                }
                let fib = engine.snapshot.pointee
                let port = cores[r.below(cores.count)]
                let frame = Self.randomFrame(&r, mac: fib.ports[port].mac.value, labels: labels)
                let outcome = try Self.compare("FIB \(k) (seed \(seed)) frame \(i)", frame, port: port, fib: fib,
                                               program: programs[port]!, counters: counters)
                if outcome == .fast {
                    fast += 1
                    _ = Self.pipeline(frame, port: port, fib: fib, counters: fastCounters)
                }
                total += 1
            }
            // Counters of the slots still live (retired ones were folded by the store and freed).
            let live = engine.snapshot.pointee
            for l in labels {
                let e = live.ilm(l)
                guard e.operation != .none else { continue }
                let slot = Int(e.action.rawValue)
                let c = tables.entryCounter(slot: slot)
                #expect(c.packets == fastCounters.entries[slot].packets && c.bytes == fastCounters.entries[slot].bytes,
                        "FIB \(k): label \(l) (slot \(slot)) counters")
            }
        }
        #expect(fast > total / 50, "the fast tier forwarded \(fast) of \(total) frames over random FIBs")
        print("fast tier, random FIBs: \(fast) of \(total) frames over \(fibs) FIBs forwarded by the fast tier")
    }
}
