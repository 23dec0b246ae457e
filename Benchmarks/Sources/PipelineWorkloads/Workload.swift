#if canImport(Glibc)
import Glibc
#endif
import Wire
import FIB
import Dataplane
import Control
import ControlServer
import CBaseline

/// Workloads for the pipeline benchmarks: one forwarding operation (a scapy fixture frame the lab FIB forwards),
/// a table (the lab FIB alone, or the lab FIB plus N ≈ 1M clones of the frame's entry under other keys, with keys
/// drawn at random over all of them or from a hot set of 1,000) and a frame placement (64 cache-resident buffers,
/// or a 128 MiB pool that each batch walks through, so frames come from DRAM). Swift's `Pipeline.process` and the
/// C port in CBaseline run over the same snapshot, frames and keys.
public let batchSize = 64
public let bufferSize = 2048
/// Keys per workload (a power of two); frame number s uses key s mod keyCount.
public let keyCount = 1 << 16
/// Frames in the spread pool: 64K × 2 KiB = 128 MiB, several times any last-level cache here.
public let poolFrames = 1 << 16

/// N for the 1M tables (`MPLSGATE_SCALE_ENTRIES` overrides it; scripts/test.sh's smoke pass uses a small N).
public let scaleEntries: Int = {
    if let s = getenv("MPLSGATE_SCALE_ENTRIES"), let n = Int(String(cString: s)), n >= 1000 { return n }
    return 1_000_000
}()

/// One forwarding operation: the fixture frame, its ingress port and the key that selects its FIB entry.
public struct Operation: Sendable {
    public enum Key: Sendable {
        /// The top label (MPLS in); clones are ILM entries.
        case label
        /// The VNI of a VXLAN frame; clones are VNI entries.
        case vni
        /// The IPv4 destination (a vrf port's FTN); clones are /24 routes in the matched entry's VRF.
        case ipv4Destination
        /// A multipoint VNI's inner destination MAC (its last four bytes); clones are static MACs of the VNI at the
        /// fixture's site.
        case innerDestination
    }
    public let name: String
    public let fixture: String
    public let ingress: String
    public let key: Key

    public static let all: [Operation] = [
        Operation(name: "swap", fixture: "64-byte frame", ingress: "core0", key: .label),
        // S=0 on the swapped label: the stack below is checked for its bottom (noBottomOfStack) before it is sent on.
        Operation(name: "swap, 2-label stack", fixture: "swap ttl 64, S=0 kept", ingress: "core0", key: .label),
        Operation(name: "push 2 (FTN, uniform)", fixture: "FTN push 2, uniform", ingress: "vrf0", key: .ipv4Destination),
        Operation(name: "push 16 (FTN, pipe)", fixture: "FTN push 16 labels, pipe", ingress: "vrf0", key: .ipv4Destination),
        Operation(name: "pop to IPv4", fixture: "pop to IPv4 pipe", ingress: "core0", key: .label),
        Operation(name: "PHP to IPv4", fixture: "PHP to IPv4, uniform", ingress: "core0", key: .label),
        Operation(name: "VXLAN to MPLS", fixture: "VXLAN -> MPLS, no control word", ingress: "dc0", key: .vni),
        Operation(name: "MPLS to VXLAN", fixture: "MPLS -> VXLAN (IPv4 underlay), no control word", ingress: "core0",
                  key: .label),
        Operation(name: "ECMP swap", fixture: "ECMP: swap via a group", ingress: "core0", key: .label),
    ]

    /// Multipoint VNIs, Swift only (the C port has no replication): known unicast to a site (one MAC-table probe
    /// more than point-to-point stitching, plus a control word), and a broadcast flooded to the lab VNI's two sites.
    public static let multipoint: [Operation] = [
        Operation(name: "multipoint unicast to a site", fixture: "multipoint: known unicast from a local VTEP to its site (control word)",
                  ingress: "dc0", key: .innerDestination),
        Operation(name: "multipoint flood to 2 sites", fixture: "multipoint flood: a local VTEP's broadcast goes to every site",
                  ingress: "dc0", key: .innerDestination),
    ]
}

