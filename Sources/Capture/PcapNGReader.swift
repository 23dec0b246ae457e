#if canImport(Glibc)
import Glibc
#endif

/// A streaming pcapng reader (draft-ietf-opsawg-pcapng): Section Header, Interface Description (with if_name) and
/// Enhanced/Simple Packet Blocks; other blocks are skipped. Handles either byte order per section.
final class PcapNGReader {
    private let file: UnsafeMutablePointer<FILE>
    private let path: String
    private var swapped = false
    private var interfaces: [(name: String?, linkType: UInt16, tsDivisor: Int64)] = []
    private(set) var position: Int64 = 0
    private var block = [UInt8](repeating: 0, count: 1 << 16)

    /// Largest block accepted (a frame of 256 KiB plus headers); larger ones are a format error.
    static let maxBlock = 300 * 1024

    init(path: String) throws(CaptureError) {
        guard let f = fopen(path, "rb") else { throw CaptureError("\(path): \(String(cString: strerror(errno)))") }
        file = f
        self.path = path
    }

    deinit { fclose(file) }

    private func u32(_ o: Int) -> UInt32 {
        let v = block.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: o, as: UInt32.self) }
        return swapped ? v.byteSwapped : v
    }

    private func u16(_ o: Int) -> UInt16 {
        let v = block.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: o, as: UInt16.self) }
        return swapped ? v.byteSwapped : v
    }

    /// Reads one whole block into `block`; returns (type, total length), nil at end of file.
    private func readBlock() throws(CaptureError) -> (UInt32, Int)? {
        var head = [UInt8](repeating: 0, count: 8)
        let n = fread(&head, 1, 8, file)
        if n == 0 { return nil }
        guard n == 8 else { throw CaptureError("\(path): truncated block header at byte \(position)") }
        var type = head.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 0, as: UInt32.self) }
        if type == 0x0A0D_0D0A {
            // Section header: the byte-order magic follows the length; read it to learn the order.
            var magic: UInt32 = 0
            guard fread(&magic, 1, 4, file) == 4 else { throw CaptureError("\(path): truncated section header") }
            swapped = magic == 0x4D3C_2B1A
            guard swapped || magic == 0x1A2B_3C4D else { throw CaptureError("\(path): bad byte-order magic") }
            fseek(file, -4, SEEK_CUR)
            interfaces.removeAll()
        } else if swapped {
            type = type.byteSwapped
        }
        var total = Int(head.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 4, as: UInt32.self) })
        if swapped { total = Int(UInt32(total).byteSwapped) }
        guard total >= 12, total % 4 == 0, total <= PcapNGReader.maxBlock else {
            throw CaptureError("\(path): bad block length \(total) at byte \(position)")
        }
        if block.count < total { block = [UInt8](repeating: 0, count: total) }
        block[0..<8] = head[0..<8]
        let rest = total - 8
        let got = block.withUnsafeMutableBytes { fread($0.baseAddress! + 8, 1, rest, file) }
        guard got == rest else { throw CaptureError("\(path): truncated block at byte \(position)") }
        position += Int64(total)
        return (type, total)
    }

    func next(into buffer: UnsafeMutableRawPointer, capacity: Int) throws(CaptureError) -> CapturedFrame? {
        while let (type, total) = try readBlock() {
            switch type {
            case 0x0000_0001:  // Interface Description Block
                let linkType = u16(8)
                var name: String?
                var tsDivisor: Int64 = 1  // microseconds by default (if_tsresol 6)
                var o = 16
                while o + 4 <= total - 4 {
                    let code = u16(o), len = Int(u16(o + 2))
                    if code == 0 || o + 4 + len > total - 4 { break }
                    if code == 2 {  // if_name
                        name = String(decoding: block[(o + 4)..<(o + 4 + len)].prefix(while: { $0 != 0 }), as: UTF8.self)
                    } else if code == 9 && len >= 1 {  // if_tsresol
                        let r = block[o + 4]
                        if r & 0x80 == 0 {
                            var units: Int64 = 1
                            for _ in 0..<Int(r) { units *= 10 }
                            tsDivisor = max(1, units / 1_000_000)
                        }
                    }
                    o += 4 + (len + 3) & ~3
                }
                interfaces.append((name, linkType, tsDivisor))
            case 0x0000_0006:  // Enhanced Packet Block
                let ifIndex = Int(u32(8))
                guard ifIndex < interfaces.count else { throw CaptureError("\(path): packet names undefined interface \(ifIndex)") }
                let iface = interfaces[ifIndex]
                guard iface.linkType == 1 else { throw CaptureError("\(path): interface \(ifIndex) is not Ethernet") }
                let ts = (Int64(u32(12)) << 32 | Int64(u32(16))) / iface.tsDivisor
                let caplen = Int(u32(20)), origlen = Int(u32(24))
                guard 28 + caplen <= total - 4 else { throw CaptureError("\(path): packet block overruns its length") }
                if caplen > capacity {
                    return CapturedFrame(length: 0, originalLength: origlen, timestampMicros: ts, interfaceName: iface.name, tooLarge: true)
                }
                block.withUnsafeBytes { buffer.copyMemory(from: $0.baseAddress! + 28, byteCount: caplen) }
                return CapturedFrame(length: caplen, originalLength: origlen, timestampMicros: ts, interfaceName: iface.name, tooLarge: false)
            case 0x0000_0003:  // Simple Packet Block: interface 0, no timestamp
                guard let iface = interfaces.first else { throw CaptureError("\(path): packet before any interface") }
                let origlen = Int(u32(8))
                let caplen = min(origlen, total - 16)
                if caplen > capacity {
                    return CapturedFrame(length: 0, originalLength: origlen, timestampMicros: 0, interfaceName: iface.name, tooLarge: true)
                }
                block.withUnsafeBytes { buffer.copyMemory(from: $0.baseAddress! + 12, byteCount: caplen) }
                return CapturedFrame(length: caplen, originalLength: origlen, timestampMicros: 0, interfaceName: iface.name, tooLarge: false)
            default:
                continue
            }
        }
        return nil
    }
}
