#if canImport(Glibc)
import Glibc
#endif

/// A capture file read in large blocks with read(2), for readers that parse records where they lie: the unconsumed
/// bytes are `buffer[start..<end]`; `fill(n)` makes `n` of them available (moving the rest to the front and reading
/// more, growing the buffer for a record larger than a block).
final class FileBlocks {
    /// Bytes read per read(2) call.
    static let blockSize = 1 << 22

    let path: String
    private let fd: Int32
    /// The file's size at open, to tell a record cut by the end of the file from a skipped one.
    private let fileSize: Int64
    private(set) var buffer: UnsafeMutableRawPointer
    private var capacity = FileBlocks.blockSize
    /// The first unconsumed byte; readers advance it past what they parsed.
    var start = 0
    /// One past the last byte read.
    private(set) var end = 0
    private var atEOF = false

    init(path: String) throws(CaptureError) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw CaptureError("\(path): \(String(cString: strerror(errno)))") }
        var st = stat()
        fileSize = fstat(fd, &st) == 0 ? Int64(st.st_size) : Int64.max
        self.fd = fd
        self.path = path
        buffer = .allocate(byteCount: capacity, alignment: 4096)
        _ = posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL)
    }

    deinit {
        buffer.deallocate()
        close(fd)
    }

    /// Unconsumed bytes in the buffer.
    var available: Int { end - start }

    /// Makes at least `n` unconsumed bytes available; false at the end of the file before that.
    func fill(_ n: Int) throws(CaptureError) -> Bool {
        if end - start >= n { return true }
        if n > capacity {
            let bigger = UnsafeMutableRawPointer.allocate(byteCount: n, alignment: 4096)
            bigger.copyMemory(from: buffer + start, byteCount: end - start)
            buffer.deallocate()
            buffer = bigger
            capacity = n
        } else if start > 0 {
            buffer.copyMemory(from: buffer + start, byteCount: end - start)
        }
        end -= start
        start = 0
        while end < n && !atEOF {
            let got = read(fd, buffer + end, capacity - end)
            if got > 0 { end += got; continue }
            if got == 0 { atEOF = true; break }
            if errno == EINTR { continue }
            throw CaptureError("\(path): \(String(cString: strerror(errno)))")
        }
        return end - start >= n
    }

    /// Consumes `n` bytes, the buffered ones and the rest with lseek; a skip past the end of the file is a
    /// truncation.
    func skip(_ n: Int) throws(CaptureError) {
        let buffered = min(n, end - start)
        start += buffered
        guard n > buffered else { return }
        let offset = lseek(fd, off_t(n - buffered), SEEK_CUR)
        guard offset >= 0 else { throw CaptureError("\(path): \(String(cString: strerror(errno)))") }
        guard Int64(offset) <= fileSize else {
            throw CaptureError("\(path): truncated: the last record ends \(Int64(offset) - fileSize) bytes after the file", kind: .truncated)
        }
    }
}