public enum TableKind: String, Sendable, CaseIterable {
    /// The lab FIB of examples/, every frame the fixture's own key.
    case lab = "lab FIB"
    /// The lab FIB + N clones; keys uniform over the N.
    case random = "1M, random keys"
    /// The lab FIB + N clones; keys from 1,000 of them.
    case hot = "1M, hot 1k keys"
}

public enum Placement: String, Sendable, CaseIterable {
    case resident = "resident frames"
    case spread = "frames over 128 MiB"
}

/// MAC learning on the multipoint VNI of an `.innerDestination` workload.
public enum LearningVariant: String, Sendable, CaseIterable {
    /// The lab FIB as it is: learning on (sources checked against static MACs; the clones are static MACs).
    case on = "learning on"
    /// `learning.enabled` false: no source check, static MACs only.
    case off = "learning off"
    /// Learning on, the clones learned instead of static (a learner holds them; the VNI's macLimit raised).
    case learned = "learned MACs"
}

/// A FIB with N clones of one operation's entry, shared by every workload of that operation.
public final class ScaledFIB: @unchecked Sendable {
    public let compiled: CompiledFIB
    public let config: InstanceConfig
    /// Big-endian key words to write into frames (a full label stack entry, VXLAN word 1, or IPv4 destination).
    public let keyWords: [UInt32]
    /// The learned MACs' learner (`.learned`): workloads read its tables.
    public let learner: MACLearner?

    public init(operation: Operation, clones: Int, frame: [UInt8], learning: LearningVariant = .on) {
        config = try! FIBCodec.decodeConfig(readRepoFile("examples/config.json"))
        var fib = try! FIBCodec.decodeFIB(readRepoFile("examples/fib.json"))
        var learnedMACs: [UInt64] = []
        var words: [UInt32] = []
        words.reserveCapacity(clones)
        switch operation.key {
        case .label:
            let lse = frame.withUnsafeBytes { UInt32(bigEndian: $0.loadUnaligned(fromByteOffset: 14, as: UInt32.self)) }
            let entry = fib.ilm.first { $0.label == lse >> 12 }!
            let used = Set(fib.ilm.map(\.label))
            var label = UInt32(1 << 20)
            while words.count < clones {
                label -= 1
                if used.contains(label) { continue }
                fib.ilm.append(ILMEntrySpec(label: label, operation: entry.operation))
                words.append((label << 12 | lse & 0xFFF).bigEndian)
            }
        case .vni:
            let vx = 14 + 20 + 8
            let word = frame.withUnsafeBytes { UInt32(bigEndian: $0.loadUnaligned(fromByteOffset: vx + 4, as: UInt32.self)) }
            let entry = fib.vni.first { $0.vni == word >> 8 }!
            for i in 0..<clones {
                var e = entry
                e.vni = UInt32(100_000 + i)
                fib.vni.append(e)
                words.append((e.vni << 8 | word & 0xFF).bigEndian)
            }
        case .innerDestination:
            let vx = 14 + 20 + 8
            let vni = frame.withUnsafeBytes { UInt32(bigEndian: $0.loadUnaligned(fromByteOffset: vx + 4, as: UInt32.self)) } >> 8
            let k = fib.vni.firstIndex { $0.vni == vni }!
            let site = fib.vni[k].multipoint!.sites[0].name
            switch learning {
            case .on: break
            case .off: fib.vni[k].multipoint!.learning.enabled = false
            case .learned: fib.vni[k].multipoint!.learning.macLimit = UInt32(MACLearningSpec.macLimitRange.upperBound)
            }
            let high = frame.withUnsafeBytes { UInt64(UInt16(bigEndian: $0.loadUnaligned(fromByteOffset: vx + 8, as: UInt16.self))) }
            let existing = Set(fib.macs.map { $0.mac.value })
            for i in 0..<clones {
                // An odd multiplier is a bijection on 32 bits: distinct MACs, spread over the table.
                let low = UInt32(truncatingIfNeeded: i &* 0x9E37_79B1 &+ 0x1234_5679)
                let mac = high << 32 | UInt64(low)
                if existing.contains(mac) { continue }
                if learning == .learned { learnedMACs.append(mac) } else {
                    fib.macs.append(MACEntrySpec(vni: vni, mac: MACAddress(value: mac), site: site))
                }
                words.append(low.bigEndian)
            }
        case .ipv4Destination:
            let destination = frame.withUnsafeBytes { UInt32(bigEndian: $0.loadUnaligned(fromByteOffset: 30, as: UInt32.self)) }
            // The route the lab FIB takes for this frame: the longest matching prefix in the port's VRF.
            let vrf = config.ports.first { $0.name == operation.ingress }!.vrf
            let entry = fib.ftn.filter { e in
                guard e.vrf == vrf, case .v4(let p) = e.prefix else { return false }
                let mask: UInt32 = e.length == 0 ? 0 : ~0 << (32 - e.length)
                return destination & mask == p.value & mask
            }.max { $0.length < $1.length }!
            for i in 0..<clones {
                var e = entry
                let prefix = 0x1400_0000 &+ UInt32(i) << 8  // 20.0.0.0/24 onwards, clear of the lab routes
                e.prefix = .v4(IPv4Address(value: prefix))
                e.length = 24
                fib.ftn.append(e)
                words.append((prefix | destination & 0xFF).bigEndian)
            }
        }
        keyWords = words
        compiled = try! FIBCompiler.compile(config: config, fib: fib, maxEntries: clones + 1000)
        if learning == .learned {
            // Learned at the VNI's first site at second 1 (the workloads' clock stays at 1: no refresh records).
            let l = MACLearner(root: LearnedRoot(), capacity: 1 << 23)
            let segments = compiled.engine.learningSegments()
            l.configure(segments)
            let s = segments.first { $0.vni == 6000 }!
            for mac in learnedMACs {
                l.apply(LearnRecord(mac: mac, placeID: s.placeIDs[0], layout: s.layout, vni: s.vni, slot: s.slot), now: 1)
            }
            precondition(l.count(vni: 6000) == learnedMACs.count, "learned \(l.count(vni: 6000)) of \(learnedMACs.count)")
            learner = l
        } else {
            learner = nil
        }
    }
}

