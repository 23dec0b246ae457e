import Testing
import BFD
import Wire

/// Two sessions wired back to back on a simulated clock (ms steps): every packet one sends the other receives,
/// unless the link is cut.
struct Pair {
    var a: BFDSession
    var b: BFDSession
    var now: UInt64 = 1_000_000_000
    var cut = false
    var transitions: [(String, BFDSession.Transition)] = []
    var sentA: [BFDControlPacket] = []
    var sentB: [BFDControlPacket] = []

    init(a ta: BFDTimers, b tb: BFDTimers) {
        a = BFDSession(localDiscriminator: 11, timers: ta, now: now, seed: 1)
        b = BFDSession(localDiscriminator: 22, timers: tb, now: now, seed: 2)
    }

    mutating func run(ms: Int) {
        for _ in 0..<ms {
            now += 1_000_000
            if let t = a.expire(now: now) { transitions.append(("a", t)) }
            if let t = b.expire(now: now) { transitions.append(("b", t)) }
            while let p = a.packetDue(now: now) {
                sentA.append(p)
                if !cut, let t = b.receive(p, now: now) { transitions.append(("b", t)) }
            }
            while let p = b.packetDue(now: now) {
                sentB.append(p)
                if !cut, let t = a.receive(p, now: now) { transitions.append(("a", t)) }
            }
        }
    }
}

let fast = BFDTimers(desiredMinTxUs: 100_000, requiredMinRxUs: 100_000, multiplier: 3)

@Suite struct BFDSessionTests {
    @Test func threeWayHandshakeThenPollToConfiguredTimers() {
        var p = Pair(a: fast, b: fast)
        p.run(ms: 3000)
        #expect(p.a.state == .up && p.b.state == .up)
        // Each side went Down → Init → Up or Down → Up: never through AdminDown, never down again.
        #expect(p.transitions.allSatisfy { $0.1.to != .down })
        // Slow start: every packet before Up advertised ≥ 1 s (RFC 5880 §6.8.3).
        let beforeUp = p.sentA.prefix { $0.state != .up }
        #expect(!beforeUp.isEmpty && beforeUp.allSatisfy { $0.desiredMinTxUs >= 1_000_000 })
        // A Poll with the new timers was answered by a Final, and both now run at 100 ms.
        #expect(p.sentA.contains { $0.poll && $0.desiredMinTxUs == 100_000 })
        #expect(p.sentB.contains { $0.final })
        #expect(p.a.pollsCompleted >= 1 && !p.a.polling && !p.b.polling)
        #expect(p.a.transmitIntervalUs == 100_000 && p.a.detectionTimeUs == 300_000)
        // Jittered periodic packets: the gaps over the last second lie in 75–100 ms.
        let before = p.sentA.count
        p.run(ms: 1000)
        let sent = p.sentA.count - before
        #expect(sent >= 10 && sent <= 14)
    }

    @Test func silenceIsDetectedWithinTheDetectionTime() {
        var p = Pair(a: fast, b: fast)
        p.run(ms: 4000)
        #expect(p.a.state == .up)
        p.transitions.removeAll()
        p.cut = true
        var downAt = 0
        for ms in 1...1000 {
            p.run(ms: 1)
            if p.a.state == .down { downAt = ms; break }
        }
        // 3 × 100 ms after the last packet heard: at most 300 ms after the cut, at least 3 × 75 ms.
        #expect(downAt > 200 && downAt <= 300)
        #expect(p.a.diagnostic == .controlDetectionTimeExpired)
        #expect(p.transitions.first?.1.byRemoteAdminDown == false)
        // Down again: back to the 1 s slow rate, peer forgotten.
        #expect(p.a.advertisedTxUs == 1_000_000 && p.a.remoteDiscriminator == 0)
        // The link heals: up again.
        p.cut = false
        p.run(ms: 4000)
        #expect(p.a.state == .up && p.b.state == .up && p.a.ups == 2)
    }

    @Test func peerAdminDownIsNotAPathFailure() {
        var p = Pair(a: fast, b: fast)
        p.run(ms: 4000)
        var admin = BFDControlPacket()
        admin.state = .adminDown
        admin.diagnostic = .administrativelyDown
        admin.myDiscriminator = 22
        admin.yourDiscriminator = 11
        admin.desiredMinTxUs = 1_000_000
        admin.requiredMinRxUs = 1_000_000
        let t = p.a.receive(admin, now: p.now)
        #expect(t?.to == .down && t?.diagnostic == .neighborSignaledSessionDown && t?.byRemoteAdminDown == true)
        #expect(p.a.downByRemoteAdminDown)
    }

