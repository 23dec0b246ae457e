#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import CLISupport
import CRawSocket
import Capture
import Control

/// mplsgate-traffic: the project's traffic generator and sink for tests and benchmarks on veth (AF_PACKET).
/// Frames can carry a sequence trailer in their last 16 bytes: "MGSQ", stream (u32 BE), sequence (u64 BE). Every
/// MPLSGate operation keeps the end of a frame, so the sink finds the trailer after any rewrite.
func fail(_ message: String, code: Int32 = 1) -> Never {
    var b = Array("mplsgate-traffic: \(message)\n".utf8)
    _ = write(2, &b, b.count)
    exit(code)
}

func openSocket(_ iface: String) -> Int32 {
    let fd = mg_raw_open(iface, 1)
    if fd < 0 { fail("\(iface): \(String(cString: strerror(-fd)))") }
    return fd
}

let magic: [UInt8] = Array("MGSQ".utf8)
let trailerSize = 16

func send(_ o: SendCommand) {
    let fd = openSocket(o.iface)
    let path = o.pcap
    var templates: [[UInt8]] = []
    do {
        let r = try CaptureReader(path: path)
        let buf = UnsafeMutableRawPointer.allocate(byteCount: 65536, alignment: 8)
        defer { buf.deallocate() }
        while let f = try r.next(into: buf, capacity: 65536) {
            templates.append(Array(UnsafeRawBufferPointer(start: buf, count: f.length)))
        }
    } catch { fail(error.description) }
    guard !templates.isEmpty else { fail("\(path) holds no frames") }
    let stream = o.stream
    if stream != nil, let short = templates.first(where: { $0.count < 14 + trailerSize }) {
        fail("a \(short.count)-byte frame has no room for the 16-byte sequence trailer")
    }
    let count = o.count ?? templates.count
    let rate = o.rate

    // One buffer per template slot of a burst; the trailer is rewritten per frame.
    let burstMax = 64
    let maxLen = templates.map(\.count).max()!
    let storage = UnsafeMutableRawPointer.allocate(byteCount: burstMax * maxLen, alignment: 64)
    defer { storage.deallocate() }
    var ptrs = [UnsafeMutableRawPointer?](repeating: nil, count: burstMax)
    var lens = [UInt32](repeating: 0, count: burstMax)
    var sent = 0, errors = 0
    let start = mg_now_ns()
    let interval = rate > 0 ? 1e9 / rate : 0
    while sent < count {
        var burst = min(burstMax, count - sent)
        if rate > 0 {
            let due = Int(Double(mg_now_ns() - start) / interval) + 1 - sent
            if due <= 0 {
                mg_sleep_until_ns(start + UInt64(Double(sent) * interval))
                continue
            }
            burst = min(burst, due)
        }
        for i in 0..<burst {
            let seq = sent + i
            let t = templates[seq % templates.count]
            let p = storage + i * maxLen
            t.withUnsafeBytes { p.copyMemory(from: $0.baseAddress!, byteCount: t.count) }
            if let stream {
                let tail = p + t.count - trailerSize
                magic.withUnsafeBytes { tail.copyMemory(from: $0.baseAddress!, byteCount: 4) }
                tail.storeBytes(of: stream.bigEndian, toByteOffset: 4, as: UInt32.self)
                tail.storeBytes(of: UInt64(seq).bigEndian, toByteOffset: 8, as: UInt64.self)
            }
            ptrs[i] = p
            lens[i] = UInt32(t.count)
        }
        let n = mg_raw_send(fd, ptrs, lens, UInt32(burst))
        if n < 0 {
            if n == -ENOBUFS || n == -EAGAIN { usleep(50); continue }
            errors += 1
            if errors > 1000 { fail("send: \(String(cString: strerror(-n)))") }
            continue
        }
        sent += Int(n)
    }
    let seconds = Double(mg_now_ns() - start) / 1e9
    print("{\"sent\":\(sent),\"errors\":\(errors),\"seconds\":\(seconds),\"pps\":\(seconds > 0 ? Double(sent) / seconds : 0)}")
}

struct StreamStats {
    var received = 0
    var low = UInt64.max
    var high: UInt64 = 0
    var last: UInt64?
    var reordered = 0
    var duplicates = 0
    /// One bit per sequence number seen.
    var seen: [UInt64] = []
    var lastNs: UInt64 = 0
    var maxGapNs: UInt64 = 0

    /// Marks `seq` seen; false when it was seen before.
    mutating func mark(_ seq: UInt64) -> Bool {
        let word = Int(seq >> 6)
        if word >= seen.count {
            guard word < 1 << 26 else { return true }   // beyond 4G sequence numbers: not tracked
            seen += [UInt64](repeating: 0, count: max(word + 1 - seen.count, seen.count))
        }
        let bit = UInt64(1) << (seq & 63)
        if seen[word] & bit != 0 { return false }
        seen[word] |= bit
        return true
    }
}