/// Frames, keys and counters of one (operation, table, placement) over a FIB.
public final class Workload: @unchecked Sendable {
    public let name: String
    public let snapshot: FIBSnapshot
    let template: UnsafeMutableRawPointer
    let length: Int
    let ingress: PortID
    let keyOffset: Int
    /// Key words per frame number (nil: the fixture's own key), and for IPv4 the header checksum to go with each.
    let keys: UnsafeMutablePointer<UInt32>?
    let checksums: UnsafeMutablePointer<UInt16>?
    let placement: Placement
    let memory: UnsafeMutableRawPointer
    public let batch: UnsafeMutableBufferPointer<Frame>
    public let counters: WorkerCounters
    public let cCounters: WorkerCounters
    var frameNumber = 0
    var cFIB = mg_c_fib()
    var cCounterPointers: mg_c_counters

    public init(operation: Operation, fib: ScaledFIB, table: TableKind, placement: Placement, frame: [UInt8]) {
        name = "\(operation.name), \(table.rawValue), \(placement.rawValue)"
        snapshot = fib.compiled.snapshot
        let t = UnsafeMutableRawPointer.allocate(byteCount: bufferSize, alignment: 64)
        frame.withUnsafeBytes { t.copyMemory(from: $0.baseAddress!, byteCount: frame.count) }
        template = t
        length = frame.count
        ingress = PortID(UInt16(fib.config.ports.firstIndex { $0.name == operation.ingress }!))
        switch operation.key {
        case .label: keyOffset = 14
        case .vni: keyOffset = 14 + 20 + 8 + 4
        case .ipv4Destination: keyOffset = 30
        case .innerDestination: keyOffset = 14 + 20 + 8 + 8 + 2
        }
        self.placement = placement
        if table == .lab {
            keys = nil; checksums = nil
        } else {
            let k = UnsafeMutablePointer<UInt32>.allocate(capacity: keyCount)
            var r = Random()
            let n = fib.keyWords.count
            let hot = (0..<1000).map { $0 * max(1, n / 1000) }
            for i in 0..<keyCount {
                k[i] = fib.keyWords[table == .random ? Int(r.next() % UInt64(n)) : hot[Int(r.next() % 1000)]]
            }
            keys = k
            if operation.key == .ipv4Destination {
                // A valid header checksum for each destination (the pipeline verifies it on vrf ports).
                let c = UnsafeMutablePointer<UInt16>.allocate(capacity: keyCount)
                let scratch = UnsafeMutableRawPointer.allocate(byteCount: 60, alignment: 8)
                for i in 0..<keyCount {
                    scratch.copyMemory(from: t + 14, byteCount: 20)
                    scratch.storeBytes(of: k[i], toByteOffset: 16, as: UInt32.self)
                    scratch.storeBytes(of: 0, toByteOffset: 10, as: UInt16.self)
                    let sum = InternetChecksum.sum(PacketBytes(scratch), offset: 0, count: 20)
                    c[i] = InternetChecksum.finish(sum).bigEndian
                }
                scratch.deallocate()
                checksums = c
            } else {
                checksums = nil
            }
        }
        let buffers = placement == .resident ? batchSize : poolFrames
        memory = .allocate(byteCount: buffers * bufferSize, alignment: 4096)
        batch = .allocate(capacity: batchSize)
        counters = WorkerCounters.allocate(entryCapacity: snapshot.actionCount)
        cCounters = WorkerCounters.allocate(entryCapacity: snapshot.actionCount)
        cCounterPointers = mg_c_counters(
            drops: cCounters.drops,
            ports: UnsafeMutableRawPointer(cCounters.ports).assumingMemoryBound(to: mg_c_port_counters.self),
            entries: UnsafeMutableRawPointer(cCounters.entries).assumingMemoryBound(to: mg_c_entry_counters.self))
        cFIB = CPipeline.fib(snapshot)
        if placement == .spread {
            for s in 0..<poolFrames { fill(slot: s, frameNumber: s) }
        }
    }