    @Test func goodbyeSaysDownWithForwardingPlaneReset() {
        var p = Pair(a: fast, b: fast)
        p.run(ms: 4000)
        let bye = p.a.goodbye(now: p.now)
        #expect(bye.state == .down && bye.diagnostic == .forwardingPlaneReset && bye.yourDiscriminator == 22)
        let t = p.b.receive(bye, now: p.now)
        #expect(t?.to == .down && t?.diagnostic == .neighborSignaledSessionDown && t?.byRemoteAdminDown == false)
        #expect(p.b.remoteDiagnostic == .forwardingPlaneReset)
    }

    @Test func pollIsAnsweredAtOnceWithFinal() {
        var s = BFDSession(localDiscriminator: 5, timers: fast, now: 0, seed: 3)
        _ = s.packetDue(now: 0)
        var p = BFDControlPacket()
        p.state = .down
        p.myDiscriminator = 9
        p.poll = true
        _ = s.receive(p, now: 1_000)
        let reply = s.packetDue(now: 2_000)
        #expect(reply?.final == true && reply?.poll == false && reply?.state == .initializing)
        #expect(s.packetDue(now: 3_000) == nil)
    }

    @Test func timerChangeWhileUpWaitsForFinalBeforeSlowingDown() {
        var p = Pair(a: fast, b: fast)
        p.run(ms: 4000)
        p.cut = true
        p.a.reconfigure(BFDTimers(desiredMinTxUs: 500_000, requiredMinRxUs: 500_000, multiplier: 3), now: p.now)
        // A larger TX interval and RX interval: TX waits for the Final, detection grows at once.
        #expect(p.a.polling && p.a.effectiveTxUs == 100_000 && p.a.effectiveRxUs == 500_000)
        p.cut = false
        p.run(ms: 1000)
        #expect(!p.a.polling && p.a.effectiveTxUs == 500_000 && p.b.state == .up)
        #expect(p.b.detectionTimeUs == 1_500_000)
    }

    @Test func peerAskingForNothingGetsNothing() {
        var s = BFDSession(localDiscriminator: 5, timers: fast, now: 0, seed: 3)
        var p = BFDControlPacket()
        p.state = .down
        p.myDiscriminator = 9
        p.requiredMinRxUs = 0
        _ = s.receive(p, now: 0)
        #expect(s.packetDue(now: 2_000_000_000) == nil)
    }
}

@Suite struct BFDPacketTests {
    @Test func encodesTheRFCLayout() {
        var p = BFDControlPacket()
        p.diagnostic = .forwardingPlaneReset
        p.state = .up
        p.poll = true
        p.controlPlaneIndependent = true
        p.detectMultiplier = 3
        p.myDiscriminator = 0x0102_0304
        p.yourDiscriminator = 0x0A0B_0C0D
        p.desiredMinTxUs = 100_000
        p.requiredMinRxUs = 300_000
        // Version 1 | diag 4 = 0x24; state Up (3 << 6) | P 0x20 | C 0x08 = 0xE8; mult 3; length 24.
        #expect(p.bytes == [0x24, 0xE8, 3, 24, 1, 2, 3, 4, 0x0A, 0x0B, 0x0C, 0x0D, 0x00, 0x01, 0x86, 0xA0,
                            0x00, 0x04, 0x93, 0xE0, 0, 0, 0, 0])
        #expect((try? BFDControlPacket.decode(p.bytes[...]).get()) == p)
    }

    @Test func rejectsWhatSection6_8_6Discards() {
        var good = BFDControlPacket()
        good.myDiscriminator = 1
        let bytes = good.bytes
        func reject(_ change: (inout [UInt8]) -> Void) -> BFDControlPacket.Reject? {
            var b = bytes
            change(&b)
            if case .failure(let r) = BFDControlPacket.decode(b[...]) { return r }
            return nil
        }
        #expect(reject { _ in } == nil)
        #expect(reject { $0.removeLast() } == .tooShort)
        #expect(reject { $0[0] = 2 << 5 } == .badVersion)
        #expect(reject { $0[3] = 23 } == .badLength)
        #expect(reject { $0[3] = 30 } == .badLength)
        #expect(reject { $0[1] |= 0x04 } == .authenticationNotConfigured)
        #expect(reject { $0[2] = 0 } == .zeroDetectMultiplier)
        #expect(reject { $0[1] |= 0x01 } == .multipoint)
        #expect(reject { $0[7] = 0 } == .zeroMyDiscriminator)
        #expect(reject { $0[1] = BFDState.up.rawValue << 6 } == .zeroYourDiscriminatorNotDown)
    }
}

