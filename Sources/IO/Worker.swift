#if canImport(Glibc)
import Glibc
#endif
internal import CXDP
import Dataplane
import FIB
import Synchronization

/// How a worker waits when it has nothing to do.
public enum WaitMode: String, Sendable {
    /// poll() on its sockets with need_wakeup: CPU-friendly; several agents can share cores.
    case poll
    /// Spin on the rings: lowest latency, one core per worker.
    case busy
}

/// A stop request shared by the agent and its workers.
public final class StopFlag: @unchecked Sendable {
    private let flag = Atomic<Bool>(false)
    public init() {}
    public func set() { flag.store(true, ordering: .releasing) }
    @inline(__always) public var isSet: Bool { flag.load(ordering: .relaxed) }
}

/// Worker k: owns queue k of every port (one AF_XDP socket per port, all on one UMEM), so it is the only producer
/// of those TX rings. It receives a batch, runs the pipeline, moves frames by address to the egress port's TX
/// ring, refills fill rings in whole batches and reaps completions into its frame pool. Nothing in `run()`
/// allocates, locks or throws.
public final class Worker: @unchecked Sendable {
    public static let batchSize = 64

    public let index: Int
    let cpu: Int?
    let umem: UnsafeMutablePointer<mg_umem>
    let area: UnsafeMutableRawPointer
    let chunkMask: UInt64
    /// sockets[port]
    let sockets: UnsafeMutablePointer<UnsafeMutablePointer<mg_xsk>>
    let portCount: Int
    let fillSize: UInt32
    let inflightCap: UInt32
    /// Forwarded frames stop at this many in flight per port; the rest of `inflightCap` is kept for BFD, so an
    /// overloaded port still carries the frames that say it is alive.
    let dataInflightCap: UInt32
    let waitMode: WaitMode
    let isCopyMode: Bool

    /// Free frame addresses (chunk starts).
    let pool: UnsafeMutablePointer<UInt64>
    var poolCount = 0
    /// Frames on each port's TX ring or awaiting completion.
    let inflight: UnsafeMutablePointer<UInt32>
    /// Frames reserved on each port's TX ring in the current batch.
    let pending: UnsafeMutablePointer<UInt32>
    /// Ports whose TX ring has frames the kernel has not taken yet (a kick is owed).
    let kickOwed: UnsafeMutablePointer<Bool>
    /// Per port, 1 while its link is up: written by the protection thread. A down port is not kicked (sendto
    /// would fail on every loop); the pipeline already sends it nothing new (next-hop liveness).
    let portLive: UnsafeMutablePointer<UInt8>
    /// The worker's last view of `portLive`, to count stranded frames once per fall.
    let wasLive: UnsafeMutablePointer<UInt8>
    /// Per port: no kick before this CLOCK_MONOTONIC ns (the kernel said ENETDOWN before the protection thread did).
    let kickAfter: UnsafeMutablePointer<UInt64>
    let touched: UnsafeMutablePointer<Int>
    let pollFDs: UnsafeMutablePointer<pollfd>

    /// Pipeline counters, per port ring counters, loop counters: single writer.
    public let counters: WorkerCounters
    public let io: UnsafeMutablePointer<XSKCounters>
    public let loop: UnsafeMutablePointer<WorkerLoopCounters>

    let batch: UnsafeMutableBufferPointer<Frame>
    /// Per multipoint VNI: this worker's BUM rate-limit bucket.
    let floodLimiter = FloodLimiter()
    /// Scratch for traced packets' first bytes as received (batch × TraceBuffer.headBytes).
    let traceScratch: UnsafeMutableRawPointer
    let traceLengths: UnsafeMutablePointer<Int32>
    let trace: TraceBuffer
    let cell: SnapshotCell
    let qsbr: QuiescentState
    let slot: QuiescentState.Slot
    let stop: StopFlag
    /// BFD frames to and from the protection thread (`PacketRing.swift`), and what wakes it.
    let channel: WorkerChannel
    let controlWake: WakeEvent
    /// Learn records to the learner thread (MAC learning).
    let learnRing: LearnRing

