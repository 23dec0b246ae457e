#if canImport(Glibc)
import Glibc
#endif
import Synchronization
internal import CControlSocket

/// The head and tail of a single-producer, single-consumer ring of `capacity` slots (a power of two): the producer
/// asks for a free slot, fills it and publishes it (release); the consumer takes the oldest and releases it. Held
/// inline by the rings (`PacketRing`, `LearnRing`), so an operation is two atomic loads and a store.
struct RingIndices: ~Copyable {
    let capacity: Int
    let mask: Int
    /// Next slot the consumer reads; written by the consumer only.
    private let head = Atomic<Int>(0)
    /// Next slot the producer writes; written by the producer only.
    private let tail = Atomic<Int>(0)

    init(capacity: Int) {
        precondition(capacity > 0 && capacity & (capacity - 1) == 0)
        self.capacity = capacity
        mask = capacity - 1
    }

    /// Producer: the slot to fill, or nil when the ring is full.
    @inline(__always) func freeSlot() -> Int? {
        let t = tail.load(ordering: .relaxed)
        return t &- head.load(ordering: .acquiring) >= capacity ? nil : t & mask
    }

    /// Producer: the slot `freeSlot` gave is filled.
    @inline(__always) func publish() { tail.store(tail.load(ordering: .relaxed) &+ 1, ordering: .releasing) }

    /// Consumer: the oldest filled slot, or nil when the ring is empty.
    @inline(__always) func oldestSlot() -> Int? {
        let h = head.load(ordering: .relaxed)
        return tail.load(ordering: .acquiring) == h ? nil : h & mask
    }

    /// Consumer: the slot `oldestSlot` gave is read.
    @inline(__always) func release() { head.store(head.load(ordering: .relaxed) &+ 1, ordering: .releasing) }

    /// Consumer: whether anything waits (one acquire load).
    @inline(__always) var isEmpty: Bool { tail.load(ordering: .acquiring) == head.load(ordering: .relaxed) }
}

/// A single-producer, single-consumer ring of small frames (at most `maxFrame` bytes) between a worker and the
/// protection thread: BFD frames the pipeline punted go one way, BFD frames to send the other (DESIGN §7: one TX
/// producer per AF_XDP ring, so other threads' packets go through the worker that owns it). A full ring refuses;
/// the producer counts the loss and never waits.
final class PacketRing: @unchecked Sendable {
    static let slotBytes = 256
    /// A slot holds its length and port (4 bytes) and the frame.
    static let maxFrame = slotBytes - 4

    private let indices: RingIndices
    private let storage: UnsafeMutableRawPointer

    init(capacity: Int = 256) {
        indices = RingIndices(capacity: capacity)
        storage = .allocate(byteCount: capacity * PacketRing.slotBytes, alignment: 64)
    }

    deinit { storage.deallocate() }

    /// Producer: copies a frame in; false when the ring is full or the frame too long.
    func push(port: Int, bytes: UnsafeRawPointer, count: Int) -> Bool {
        guard count <= PacketRing.maxFrame, let i = indices.freeSlot() else { return false }
        let slot = storage + i * PacketRing.slotBytes
        slot.storeBytes(of: UInt16(count), as: UInt16.self)
        slot.storeBytes(of: UInt16(truncatingIfNeeded: port), toByteOffset: 2, as: UInt16.self)
        (slot + 4).copyMemory(from: bytes, byteCount: count)
        indices.publish()
        return true
    }

    /// Producer: copies an array in.
    func push(port: Int, _ frame: [UInt8]) -> Bool {
        frame.withUnsafeBytes { push(port: port, bytes: $0.baseAddress!, count: $0.count) }
    }

    /// Consumer: whether anything waits (one acquire load; cheap enough for every worker loop).
    @inline(__always) var isEmpty: Bool { indices.isEmpty }

    /// Consumer: hands the oldest frame to `body` and frees its slot; false when the ring is empty.
    @inline(__always)
    func pop(_ body: (_ port: Int, _ frame: UnsafeRawBufferPointer) -> Void) -> Bool {
        guard let i = indices.oldestSlot() else { return false }
        let slot = storage + i * PacketRing.slotBytes
        let count = Int(slot.load(as: UInt16.self))
        let port = Int(slot.load(fromByteOffset: 2, as: UInt16.self))
        body(port, UnsafeRawBufferPointer(start: slot + 4, count: count))
        indices.release()
        return true
    }
}

/// An eventfd: a counter one thread bumps to wake another out of poll().
public final class WakeEvent: @unchecked Sendable {
    let fd: Int32
    init() throws(AgentError) {
        fd = mg_eventfd()
        guard fd >= 0 else { throw AgentError("eventfd: \(errnoText(errno))") }
    }
    deinit { close(fd) }
    func signal() { mg_eventfd_signal(fd) }
    func drain() { mg_eventfd_drain(fd) }
}

/// What passes between one worker and the protection thread: BFD frames the pipeline punted (`control`), BFD
/// frames for the worker to send on its TX rings, and the worker's wake-up and poll timeout.
public final class WorkerChannel: @unchecked Sendable {
    /// Worker → protection thread.
    let punted = PacketRing()
    /// Protection thread → worker.
    let outgoing = PacketRing()
    /// Wakes the worker out of poll() when something is on `outgoing`.
    let wake: WakeEvent
    /// The worker's poll() timeout (ms): the protection thread caps it at the smallest BFD transmit interval.
    let pollTimeoutMs = Atomic<Int32>(100)

    init() throws(AgentError) { wake = try WakeEvent() }
}