    /// Writes the template and the key of frame `frameNumber` into buffer `slot`.
    @inline(__always)
    func fill(slot: Int, frameNumber s: Int) {
        let buf = memory + slot * bufferSize + Frame.headroom
        buf.copyMemory(from: template, byteCount: min(128, length))
        if let keys {
            buf.storeBytes(of: keys[s & (keyCount - 1)], toByteOffset: keyOffset, as: UInt32.self)
            if let checksums { buf.storeBytes(of: checksums[s & (keyCount - 1)], toByteOffset: 24, as: UInt16.self) }
        }
    }

    /// Prepares the next batch: resident frames are rewritten in place; spread frames were written one pool lap ago
    /// (`finish` rewrites them after processing), so the pipeline reads them from DRAM.
    @inline(__always)
    public func restore() {
        let first = frameNumber
        for i in 0..<batchSize {
            let slot: Int
            if placement == .resident {
                slot = i
                fill(slot: i, frameNumber: first &+ i)
            } else {
                slot = (first &+ i) & (poolFrames - 1)
            }
            batch[i] = Frame(buffer: memory + slot * bufferSize, offset: Int32(Frame.headroom), length: Int32(length),
                             ingress: ingress)
        }
    }

    /// Ends a batch: spread frames are rewritten for their next lap.
    @inline(__always)
    public func finish() {
        if placement == .spread {
            for i in 0..<batchSize {
                let s = frameNumber &+ i
                fill(slot: s & (poolFrames - 1), frameNumber: s &+ poolFrames)
            }
        }
        frameNumber &+= batchSize
    }