nonisolated(unsafe) var stopRequested = false

func sink(_ o: SinkCommand) {
    let fd = openSocket(o.iface)
    let duration = o.duration
    let idle = o.idle
    let limit = o.count
    let streamOnly = o.streamOnly
    let writer: CaptureWriter?
    do { writer = try o.out.map { (p: String) throws(CaptureError) -> CaptureWriter in try CaptureWriter(path: p) } } catch { fail(error.description) }
    signal(SIGINT) { _ in stopRequested = true }
    signal(SIGTERM) { _ in stopRequested = true }

    let cap = 16384
    let storage = UnsafeMutableRawPointer.allocate(byteCount: 64 * cap, alignment: 64)
    defer { storage.deallocate() }
    let ptrs: [UnsafeMutableRawPointer?] = (0..<64).map { storage + $0 * cap }
    var lens = [UInt32](repeating: 0, count: 64)
    var frames = 0, bytes = 0
    var byKey: [FrameKey: Int] = [:]
    var lastKey = FrameKey.runt, lastKeyRun = 0
    var streams: [UInt32: StreamStats] = [:]
    let start = mg_now_ns()
    var lastFrame: UInt64 = 0
    // Print "ready" so scripts know the socket is bound before they start sending.
    var ready = Array("mplsgate-traffic: sink ready\n".utf8)
    _ = write(2, &ready, ready.count)
    while !stopRequested {
        let now = mg_now_ns()
        if duration > 0 && Double(now - start) / 1e9 >= duration { break }
        if duration == 0 && lastFrame > 0 && Double(now - lastFrame) / 1e9 >= idle { break }
        if limit > 0 && frames >= limit { break }
        let n = mg_raw_recv(fd, ptrs, UInt32(cap), &lens, 64, 20)
        if n < 0 { fail("receive: \(String(cString: strerror(-n)))") }
        if n == 0 { continue }
        let t = mg_now_ns()
        lastFrame = t
        for i in 0..<Int(n) {
            let p = UnsafeRawPointer(ptrs[i]!)
            let len = Int(lens[i])
            var stream: UInt32?
            var seq: UInt64 = 0
            if len >= 14 + trailerSize {
                let tail = p + len - trailerSize
                if memcmp(tail, magic, 4) == 0 {
                    stream = UInt32(bigEndian: tail.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
                    seq = UInt64(bigEndian: tail.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
                }
            }
            if streamOnly && stream == nil { continue }
            frames += 1
            bytes += len
            writer?.write(p, length: len, timestampMicros: Int64(t / 1000))
            let k = key(p, len)
            if k == lastKey { lastKeyRun += 1 } else {
                if lastKeyRun > 0 { byKey[lastKey, default: 0] += lastKeyRun }
                lastKey = k; lastKeyRun = 1
            }
            if let stream {
                var s = streams.removeValue(forKey: stream) ?? StreamStats()
                if !s.mark(seq) { s.duplicates += 1 } else {
                    s.received += 1
                    if let last = s.last, seq < last { s.reordered += 1 }
                    s.last = seq
                    s.low = min(s.low, seq); s.high = max(s.high, seq)
                    if s.lastNs > 0 { s.maxGapNs = max(s.maxGapNs, t - s.lastNs) }
                    s.lastNs = t
                }
                streams[stream] = s
            }
        }
    }
    do { try writer?.close() } catch { fail(error.description) }
    if lastKeyRun > 0 { byKey[lastKey, default: 0] += lastKeyRun }
    let socketDrops = mg_raw_drops(fd)
    let keys = byKey.keys.map { ($0.description, byKey[$0]!) }.sorted { $0.0 < $1.0 }
        .map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",")
    let st = streams.keys.sorted().map { id -> String in
        let s = streams[id]!
        let missing = s.received > 0 ? Int(s.high - s.low + 1) - s.received : 0
        return "\"\(id)\":{\"received\":\(s.received),\"low\":\(s.received > 0 ? s.low : 0),\"high\":\(s.high),"
            + "\"missing\":\(missing),\"reordered\":\(s.reordered),\"duplicates\":\(s.duplicates),"
            + "\"maxGapMs\":\(Double(s.maxGapNs) / 1e6)}"
    }.joined(separator: ",")
    print("{\"frames\":\(frames),\"bytes\":\(bytes),\"socketDrops\":\(max(socketDrops, 0)),\"byKey\":{\(keys)},"
          + "\"streams\":{\(st)}}")
}

/// What the sink counts frames by: the top label (under at most one 802.1Q tag) or the EtherType, and the
/// destination MAC.
struct FrameKey: Hashable {
    var mpls: Bool
    /// The top label for MPLS, else the EtherType.
    var value: UInt32
    var mac: UInt64

    static let runt = FrameKey(mpls: false, value: UInt32.max, mac: 0)

    /// "label=N mac=DST" for MPLS, "type=0xTTTT mac=DST" otherwise.
    var description: String {
        if self == FrameKey.runt { return "runt" }
        let m = (0..<6).map { i -> String in
            let b = UInt8(truncatingIfNeeded: mac >> UInt64(40 - 8 * i))
            return (b < 16 ? "0" : "") + String(b, radix: 16)
        }.joined(separator: ":")
        return mpls ? "label=\(value) mac=\(m)" : "type=0x\(String(value, radix: 16)) mac=\(m)"
    }
}

func key(_ p: UnsafeRawPointer, _ len: Int) -> FrameKey {
    guard len >= 14 else { return .runt }
    let mac = UInt64(UInt16(bigEndian: p.loadUnaligned(fromByteOffset: 0, as: UInt16.self))) << 32
        | UInt64(UInt32(bigEndian: p.loadUnaligned(fromByteOffset: 2, as: UInt32.self)))
    var off = 12
    var type = UInt16(bigEndian: p.loadUnaligned(fromByteOffset: off, as: UInt16.self))
    if type == 0x8100 && len >= 18 { off += 4; type = UInt16(bigEndian: p.loadUnaligned(fromByteOffset: off, as: UInt16.self)) }
    if type == 0x8847 && len >= off + 6 {
        let label = UInt32(bigEndian: p.loadUnaligned(fromByteOffset: off + 2, as: UInt32.self)) >> 12
        return FrameKey(mpls: true, value: label, mac: mac)
    }
    return FrameKey(mpls: false, value: UInt32(type), mac: mac)
}

/// The traffic tool's command line: `send` and `sink`, each a type with its options.
struct Traffic: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mplsgate-traffic",
        abstract: "Traffic generator and sink for MPLSGate tests (AF_PACKET, one interface).",
        discussion: "Exit status: 0 success; 1 a failure (interface, capture, socket); 2 usage error.",
        version: "mplsgate-traffic \(Release.version)",
        subcommands: [SendCommand.self, SinkCommand.self])

    func run() throws { CommandLineRules.subcommandRequired(Traffic.self, Traffic.self) }
}