@Suite struct BFDFrameTests {
    func path(_ local: String, _ peer: String, vlan: UInt16? = nil) -> BFDPath {
        BFDPath(sourceMAC: MACAddress("02:00:00:00:00:01")!, destinationMAC: MACAddress("02:00:00:00:00:02")!,
                vlan: vlan, local: IPAddress(local)!, peer: IPAddress(peer)!, sourcePort: 49152)
    }

    @Test func ipv4RoundTrip() throws {
        var p = BFDControlPacket()
        p.myDiscriminator = 7
        let f = BFDFrame.build(p, path: path("10.1.0.1", "10.1.0.2"))
        #expect(f.count == 14 + 20 + 8 + 24)
        #expect(f[12] == 0x08 && f[13] == 0x00 && f[14 + 8] == 255 && f[14 + 1] == 0xC0)
        let r = try BFDFrame.parse(f).get()
        #expect(r.source == IPAddress("10.1.0.1") && r.destination == IPAddress("10.1.0.2") && r.ttl == 255)
        #expect(r.sourcePort == 49152 && Array(r.payload) == p.bytes)
        // A flipped payload bit breaks the UDP checksum; a flipped header bit the IP checksum.
        var bad = f
        bad[bad.count - 1] ^= 1
        if case .failure(let r) = BFDFrame.parse(bad) { #expect(r == .badChecksum) } else { Issue.record("accepted") }
        bad = f
        bad[14 + 8] = 254
        if case .failure(let r) = BFDFrame.parse(bad) { #expect(r == .badChecksum) } else { Issue.record("accepted") }
    }

    @Test func ipv6LinkLocalWithVLAN() throws {
        var p = BFDControlPacket()
        p.myDiscriminator = 7
        let f = BFDFrame.build(p, path: path("fe80::1", "fe80::2", vlan: 100))
        #expect(f.count == 18 + 40 + 8 + 24)
        #expect(f[12] == 0x81 && f[16] == 0x86 && f[17] == 0xDD && f[18 + 7] == 255)
        let r = try BFDFrame.parse(f).get()
        #expect(r.source == IPAddress("fe80::1") && r.destination == IPAddress("fe80::2") && r.ttl == 255)
        #expect(Array(r.payload) == p.bytes)
        for cut in [f.count - 1, 60, 20, 10] {
            if case .success = BFDFrame.parse(Array(f.prefix(cut))) { Issue.record("accepted a frame cut at \(cut)") }
        }
    }
}

@Suite struct BFDSessionLifecycleTests {
    /// RFC 5882 §3.2 covers a session that was Up: AdminDown during Init proves nothing, so it is a plain Down.
    @Test func adminDownBeforeUpIsNotExempt() {
        var s = BFDSession(localDiscriminator: 5, timers: fast, now: 0, seed: 3)
        var p = BFDControlPacket()
        p.state = .down
        p.myDiscriminator = 9
        #expect(s.receive(p, now: 1_000)?.to == .initializing)
        p.state = .adminDown
        p.yourDiscriminator = 5
        let t = s.receive(p, now: 2_000)
        #expect(t?.to == .down && t?.byRemoteAdminDown == false && !s.downByRemoteAdminDown)
    }

    /// Taken out of service: AdminDown, diagnostic 7, still sent (slowly); back in service: Down, starting over.
    @Test func disableSaysAdminDownAndEnableStartsOver() {
        var pair = Pair(a: fast, b: fast)
        pair.run(ms: 4000)
        pair.a.disable(now: pair.now)
        let p = pair.a.packetDue(now: pair.now + 2_000_000_000)
        #expect(p?.state == .adminDown && p?.diagnostic == .administrativelyDown)
        let t = pair.b.receive(p!, now: pair.now)
        #expect(t?.to == .down && t?.byRemoteAdminDown == true)
        pair.a.enable(now: pair.now)
        #expect(pair.a.state == .down)
        pair.run(ms: 4000)
        #expect(pair.a.state == .up && pair.b.state == .up)
    }
}
