#if canImport(Glibc)
import Glibc
#endif
internal import CXDP
import FIB

/// The fast tier (bpf/fast_tier.h): transit label switching done by a core port's XDP program itself. This file
/// writes a FIBSnapshot's tables into the program's maps and reads back what the program recorded and counted.
///
/// The fast tier's tables mirror the snapshot's: the ILM entry and next-hop record byte for byte, the action as the
/// part a swap or PHP reads (`mg_fast_action`). An action the fast tier cannot do completely (more than
/// `MG_FAST_OUT_LABELS` labels, any operation but swap/PHP) is written as op 0, so its frames go to AF_XDP.
public enum FastTier {
    /// Table sizes for a program that runs the fast tier over `fib`.
    static func sizes(for fib: FIBSnapshot) -> mg_fast_sizes {
        mg_fast_sizes(ilm: MG_FAST_ILM_SIZE, actions: UInt32(max(fib.actionCount, 1)),
                      next_hops: UInt32(max(Liveness.capacity, fib.nextHopCount, 1)),
                      buckets: UInt32(max(fib.groupCount * ECMP.bucketCount * 2, 1)))
    }

    /// The fast tier's form of one action: a swap or PHP of at most MG_FAST_OUT_LABELS labels (primary and
    /// backup), else op 0.
    static func action(_ a: Action) -> mg_fast_action {
        var f = mg_fast_action()
        let outLabels = Int(MG_FAST_OUT_LABELS)
        guard a.operation == .swap, Int(a.labelCount) <= outLabels, Int(a.backupLabelCount) <= outLabels else { return f }
        f.op = a.operation.rawValue
        f.flags = a.flags
        f.label_count = a.labelCount
        f.payload = a.payload.rawValue
        f.backup_label_count = UInt8(a.backupLabelCount)
        f.target = a.target.rawValue
        let total = Int(a.labelCount) + Int(a.backupLabelCount)
        withUnsafeBytes(of: a.area) { area in
            withUnsafeMutableBytes(of: &f.labels) { labels in
                for i in 0..<total {
                    labels.storeBytes(of: area.load(fromByteOffset: 4 * i, as: UInt32.self), toByteOffset: 4 * i, as: UInt32.self)
                }
            }
        }
        return f
    }
}

/// What the program recorded for the last MPLS frame its fast tier looked at.
public struct FastTierVerdict: Equatable, Sendable {
    /// Forwarded by the fast tier (XDP_REDIRECT to `port`), or steered to AF_XDP untouched.
    public var forwarded: Bool
    public var port: UInt32
    /// Why it was steered (MG_SLOW_*), 0 when forwarded.
    public var why: UInt32
}

extension SteerProgram {
    func mapFD(_ name: String) throws(AgentError) -> Int32 {
        let fd = mg_prog_map_fd(prog, name)
        if fd < 0 { throw AgentError("the XDP program has no map \(name)") }
        return fd
    }

    func update<K, V>(_ fd: Int32, _ name: String, key: K, value: V) throws(AgentError) {
        var k = key
        var v = value
        let rc = mg_map_update(fd, &k, &v)
        if rc != 0 { throw AgentError("writing the fast tier's \(name) map failed: \(errnoText(rc))") }
    }

    /// Writes every table of `fib` the fast tier reads, and the devmap of egress ports: `egress[port index]` is
    /// the ifindex of a port that takes redirected frames (ports not listed stay on AF_XDP).
    public func loadFastTier(_ fib: FIBSnapshot, egress: [Int: Int32], traceArmed: Bool = false) throws(AgentError) {
        let ilm = try mapFD("mg_fast_ilm")
        for label in UInt32(16)..<MG_FAST_ILM_SIZE {
            let e = fib.ilm(label)
            if e.operation == .none { continue }
            try update(ilm, "ILM", key: label, value: e)
        }
        let actions = try mapFD("mg_fast_actions")
        for slot in 0..<fib.actionCount {
            try update(actions, "action", key: UInt32(slot), value: FastTier.action(fib.actions[slot]))
        }
        let nextHops = try mapFD("mg_fast_next_hops")
        for slot in 0..<fib.nextHopCount {
            try update(nextHops, "next-hop", key: UInt32(slot), value: fib.nextHops[slot])
        }
        try writeLiveness(fib)
        let buckets = try mapFD("mg_fast_buckets")
        for i in 0..<(fib.groupCount * ECMP.bucketCount * 2) {
            try update(buckets, "bucket", key: UInt32(i), value: fib.groupBuckets[i])
        }
        try update(try mapFD("mg_fast_config"), "config", key: UInt32(0),
                   value: mg_fast_config(group_count: UInt32(fib.groupCount), trace_armed: traceArmed ? 1 : 0))
        let devmap = try mapFD("mg_fast_tx")
        let ok = try mapFD("mg_fast_egress")
        for (port, ifindex) in egress {
            try update(devmap, "egress devmap", key: UInt32(port), value: UInt32(ifindex))
            try update(ok, "egress", key: UInt32(port), value: UInt32(1))
        }
    }

