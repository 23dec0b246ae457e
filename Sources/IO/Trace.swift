import Dataplane
import FIB
import Synchronization

/// One traced packet: its first bytes as received and as sent, and the decision.
public struct TraceRecord: Sendable {
    public var worker: Int
    public var ingress: Int
    public var lengthIn: Int
    public var headIn: [UInt8]
    /// Egress port index, or nil when dropped.
    public var egress: Int?
    public var drop: DropReason
    public var lengthOut: Int
    public var headOut: [UInt8]
}

/// "Trace the next N packets": armed by the control thread, filled by the workers. A worker checks one relaxed
/// atomic per batch; only while a trace is armed does it copy headers and take the lock (tracing is a debugging
/// aid and may allocate; forwarding without a trace never does).
public final class TraceBuffer: @unchecked Sendable {
    /// Bytes of each packet kept (in and out).
    public static let headBytes = 128
    let remaining = Atomic<Int>(0)
    private let records = Mutex<[TraceRecord]>([])

    public init() {}

    public func arm(count: Int) { remaining.store(count, ordering: .releasing) }

    @inline(__always) public var isArmed: Bool { remaining.load(ordering: .relaxed) > 0 }

    /// Claims up to `n` record places; returns how many the caller may add.
    func claim(_ n: Int) -> Int {
        var have = remaining.load(ordering: .relaxed)
        while have > 0 {
            let take = min(have, n)
            let (done, now) = remaining.compareExchange(expected: have, desired: have - take, ordering: .acquiringAndReleasing)
            if done { return take }
            have = now
        }
        return 0
    }

    func add(_ r: [TraceRecord]) { records.withLock { $0 += r } }

    public func take() -> [TraceRecord] { records.withLock { let r = $0; $0 = []; return r } }
}
