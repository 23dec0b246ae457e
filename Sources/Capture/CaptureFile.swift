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
    /// The pcapng interface the frame was captured on; nil for classic pcap.
    public var interfaceName: String?
    /// True when the frame was larger than the buffer: nothing was copied.
    public var tooLarge: Bool
}

/// Errors opening or reading capture files, with the path in the message.
public struct CaptureError: Error, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }

    /// "PATH: MESSAGE", unless libpcap's message already starts with the path (its open errors do).
    static func naming(_ path: String, _ message: String) -> String {
        message.hasPrefix(path) ? message : "\(path): \(message)"
    }
}

/// Reads pcap (through libpcap) and pcapng (through our own reader, because libpcap does not say which interface a
/// pcapng frame came from). The format is chosen by the file's magic number.
public final class CaptureReader {
    private enum Source {
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
        guard n == 4 else { throw CaptureError("\(path): too short to be a capture file") }
        if magic == 0x0A0D_0D0A {
            isPcapNG = true
            source = .pcapng(try PcapNGReader(path: path))
        } else {
            isPcapNG = false
            var err = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE))
            guard let p = pcap_open_offline(path, &err) else {
                throw CaptureError(CaptureError.naming(path, err.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }))
            }
            guard pcap_datalink(p) == DLT_EN10MB else {
                pcap_close(p)
                throw CaptureError("\(path): link type \(pcap_datalink(p)) is not Ethernet")
            }
            source = .pcap(p)
        }
    }

    deinit {
        if case .pcap(let p) = source { pcap_close(p) }
    }

    /// Bytes consumed so far (approximate for pcap), for progress.
    public var position: Int64 {
        switch source {
        case .pcap(let p): return Int64(ftell(pcap_file(p)))
        case .pcapng(let r): return r.position
        }
    }

    /// Reads the next frame into `buffer` (at most `capacity` bytes); nil at the end of the file.
    public func next(into buffer: UnsafeMutableRawPointer, capacity: Int) throws(CaptureError) -> CapturedFrame? {
        switch source {
        case .pcap(let p):
            var header: UnsafeMutablePointer<pcap_pkthdr>?
            var data: UnsafePointer<UInt8>?
            let rc = pcap_next_ex(p, &header, &data)
            if rc == -2 { return nil }
            if rc != 1 { throw CaptureError("\(path): \(String(cString: pcap_geterr(p)))") }
            let h = header!.pointee
            let len = Int(h.caplen)
            let ts = Int64(h.ts.tv_sec) * 1_000_000 + Int64(h.ts.tv_usec)
            if len > capacity {
                return CapturedFrame(length: 0, originalLength: Int(h.len), timestampMicros: ts, interfaceName: nil, tooLarge: true)
            }
            buffer.copyMemory(from: data!, byteCount: len)
            return CapturedFrame(length: len, originalLength: Int(h.len), timestampMicros: ts, interfaceName: nil, tooLarge: false)
        case .pcapng(let r):
            return try r.next(into: buffer, capacity: capacity)
        }
    }
}

/// Writes classic pcap through libpcap (Ethernet link type, microsecond timestamps).
public final class CaptureWriter {
    private let dead: OpaquePointer
    private let dumper: OpaquePointer
    public let path: String

    public init(path: String) throws(CaptureError) {
        self.path = path
        guard let d = pcap_open_dead(DLT_EN10MB, 262_144) else { throw CaptureError("\(path): pcap_open_dead failed") }
        guard let w = pcap_dump_open(d, path) else {
            let msg = String(cString: pcap_geterr(d))
            pcap_close(d)
            throw CaptureError(CaptureError.naming(path, msg))
        }
        dead = d
        dumper = w
    }

    public func write(_ bytes: UnsafeRawPointer, length: Int, timestampMicros: Int64) {
        var h = pcap_pkthdr()
        h.ts.tv_sec = Int(timestampMicros / 1_000_000)
        h.ts.tv_usec = Int(timestampMicros % 1_000_000)
        h.caplen = UInt32(length)
        h.len = UInt32(length)
        pcap_dump(UnsafeMutableRawPointer(dumper).assumingMemoryBound(to: UInt8.self), &h,
                  bytes.assumingMemoryBound(to: UInt8.self))
    }

    /// Flushes and closes the file.
    public func close() {
        pcap_dump_close(dumper)
        pcap_close(dead)
    }
}