    /// Copies the snapshot's next-hop liveness (0 up) into the program.
    public func writeLiveness(_ fib: FIBSnapshot) throws(AgentError) {
        let fd = try mapFD("mg_fast_liveness")
        for slot in 0..<fib.nextHopCount {
            try update(fd, "liveness", key: UInt32(slot), value: UInt32(fib.liveness[slot]))
        }
    }

    /// Runs the program once on `frame` (BPF_PROG_TEST_RUN): the XDP action, the frame as the program left it,
    /// and what the fast tier recorded (nil when it did not look at the frame).
    public func testRunFast(_ frame: [UInt8], ifindex: UInt32 = 1) throws(AgentError)
        -> (action: UInt32, bytes: [UInt8], verdict: FastTierVerdict?) {
        let lastFD = try mapFD("mg_fast_last")
        let cpus = Int(mg_possible_cpus())
        let stride = MemoryLayout<mg_fast_last>.stride
        let unset = mg_fast_last(verdict: 0xFFFF_FFFF, port: 0, why: 0, pad: 0)
        var values = [mg_fast_last](repeating: unset, count: cpus)
        var zero: UInt32 = 0
        _ = values.withUnsafeMutableBytes { mg_map_update(lastFD, &zero, $0.baseAddress) }
        precondition(stride == 16)
        var out = [UInt8](repeating: 0, count: frame.count + 512)
        var outSize: UInt32 = 0
        var action: UInt32 = 0
        let cap = UInt32(out.count)
        let rc = frame.withUnsafeBytes { f in
            out.withUnsafeMutableBytes { o in
                mg_prog_test_run_out(prog, f.baseAddress, UInt32(f.count), ifindex, 0, o.baseAddress, cap, &outSize, &action)
            }
        }
        if rc != 0 { throw AgentError("BPF_PROG_TEST_RUN failed: \(errnoText(rc))") }
        _ = values.withUnsafeMutableBytes { mg_map_lookup(lastFD, &zero, $0.baseAddress) }
        let seen = values.first { $0.verdict != 0xFFFF_FFFF }
        return (action, Array(out.prefix(Int(outSize))),
                seen.map { FastTierVerdict(forwarded: $0.verdict == MG_FAST_FORWARDED, port: $0.port, why: $0.why) })
    }

    /// The fast tier's per-port counters, summed over CPUs.
    func fastPortCounters(port: Int) throws(AgentError) -> mg_fast_port_counters {
        let fd = try mapFD("mg_fast_ports")
        var values = [mg_fast_port_counters](repeating: mg_fast_port_counters(), count: Int(mg_possible_cpus()))
        var key = UInt32(port)
        let rc = values.withUnsafeMutableBytes { mg_map_lookup(fd, &key, $0.baseAddress) }
        if rc != 0 { throw AgentError("reading the fast tier's port counters failed: \(errnoText(rc))") }
        return values.reduce(into: mg_fast_port_counters()) {
            $0.rx_packets += $1.rx_packets; $0.rx_bytes += $1.rx_bytes
            $0.tx_packets += $1.tx_packets; $0.tx_bytes += $1.tx_bytes
        }
    }

    /// The fast tier's counter of one action slot, summed over CPUs.
    public func fastEntryCounter(action: Int) throws(AgentError) -> (packets: UInt64, bytes: UInt64) {
        let fd = try mapFD("mg_fast_entries")
        var values = [mg_fast_counter](repeating: mg_fast_counter(), count: Int(mg_possible_cpus()))
        var key = UInt32(action)
        let rc = values.withUnsafeMutableBytes { mg_map_lookup(fd, &key, $0.baseAddress) }
        if rc != 0 { throw AgentError("reading the fast tier's entry counters failed: \(errnoText(rc))") }
        return values.reduce(into: (UInt64(0), UInt64(0))) { $0.0 += $1.packets; $0.1 += $1.bytes }
    }
}