    /// One batch through the Swift pipeline.
    @inline(__always)
    public func runSwift() {
        restore()
        Pipeline.process(batch, fib: snapshot, counters: counters)
        finish()
    }

    /// One batch through the Swift pipeline, then the copies of every flooded frame (as a worker makes them, into
    /// `copies`' buffers); returns the copies made.
    @inline(__always)
    public func runSwiftReplicating(into copies: UnsafeMutableRawPointer) -> Int {
        restore()
        Pipeline.process(batch, fib: snapshot, counters: counters)
        var made = 0
        for i in 0..<batchSize {
            let f = batch[i]
            guard let plan = Replication.plan(f, fib: snapshot) else { continue }
            for k in 0..<plan.count {
                let buf = copies + (made & 63) * bufferSize
                (buf + Frame.headroom).copyMemory(from: f.buffer + Int(f.offset), byteCount: Int(f.length))
                var c = Frame(buffer: buf, offset: Int32(Frame.headroom), length: f.length, ingress: f.ingress)
                Pipeline.replicate(&c, place: plan.place(k), fib: snapshot, counters: counters)
                made &+= c.isForwarded ? 1 : 0
            }
        }
        finish()
        return made
    }

    /// One batch through the C port.
    @inline(__always)
    public func runC() {
        restore()
        let frames = UnsafeMutableRawPointer(batch.baseAddress!).assumingMemoryBound(to: mg_c_frame.self)
        mg_c_process(&cFIB, frames, Int32(batchSize), &cCounterPointers)
        finish()
    }

    /// The frames and keys alone (what runSwift and runC both do besides processing).
    @inline(__always)
    public func runRestoreOnly() {
        restore()
        finish()
    }

    /// Runs `batches` batches through both pipelines on identical input and requires the same bytes, verdicts and
    /// counters, and every frame forwarded: a benchmark of different work would be meaningless.
    public func checkSameWork(batches: Int = 4) {
        for _ in 0..<batches {
            let start = frameNumber
            runSwift()
            var swiftOut: [(PortID, DropReason, [UInt8])] = []
            for f in batch {
                precondition(f.isForwarded, "\(name): frame dropped (\(f.drop.name)); benchmark frames must be forwarded")
                swiftOut.append((f.egress, f.drop, Array(UnsafeRawBufferPointer(start: f.buffer + Int(f.offset),
                                                                                    count: Int(f.length)))))
            }
            frameNumber = start
            if placement == .spread {  // the same frames as the Swift pass
                for i in 0..<batchSize { fill(slot: (start + i) & (poolFrames - 1), frameNumber: start + i) }
            }
            runC()
            for (i, f) in batch.enumerated() {
                let bytes = Array(UnsafeRawBufferPointer(start: f.buffer + Int(f.offset), count: Int(f.length)))
                precondition(f.egress == swiftOut[i].0 && f.drop == swiftOut[i].1 && bytes == swiftOut[i].2,
                             "\(name): the C baseline and Swift disagree on frame \(i)")
            }
        }
        precondition(memcmp(counters.drops, cCounters.drops, DropReason.allCases.count * 8) == 0
                     && memcmp(counters.ports, cCounters.ports, PortID.maxCount * MemoryLayout<PortCounters>.stride) == 0
                     && memcmp(counters.entries, cCounters.entries,
                               snapshot.actionCount * MemoryLayout<EntryCounters>.stride) == 0,
                     "\(name): the C baseline and Swift counted differently")
    }
}

/// The C port's view of a Swift snapshot; checks once that the C mirrors match Swift's layouts.
public enum CPipeline {
    nonisolated(unsafe) static var layoutChecked = false

