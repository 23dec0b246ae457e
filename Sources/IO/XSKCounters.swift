/// AF_XDP ring events of one port in one worker. Single writer (the worker); read by the control side.
@frozen
public struct XSKCounters: Sendable {
    /// Frames taken from the RX ring.
    public var rxPackets: UInt64 = 0
    /// Non-empty RX batches (rxPackets / rxBatches is the mean batch size).
    public var rxBatches: UInt64 = 0
    /// Frames put on the TX ring.
    public var txPackets: UInt64 = 0
    /// TX batches submitted (a batch is the frames of one RX batch that leave by this port).
    public var txBatches: UInt64 = 0
    /// Frames dropped because this port's TX ring was full.
    public var txRingFull: UInt64 = 0
    /// Frames dropped because this port already had the maximum frames in flight (a stuck port's cap).
    public var txInflightCap: UInt64 = 0
    /// sendto() calls that kicked TX (copy mode sends inside them).
    public var sendtoCalls: UInt64 = 0
    /// sendto() that returned EAGAIN/EBUSY/ENOBUFS (the kernel sends the rest at the next kick).
    public var sendtoRetry: UInt64 = 0
    /// sendto() that failed otherwise (e.g. ENETDOWN, ENXIO); frames stay on the ring.
    public var sendtoErrors: UInt64 = 0
    /// Frames returned on the completion ring.
    public var completions: UInt64 = 0
    /// Frames given to the fill ring.
    public var filled: UInt64 = 0
    /// Times the fill ring had room but the worker's frame pool had no whole batch to give.
    public var fillPoolEmpty: UInt64 = 0
    /// recvfrom() wake-ups of RX because the fill ring asked for one (need_wakeup, busy-poll mode).
    public var rxWakeups: UInt64 = 0
    /// Frames on the TX ring (or awaiting completion) when the port went down: AF_XDP cannot take them back; the
    /// kernel sends or completes them once the port is up again.
    public var txStranded: UInt64 = 0
    /// sendto() that found the device down (ENETDOWN) before the protection thread said so: the frames stay on the
    /// ring, and the port is not kicked again for a few milliseconds.
    public var sendtoPortDown: UInt64 = 0
    /// BFD frames received on this port and handed to the protection thread.
    public var controlRx: UInt64 = 0
    /// BFD frames received but not handed on (the protection thread's ring was full, or the frame too long).
    public var controlRxDropped: UInt64 = 0
    /// BFD frames the protection thread asked for and put on this port's TX ring.
    public var controlTx: UInt64 = 0
    /// BFD frames not sent: the port was down, or no frame, ring slot or in-flight room was free.
    public var controlTxDropped: UInt64 = 0
    public init() {}

    public static func += (a: inout XSKCounters, b: XSKCounters) {
        a.rxPackets &+= b.rxPackets; a.rxBatches &+= b.rxBatches; a.txPackets &+= b.txPackets
        a.txBatches &+= b.txBatches; a.txRingFull &+= b.txRingFull; a.txInflightCap &+= b.txInflightCap
        a.sendtoCalls &+= b.sendtoCalls; a.sendtoRetry &+= b.sendtoRetry; a.sendtoErrors &+= b.sendtoErrors
        a.completions &+= b.completions; a.filled &+= b.filled; a.fillPoolEmpty &+= b.fillPoolEmpty
        a.rxWakeups &+= b.rxWakeups; a.txStranded &+= b.txStranded; a.sendtoPortDown &+= b.sendtoPortDown
        a.controlRx &+= b.controlRx; a.controlRxDropped &+= b.controlRxDropped; a.controlTx &+= b.controlTx
        a.controlTxDropped &+= b.controlTxDropped
    }
}

/// One worker's own loop counters.
@frozen
public struct WorkerLoopCounters: Sendable {
    /// Loop iterations.
    public var loops: UInt64 = 0
    /// poll() calls made because a loop found nothing to do (poll mode).
    public var polls: UInt64 = 0
    /// poll() calls that returned with a ready socket.
    public var pollWakeups: UInt64 = 0
    public init() {}
}
