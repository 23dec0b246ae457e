#if canImport(Glibc)
import Glibc
#endif
internal import CControlSocket
import Control
import Synchronization

/// Reads a whole file; nil with `errno` set when it cannot be opened.
public func readWholeFile(_ path: String) -> [UInt8]? {
    guard let f = fopen(path, "rb") else { return nil }
    defer { fclose(f) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 20)
    while true {
        let n = fread(&chunk, 1, chunk.count, f)
        if n > 0 { bytes += chunk[0..<n] }
        if n < chunk.count { break }
    }
    return bytes
}

/// The state file: the last committed FIB, so a restarted agent forwards before any controller connects.
///
/// Format: one header line `MPLSGATE-STATE 1 <generation> <length> <fnv1a64 hex>` and then `<length>` bytes of the
/// FIB document (the `--fib` format). Written as `PATH.tmp`, fsynced, the old file renamed to `PATH.prev`, the
/// new one renamed to `PATH`, the directory fsynced: at every instant one complete, checksummed file exists.
/// Loading tries `PATH`, then `PATH.prev`; a corrupt file is reported and skipped.
public enum StateFile {
    public struct Loaded {
        public var fib: FIBSpec
        public var generation: UInt64
        public var path: String
    }

    static let magic = "MPLSGATE-STATE 1 "

    public static func encode(_ fib: FIBSpec, generation: UInt64) -> [UInt8] {
        let body = Array(JSONWriter.write(FIBCodec.encode(fib)).utf8)
        let header = "\(magic)\(generation) \(body.count) \(hex(fnv1a64(body)))\n"
        return Array(header.utf8) + body
    }

    /// Loads the newest good copy; `problems` lists the files that were missing or corrupt, and why.
    public static func load(path: String) -> (loaded: Loaded?, problems: [String]) {
        var problems: [String] = []
        for p in [path, path + ".prev"] {
            switch read(p) {
            case .success(let l): return (l, problems)
            case .failure(let e): if !e.missing { problems.append("\(p): \(e.message)") }
            }
        }
        return (nil, problems)
    }

    struct LoadError: Error { var message: String; var missing = false }

    static func read(_ path: String) -> Result<Loaded, LoadError> {
        guard let bytes = readWholeFile(path) else {
            return .failure(LoadError(message: String(cString: strerror(errno)), missing: errno == ENOENT))
        }
        guard let nl = bytes.firstIndex(of: 0x0A) else { return .failure(LoadError(message: "no header line")) }
        let header = String(decoding: bytes[0..<nl], as: UTF8.self)
        guard header.hasPrefix(magic) else { return .failure(LoadError(message: "not an MPLSGate state file (bad header)")) }
        let fields = header.dropFirst(magic.count).split(separator: " ")
        guard fields.count == 3, let generation = UInt64(fields[0]), let length = Int(fields[1]) else {
            return .failure(LoadError(message: "malformed header"))
        }
        let body = Array(bytes[(nl + 1)...])
        guard body.count == length else {
            return .failure(LoadError(message: "truncated: \(body.count) of \(length) bytes"))
        }
        guard hex(fnv1a64(body)) == fields[2] else { return .failure(LoadError(message: "checksum mismatch")) }
        do {
            let fib = try FIBCodec.decodeFIB(body)
            return .success(Loaded(fib: fib, generation: generation, path: path))
        } catch {
            return .failure(LoadError(message: "invalid FIB: \(error)"))
        }
    }

    /// Writes atomically (tmp, fsync, rename, fsync dir). Throws a message on failure.
    public static func write(_ bytes: [UInt8], to path: String) throws(ServerError) {
        let tmp = path + ".tmp"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw ServerError("\(tmp): \(String(cString: strerror(errno)))") }
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n <= 0 {
                let e = errno
                close(fd)
                throw ServerError("\(tmp): \(String(cString: strerror(e)))")
            }
            off += n
        }
        guard fsync(fd) == 0 else { close(fd); throw ServerError("fsync \(tmp): \(String(cString: strerror(errno)))") }
        close(fd)
        _ = rename(path, path + ".prev")
        guard rename(tmp, path) == 0 else { throw ServerError("rename \(tmp): \(String(cString: strerror(errno)))") }
        let dir = path.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        let dfd = open(dir.isEmpty ? "." : dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 { fsync(dfd); close(dfd) }
    }

    static func fnv1a64(_ bytes: [UInt8]) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01B3 }
        return h
    }

    static func hex(_ v: UInt64) -> String {
        let s = String(v, radix: 16)
        return String(repeating: "0", count: 16 - s.count) + s
    }
}

/// Writes committed FIBs to the state file on its own thread, coalesced: one write in flight, and the next one
/// takes the newest generation submitted meanwhile. A reply to apply means "applied" (forwarding uses it);
/// `durableGeneration` says what is on disk.
public final class StateWriter: @unchecked Sendable {
    public let path: String
    private struct Shared {
        var pending: FIBIntent?
        var durable: UInt64 = 0
        var lastError: String?
        var stop = false
    }
    private let shared: Mutex<Shared>
    private let wake: Int32
    /// Signalled after each write (for the control thread's poll loop).
    public let done: Int32
    private var thread = pthread_t()

    public init(path: String, durableGeneration: UInt64) {
        self.path = path
        let dir = path.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        if !dir.isEmpty { RPCServer.makeDirectories(dir) }
        shared = Mutex(Shared(durable: durableGeneration))
        wake = mg_eventfd()
        done = mg_eventfd()
        let box = Unmanaged.passRetained(self).toOpaque()
        pthread_create(&thread, nil, { raw in
            let me = Unmanaged<StateWriter>.fromOpaque(raw!).takeRetainedValue()
            me.loop()
            return nil
        }, box)
    }

    /// Queues the intent of a new generation (replacing any not yet written).
    public func submit(_ intent: FIBIntent) {
        shared.withLock { $0.pending = intent }
        mg_eventfd_signal(wake)
    }

    public var durableGeneration: UInt64 { shared.withLock { $0.durable } }
    public var lastError: String? { shared.withLock { $0.lastError } }

    /// Writes what is pending and stops the thread.
    public func finish() {
        shared.withLock { $0.stop = true }
        mg_eventfd_signal(wake)
        pthread_join(thread, nil)
    }

    private func loop() {
        var p = pollfd(fd: wake, events: Int16(POLLIN), revents: 0)
        while true {
            let (job, stop) = shared.withLock { s -> (FIBIntent?, Bool) in
                let j = s.pending
                s.pending = nil
                return (j, s.stop)
            }
            if let job {
                let bytes = StateFile.encode(job.document(), generation: job.generation)
                var err: String?
                do { try StateFile.write(bytes, to: path) } catch { err = error.description }
                shared.withLock { s in
                    if let err { s.lastError = err } else { s.durable = max(s.durable, job.generation); s.lastError = nil }
                }
                mg_eventfd_signal(done)
                continue
            }
            if stop { return }
            _ = poll(&p, 1, 1000)
            mg_eventfd_drain(wake)
        }
    }
}
