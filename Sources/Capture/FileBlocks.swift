#if canImport(Glibc)
import Glibc
#endif

/// A capture file read in large blocks with read(2), for readers that parse records where they lie: the unconsumed
/// bytes are `buffer[start..<end]`; `fill(n)` makes `n` of them available (moving the rest to the front and reading
/// more, growing the buffer for a record larger than a block). A regular file smaller than a block gets a buffer of its
/// own size, and a buffer never grows past what the rest of the file can hold: a record header claiming megabytes in a
/// small file is a truncation, found without allocating for it.
final class FileBlocks {
    /// Bytes read per read(2) call.
    static let blockSize = 1 << 22

    /// The buffer for a file of `size` bytes (nil: not a regular file): a block, or the file rounded up to a page.
    static func initialCapacity(fileSize size: Int64?) -> Int {
        guard let size else { return blockSize }
        return Int(min(Int64(blockSize), max(4096, (size + 4095) & ~4095)))
    }

    let path: String
    private let fd: Int32
    /// The file's size at open, to tell a record cut by the end of the file from a skipped one.
    private let fileSize: Int64
    /// Whether `fileSize` bounds what reads can return (a regular file).
    private let sizeKnown: Bool
    /// The file offset of `buffer[end]`: bytes read or skipped so far.
    private var fileOffset: Int64 = 0
    private(set) var buffer: UnsafeMutableRawPointer
    private var capacity: Int
    /// The first unconsumed byte; readers advance it past what they parsed.
    var start = 0
    /// One past the last byte read.
    private(set) var end = 0
    private var atEOF = false

    init(path: String) throws(CaptureError) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw CaptureError("\(path): \(String(cString: strerror(errno)))") }
        var st = stat()
        let statted = fstat(fd, &st) == 0
        fileSize = statted ? Int64(st.st_size) : Int64.max
        sizeKnown = statted && (st.st_mode & S_IFMT) == S_IFREG
        self.fd = fd
        self.path = path
        capacity = FileBlocks.initialCapacity(fileSize: sizeKnown ? fileSize : nil)
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
        // A regular file cannot supply more than its remaining bytes: grow only to hold those.
        let wanted = sizeKnown ? min(n, end - start + Int(max(0, fileSize - fileOffset))) : n
        if wanted > capacity {
            let bigger = UnsafeMutableRawPointer.allocate(byteCount: wanted, alignment: 4096)
            bigger.copyMemory(from: buffer + start, byteCount: end - start)
            buffer.deallocate()
            buffer = bigger
            capacity = wanted
        } else if start > 0 {
            buffer.copyMemory(from: buffer + start, byteCount: end - start)
        }
        end -= start
        start = 0
        while end < n && !atEOF {
            let got = read(fd, buffer + end, capacity - end)
            if got > 0 { end += got; fileOffset += Int64(got); continue }
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
        fileOffset = Int64(offset)
        guard Int64(offset) <= fileSize else {
            throw CaptureError("\(path): truncated: the last record ends \(Int64(offset) - fileSize) bytes after the file", kind: .truncated)
        }
    }
}