    public static func fib(_ s: FIBSnapshot) -> mg_c_fib {
        checkLayout()
        var fib = mg_c_fib()
        fib.directory = UnsafeRawPointer(s.ilmDirectory).assumingMemoryBound(to: UnsafeMutablePointer<mg_c_ilm>?.self)
        fib.actions = UnsafeRawPointer(s.actions).assumingMemoryBound(to: mg_c_action.self)
        fib.action_count = s.actionCount
        fib.next_hops = UnsafeRawPointer(s.nextHops).assumingMemoryBound(to: mg_c_nexthop.self)
        fib.group_buckets = UnsafePointer(s.groupBuckets)
        fib.group_count = s.groupCount
        fib.liveness = UnsafePointer(s.liveness)
        fib.vni_directory = UnsafeRawPointer(s.vniDirectory).assumingMemoryBound(to: UnsafeMutablePointer<UInt32>?.self)
        fib.lpm_v4 = UnsafeRawPointer(s.lpmV4).assumingMemoryBound(to: mg_c_lpm_slot.self)
        fib.lpm_v6 = UnsafeRawPointer(s.lpmV6).assumingMemoryBound(to: mg_c_lpm_slot.self)
        fib.vrfs = UnsafeRawPointer(s.vrfs).assumingMemoryBound(to: mg_c_vrf.self)
        fib.ports = UnsafeRawPointer(s.ports).assumingMemoryBound(to: mg_c_port.self)
        fib.port_count = Int32(s.portCount)
        fib.addresses = UnsafeRawPointer(s.addresses).assumingMemoryBound(to: mg_c_ipv6.self)
        return fib
    }

    static func checkLayout() {
        if layoutChecked { return }
        func same(_ swift: Int, _ which: Int32, _ what: String) {
            precondition(swift == mg_c_layout(which), "C mirror of \(what): \(mg_c_layout(which)) != Swift \(swift)")
        }
        same(MemoryLayout<ILMEntry>.stride, 0, "ILMEntry size")
        same(MemoryLayout<Action>.stride, 1, "Action size")
        same(MemoryLayout<Action>.offset(of: \Action.target)!, 2, "Action.target")
        same(Action.areaOffset, 3, "Action.area")
        same(MemoryLayout<NextHopRecord>.stride, 4, "NextHopRecord size")
        same(MemoryLayout<NextHopRecord>.offset(of: \NextHopRecord.port)!, 5, "NextHopRecord.port")
        same(MemoryLayout<NextHopRecord>.offset(of: \NextHopRecord.mtu)!, 6, "NextHopRecord.mtu")
        same(MemoryLayout<PortRecord>.stride, 7, "PortRecord size")
        same(MemoryLayout<PortRecord>.offset(of: \PortRecord.role)!, 8, "PortRecord.role")
        same(MemoryLayout<Frame>.stride, 9, "Frame size")
        same(MemoryLayout<Frame>.offset(of: \Frame.offset)!, 10, "Frame.offset")
        same(MemoryLayout<Frame>.offset(of: \Frame.ingress)!, 11, "Frame.ingress")
        same(MemoryLayout<Frame>.offset(of: \Frame.egress)!, 12, "Frame.egress")
        same(MemoryLayout<Frame>.offset(of: \Frame.drop)!, 13, "Frame.drop")
        same(MemoryLayout<PortCounters>.stride, 14, "PortCounters size")
        same(MemoryLayout<EntryCounters>.stride, 15, "EntryCounters size")
        same(MemoryLayout<IPv6Address>.stride, 16, "IPv6Address size")
        same(MemoryLayout<Action>.offset(of: \Action.vteps)!, 17, "Action.vteps")
        same(MemoryLayout<LPMSlot>.stride, 18, "LPMSlot size")
        same(MemoryLayout<VRFRecord>.stride, 19, "VRFRecord size")
        same(MemoryLayout<PortRecord>.offset(of: \PortRecord.addressStart)!, 20, "PortRecord.addressStart")
        same(MemoryLayout<Action>.offset(of: \Action.auxCount)!, 21, "Action.auxCount")
        same(MemoryLayout<Action>.offset(of: \Action.vrf)!, 22, "Action.vrf")
        same(MemoryLayout<NextHopRecord>.offset(of: \NextHopRecord.backup)!, 23, "NextHopRecord.backup")
        same(MemoryLayout<Action>.offset(of: \Action.backupLabelCount)!, 24, "Action.backupLabelCount")
        for r in DropReason.allCases {
            let c = mg_c_drop_name(Int32(r.rawValue)).map { String(cString: $0) }
            precondition(c == r.name, "C drop reason \(r.rawValue) is \(c ?? "missing"), Swift's is \(r.name)")
        }
        precondition(mg_c_drop_name(Int32(DropReason.allCases.count)) == nil, "C has more drop reasons than Swift")
        layoutChecked = true
    }
}