    init(index: Int, cpu: Int?, umem: UnsafeMutablePointer<mg_umem>, sockets: [UnsafeMutablePointer<mg_xsk>],
         fillSize: UInt32, inflightCap: UInt32, waitMode: WaitMode, entryCapacity: Int, cell: SnapshotCell,
         qsbr: QuiescentState, stop: StopFlag, trace: TraceBuffer, portLive: UnsafeMutablePointer<UInt8>,
         channel: WorkerChannel, controlWake: WakeEvent, learnRing: LearnRing, learnedTables: UnsafeMutablePointer<UInt>) {
        self.index = index; self.cpu = cpu; self.umem = umem
        area = umem.pointee.area
        chunkMask = UInt64(umem.pointee.chunk_size) - 1
        portCount = sockets.count
        self.sockets = .allocate(capacity: portCount)
        self.sockets.initialize(from: sockets, count: portCount)
        self.fillSize = fillSize; self.inflightCap = inflightCap; self.waitMode = waitMode
        dataInflightCap = inflightCap > 32 ? inflightCap - 8 : inflightCap
        isCopyMode = sockets.contains { $0.pointee.zerocopy == 0 }
        let frames = Int(umem.pointee.frame_count)
        pool = .allocate(capacity: frames)
        for i in 0..<frames { pool[i] = UInt64(i) * UInt64(umem.pointee.chunk_size) }
        poolCount = frames
        inflight = .allocate(capacity: portCount); inflight.initialize(repeating: 0, count: portCount)
        pending = .allocate(capacity: portCount); pending.initialize(repeating: 0, count: portCount)
        kickOwed = .allocate(capacity: portCount); kickOwed.initialize(repeating: false, count: portCount)
        self.portLive = portLive
        wasLive = .allocate(capacity: portCount); wasLive.initialize(repeating: 1, count: portCount)
        kickAfter = .allocate(capacity: portCount); kickAfter.initialize(repeating: 0, count: portCount)
        touched = .allocate(capacity: portCount); touched.initialize(repeating: 0, count: portCount)
        // One fd per port, then the channel's wake-up.
        pollFDs = .allocate(capacity: portCount + 1)
        for (i, s) in sockets.enumerated() { pollFDs[i] = pollfd(fd: s.pointee.fd, events: Int16(POLLIN), revents: 0) }
        pollFDs[portCount] = pollfd(fd: channel.wake.fd, events: Int16(POLLIN), revents: 0)
        self.channel = channel
        self.controlWake = controlWake
        counters = WorkerCounters.allocate(entryCapacity: entryCapacity)
        io = .allocate(capacity: portCount); io.initialize(repeating: XSKCounters(), count: portCount)
        loop = .allocate(capacity: 1); loop.initialize(to: WorkerLoopCounters())
        batch = .allocate(capacity: Worker.batchSize)
        traceScratch = .allocate(byteCount: Worker.batchSize * TraceBuffer.headBytes, alignment: 64)
        traceLengths = .allocate(capacity: Worker.batchSize)
        self.trace = trace
        self.cell = cell; self.qsbr = qsbr; slot = qsbr.slots[index]; self.stop = stop
        self.learnRing = learnRing
        counters.learn.pointee.tables = learnedTables
    }

    deinit {
        sockets.deallocate(); pool.deallocate(); inflight.deallocate(); pending.deallocate(); kickOwed.deallocate()
        wasLive.deallocate(); kickAfter.deallocate()
        touched.deallocate(); pollFDs.deallocate(); counters.deallocate(); io.deallocate(); loop.deallocate()
        batch.deallocate(); traceScratch.deallocate(); traceLengths.deallocate(); floodLimiter.release()
    }

    /// Gives every port's fill ring its first frames. Called before the program is attached.
    func primeFillRings() {
        for p in 0..<portCount { refill(p, want: fillSize) }
    }

    /// The worker loop; returns when the stop flag is set.
    public func run() {
        if let cpu { _ = mg_pin_current_thread(Int32(cpu)) }
        qsbr.online(slot)
        while !stop.isSet {
            loop.pointee.loops &+= 1
            // BFD frames the protection thread asked this worker to send (one acquire load when there are none).
            if !channel.outgoing.isEmpty { sendControl() }
            // The pointer only: the snapshot struct is copied per received batch, not per spin of an idle loop.
            let fib = cell.load()
            var received = 0
            var owed = false
            for p in 0..<portCount {
                reapCompletions(p)
                received &+= receive(p, fib: fib)
                let live = portLive[p]
                if live != wasLive[p] { portChanged(p, live: live) }
                if kickOwed[p] && live != 0 && (kickAfter[p] == 0 || kickable(p)) { kick(p) }
                // A port resting after ENETDOWN does not keep the worker awake.
                owed = owed || (kickOwed[p] && live != 0 && kickAfter[p] == 0)
            }
            qsbr.quiescent(slot)
            if received == 0 && !owed { idle() }
        }
        qsbr.offline(slot)
    }

