/// The timers a session is configured with (RFC 5880 §6.8.1's bfd.DesiredMinTxInterval, bfd.RequiredMinRxInterval
/// and bfd.DetectMult).
public struct BFDTimers: Equatable, Sendable {
    public var desiredMinTxUs: UInt32
    public var requiredMinRxUs: UInt32
    public var multiplier: UInt8
    public init(desiredMinTxUs: UInt32 = 300_000, requiredMinRxUs: UInt32 = 300_000, multiplier: UInt8 = 3) {
        self.desiredMinTxUs = desiredMinTxUs; self.requiredMinRxUs = requiredMinRxUs; self.multiplier = multiplier
    }
}

/// One BFD session's state machine (RFC 5880 §6.2, §6.8): asynchronous mode, no demand, no echo, no
/// authentication. Time is CLOCK_MONOTONIC nanoseconds passed in by the caller; nothing here reads a clock or does
/// I/O, so tests drive it step by step.
///
/// - While not Up the session advertises a desired TX interval of at least 1 s (§6.8.3); once Up it moves to its
///   configured timers with a Poll Sequence, as it does for any timer change while Up. A larger TX interval or a
///   smaller RX interval takes effect only when the Final arrives; the others at once.
/// - A received Poll is answered with a Final at once (§6.8.7: without respect to the transmit timer).
/// - Periodic packets are jittered to 75–100 % of the interval (75–90 % with a detect multiplier of 1).
public struct BFDSession: Sendable {
    /// Why the state changed.
    public struct Transition: Sendable, Equatable {
        public var from: BFDState
        public var to: BFDState
        /// The local diagnostic after the change.
        public var diagnostic: BFDDiagnostic
        /// The peer said AdminDown: not a path failure (RFC 5882 §3.2).
        public var byRemoteAdminDown: Bool
    }

    public let localDiscriminator: UInt32
    public private(set) var timers: BFDTimers
    public private(set) var state = BFDState.down
    public private(set) var remoteState = BFDState.down
    public private(set) var remoteDiscriminator: UInt32 = 0
    public private(set) var diagnostic = BFDDiagnostic.none
    public private(set) var remoteDiagnostic = BFDDiagnostic.none
    /// bfd.RemoteMinRxInterval: 1 until the peer says otherwise; 0 means "send nothing".
    public private(set) var remoteMinRxUs: UInt32 = 1
    public private(set) var remoteDesiredMinTxUs: UInt32 = 0
    public private(set) var remoteMultiplier: UInt8 = 0
    /// What our packets advertise (bfd.DesiredMinTxInterval / bfd.RequiredMinRxInterval).
    public private(set) var advertisedTxUs: UInt32
    public private(set) var advertisedRxUs: UInt32
    /// What our own timers use while a Poll Sequence is pending.
    public private(set) var effectiveTxUs: UInt32
    public private(set) var effectiveRxUs: UInt32
    public private(set) var polling = false
    private var finalOwed = false
    /// Whether the last Down came from the peer's AdminDown.
    public private(set) var downByRemoteAdminDown = false
    public private(set) var hasBeenUp = false
    public private(set) var nextTxAt: UInt64
    /// When the detection time runs out without a packet; nil when nothing is being detected.
    public private(set) var detectAt: UInt64?
    private var random: UInt64

    // Counters.
    public private(set) var packetsIn: UInt64 = 0
    public private(set) var packetsOut: UInt64 = 0
    public private(set) var ups: UInt64 = 0
    public private(set) var downs: UInt64 = 0
    public private(set) var pollsCompleted: UInt64 = 0
    public private(set) var lastChangeNs: UInt64
    private var lastRxNs: UInt64 = 0

    public init(localDiscriminator: UInt32, timers: BFDTimers, now: UInt64, seed: UInt64 = 0x9E37_79B9_7F4A_7C15) {
        precondition(localDiscriminator != 0, "a local discriminator is never 0")
        self.localDiscriminator = localDiscriminator
        self.timers = timers
        advertisedTxUs = max(timers.desiredMinTxUs, 1_000_000)
        advertisedRxUs = timers.requiredMinRxUs
        effectiveTxUs = advertisedTxUs
        effectiveRxUs = advertisedRxUs
        random = seed ^ UInt64(localDiscriminator) &* 0x2545_F491_4F6C_DD1D
        if random == 0 { random = 1 }
        nextTxAt = now
        lastChangeNs = now
    }

