import Benchmark
#if canImport(Glibc)
import Glibc
#endif
import Wire
import FIB
import Dataplane
import Control
import PipelineWorkloads

/// Lookup cost and memory with large tables: N ILM entries, N VNI entries, N IPv4 FTN prefixes and N static MACs of
/// one multipoint VNI (N = 1,000,000
/// unless MPLSGATE_SCALE_ENTRIES says otherwise; scripts/test.sh's smoke pass uses a small N). Each benchmark does 64
/// lookups per iteration (a batch) over keys drawn at random from all N entries, or from a hot set of 1,000; the
/// "keys only" benchmark reads the same key arrays without a lookup and is the same-run baseline to subtract.
/// The FIBs are built through FIBEngine transactions, as the control socket builds them; build time and resident
/// memory are printed once.
let entries = scaleEntries
let keysPerRun = 1 << 16

func rssKiB() -> Int {
    guard let f = fopen("/proc/self/status", "r") else { return 0 }
    defer { fclose(f) }
    var line = [CChar](repeating: 0, count: 256)
    while fgets(&line, 256, f) != nil {
        let s = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        if s.hasPrefix("VmRSS:") { return Int(s.split(separator: " ").dropFirst().first ?? "0") ?? 0 }
    }
    return 0
}

func now() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
}

final class Scale: @unchecked Sendable {
    let engine: FIBEngine
    let labels: UnsafeMutablePointer<UInt32>
    let hotLabels: UnsafeMutablePointer<UInt32>
    let vnis: UnsafeMutablePointer<UInt32>
    let addresses: UnsafeMutablePointer<UInt32>
    let macs: UnsafeMutablePointer<UInt64>
    static let macVNI: UInt32 = 0xFF_FFF0
    static func mac(_ i: Int) -> UInt64 { 0x0200_0000_0000 | UInt64(UInt32(truncatingIfNeeded: i &* 0x9E37_79B1)) }

    init() {
        let config = InstanceConfig(ports: [
            PortConfig(name: "core0", mac: MACAddress(value: 0x0200_0000_0001), role: .core),
            PortConfig(name: "vrf0", mac: MACAddress(value: 0x0200_0000_0004), role: .vrf),
        ])
        engine = try! FIBEngine(config: config, maxEntries: 3 * entries + 16)
        try! engine.apply([.add(.nextHop(NextHopSpec(name: "p1", port: "core0", mac: MACAddress(value: 0x02AA_0000_0001))))])
        var rss = rssKiB()
        var t = now()
        for start in stride(from: 0, to: entries, by: 10_000) {
            var changes: [FIBChange] = []
            for i in start..<min(start + 10_000, entries) {
                let out = UInt32(16 + (i &* 7) % 1_000_000)
                let op = ILMOperationSpec.swap(out: [out], via: "p1", payload: nil, ttlMode: .uniform)
                changes.append(.add(.ilm(ILMEntrySpec(label: UInt32(16 + i), operation: op))))
            }
            try! engine.apply(changes)
        }
        Scale.report("ILM", t, rss)
        rss = rssKiB(); t = now()
        var vniChanges: [FIBChange] = []
        let remote = IPAddress.v4(IPv4Address(value: 0xC000_0202))
        for i in 0..<entries {
            let service = UInt32(16 + i % 1_000_000)
            vniChanges.append(.add(.vni(VNIEntrySpec(vni: UInt32(i + 1), push: [16001, service], controlWord: true,
                                                     via: "p1", allowedVTEPs: [remote]))))
        }
        try! engine.apply(vniChanges)
        Scale.report("VNI", t, rss)
        rss = rssKiB(); t = now()
        var ftnChanges: [FIBChange] = []
        for i in 0..<entries {
            let prefix = IPAddress.v4(IPv4Address(value: 0x1000_0000 &+ UInt32(i) << 8))
            ftnChanges.append(.add(.ftn(FTNEntrySpec(prefix: prefix, length: 24, push: [16001], via: "p1"))))
        }
        try! engine.apply(ftnChanges)
        Scale.report("FTN /24", t, rss)
        rss = rssKiB(); t = now()
        try! engine.apply([.add(.vni(VNIEntrySpec(vni: Scale.macVNI, multipoint: MultipointSpec(
            localVTEP: .v4(IPv4Address(value: 0xC000_0201)), vteps: [],
            sites: [SiteSpec(name: "dc2", push: [16001, 2002], via: "p1")]))))])
        for start in stride(from: 0, to: entries, by: 10_000) {
            var changes: [FIBChange] = []
            for i in start..<min(start + 10_000, entries) {
                changes.append(.add(.mac(MACEntrySpec(vni: Scale.macVNI, mac: MACAddress(value: Scale.mac(i)), site: "dc2"))))
            }
            try! engine.apply(changes)
        }
        Scale.report("static MAC", t, rss)
        var r = Random()
        labels = .allocate(capacity: keysPerRun); hotLabels = .allocate(capacity: keysPerRun)
        vnis = .allocate(capacity: keysPerRun); addresses = .allocate(capacity: keysPerRun)
        macs = .allocate(capacity: keysPerRun)
        for i in 0..<keysPerRun {
            labels[i] = UInt32(16 + Int(r.next() % UInt64(entries)))
            let hot = Int(r.next() % UInt64(min(1000, entries)))
            hotLabels[i] = UInt32(16 + hot * max(1, entries / 1000))
            vnis[i] = UInt32(1 + Int(r.next() % UInt64(entries)))
            let prefix = UInt32(r.next() % UInt64(entries))
            addresses[i] = 0x1000_0000 &+ (prefix << 8 | UInt32(r.next() & 0xFF))
            macs[i] = Scale.mac(Int(r.next() % UInt64(entries)))
        }
        let s = engine.snapshot.pointee
        let vniPages = (0..<VNITable.directorySize).filter { s.vniDirectory[$0] != VNITable.emptyPage }.count
        let vniBytes = vniPages * VNITable.pageSize * MemoryLayout<UInt32>.stride
        print("scale: \(entries) entries each; tables + all \(s.actionCount) actions \(s.bytesAllocated >> 20) MiB; "
              + "VNI pages \(vniBytes >> 20) MiB")
    }