    @inline(__always)
    func idle() {
        switch waitMode {
        case .busy:
            for p in 0..<portCount where mg_fill_needs_wakeup(sockets[p]) != 0 {
                io[p].rxWakeups &+= 1
                _ = mg_recvfrom_empty(sockets[p].pointee.fd)
            }
        case .poll:
            qsbr.offline(slot)
            loop.pointee.polls &+= 1
            let n = poll(pollFDs, nfds_t(portCount + 1), channel.pollTimeoutMs.load(ordering: .relaxed))
            if n > 0 {
                loop.pointee.pollWakeups &+= 1
                if pollFDs[portCount].revents != 0 { channel.wake.drain() }
            }
            qsbr.online(slot)
        }
    }

    /// One RX batch of port `p` through the pipeline and out. Returns the frames received.
    @inline(__always)
    func receive(_ p: Int, fib: UnsafeMutablePointer<FIBSnapshot>) -> Int {
        let s = sockets[p]
        var idx: UInt32 = 0
        let n = Int(mg_rx_peek(s, UInt32(Worker.batchSize), &idx))
        if n == 0 { return 0 }
        let port = PortID(UInt16(truncatingIfNeeded: p))
        for i in 0..<n {
            var len: UInt32 = 0
            let addr = mg_rx_addr(s, idx &+ UInt32(truncatingIfNeeded: i), &len)
            let base = addr & ~chunkMask
            batch[i] = Frame(buffer: area + Int(base), offset: Int32(truncatingIfNeeded: addr &- base),
                             length: Int32(truncatingIfNeeded: len), ingress: port)
        }
        mg_rx_release(s, UInt32(truncatingIfNeeded: n))
        io[p].rxPackets &+= UInt64(n)
        io[p].rxBatches &+= 1

        // The batch's second, for learned MACs' refreshes (one vDSO clock read per received batch, not per idle spin).
        counters.learn.pointee.nowSeconds = LearnerThread.seconds()
        let tracing = trace.isArmed
        if tracing { keepHeads(n) }
        Pipeline.process(UnsafeMutableBufferPointer(start: batch.baseAddress, count: n), fib: fib.pointee,
                         counters: counters)
        if tracing { record(n) }

        var touchedCount = 0
        var punted = false
        for i in 0..<n {
            let f = batch[i]
            let base = UInt64(UInt(bitPattern: f.buffer - area))
            guard f.isForwarded else {
                if f.drop == .control { punted = punt(f) || punted }
                if f.drop == .flood { flood(f, fib: fib, touchedCount: &touchedCount) }
                release(base)
                continue
            }
            if !enqueue(f, base: base, touchedCount: &touchedCount) { release(base) }
        }
        let learn = counters.learn
        if learn.pointee.count > 0 { postLearnRecords(learn) }
        for t in 0..<touchedCount {
            let e = touched[t]
            let k = pending[e]
            mg_tx_submit(sockets[e], k)
            inflight[e] &+= k
            io[e].txPackets &+= UInt64(k)
            io[e].txBatches &+= 1
            pending[e] = 0
            kick(e)
        }
        refill(p, want: fillSize)
        if punted { controlWake.signal() }
        return n
    }

    /// Hands the batch's learn records to the learner thread; a full ring drops them (counted per VNI).
    @inline(never)
    func postLearnRecords(_ learn: UnsafeMutablePointer<LearnContext>) {
        for j in 0..<Int(learn.pointee.count) {
            let r = learn.pointee.records[j]
            if !learnRing.push(r) { counters.segments[Int(r.slot)].learnDropped &+= 1 }
        }
        learn.pointee.count = 0
    }

    /// Puts a forwarded frame on its egress port's TX ring (sent at the end of the batch); false when the port has
    /// no room (counted), and the caller keeps the frame.
    @inline(__always)
    func enqueue(_ f: Frame, base: UInt64, touchedCount: inout Int) -> Bool {
        let e = Int(f.egress.rawValue)
        if inflight[e] &+ pending[e] >= dataInflightCap { io[e].txInflightCap &+= 1; return false }
        let out = sockets[e]
        var tx: UInt32 = 0
        if mg_tx_reserve(out, 1, &tx) == 0 { io[e].txRingFull &+= 1; return false }
        mg_tx_set(out, tx, base &+ UInt64(UInt32(bitPattern: f.offset)), UInt32(bitPattern: f.length))
        if pending[e] == 0 { touched[touchedCount] = e; touchedCount &+= 1 }
        pending[e] &+= 1
        return true
    }

