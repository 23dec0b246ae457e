#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import Dataplane
import FIB

/// A single-producer, single-consumer ring of learn records from one worker to the learner thread. A full ring
/// refuses (the worker counts `learnDropped` and the next frame from that source posts again); nobody waits.
final class LearnRing: @unchecked Sendable {
    private let indices: RingIndices
    private let storage: UnsafeMutablePointer<LearnRecord>

    init(capacity: Int = 4096) {
        indices = RingIndices(capacity: capacity)
        storage = .allocate(capacity: capacity)
    }

    deinit { storage.deallocate() }

    /// Producer.
    @inline(__always)
    func push(_ r: LearnRecord) -> Bool {
        guard let i = indices.freeSlot() else { return false }
        storage[i] = r
        indices.publish()
        return true
    }

    /// Consumer: the oldest record, or nil.
    @inline(__always)
    func pop() -> LearnRecord? {
        guard let i = indices.oldestSlot() else { return nil }
        let r = storage[i]
        indices.release()
        return r
    }
}

/// The learner thread (MAC learning, docs/deployment.md): drains the workers' learn rings into the `MACLearner`,
/// the learned tables' only writer, ages entries once a second, and frees replaced tables after a grace period
/// of the workers' quiescent states. The control thread reads and flushes through the same lock; workers never
/// take it.
public final class LearnerThread: @unchecked Sendable {
    public let root = LearnedRoot()
    private let learner: MACLearner
    private let lock = Mutex<Void>(())
    let rings: [LearnRing]
    private let qsbr: QuiescentState
    private let stopFlag = StopFlag()
    private var thread: NativeThread?
    /// Records applied (the control thread picks up events on its next tick, within 100 ms).
    public let applied = Atomic<UInt64>(0)

    public init(workers: Int, capacity: Int, qsbr: QuiescentState) {
        learner = MACLearner(root: root, capacity: capacity)
        rings = (0..<workers).map { _ in LearnRing() }
        self.qsbr = qsbr
    }

    /// CLOCK_MONOTONIC seconds: the clock the workers stamp their batches with.
    @inline(__always)
    static func seconds() -> UInt32 {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return UInt32(truncatingIfNeeded: t.tv_sec)
    }

    public func start() throws(AgentError) {
        thread = try NativeThread(name: "mplsgate-learn") { [self] in run() }
    }

    public func stop() {
        stopFlag.set()
        thread?.join()
        thread = nil
        lock.withLock { _ in learner.releaseAll() }
    }

    private func run() {
        var lastRecords: UInt32 = 0
        while !stopFlag.isSet {
            let now = LearnerThread.seconds()
            var n = 0
            var retired: [UnsafeMutableRawPointer] = []
            var learning = false
            lock.withLock { _ in
                learning = learner.learns
                if now != learner.lastSweep { learner.sweep(now: now) }
                // At most 64k records per pass, so the control thread's reads never wait long.
                for r in rings {
                    while n < 65_536, let rec = r.pop() { learner.apply(rec, now: now); n += 1 }
                }
                retired = learner.retired
                learner.retired = []
            }
            if n > 0 { applied.add(UInt64(n), ordering: .relaxed) }
            if !retired.isEmpty {
                // No worker can still read a replaced table once each has passed a batch boundary.
                qsbr.synchronize { usleep(50) }
                for t in retired { LearnedTable.free(t) }
            }
            // Idle: 1 ms while records came in the last second, else 4 ms (both well inside the 10 ms a new source may
            // take to be learned); 20 ms while no multipoint VNI learns (no worker posts anything then).
            if n > 0 { lastRecords = now } else {
                usleep(!learning ? 20_000 : now &- lastRecords <= 1 ? 1000 : 4000)
            }
        }
    }

    /// What a worker does at the end of a batch, for harnesses without workers (the learning benchmark): false when
    /// worker `worker`'s ring is full.
    public func post(_ r: LearnRecord, worker: Int) -> Bool { rings[worker].push(r) }

    // MARK: the control thread's side

    /// The FIB's multipoint VNIs, all of them (`FIBEngine.learningSegments`).
    public func configure(_ segments: [LearningSegment]) {
        lock.withLock { _ in learner.configure(segments) }
    }

    /// Some of them changed (`FIBEngine.takeSegmentChanges`).
    public func update(changed: [LearningSegment], removedSlots: [UInt32]) {
        lock.withLock { _ in learner.update(changed: changed, removedSlots: removedSlots) }
    }

    public func entries(vni: UInt32) -> [LearnedMAC] {
        lock.withLock { _ in learner.entries(vni: vni, now: LearnerThread.seconds()) }
    }

    public func counters(vni: UInt32) -> LearnCounters? { lock.withLock { _ in learner.counters(vni: vni) } }

    public var total: Int { lock.withLock { _ in learner.total } }

    /// Learned MACs of `vni` now.
    public func count(vni: UInt32) -> Int { lock.withLock { _ in learner.count(vni: vni) } }

    @discardableResult
    public func flush(vni: UInt32, placeID: UInt64?, mac: UInt64?) -> Int {
        lock.withLock { _ in learner.flush(vni: vni, placeID: placeID, mac: mac) }
    }

    @discardableResult
    public func flush(placeID: UInt64) -> Int { lock.withLock { _ in learner.flush(placeID: placeID) } }

    /// Moves and duplicates since the last call.
    public func takeEvents() -> [LearnEvent] {
        lock.withLock { _ in
            let e = learner.events
            learner.events = []
            return e
        }
    }
}