    static func report(_ what: String, _ t: Double, _ rss: Int) {
        print("scale: \(entries) \(what) entries built through FIBEngine in \(Int((now() - t) * 1000)) ms, "
              + "RSS +\((rssKiB() - rss) >> 10) MiB (tables, actions and the controller's intent)")
    }
}

nonisolated(unsafe) var scale: Scale?
nonisolated(unsafe) var cursor = 0

@inline(__always) func nextKeys() -> Int {
    cursor = (cursor &+ 64) & (keysPerRun - 1)
    return cursor
}

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(metrics: [.wallClock, .mallocCountTotal], maxDuration: .milliseconds(Int(String(cString: getenv("MPLSGATE_BENCH_MS") ?? strdup("2000"))) ?? 2000),
                                           maxIterations: 200_000)
    let setup: () -> Void = { if scale == nil { scale = Scale() } }

    Benchmark("keys only, 64 keys (baseline)", configuration: .init(setup: setup)) { b in
        let s = scale!
        for _ in b.scaledIterations {
            let k = nextKeys()
            var sum: UInt32 = 0
            for i in 0..<64 { sum &+= s.labels[k + i] }
            blackHole(sum)
        }
    }
    for (name, hot) in [("ILM lookup + action, 64 random labels of N", false),
                        ("ILM lookup + action, 64 labels of a hot set of 1k", true)] {
        Benchmark(name, configuration: .init(setup: setup)) { b in
            let s = scale!
            let fib = s.engine.snapshot.pointee
            let keys = hot ? s.hotLabels : s.labels
            for _ in b.scaledIterations {
                let k = nextKeys()
                var sum: UInt32 = 0
                for i in 0..<64 {
                    let e = fib.ilm(keys[k + i])
                    sum &+= UInt32(fib.actions[Int(e.action.rawValue)].labelCount)
                }
                blackHole(sum)
            }
        }
    }
    Benchmark("VNI lookup + action, 64 random VNIs of N", configuration: .init(setup: setup)) { b in
        let s = scale!
        let fib = s.engine.snapshot.pointee
        for _ in b.scaledIterations {
            let k = nextKeys()
            var sum: UInt32 = 0
            for i in 0..<64 {
                if let a = fib.vni(s.vnis[k + i]) { sum &+= UInt32(fib.actions[Int(a.rawValue)].labelCount) }
            }
            blackHole(sum)
        }
    }
    Benchmark("static MAC lookup, 64 random MACs of N in one multipoint VNI", configuration: .init(setup: setup)) { b in
        let s = scale!
        let fib = s.engine.snapshot.pointee
        for _ in b.scaledIterations {
            let k = nextKeys()
            var sum: UInt32 = 0
            for i in 0..<64 { sum &+= MACTable.lookup(fib.macDirectory, vni: Scale.macVNI, mac: s.macs[k + i]) }
            blackHole(sum)
        }
    }
    Benchmark("FTN IPv4 LPM + action, 64 random destinations in N /24s", configuration: .init(setup: setup)) { b in
        let s = scale!
        let fib = s.engine.snapshot.pointee
        for _ in b.scaledIterations {
            let k = nextKeys()
            var sum: UInt32 = 0
            for i in 0..<64 {
                let leaf = fib.lookupV4(vrf: 0, s.addresses[k + i])
                if leaf != 0 { sum &+= UInt32(fib.actions[Int(leaf - 1)].labelCount) }
            }
            blackHole(sum)
        }
    }
}
