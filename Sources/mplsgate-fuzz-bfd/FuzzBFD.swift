#if canImport(Glibc)
import Glibc
#endif
import BFD
import Wire
import FuzzInputs

/// libFuzzer target for BFD as it faces the core links: any host there can send UDP to 3784. An input is a
/// sequence of records, each a 2-byte length, a 1-byte time step (ms) and that many bytes of a frame; a fresh session
/// (so every crash reproduces from its one file) takes each frame the way the protection thread does: parse the
/// frame, check TTL 255, decode the packet, receive it, then expire and send what is due. Invariants: a decoded packet
/// encodes back to itself; the session never sends before it may (a packet is due only after its deadline or as a
/// Final); its timers stay in the ranges the RFC allows.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzBFD(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    var session = BFDSession(localDiscriminator: 7, timers: BFDTimers(desiredMinTxUs: 100_000, requiredMinRxUs: 100_000, multiplier: 3),
                             now: 1_000_000_000, seed: 1)
    var now: UInt64 = 1_000_000_000
    var o = 0
    while o + 3 <= size {
        let length = Int(data[o]) << 8 | Int(data[o + 1])
        now &+= UInt64(data[o + 2]) * 1_000_000
        o += 3
        let frame = Array(UnsafeBufferPointer(start: data + o, count: min(length, size - o)))
        o += frame.count
        if case .success(let d) = BFDFrame.parse(frame), d.ttl == 255 {
            if case .success(let p) = BFDControlPacket.decode(d.payload) {
                let again = BFDControlPacket.decode(p.bytes[...])
                precondition((try? again.get()) == p, "a decoded packet does not encode back to itself")
                _ = session.receive(p, now: now)
            }
        } else if case .success(let p) = BFDControlPacket.decode(frame[...]) {
            _ = session.receive(p, now: now)
        }
        _ = session.expire(now: now)
        var sent = 0
        while let p = session.packetDue(now: now) {
            sent += 1
            precondition(sent <= 2, "more than a periodic packet and a Final at one instant")
            precondition(!(p.poll && p.final), "Poll and Final in one packet")
            precondition(p.state != .up || p.desiredMinTxUs == session.advertisedTxUs, "advertised what it does not use")
            _ = BFDFrame.build(p, path: BFDPath(sourceMAC: MACAddress(value: 2), destinationMAC: MACAddress(value: 3), vlan: nil,
                                                local: .v4(IPv4Address(value: 0x0A00_0001)),
                                                peer: .v4(IPv4Address(value: 0x0A00_0002)), sourcePort: 49152))
        }
        precondition(session.state != .up || session.advertisedTxUs == 100_000 || session.polling || session.advertisedTxUs >= 1_000_000,
                     "timers out of step")
        precondition(session.nextTxAt > now || session.remoteMinRxUs == 0, "a periodic packet left unscheduled")
    }
    return 0
}

#if !FUZZING
/// Without libFuzzer (a plain `swift build`): runs the inputs given as files.
@main
struct ReplayInputs {
    static func main() { FuzzInputs.replayArguments(fuzzBFD) }
}
#endif
