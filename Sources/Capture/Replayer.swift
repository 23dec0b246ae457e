#if canImport(Glibc)
import Glibc
#endif
import FIB
import Dataplane

/// Where replay writes its results.
public struct ReplayOutputs {
    /// Every forwarded frame, in input order.
    public var all: String?
    /// A folder for one pcap per egress port (`PORT.pcap`).
    public var perPortDirectory: String?
    /// Dropped frames as they arrived.
    public var drops: String?
    public init(all: String? = nil, perPortDirectory: String? = nil, drops: String? = nil) {
        self.all = all; self.perPortDirectory = perPortDirectory; self.drops = drops
    }
}

/// What a replay did.
public struct ReplaySummary {
    public var framesIn = 0
    public var framesOut = 0
    public var seconds = 0.0
    public var counters: WorkerCounters
    /// pcapng interface names that match no port's name or interface, with their frame counts, in order of first
    /// appearance: those frames took `--ingress`, or were dropped as `unknownPort` without it.
    public var unmatchedInterfaces: [(name: String, frames: Int)] = []
    /// Per learning multipoint VNI: what the learner did, and the MACs it held at the end.
    public var learning: [(vni: UInt32, counters: LearnCounters, macs: Int)] = []
    public var mpps: Double { seconds > 0 ? Double(framesIn) / seconds / 1e6 : 0 }
}

/// Offline forwarding of a capture through the same pipeline the live agent runs, one batch at a time.
public final class Replayer {
    /// Frames per batch by default, as a live worker's RX batch.
    public static let batchSize = 64
    /// The largest `batch`.
    public static let maxBatch = 256
    /// Bytes per frame buffer: headroom plus room for a jumbo frame and pushed headers.
    public static let bufferSize = 16384
    /// The largest captured frame replay accepts (the buffer less the headroom).
    public static let maxFrame = bufferSize - Frame.headroom
    /// Distance between two frame buffers: not a power of two, so the batch's frame heads fall in different cache
    /// sets (at 16 KiB apart all 64 share one L1 set, and L2 hits varied from run to run with the physical pages).
    static let slotStride = bufferSize + 3 * 64

    private let fib: FIBSnapshot
    private let portNames: [String]
    private let interfaceNames: [String?]
    private let defaultIngress: PortID?
    private let batchSize: Int
    private let learning: [LearningSegment]
    private let macCapacity: Int

    /// - Parameters:
    ///   - portNames / interfaceNames: port i's name and Linux interface, matched against pcapng interface names.
    ///   - defaultIngress: the port of frames whose interface is unknown (classic pcap, or unnamed interfaces).
    ///   - batch: frames per batch (1–256): MACs learned from a batch's frames take effect at its end.
    ///   - learning: the FIB's multipoint VNIs (`FIBEngine.learningSegments`); their learned MACs age on capture time.
    public init(fib: FIBSnapshot, portNames: [String], interfaceNames: [String?], defaultIngress: PortID?,
                batch: Int = Replayer.batchSize, learning: [LearningSegment] = [], macCapacity: Int = 1 << 20) {
        precondition((1...Replayer.maxBatch).contains(batch))
        self.fib = fib; self.portNames = portNames; self.interfaceNames = interfaceNames; self.defaultIngress = defaultIngress
        batchSize = batch; self.learning = learning; self.macCapacity = macCapacity
    }