    /// The transmit interval now (µs): the larger of ours and what the peer can receive (§6.8.7).
    public var transmitIntervalUs: UInt32 { max(effectiveTxUs, remoteMinRxUs) }

    /// The detection time now (µs, asynchronous mode, §6.8.4): the peer's multiplier times the larger of our
    /// required RX and the peer's desired TX. 0 before the peer has been heard.
    public var detectionTimeUs: UInt64 {
        remoteMultiplier == 0 ? 0 : UInt64(remoteMultiplier) * UInt64(max(effectiveRxUs, remoteDesiredMinTxUs))
    }

    /// The earliest time the session needs the caller again.
    public var nextDeadline: UInt64 {
        var t = finalOwed ? 0 : nextTxAt
        if let d = detectAt { t = min(t, d) }
        return t
    }

    /// A packet received for this session (already checked by `BFDControlPacket.decode` and demultiplexed).
    public mutating func receive(_ p: BFDControlPacket, now: UInt64) -> Transition? {
        packetsIn &+= 1
        lastRxNs = now
        remoteDiscriminator = p.myDiscriminator
        remoteState = p.state
        remoteDiagnostic = p.diagnostic
        let oldMinRx = remoteMinRxUs
        remoteMinRxUs = p.requiredMinRxUs
        remoteDesiredMinTxUs = p.desiredMinTxUs
        remoteMultiplier = p.detectMultiplier
        if p.final && polling {
            polling = false
            pollsCompleted &+= 1
            effectiveTxUs = advertisedTxUs
            effectiveRxUs = advertisedRxUs
        }
        if p.poll { finalOwed = true }
        // A shorter interval allowed by the peer is used from the next packet on, not after the old one.
        if remoteMinRxUs != oldMinRx && remoteMinRxUs != 0 {
            let soonest = now &+ UInt64(jittered(transmitIntervalUs)) &* 1000
            if soonest < nextTxAt { nextTxAt = soonest }
        }
        if detectionTimeUs > 0 { detectAt = now &+ detectionTimeUs &* 1000 }

        if state == .adminDown { return nil }
        if p.state == .adminDown {
            // Only a session that was Up is "down by the peer's choice" (RFC 5882 §3.2); from Init the path was never
            // proven.
            if state != .down {
                return change(to: .down, diagnostic: .neighborSignaledSessionDown, now: now, admin: state == .up)
            }
            return nil
        }
        switch state {
        case .down:
            if p.state == .down { return change(to: .initializing, diagnostic: diagnostic, now: now) }
            if p.state == .initializing { return change(to: .up, diagnostic: .none, now: now) }
        case .initializing:
            if p.state == .initializing || p.state == .up { return change(to: .up, diagnostic: .none, now: now) }
        case .up:
            if p.state == .down { return change(to: .down, diagnostic: .neighborSignaledSessionDown, now: now) }
        case .adminDown:
            break
        }
        return nil
    }

    /// Checks the detection timer; past it, an Init or Up session goes Down (diagnostic 1) and the peer is
    /// forgotten (§6.8.1, §6.8.4).
    public mutating func expire(now: UInt64) -> Transition? {
        guard let d = detectAt, now >= d else { return nil }
        detectAt = nil
        // The peer is forgotten (§6.8.1); `remoteState` keeps what it last said.
        remoteDiscriminator = 0
        remoteMinRxUs = 1
        remoteDesiredMinTxUs = 0
        remoteMultiplier = 0
        if state == .initializing || state == .up {
            return change(to: .down, diagnostic: .controlDetectionTimeExpired, now: now)
        }
        return nil
    }

    /// The packet to send now, if one is due: a Final owed to the peer's Poll, or the periodic packet. Schedules
    /// the next periodic one.
    public mutating func packetDue(now: UInt64) -> BFDControlPacket? {
        let periodic = now >= nextTxAt
        guard periodic || finalOwed else { return nil }
        if periodic {
            nextTxAt = now &+ UInt64(jittered(transmitIntervalUs)) &* 1000
        }
        // §6.8.7: nothing is sent while the peer asks for no packets (RemoteMinRxInterval 0).
        if remoteMinRxUs == 0 && !finalOwed { return nil }
        var p = packet()
        if finalOwed {
            p.final = true
            p.poll = false
            finalOwed = false
        }
        packetsOut &+= 1
        return p
    }

