#if canImport(Glibc)
import Glibc
#endif

/// A streaming pcapng reader (draft-ietf-opsawg-pcapng): Section Header, Interface Description (with if_name and
/// if_tsresol) and Enhanced/Simple Packet Blocks; other blocks are skipped. Handles either byte order per section.
/// Like `PcapBlockReader`, it reads the file 4 MiB at a time (`FileBlocks`) and parses blocks where they lie.
///
/// Interfaces get a file-wide index (`interfaceName(_:)`), counted across sections, so a frame carries a number,
/// not a string to hash.
final class PcapNGReader {
    private let file: FileBlocks
    private var path: String { file.path }
    private var swapped = false
    /// The current section's interfaces: file-wide index, link type, timestamp divisor to microseconds.
    private var section: [(index: Int, linkType: UInt16, tsDivisor: Int64)] = []
    /// Every interface's name, by file-wide index.
    private(set) var names: [String?] = []
    private(set) var position: Int64 = 0

    /// Largest block accepted (a frame of 256 KiB plus headers); larger ones are a format error.
    static let maxBlock = 300 * 1024

    init(path: String) throws(CaptureError) {
        file = try FileBlocks(path: path)
    }

    @inline(__always) private func u32(_ o: Int) -> UInt32 {
        let v = file.buffer.loadUnaligned(fromByteOffset: file.start + o, as: UInt32.self)
        return swapped ? v.byteSwapped : v
    }

    @inline(__always) private func u16(_ o: Int) -> UInt16 {
        let v = file.buffer.loadUnaligned(fromByteOffset: file.start + o, as: UInt16.self)
        return swapped ? v.byteSwapped : v
    }

    @inline(__always) private func byte(_ o: Int) -> UInt8 { file.buffer.load(fromByteOffset: file.start + o, as: UInt8.self) }

    /// Makes the next whole block available at `start`; returns (type, total length), nil at the end of the file.
    private func nextBlock() throws(CaptureError) -> (UInt32, Int)? {
        guard try file.fill(8) else {
            if file.available > 0 { throw CaptureError("\(path): truncated block header at byte \(position)", kind: .truncated) }
            return nil
        }
        var type = file.buffer.loadUnaligned(fromByteOffset: file.start, as: UInt32.self)
        if type == 0x0A0D_0D0A {
            // Section header: the byte-order magic follows the length; read it to learn the order.
            guard try file.fill(12) else { throw CaptureError("\(path): truncated section header", kind: .truncated) }
            let magic = file.buffer.loadUnaligned(fromByteOffset: file.start + 8, as: UInt32.self)
            swapped = magic == 0x4D3C_2B1A
            guard swapped || magic == 0x1A2B_3C4D else { throw CaptureError("\(path): bad byte-order magic", kind: .badMagic) }
            section.removeAll()
        } else if swapped {
            type = type.byteSwapped
        }
        let total = Int(u32(4))
        guard total >= 12, total % 4 == 0, total <= PcapNGReader.maxBlock else {
            throw CaptureError("\(path): bad block length \(total) at byte \(position)", kind: .badLength)
        }
        guard try file.fill(total) else { throw CaptureError("\(path): truncated block at byte \(position)", kind: .truncated) }
        return (type, total)
    }

    /// The name (if_name) of the interface with file-wide index `index`.
    func interfaceName(_ index: Int) -> String? { index >= 0 && index < names.count ? names[index] : nil }

    func next(into destination: UnsafeMutableRawPointer, capacity limit: Int) throws(CaptureError) -> CapturedFrame? {
        while let (type, total) = try nextBlock() {
            defer { file.start += total; position += Int64(total) }
            switch type {
            case 0x0000_0001:  // Interface Description Block
                guard total >= 20 else { throw CaptureError("\(path): interface block of \(total) bytes at byte \(position)", kind: .blockTooShort) }
                let linkType = u16(8)
                var name: String?
                var tsDivisor: Int64 = 1  // microseconds by default (if_tsresol 6)
                var o = 16
                while o + 4 <= total - 4 {
                    let code = u16(o), len = Int(u16(o + 2))
                    if code == 0 || o + 4 + len > total - 4 { break }
                    if code == 2 {  // if_name
                        let bytes = UnsafeRawBufferPointer(start: file.buffer + file.start + o + 4, count: len)
                        name = String(decoding: bytes.prefix(while: { $0 != 0 }), as: UTF8.self)
                    } else if code == 9 && len >= 1 {  // if_tsresol
                        let r = byte(o + 4)
                        // Powers of ten up to 10^18 fit an Int64; finer resolutions are not real captures.
                        guard r & 0x80 != 0 || r <= 18 else {
                            throw CaptureError("\(path): interface timestamp resolution 10^-\(r) s is not supported", kind: .unsupported)
                        }
                        if r & 0x80 == 0 {
                            var units: Int64 = 1
                            for _ in 0..<Int(r) { units *= 10 }
                            tsDivisor = max(1, units / 1_000_000)
                        }
                    }
                    o += 4 + (len + 3) & ~3
                }
                section.append((names.count, linkType, tsDivisor))
                names.append(name)
            case 0x0000_0006:  // Enhanced Packet Block
                guard total >= 32 else { throw CaptureError("\(path): packet block of \(total) bytes at byte \(position)", kind: .blockTooShort) }
                let local = Int(u32(8))
                guard local < section.count else { throw CaptureError("\(path): packet names undefined interface \(local)", kind: .undefinedInterface) }
                let iface = section[local]
                guard iface.linkType == 1 else { throw CaptureError("\(path): interface \(local) is not Ethernet", kind: .linkType) }
                let ts = (Int64(u32(12)) << 32 | Int64(u32(16))) / iface.tsDivisor
                // The original length is at least the captured one (a smaller one is malformed).
                let caplen = Int(u32(20)), origlen = max(Int(u32(24)), Int(u32(20)))
                guard 28 + caplen <= total - 4 else { throw CaptureError("\(path): packet block overruns its length", kind: .overrun) }
                if caplen > limit {
                    return CapturedFrame(length: 0, originalLength: origlen, timestampMicros: ts, interface: iface.index,
                                         tooLarge: true)
                }
                destination.copyMemory(from: file.buffer + file.start + 28, byteCount: caplen)
                return CapturedFrame(length: caplen, originalLength: origlen, timestampMicros: ts, interface: iface.index,
                                     tooLarge: false)
            case 0x0000_0003:  // Simple Packet Block: interface 0, no timestamp
                guard total >= 16 else { throw CaptureError("\(path): packet block of \(total) bytes at byte \(position)", kind: .blockTooShort) }
                guard let iface = section.first else { throw CaptureError("\(path): packet before any interface", kind: .noInterface) }
                let origlen = Int(u32(8))
                let caplen = min(origlen, total - 16)
                if caplen > limit {
                    return CapturedFrame(length: 0, originalLength: origlen, timestampMicros: 0, interface: iface.index,
                                         tooLarge: true)
                }
                destination.copyMemory(from: file.buffer + file.start + 12, byteCount: caplen)
                return CapturedFrame(length: caplen, originalLength: origlen, timestampMicros: 0, interface: iface.index,
                                     tooLarge: false)
            default:
                continue
            }
        }
        return nil
    }
}