    /// Replays `input`; `progress` is called now and then with (bytes read, file size, frames). `threads` 2 writes
    /// the outputs on a second thread while this one reads and forwards.
    public func run(input: String, outputs: ReplayOutputs, threads: Int = 1,
                    progress: ((Int64, Int64, Int) -> Void)? = nil) throws(CaptureError) -> ReplaySummary {
        let reader = try CaptureReader(path: input)
        if !reader.isPcapNG && defaultIngress == nil {
            throw CaptureError("\(input): classic pcap has no interface names; give --ingress PORT", kind: .usage)
        }
        let writers = (outputs.all == nil ? 0 : 1) + (outputs.drops == nil ? 0 : 1)
            + (outputs.perPortDirectory == nil ? 0 : portNames.count)
        // Each open writer holds a buffer; four more can be in flight.
        let behind = threads > 1 && writers > 0 ? WriteBehind(buffers: writers + 4) : nil
        defer { behind?.finish() }
        var opened: [CaptureWriter] = []
        func writer(_ path: String) throws(CaptureError) -> CaptureWriter {
            let w = try CaptureWriter(path: path, writeBehind: behind)
            opened.append(w)
            return w
        }
        // Closes every output once; a write error (disk full, I/O error) fails the replay.
        var closed = false
        func closeAll() throws(CaptureError) {
            guard !closed else { return }
            closed = true
            var first: CaptureError?
            for w in opened { do { try w.close() } catch { first = first ?? error } }
            if let first { throw first }
        }
        defer { try? closeAll() }
        let all = try outputs.all.map { (p: String) throws(CaptureError) -> CaptureWriter in try writer(p) }
        let drops = try outputs.drops.map { (p: String) throws(CaptureError) -> CaptureWriter in try writer(p) }
        var perPort: [CaptureWriter?] = Array(repeating: nil, count: portNames.count)
        if let dir = outputs.perPortDirectory {
            mkdir(dir, 0o755)
            for (i, name) in portNames.enumerated() { perPort[i] = try writer("\(dir)/\(name).pcap") }
        }

        let counters = WorkerCounters.allocate(entryCapacity: fib.actionCount)
        var summary = ReplaySummary(counters: counters)
        let memory = UnsafeMutableRawPointer.allocate(byteCount: batchSize * Replayer.slotStride, alignment: 4096)
        defer { memory.deallocate() }
        let batch = UnsafeMutableBufferPointer<Frame>.allocate(capacity: batchSize)
        defer { batch.deallocate() }
        // Per-batch side tables in raw memory: no uniqueness or bounds checks per frame.
        let timestamps = UnsafeMutablePointer<Int64>.allocate(capacity: batchSize)
        defer { timestamps.deallocate() }
        // Input copies of dropped frames, so the drop file shows them as they arrived.
        let dropCopy = drops != nil ? UnsafeMutableRawPointer.allocate(byteCount: batchSize * Replayer.slotStride, alignment: 64) : nil
        defer { dropCopy?.deallocate() }
        let originalLength = UnsafeMutablePointer<Int>.allocate(capacity: batchSize)
        defer { originalLength.deallocate() }
        let splitByPort = outputs.perPortDirectory != nil
        // Copies of flooded frames (multipoint VNIs) are made here one at a time and written where the original
        // would have been; the BUM rate limit runs on capture time.
        let copyBuffer = UnsafeMutableRawPointer.allocate(byteCount: Replayer.bufferSize, alignment: 64)
        defer { copyBuffer.deallocate() }
        let limiter = FloodLimiter()
        defer { limiter.release() }
        // MAC learning: the pipeline posts records during a batch, the learner applies them at its end (capture time).
        let learner = learning.contains { $0.learning } ? MACLearner(root: LearnedRoot(), capacity: macCapacity) : nil
        learner?.configure(learning)
        counters.learn.pointee.tables = learner?.root.tables
        defer { learner?.releaseAll() }
        // Per capture interface (file-wide index): its port, looked up by name once (nil: no port of that name).
        var ingressCache: [PortID?] = []
        var resolved: [Bool] = []
        var unmatched: [Int: Int] = [:]
        var unmatchedOrder: [Int] = []

        var clock = timespec()
        clock_gettime(CLOCK_MONOTONIC, &clock)
        let t0 = Double(clock.tv_sec) + Double(clock.tv_nsec) / 1e9
        var lastProgress = t0
        var done = false
        while !done {
            var n = 0
            while n < batchSize {
                let buf = memory + n * Replayer.slotStride
                guard let c = try reader.next(into: buf + Frame.headroom, capacity: Replayer.maxFrame) else { done = true; break }
                summary.framesIn += 1
                var ingress = defaultIngress
                let i = c.interface
                if i >= 0 {
                    if i >= resolved.count {
                        ingressCache += Array(repeating: nil, count: i + 1 - resolved.count)
                        resolved += Array(repeating: false, count: i + 1 - resolved.count)
                    }
                    if !resolved[i] {
                        resolved[i] = true
                        if let name = reader.interfaceName(i) {
                            let found = portNames.firstIndex(of: name) ?? interfaceNames.firstIndex(where: { $0 == name })
                            ingressCache[i] = found.map { PortID(UInt16($0)) }
                            if ingressCache[i] == nil { unmatchedOrder.append(i) }
                        }
                    }
                    if let id = ingressCache[i] {
                        ingress = id
                    } else if reader.interfaceName(i) != nil {
                        unmatched[i, default: 0] += 1
                    }
                }
                if c.tooLarge {
                    counters.drops[Int(DropReason.frameTooLong.rawValue)] += 1
                    continue
                }
                batch[n] = Frame(buffer: buf, offset: Int32(Frame.headroom), length: Int32(c.length),
                                 ingress: ingress ?? PortID.none)
                timestamps[n] = c.timestampMicros
                if let d = dropCopy {
                    (d + n * Replayer.slotStride).copyMemory(from: buf + Frame.headroom, byteCount: c.length)
                    originalLength[n] = c.length
                }
                n += 1
            }
            if n == 0 { continue }
            let second = UInt32(truncatingIfNeeded: max(timestamps[0], 0) / 1_000_000)
            counters.learn.pointee.nowSeconds = second
            // Aging and duplicate holds on capture time, before the batch (once per second of it).
            if let learner, second != learner.lastSweep { learner.sweep(now: second) }
            Pipeline.process(UnsafeMutableBufferPointer(rebasing: batch[0..<n]), fib: fib, counters: counters)
            if let learner {
                let ctx = counters.learn
                for r in 0..<Int(ctx.pointee.count) { learner.apply(ctx.pointee.records[r], now: second) }
                ctx.pointee.count = 0
                learner.events.removeAll()
                // One thread: nothing else can still read a replaced table.
                for t in learner.retired { LearnedTable.free(t) }
                learner.retired.removeAll()
            }
            for i in 0..<n {
                let f = batch[i]
                if f.isForwarded {
                    summary.framesOut += 1
                    let p = UnsafeRawPointer(f.buffer + Int(f.offset))
                    all?.write(p, length: Int(f.length), timestampMicros: timestamps[i])
                    if splitByPort { perPort[Int(f.egress.rawValue)]?.write(p, length: Int(f.length), timestampMicros: timestamps[i]) }
                } else if f.drop == .flood, let plan = Replication.plan(f, fib: fib) {
                    let seg = counters.segments + plan.slot
                    seg.pointee.flooded &+= 1
                    let now = UInt64(max(timestamps[i], 0)) &* 1000
                    if !limiter.admit(plan, nowNs: now) {
                        seg.pointee.rateLimited &+= 1
                        counters.drops[Int(DropReason.bumRateLimited.rawValue)] &+= 1
                        counters.ports[Int(f.ingress.rawValue)].dropPackets &+= 1
                        if let d = dropCopy {
                            drops?.write(d + i * Replayer.slotStride, length: originalLength[i], timestampMicros: timestamps[i])
                        }
                        continue
                    }
                    for k in 0..<plan.count {
                        (copyBuffer + Frame.headroom).copyMemory(from: f.buffer + Int(f.offset), byteCount: Int(f.length))
                        var c = Frame(buffer: copyBuffer, offset: Int32(Frame.headroom), length: f.length, ingress: f.ingress)
                        Pipeline.replicate(&c, place: plan.place(k), fib: fib, counters: counters)
                        guard c.isForwarded else { continue }
                        seg.pointee.copies &+= 1
                        summary.framesOut += 1
                        let p = UnsafeRawPointer(c.buffer + Int(c.offset))
                        all?.write(p, length: Int(c.length), timestampMicros: timestamps[i])
                        if splitByPort { perPort[Int(c.egress.rawValue)]?.write(p, length: Int(c.length), timestampMicros: timestamps[i]) }
                    }
                } else if let d = dropCopy {
                    drops?.write(d + i * Replayer.slotStride, length: originalLength[i], timestampMicros: timestamps[i])
                }
            }
            if let progress {
                clock_gettime(CLOCK_MONOTONIC, &clock)
                let now = Double(clock.tv_sec) + Double(clock.tv_nsec) / 1e9
                if now - lastProgress >= 0.5 { lastProgress = now; progress(reader.position, reader.fileSize, summary.framesIn) }
            }
        }
        do { try closeAll() } catch {
            counters.deallocate()
            throw error
        }
        clock_gettime(CLOCK_MONOTONIC, &clock)
        summary.seconds = Double(clock.tv_sec) + Double(clock.tv_nsec) / 1e9 - t0
        // Interfaces of one name in several sections are reported once, with their frames added up.
        var byName: [(name: String, frames: Int)] = []
        for i in unmatchedOrder {
            let name = reader.interfaceName(i) ?? ""
            if let k = byName.firstIndex(where: { $0.name == name }) { byName[k].frames += unmatched[i] ?? 0 }
            else { byName.append((name, unmatched[i] ?? 0)) }
        }
        summary.unmatchedInterfaces = byName
        if let learner {
            summary.learning = learning.filter(\.learning).map {
                (vni: $0.vni, counters: learner.counters(vni: $0.vni) ?? LearnCounters(), macs: learner.count(vni: $0.vni))
            }
        }
        return summary
    }
}
