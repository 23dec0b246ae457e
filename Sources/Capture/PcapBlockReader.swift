#if canImport(Glibc)
import Glibc
#endif

/// Classic pcap read in large blocks (`FileBlocks`) and parsed in place: one system call per 4 MiB and no
/// per-packet library call (libpcap's `pcap_next_ex` costs a call, a stdio copy and its own buffer per frame).
/// Handles the standard formats: microsecond and nanosecond timestamps, either byte order. Other variants return nil
/// from `init` and are left to libpcap (`CaptureReader`).
///
/// File format (tcpdump's pcap-savefile(5)):
/// ```
/// header  magic(4) major(2) minor(2) thiszone(4) sigfigs(4) snaplen(4) linktype(4)        24 bytes
/// record  ts_sec(4) ts_usec_or_nsec(4) caplen(4) len(4) data(caplen)                      16 + caplen bytes
/// ```
final class PcapBlockReader {
    /// A record longer than this is taken for corruption (libpcap refuses far smaller ones).
    static let maxRecord = 1 << 24

    private let file: FileBlocks
    private let swapped: Bool
    private let nanoseconds: Bool
    /// Bytes of the file consumed so far.
    private(set) var position: Int64 = 24

    /// nil when the file is not a classic pcap this reader knows (libpcap then tries it).
    init?(path: String) throws(CaptureError) {
        let file = try FileBlocks(path: path)
        guard try file.fill(24) else { return nil }
        let header = file.buffer + file.start
        let magic = header.loadUnaligned(as: UInt32.self)
        switch magic {
        case 0xA1B2_C3D4: swapped = false; nanoseconds = false
        case 0xD4C3_B2A1: swapped = true; nanoseconds = false
        case 0xA1B2_3C4D: swapped = false; nanoseconds = true
        case 0x4D3C_B2A1: swapped = true; nanoseconds = true
        default: return nil
        }
        var linkType = header.loadUnaligned(fromByteOffset: 20, as: UInt32.self)
        if swapped { linkType = linkType.byteSwapped }
        // The top bits may carry FCS information (pcap-linktype(7)); the type is the low 16.
        guard linkType & 0xFFFF == 1 else { throw CaptureError("\(path): link type \(linkType & 0xFFFF) is not Ethernet", kind: .linkType) }
        file.start += 24
        self.file = file
    }

    @inline(__always) private func u32(_ o: Int) -> UInt32 {
        let v = file.buffer.loadUnaligned(fromByteOffset: file.start + o, as: UInt32.self)
        return swapped ? v.byteSwapped : v
    }

    /// Copies the next frame into `into` (at most `capacity` bytes); nil at the end of the file.
    @inline(__always)
    func next(into destination: UnsafeMutableRawPointer, capacity limit: Int) throws(CaptureError) -> CapturedFrame? {
        guard try file.fill(16) else {
            if file.available > 0 { throw CaptureError("\(file.path): truncated: \(file.available) bytes after the last record", kind: .truncated) }
            return nil
        }
        let seconds = Int64(u32(0)), fraction = Int64(u32(4))
        // A record claiming fewer original bytes than it holds is malformed; its original length is at least what it
        // holds (found by the capture fuzz target).
        let caplen = Int(u32(8)), origlen = max(Int(u32(12)), Int(u32(8)))
        let ts = seconds * 1_000_000 + (nanoseconds ? fraction / 1000 : fraction)
        guard caplen <= PcapBlockReader.maxRecord else {
            throw CaptureError("\(file.path): record at byte \(position) claims \(caplen) bytes: not a valid capture", kind: .badLength)
        }
        position += Int64(16 + caplen)
        if caplen > limit {
            // Counted as too long by the caller; its bytes are skipped, never copied.
            try file.skip(16 + caplen)
            return CapturedFrame(length: 0, originalLength: origlen, timestampMicros: ts, interface: -1, tooLarge: true)
        }
        guard try file.fill(16 + caplen) else {
            throw CaptureError("\(file.path): truncated: the last record has \(file.available - 16) of its \(caplen) bytes", kind: .truncated)
        }
        destination.copyMemory(from: file.buffer + file.start + 16, byteCount: caplen)
        file.start += 16 + caplen
        return CapturedFrame(length: caplen, originalLength: origlen, timestampMicros: ts, interface: -1, tooLarge: false)
    }
}
