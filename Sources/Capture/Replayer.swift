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
    public var mpps: Double { seconds > 0 ? Double(framesIn) / seconds / 1e6 : 0 }
}

/// Offline forwarding of a capture through the same pipeline the live agent runs, one batch at a time.
public final class Replayer {
    /// Frames per batch, as a live worker's RX batch.
    public static let batchSize = 64
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

    /// - Parameters:
    ///   - portNames / interfaceNames: port i's name and Linux interface, matched against pcapng interface names.
    ///   - defaultIngress: the port of frames whose interface is unknown (classic pcap, or unnamed interfaces).
    public init(fib: FIBSnapshot, portNames: [String], interfaceNames: [String?], defaultIngress: PortID?) {
        self.fib = fib; self.portNames = portNames; self.interfaceNames = interfaceNames; self.defaultIngress = defaultIngress
    }

    /// Replays `input`; `progress` is called now and then with (bytes read, file size, frames).
    public func run(input: String, outputs: ReplayOutputs,
                    progress: ((Int64, Int64, Int) -> Void)? = nil) throws(CaptureError) -> ReplaySummary {
        let reader = try CaptureReader(path: input)
        if !reader.isPcapNG && defaultIngress == nil {
            throw CaptureError("\(input): classic pcap has no interface names; give --ingress PORT")
        }
        let all = try outputs.all.map { (p: String) throws(CaptureError) -> CaptureWriter in try CaptureWriter(path: p) }
        let drops = try outputs.drops.map { (p: String) throws(CaptureError) -> CaptureWriter in try CaptureWriter(path: p) }
        var perPort: [CaptureWriter?] = Array(repeating: nil, count: portNames.count)
        if let dir = outputs.perPortDirectory {
            mkdir(dir, 0o755)
            for (i, name) in portNames.enumerated() { perPort[i] = try CaptureWriter(path: "\(dir)/\(name).pcap") }
        }
        defer {
            all?.close(); drops?.close()
            for w in perPort { w?.close() }
        }

        let counters = WorkerCounters.allocate(entryCapacity: fib.actionCount)
        var summary = ReplaySummary(counters: counters)
        let memory = UnsafeMutableRawPointer.allocate(byteCount: Replayer.batchSize * Replayer.slotStride, alignment: 4096)
        defer { memory.deallocate() }
        let batch = UnsafeMutableBufferPointer<Frame>.allocate(capacity: Replayer.batchSize)
        defer { batch.deallocate() }
        // Per-batch side tables in raw memory: no uniqueness or bounds checks per frame.
        let timestamps = UnsafeMutablePointer<Int64>.allocate(capacity: Replayer.batchSize)
        defer { timestamps.deallocate() }
        // Input copies of dropped frames, so the drop file shows them as they arrived.
        let dropCopy = drops != nil ? UnsafeMutableRawPointer.allocate(byteCount: Replayer.batchSize * Replayer.slotStride, alignment: 64) : nil
        defer { dropCopy?.deallocate() }
        let originalLength = UnsafeMutablePointer<Int>.allocate(capacity: Replayer.batchSize)
        defer { originalLength.deallocate() }
        let splitByPort = outputs.perPortDirectory != nil
        var ingressCache: [String: PortID?] = [:]
        var unmatched: [String: Int] = [:]
        var unmatchedOrder: [String] = []

        var clock = timespec()
        clock_gettime(CLOCK_MONOTONIC, &clock)
        let t0 = Double(clock.tv_sec) + Double(clock.tv_nsec) / 1e9
        var lastProgress = t0
        var done = false
        while !done {
            var n = 0
            while n < Replayer.batchSize {
                let buf = memory + n * Replayer.slotStride
                guard let c = try reader.next(into: buf + Frame.headroom, capacity: Replayer.maxFrame) else { done = true; break }
                summary.framesIn += 1
                var ingress = defaultIngress
                if let name = c.interfaceName {
                    let id: PortID?
                    if let cached = ingressCache[name] { id = cached } else {
                        let found = portNames.firstIndex(of: name) ?? interfaceNames.firstIndex(where: { $0 == name })
                        id = found.map { PortID(UInt16($0)) }
                        ingressCache[name] = id
                        if id == nil { unmatchedOrder.append(name) }
                    }
                    if let id { ingress = id } else { unmatched[name, default: 0] += 1 }
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
            Pipeline.process(UnsafeMutableBufferPointer(rebasing: batch[0..<n]), fib: fib, counters: counters)
            for i in 0..<n {
                let f = batch[i]
                if f.isForwarded {
                    summary.framesOut += 1
                    let p = UnsafeRawPointer(f.buffer + Int(f.offset))
                    all?.write(p, length: Int(f.length), timestampMicros: timestamps[i])
                    if splitByPort { perPort[Int(f.egress.rawValue)]?.write(p, length: Int(f.length), timestampMicros: timestamps[i]) }
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
        clock_gettime(CLOCK_MONOTONIC, &clock)
        summary.seconds = Double(clock.tv_sec) + Double(clock.tv_nsec) / 1e9 - t0
        summary.unmatchedInterfaces = unmatchedOrder.map { ($0, unmatched[$0] ?? 0) }
        return summary
    }
}
