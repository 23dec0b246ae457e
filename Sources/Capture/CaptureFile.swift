#if canImport(Glibc)
import Glibc
#endif
internal import CPcap

/// One captured frame as read from a file: its bytes are copied into the caller's buffer.
public struct CapturedFrame {
    /// Bytes copied into the buffer.
    public var length: Int
    /// Length on the wire when captured (may exceed `length` for a truncated capture).
    public var originalLength: Int
    /// Capture time in microseconds since the epoch.
    public var timestampMicros: Int64
    /// The pcapng interface the frame was captured on, as a file-wide index (`CaptureReader.interfaceName`); -1 for
    /// classic pcap.
    public var interface: Int
    /// True when the frame was larger than the buffer: nothing was copied.
    public var tooLarge: Bool
}

/// Errors opening or reading capture files, with the path in the message, and what kind of problem it is.
public struct CaptureError: Error, CustomStringConvertible {
    public enum Kind: String, CaseIterable, Sendable {
        case io                  // the file cannot be opened, read or written (errno)
        case notACapture         // too short to hold a magic number
        case libpcap             // libpcap refused a pcap variant it reads for us (its message), or an unknown magic
        case linkType            // not Ethernet
        case truncated           // the file ends inside a record or block
        case badLength           // a record or block length no capture has
        case badMagic            // a pcapng section's byte-order magic
        case blockTooShort       // a pcapng block shorter than its fixed fields
        case unsupported         // a pcapng timestamp resolution finer than 10^-18 s
        case undefinedInterface  // a pcapng packet naming an interface its section has not described
        case overrun             // a pcapng packet's data runs past its block
        case noInterface         // a pcapng simple packet before any interface
        case usage               // how the capture is used (classic pcap without --ingress)
    }
    public var description: String
    public var kind: Kind
    public init(_ d: String, kind: Kind = .io) { description = d; self.kind = kind }

    /// "PATH: MESSAGE", unless libpcap's message already starts with the path (its open errors do).
    static func naming(_ path: String, _ message: String) -> String {
        message.hasPrefix(path) ? message : "\(path): \(message)"
    }
}

/// Reads classic pcap (our block reader, `PcapBlockReader`; libpcap for the variants it does not know) and pcapng
/// (our own reader, because libpcap does not say which interface a pcapng frame came from). The format is chosen by
/// the file's magic number.
public final class CaptureReader {
    private enum Source {
        case block(PcapBlockReader)
        case pcap(OpaquePointer)
        case pcapng(PcapNGReader)
    }
    private let source: Source
    public let path: String
    /// File size, for progress.
    public let fileSize: Int64
    public let isPcapNG: Bool

    public init(path: String) throws(CaptureError) {
        self.path = path
        guard let f = fopen(path, "rb") else { throw CaptureError("\(path): \(String(cString: strerror(errno)))") }
        var magic: UInt32 = 0
        let n = fread(&magic, 1, 4, f)
        fseek(f, 0, SEEK_END)
        fileSize = Int64(ftell(f))
        fclose(f)
        guard n == 4 else { throw CaptureError("\(path): too short to be a capture file", kind: .notACapture) }
        if magic == 0x0A0D_0D0A {
            isPcapNG = true
            source = .pcapng(try PcapNGReader(path: path))
        } else if let b = try PcapBlockReader(path: path) {
            isPcapNG = false
            source = .block(b)
        } else {
            // Modified and other rare pcap variants: libpcap knows them.
            isPcapNG = false
            var err = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE))
            guard let p = pcap_open_offline(path, &err) else {
                throw CaptureError(CaptureError.naming(path, err.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }), kind: .libpcap)
            }
            let linkType = pcap_datalink(p)
            guard linkType == DLT_EN10MB else {
                // Read before pcap_close: the handle is freed there (a review found the message read it after).
                pcap_close(p)
                throw CaptureError("\(path): link type \(linkType) is not Ethernet", kind: .linkType)
            }
            source = .pcap(p)
        }
    }

    deinit {
        if case .pcap(let p) = source { pcap_close(p) }
    }

    /// The name (pcapng if_name) of the interface with this index, if the file gave one.
    public func interfaceName(_ index: Int) -> String? {
        if case .pcapng(let r) = source { return r.interfaceName(index) }
        return nil
    }

    /// Bytes consumed so far (approximate for pcap), for progress.
    public var position: Int64 {
        switch source {
        case .block(let b): return b.position
        case .pcap(let p): return Int64(ftell(pcap_file(p)))
        case .pcapng(let r): return r.position
        }
    }

    /// Reads the next frame into `buffer` (at most `capacity` bytes); nil at the end of the file.
    @inline(__always)
    public func next(into buffer: UnsafeMutableRawPointer, capacity: Int) throws(CaptureError) -> CapturedFrame? {
        switch source {
        case .block(let b):
            return try b.next(into: buffer, capacity: capacity)
        case .pcap(let p):
            var header: UnsafeMutablePointer<pcap_pkthdr>?
            var data: UnsafePointer<UInt8>?
            let rc = pcap_next_ex(p, &header, &data)
            if rc == -2 { return nil }
            if rc != 1 { throw CaptureError("\(path): \(String(cString: pcap_geterr(p)))", kind: .libpcap) }
            let h = header!.pointee
            let len = Int(h.caplen)
            let ts = Int64(h.ts.tv_sec) * 1_000_000 + Int64(h.ts.tv_usec)
            if len > capacity {
                return CapturedFrame(length: 0, originalLength: Int(h.len), timestampMicros: ts, interface: -1, tooLarge: true)
            }
            buffer.copyMemory(from: data!, byteCount: len)
            return CapturedFrame(length: len, originalLength: Int(h.len), timestampMicros: ts, interface: -1, tooLarge: false)
        case .pcapng(let r):
            return try r.next(into: buffer, capacity: capacity)
        }
    }
}

