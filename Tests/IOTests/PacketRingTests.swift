@testable import IO
import Testing

/// The worker ↔ protection-thread ring: frames in order with their port, a full ring or a too-long frame refused
/// (never overwritten), and wrap-around.
@Suite struct PacketRingTests {
    @Test func fifoWithPortsFullAndWrap() {
        let ring = PacketRing(capacity: 4)
        #expect(ring.isEmpty)
        for round in 0..<3 {
            for i in 0..<4 { #expect(ring.push(port: i, [UInt8](repeating: UInt8(round * 10 + i), count: 10 + i))) }
            #expect(!ring.push(port: 9, [1, 2, 3]), "a full ring refuses")
            for i in 0..<4 {
                var seen: (Int, [UInt8]) = (-1, [])
                #expect(ring.pop { p, b in seen = (p, Array(b)) })
                #expect(seen.0 == i && seen.1 == [UInt8](repeating: UInt8(round * 10 + i), count: 10 + i))
            }
            #expect(!ring.pop { _, _ in } && ring.isEmpty)
        }
        #expect(!ring.push(port: 0, [UInt8](repeating: 0, count: PacketRing.maxFrame + 1)), "too long")
        #expect(ring.push(port: 0, [UInt8](repeating: 7, count: PacketRing.maxFrame)))
    }
}
