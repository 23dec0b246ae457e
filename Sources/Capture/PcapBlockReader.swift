#if canImport(Glibc)
import Glibc
#endif

/// Classic pcap read in large blocks with read(2) and parsed in place: one system call per 4 MiB and no
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
    /// Bytes read per read(2) call.
    static let blockSize = 1 << 22
    /// A record longer than this is taken for corruption (libpcap refuses far smaller ones).
    static let maxRecord = 1 << 24

    private let fd: Int32
    private let path: String
    private let swapped: Bool
    private let nanoseconds: Bool
    private var buffer: UnsafeMutableRawPointer
    private var capacity: Int
    /// Unconsumed bytes are buffer[start..<end].
    private var start = 0
    private var end = 0
    private var atEOF = false
    /// The file's size at open, to tell a record cut by the end of the file from a skipped one.
    private let fileSize: Int64
    /// Bytes of the file consumed so far.
    private(set) var position: Int64 = 24

    /// nil when the file is not a classic pcap this reader knows (libpcap then tries it).
    init?(path: String) throws(CaptureError) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw CaptureError("\(path): \(String(cString: strerror(errno)))") }
        var header = [UInt8](repeating: 0, count: 24)
        guard read(fd, &header, 24) == 24 else { close(fd); return nil }
        let magic = header.withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) }
        switch magic {
        case 0xA1B2_C3D4: swapped = false; nanoseconds = false
        case 0xD4C3_B2A1: swapped = true; nanoseconds = false
        case 0xA1B2_3C4D: swapped = false; nanoseconds = true
        case 0x4D3C_B2A1: swapped = true; nanoseconds = true
        default: close(fd); return nil
        }
        var linkType = header.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 20, as: UInt32.self) }
        if swapped { linkType = linkType.byteSwapped }
        // The top bits may carry FCS information (pcap-linktype(7)); the type is the low 16.
        guard linkType & 0xFFFF == 1 else {
            close(fd)
            throw CaptureError("\(path): link type \(linkType & 0xFFFF) is not Ethernet")
        }
        var st = stat()
        fileSize = fstat(fd, &st) == 0 ? Int64(st.st_size) : Int64.max
        self.fd = fd
        self.path = path
        capacity = PcapBlockReader.blockSize
        buffer = .allocate(byteCount: capacity, alignment: 4096)
        _ = posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL)
    }

    deinit {
        buffer.deallocate()
        close(fd)
    }

    @inline(__always) private func u32(_ o: Int) -> UInt32 {
        let v = buffer.loadUnaligned(fromByteOffset: o, as: UInt32.self)
        return swapped ? v.byteSwapped : v
    }

    /// Makes at least `n` unconsumed bytes available (growing the buffer for a record larger than it); false at the
    /// end of the file before that.
    private func fill(_ n: Int) throws(CaptureError) -> Bool {
        if end - start >= n { return true }
        if n > capacity {
            let bigger = UnsafeMutableRawPointer.allocate(byteCount: n, alignment: 4096)
            bigger.copyMemory(from: buffer + start, byteCount: end - start)
            buffer.deallocate()
            buffer = bigger
            end -= start
            start = 0
            capacity = n
        }
        if start > 0 {
            (buffer).copyMemory(from: buffer + start, byteCount: end - start)
            end -= start
            start = 0
        }
        while end < n && !atEOF {
            let got = read(fd, buffer + end, capacity - end)
            if got > 0 { end += got; continue }
            if got == 0 { atEOF = true; break }
            if errno == EINTR { continue }
            throw CaptureError("\(path): \(String(cString: strerror(errno)))")
        }
        return end - start >= n
    }

    /// Skips `n` bytes, partly buffered and the rest with lseek; a skip past the end of the file is a truncation.
    private func skip(_ n: Int) throws(CaptureError) {
        let buffered = min(n, end - start)
        start += buffered
        if n > buffered {
            let offset = lseek(fd, off_t(n - buffered), SEEK_CUR)
            guard offset >= 0 else { throw CaptureError("\(path): \(String(cString: strerror(errno)))") }
            guard Int64(offset) <= fileSize else {
                throw CaptureError("\(path): truncated: the last record ends \(Int64(offset) - fileSize) bytes after the file")
            }
        }
    }

    /// Copies the next frame into `into` (at most `capacity` bytes); nil at the end of the file.
    @inline(__always)
    func next(into destination: UnsafeMutableRawPointer, capacity limit: Int) throws(CaptureError) -> CapturedFrame? {
        guard try fill(16) else {
            if end > start { throw CaptureError("\(path): truncated: \(end - start) bytes after the last record") }
            return nil
        }
        let seconds = Int64(u32(start)), fraction = Int64(u32(start + 4))
        let caplen = Int(u32(start + 8)), origlen = Int(u32(start + 12))
        let ts = seconds * 1_000_000 + (nanoseconds ? fraction / 1000 : fraction)
        guard caplen <= PcapBlockReader.maxRecord else {
            throw CaptureError("\(path): record at byte \(position) claims \(caplen) bytes: not a valid capture")
        }
        if caplen > limit {
            // Counted as too long by the caller; its bytes are skipped, never copied.
            start += 16
            try skip(caplen)
            position += Int64(16 + caplen)
            return CapturedFrame(length: 0, originalLength: origlen, timestampMicros: ts, interface: -1, tooLarge: true)
        }
        guard try fill(16 + caplen) else {
            throw CaptureError("\(path): truncated: the last record has \(end - start - 16) of its \(caplen) bytes")
        }
        destination.copyMemory(from: buffer + start + 16, byteCount: caplen)
        start += 16 + caplen
        position += Int64(16 + caplen)
        return CapturedFrame(length: caplen, originalLength: origlen, timestampMicros: ts, interface: -1, tooLarge: false)
    }
}