struct SendCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "send",
        abstract: "Send the frames of a capture in order, cycling until N frames.",
        discussion: """
            --stream ID writes the sequence trailer (stream ID, sequence 0, 1, ...) over the last 16 bytes of every \
            frame. Prints {"sent":…,"errors":…,"seconds":…,"pps":…}.
            """)
    @Option(help: ArgumentHelp("The interface to send on.", valueName: "IF"))
    var iface: String
    @Option(help: ArgumentHelp("Frames to send, pcap or pcapng.", valueName: "FILE"))
    var pcap: String
    @Option(help: ArgumentHelp("Frames to send in all (default: the file once).", valueName: "N"))
    var count: Int?
    @Option(help: ArgumentHelp("Frames per second (0: as fast as the socket takes them).", valueName: "PPS"))
    var rate: Double = 0
    @Option(help: ArgumentHelp("Write the sequence trailer of this stream.", valueName: "ID"))
    var stream: UInt32?

    func validate() throws {
        if let count, count < 0 { throw ValidationError("--count \(count): expected a non-negative number") }
        guard rate >= 0 else { throw ValidationError("--rate \(rate): expected a non-negative number") }
    }

    func run() throws { send(self) }
}

struct SinkCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sink",
        abstract: "Receive the frames arriving on an interface (promiscuous) and report them as JSON.",
        discussion: """
            Stops after --duration S, or --idle S after the last frame, or N frames. The report: frames, bytes, \
            socketDrops (frames the kernel dropped because this sink was slow), counts per (top label or EtherType, \
            destination MAC), and per stream: received, lowest/highest sequence, missing, reordered, duplicates and \
            the largest gap between consecutive deliveries (ms). VLAN tags the kernel moved out of a frame are put back.
            """)
    @Option(help: ArgumentHelp("The interface to receive on.", valueName: "IF"))
    var iface: String
    @Option(help: ArgumentHelp("Stop after this long (0: no limit).", valueName: "S"))
    var duration: Double = 0
    @Option(help: ArgumentHelp("Stop this long after the last frame.", valueName: "S"))
    var idle: Double = 2
    @Option(help: ArgumentHelp("Stop after N frames (0: no limit).", valueName: "N"))
    var count = 0
    @Option(help: ArgumentHelp("Write the frames to a classic pcap.", valueName: "FILE"))
    var out: String?
    @Flag(help: "Count only frames that carry a sequence trailer.")
    var streamOnly = false

    func validate() throws {
        guard duration >= 0, idle >= 0, count >= 0 else {
            throw ValidationError("--duration, --idle and --count take non-negative numbers")
        }
    }

    func run() throws { sink(self) }
}

CommandLineRules.main(Traffic.self)