/// xorshift: reproducible keys (also the Scale benchmark's).
public struct Random {
    var s: UInt64 = 0x9E37_79B9_7F4A_7C15
    public init() {}
    public mutating func next() -> UInt64 { s ^= s << 13; s ^= s >> 7; s ^= s << 17; return s }
}

/// A file of the repository, by its path from the repository root.
public func readRepoFile(_ relative: String) -> [UInt8] {
    let path = "/" + #filePath.split(separator: "/").dropLast(4).joined(separator: "/") + "/" + relative
    guard let bytes = readWholeFile(path) else { fatalError("cannot open \(path)") }
    return bytes
}

func hexBytes(_ s: String) -> [UInt8] {
    let u = Array(s.utf8)
    return stride(from: 0, to: u.count, by: 2).map { UInt8(String(decoding: u[$0..<$0 + 2], as: UTF8.self), radix: 16)! }
}

/// The input frame of a scapy-built fixture (Tests/Fixtures/cases.json) whose name starts with `prefix`.
public func fixtureFrame(_ prefix: String) -> [UInt8] {
    let bytes = readRepoFile("Tests/Fixtures/cases.json")
    guard case .object(let doc) = try! JSONParser.parse(bytes),
          case .array(let cases)? = doc.first(where: { $0.0 == "cases" })?.1 else { fatalError("bad fixtures") }
    for c in cases {
        guard case .object(let fields) = c, case .string(let name)? = fields.first(where: { $0.0 == "name" })?.1,
              name.hasPrefix(prefix), case .string(let input)? = fields.first(where: { $0.0 == "input" })?.1 else { continue }
        return hexBytes(input)
    }
    fatalError("no fixture named \(prefix)")
}

/// Workloads are built on first use and kept: a 1M-entry FIB takes seconds and hundreds of MiB.
public final class WorkloadCache: @unchecked Sendable {
    public static let shared = WorkloadCache()
    var fibs: [String: ScaledFIB] = [:]
    var workloads: [String: Workload] = [:]

    public func workload(_ op: Operation, _ table: TableKind, _ placement: Placement,
                         learning: LearningVariant = .on) -> Workload {
        let key = "\(op.name)|\(table.rawValue)|\(placement.rawValue)|\(learning.rawValue)"
        if let w = workloads[key] { return w }
        let frame = fixtureFrame(op.fixture)
        let fibKey = "\(op.name)|\(table == .lab ? "lab" : "scaled")|\(learning.rawValue)"
        let fib = fibs[fibKey] ?? ScaledFIB(operation: op, clones: table == .lab ? 0 : scaleEntries, frame: frame,
                                            learning: learning)
        fibs[fibKey] = fib
        let w = Workload(operation: op, fib: fib, table: table, placement: placement, frame: frame)
        if let l = fib.learner {
            w.counters.learn.pointee.tables = l.root.tables
            w.counters.learn.pointee.nowSeconds = 1
        }
        if op.key == .innerDestination {
            // Swift only: every frame is known unicast (forwarded) or a flood, as the fixture's verdict says.
            w.runSwift()
            let flood = op.fixture.contains("flood")
            for f in w.batch {
                precondition(flood ? f.drop == .flood : f.isForwarded, "\(w.name): frame \(f.drop.name)")
            }
        } else {
            w.checkSameWork()
        }
        workloads[key] = w
        return w
    }
}