/// Writes classic pcap (microsecond timestamps, Ethernet, snaplen 262144: the bytes libpcap's `pcap_dump` writes)
/// through a 1 MiB buffer: one write(2) per buffer instead of a library call per frame. With a `WriteBehind`, full
/// buffers are written by its thread while the caller goes on (`mplsgate replay --threads 2`). A failed write is
/// kept in `error` (the first one) and ends writing; `close()` reports it.
public final class CaptureWriter {
    public static let bufferSize = 1 << 20
    public let path: String
    private let fd: Int32
    private var buffer: UnsafeMutableRawPointer
    private var used = 0
    private let behind: WriteBehind?
    private var failure: String?

    public init(path: String, writeBehind: WriteBehind? = nil) throws(CaptureError) {
        self.path = path
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw CaptureError("\(path): \(String(cString: strerror(errno)))") }
        behind = writeBehind
        buffer = writeBehind?.take() ?? .allocate(byteCount: CaptureWriter.bufferSize, alignment: 4096)
        let header: (UInt32, UInt16, UInt16, Int32, UInt32, UInt32, UInt32) = (0xA1B2_C3D4, 2, 4, 0, 0, 262_144, 1)
        withUnsafeBytes(of: header) { h in
            // The tuple's layout is its fields in order with no padding (4+2+2+4+4+4+4 = 24 bytes).
            buffer.copyMemory(from: h.baseAddress!, byteCount: 24)
        }
        used = 24
    }

    deinit {
        if !fdClosed { _ = try? close() }
    }

    /// Appends one record.
    @inline(__always)
    public func write(_ bytes: UnsafeRawPointer, length: Int, timestampMicros: Int64) {
        if used + 16 + length > CaptureWriter.bufferSize {
            flush()
            if 16 + length > CaptureWriter.bufferSize {
                // Larger than a buffer: a record of its own (never in replay, whose frames are ≤ 16 KiB).
                writeRecordDirectly(bytes, length: length, timestampMicros: timestampMicros)
                return
            }
        }
        let r = buffer + used
        r.storeBytes(of: UInt32(truncatingIfNeeded: timestampMicros / 1_000_000), toByteOffset: 0, as: UInt32.self)
        r.storeBytes(of: UInt32(truncatingIfNeeded: timestampMicros % 1_000_000), toByteOffset: 4, as: UInt32.self)
        r.storeBytes(of: UInt32(truncatingIfNeeded: length), toByteOffset: 8, as: UInt32.self)
        r.storeBytes(of: UInt32(truncatingIfNeeded: length), toByteOffset: 12, as: UInt32.self)
        (r + 16).copyMemory(from: bytes, byteCount: length)
        used += 16 + length
    }

    private func writeRecordDirectly(_ bytes: UnsafeRawPointer, length: Int, timestampMicros: Int64) {
        behind?.drain()   // the queued buffers of this file go first
        var header: (UInt32, UInt32, UInt32, UInt32) = (UInt32(truncatingIfNeeded: timestampMicros / 1_000_000),
                                                        UInt32(truncatingIfNeeded: timestampMicros % 1_000_000),
                                                        UInt32(length), UInt32(length))
        withUnsafeBytes(of: &header) { h in writeAll(h.baseAddress!, h.count) }
        writeAll(bytes, length)
    }

    private func writeAll(_ p: UnsafeRawPointer, _ n: Int) {
        guard failure == nil else { return }
        var off = 0
        while off < n {
            let w = Glibc.write(fd, p + off, n - off)
            if w > 0 { off += w; continue }
            if w < 0 && errno == EINTR { continue }
            failure = "\(path): \(String(cString: strerror(w < 0 ? errno : ENOSPC)))"
            return
        }
    }

    /// Writes (or hands to the write-behind thread) what is buffered.
    public func flush() {
        guard used > 0 else { return }
        if let behind {
            behind.submit(fd: fd, buffer: buffer, count: used)
            buffer = behind.take()
        } else {
            writeAll(buffer, used)
        }
        used = 0
    }

    /// Flushes and closes the file; throws the first write error. A second call does nothing.
    public func close() throws(CaptureError) {
        guard !fdClosed else { return }
        flush()
        if let behind {
            behind.give(buffer)
            behind.drain()
            if let e = behind.error(fd: fd), failure == nil { failure = "\(path): \(e)" }
        } else {
            buffer.deallocate()
        }
        buffer = UnsafeMutableRawPointer(bitPattern: 1)!
        if Glibc.close(fd) != 0 && failure == nil { failure = "\(path): \(String(cString: strerror(errno)))" }
        fdClosed = true
        if let failure { throw CaptureError(failure) }
    }

    private var fdClosed = false
}