    /// Changes the configured timers. While Up this starts a Poll Sequence (§6.8.3).
    public mutating func reconfigure(_ t: BFDTimers, now: UInt64) {
        guard t != timers else { return }
        timers = t
        advertise(tx: state == .up ? t.desiredMinTxUs : max(t.desiredMinTxUs, 1_000_000), rx: t.requiredMinRxUs, now: now)
    }

    /// Takes the session out of service by configuration (RFC 5880 §6.8.16): AdminDown with diagnostic 7, still
    /// sent at the slow rate so the peer learns it was on purpose, not a failure.
    public mutating func disable(now: UInt64) {
        guard state != .adminDown else { return }
        _ = change(to: .down, diagnostic: .administrativelyDown, now: now)
        state = .adminDown
        detectAt = nil
    }

    /// Back in service after `disable`: Down, starting over.
    public mutating func enable(now: UInt64) {
        guard state == .adminDown else { return }
        state = .down
        diagnostic = .none
        lastChangeNs = now
    }

    /// The last word before the forwarding plane stops (SIGTERM): state Down with diagnostic 4 (Forwarding Plane
    /// Reset), never AdminDown, so the peer treats it as the failure it is (RFC 5882 §3.2).
    public mutating func goodbye(now: UInt64) -> BFDControlPacket {
        if state != .down { _ = change(to: .down, diagnostic: .forwardingPlaneReset, now: now) }
        diagnostic = .forwardingPlaneReset
        var p = packet()
        p.poll = false
        packetsOut &+= 1
        return p
    }

    // MARK: private

    private func packet() -> BFDControlPacket {
        var p = BFDControlPacket()
        p.diagnostic = diagnostic
        p.state = state
        p.poll = polling
        p.controlPlaneIndependent = true
        p.detectMultiplier = timers.multiplier
        p.myDiscriminator = localDiscriminator
        p.yourDiscriminator = remoteDiscriminator
        p.desiredMinTxUs = advertisedTxUs
        p.requiredMinRxUs = advertisedRxUs
        p.requiredMinEchoRxUs = 0
        return p
    }

    private mutating func change(to new: BFDState, diagnostic d: BFDDiagnostic, now: UInt64, admin: Bool = false) -> Transition {
        let old = state
        state = new
        diagnostic = d
        lastChangeNs = now
        if new == .up {
            ups &+= 1
            hasBeenUp = true
            downByRemoteAdminDown = false
            // Up: move to the configured timers by a Poll Sequence.
            advertise(tx: timers.desiredMinTxUs, rx: timers.requiredMinRxUs, now: now)
        } else if new == .down {
            if old == .up { downs &+= 1 }
            downByRemoteAdminDown = admin
            // Not Up: at least 1 s between packets (§6.8.3); no Poll Sequence outside Up.
            polling = false
            advertisedTxUs = max(timers.desiredMinTxUs, 1_000_000)
            advertisedRxUs = timers.requiredMinRxUs
            effectiveTxUs = advertisedTxUs
            effectiveRxUs = advertisedRxUs
        }
        return Transition(from: old, to: new, diagnostic: d, byRemoteAdminDown: admin)
    }

    private mutating func advertise(tx: UInt32, rx: UInt32, now: UInt64) {
        guard tx != advertisedTxUs || rx != advertisedRxUs else { return }
        advertisedTxUs = tx
        advertisedRxUs = rx
        if state == .up {
            // Safe at once: sending faster, or detecting more slowly. The rest waits for the Final.
            if tx < effectiveTxUs { effectiveTxUs = tx }
            if rx > effectiveRxUs {
                effectiveRxUs = rx
                // The longer detection time counts from the last packet, not from the next one.
                if detectAt != nil, detectionTimeUs > 0 { detectAt = max(detectAt!, lastRxNs &+ detectionTimeUs &* 1000) }
            }
            polling = true
            // The Poll goes out with the next packet, brought forward to the (possibly shorter) interval.
            let soonest = now &+ UInt64(jittered(transmitIntervalUs)) &* 1000
            if soonest < nextTxAt { nextTxAt = soonest }
        } else {
            effectiveTxUs = tx
            effectiveRxUs = rx
        }
    }

    /// 75–100 % of `us` (75–90 % when the multiplier is 1), §6.8.7.
    private mutating func jittered(_ us: UInt32) -> UInt32 {
        random ^= random << 13; random ^= random >> 7; random ^= random << 17
        let span: UInt64 = timers.multiplier == 1 ? 15 : 25
        let percent = 75 + random % (span + 1)
        return UInt32(UInt64(us) * percent / 100)
    }
}