    /// Replicates a flooded frame of a multipoint VNI: within its VNI's BUM rate, one copy per place across the
    /// split horizon, each in a frame of this worker's pool (copied behind the headroom, then rewritten), onto
    /// its egress port's TX ring. A copy that finds no frame or ring slot is counted (noFrame) and skipped; the
    /// original is never written.
    @inline(never)
    func flood(_ f: Frame, fib: UnsafeMutablePointer<FIBSnapshot>, touchedCount: inout Int) {
        guard let plan = Replication.plan(f, fib: fib.pointee) else { return }
        let seg = counters.segments + plan.slot
        seg.pointee.flooded &+= 1
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC_COARSE, &t)
        if !floodLimiter.admit(plan, nowNs: UInt64(t.tv_sec) &* 1_000_000_000 &+ UInt64(t.tv_nsec)) {
            seg.pointee.rateLimited &+= 1
            counters.drops[Int(DropReason.bumRateLimited.rawValue)] &+= 1
            counters.ports[Int(f.ingress.rawValue)].dropPackets &+= 1
            return
        }
        let length = Int(f.length)
        if length > Int(chunkMask) + 1 - 2 * Frame.headroom { seg.pointee.noFrame &+= UInt64(plan.count); return }
        for i in 0..<plan.count {
            if poolCount == 0 { seg.pointee.noFrame &+= 1; continue }
            poolCount &-= 1
            let base = pool[poolCount]
            let buffer = area + Int(base)
            (buffer + Frame.headroom).copyMemory(from: f.buffer + Int(f.offset), byteCount: length)
            var c = Frame(buffer: buffer, offset: Int32(Frame.headroom), length: f.length, ingress: f.ingress)
            Pipeline.replicate(&c, place: plan.place(i), fib: fib.pointee, counters: counters)
            if !c.isForwarded { release(base); continue }
            if enqueue(c, base: base, touchedCount: &touchedCount) {
                seg.pointee.copies &+= 1
            } else {
                seg.pointee.noFrame &+= 1
                release(base)
            }
        }
    }

    /// Hands a BFD frame to the protection thread (a copy: the frame goes back to the pool).
    @inline(never)
    func punt(_ f: Frame) -> Bool {
        let p = Int(f.ingress.rawValue)
        if channel.punted.push(port: p, bytes: f.buffer + Int(f.offset), count: Int(f.length)) {
            io[p].controlRx &+= 1
            return true
        }
        io[p].controlRxDropped &+= 1
        return false
    }

    /// Sends the BFD frames the protection thread queued: each copied into a frame of the pool behind the
    /// headroom, onto the port's TX ring (this worker is its only producer), and kicked.
    @inline(never)
    func sendControl() {
        while channel.outgoing.pop({ p, bytes in sendControlFrame(p, bytes) }) {}
    }

    private func sendControlFrame(_ p: Int, _ bytes: UnsafeRawBufferPointer) {
        guard p < portCount else { return }
        reapCompletions(p)
        guard portLive[p] != 0, poolCount > 0, inflight[p] < inflightCap,
              bytes.count <= Int(chunkMask) + 1 - Frame.headroom else {
            io[p].controlTxDropped &+= 1
            return
        }
        let s = sockets[p]
        var tx: UInt32 = 0
        if mg_tx_reserve(s, 1, &tx) == 0 { io[p].controlTxDropped &+= 1; return }
        poolCount &-= 1
        let addr = pool[poolCount] &+ UInt64(Frame.headroom)
        (area + Int(addr)).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
        mg_tx_set(s, tx, addr, UInt32(bytes.count))
        mg_tx_submit(s, 1)
        inflight[p] &+= 1
        io[p].controlTx &+= 1
        kick(p)
    }

    /// Copies each frame's first bytes before the pipeline rewrites them (only while a trace is armed).
    @inline(never)
    func keepHeads(_ n: Int) {
        for i in 0..<n {
            let f = batch[i]
            let len = min(Int(f.length), TraceBuffer.headBytes)
            (traceScratch + i * TraceBuffer.headBytes).copyMemory(from: f.buffer + Int(f.offset), byteCount: len)
            traceLengths[i] = f.length
        }
    }

    @inline(never)
    func record(_ n: Int) {
        let take = trace.claim(n)
        guard take > 0 else { return }
        var out: [TraceRecord] = []
        out.reserveCapacity(take)
        for i in 0..<take {
            let f = batch[i]
            let inLen = Int(traceLengths[i])
            let headIn = Array(UnsafeRawBufferPointer(start: traceScratch + i * TraceBuffer.headBytes,
                                                      count: min(inLen, TraceBuffer.headBytes)))
            let outLen = f.isForwarded ? Int(f.length) : 0
            let headOut = f.isForwarded ? Array(UnsafeRawBufferPointer(start: f.buffer + Int(f.offset),
                                                                        count: min(outLen, TraceBuffer.headBytes))) : []
            out.append(TraceRecord(worker: index, ingress: Int(f.ingress.rawValue), lengthIn: inLen, headIn: headIn,
                                   egress: f.isForwarded ? Int(f.egress.rawValue) : nil, drop: f.drop,
                                   lengthOut: outLen, headOut: headOut))
        }
        trace.add(out)
    }

    @inline(__always)
    func release(_ base: UInt64) {
        pool[poolCount] = base
        poolCount &+= 1
    }

    /// Tops up port `p`'s fill ring from the pool, in whole batches.
    @inline(__always)
    func refill(_ p: Int, want: UInt32) {
        let s = sockets[p]
        let room = Int(mg_fill_free(s, want))
        var give = min(room, poolCount)
        give -= give % Worker.batchSize
        if give == 0 {
            if room >= Worker.batchSize { io[p].fillPoolEmpty &+= 1 }
            return
        }
        var idx: UInt32 = 0
        guard mg_fill_reserve(s, UInt32(give), &idx) == UInt32(give) else { return }
        for i in 0..<give {
            poolCount &-= 1
            mg_fill_set(s, idx &+ UInt32(truncatingIfNeeded: i), pool[poolCount])
        }
        mg_fill_submit(s, UInt32(give))
        io[p].filled &+= UInt64(give)
    }

    @inline(__always)
    func reapCompletions(_ p: Int) {
        guard inflight[p] > 0 else { return }
        let s = sockets[p]
        var idx: UInt32 = 0
        let n = mg_comp_peek(s, inflight[p], &idx)
        if n == 0 { return }
        for i in 0..<n { release(mg_comp_addr(s, idx &+ i) & ~chunkMask) }
        mg_comp_release(s, n)
        inflight[p] &-= n
        io[p].completions &+= UInt64(n)
    }

    /// Whether a port the kernel reported down may be kicked again (the wait is over).
    @inline(never)
    func kickable(_ p: Int) -> Bool {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        if UInt64(t.tv_sec) &* 1_000_000_000 &+ UInt64(t.tv_nsec) < kickAfter[p] { return false }
        kickAfter[p] = 0
        return true
    }

    /// A port went down or came back: count the frames it holds that cannot be withdrawn.
    @inline(never)
    func portChanged(_ p: Int, live: UInt8) {
        wasLive[p] = live
        if live == 0 { io[p].txStranded &+= UInt64(inflight[p] &+ pending[p]) }
    }

    /// Asks the kernel to send what is on port `p`'s TX ring. Copy mode sends inside sendto, a budget of frames
    /// per call: repeat while it says "again", a few times; what is left is owed to the next loop.
    @inline(__always)
    func kick(_ p: Int) {
        let s = sockets[p]
        kickOwed[p] = false
        if !isCopyMode && mg_tx_needs_wakeup(s) == 0 { return }
        var tries = 0
        while tries < 4 {
            tries &+= 1
            io[p].sendtoCalls &+= 1
            let rc = mg_sendto_empty(s.pointee.fd)
            if rc == 0 { return }
            if rc == -EAGAIN || rc == -EBUSY || rc == -ENOBUFS {
                io[p].sendtoRetry &+= 1
                reapCompletions(p)
                continue
            }
            if rc == -ENETDOWN {
                // The device went down before the protection thread's store reached us: the frames stay on the
                // ring; wait 5 ms instead of kicking every loop.
                io[p].sendtoPortDown &+= 1
                var t = timespec()
                clock_gettime(CLOCK_MONOTONIC, &t)
                kickAfter[p] = UInt64(t.tv_sec) &* 1_000_000_000 &+ UInt64(t.tv_nsec) &+ 5_000_000
                break
            }
            io[p].sendtoErrors &+= 1
            break
        }
        kickOwed[p] = true
    }
}
