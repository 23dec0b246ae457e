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

    /// Loads the newest good copy; `problems` lists the files that were corrupt or unreadable, and why.
    public static func load(path: String) -> (loaded: Loaded?, problems: [(path: String, error: String)]) {
        var problems: [(path: String, error: String)] = []
        for p in [path, path + ".prev"] {
            switch read(p) {
            case .success(let l): return (l, problems)
            case .failure(let e): if !e.missing { problems.append((p, e.message)) }
            }
        }
        return (nil, problems)
    }

    struct LoadError: Error { var message: String; var missing = false }

    static func read(_ path: String) -> Result<Loaded, LoadError> {
        let verified: (generation: UInt64, body: [UInt8])
        switch verify(path) {
        case .success(let v): verified = v
        case .failure(let e): return .failure(e)
        }
        do {
            let fib = try FIBCodec.decodeFIB(verified.body)
            return .success(Loaded(fib: fib, generation: verified.generation, path: path))
        } catch {
            return .failure(LoadError(message: "invalid FIB: \(error)"))
        }
    }

    /// Whether `path` holds a complete state file whose checksum verifies (the FIB itself is not decoded).
    public static func isIntact(_ path: String) -> Bool {
        if case .success = verify(path) { return true }
        return false
    }

    /// Reads `path` and checks its header, length and checksum.
    static func verify(_ path: String) -> Result<(generation: UInt64, body: [UInt8]), LoadError> {
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
        return .success((generation, body))
    }

    /// Writes atomically (tmp, fsync, rename, fsync dir). Throws a message on failure. `keepPrevious`: the file now
    /// at `path` is a good copy and becomes `PATH.prev`; when false (it is missing or corrupt: the agent started
    /// from `.prev`), `.prev` is left alone, so a loadable copy exists at every instant.
    public static func write(_ bytes: [UInt8], to path: String, keepPrevious: Bool = true) throws(ServerError) {
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
        if keepPrevious { _ = rename(path, path + ".prev") }
        guard rename(tmp, path) == 0 else { throw ServerError("rename \(tmp): \(String(cString: strerror(errno)))") }
        let dir = path.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        let dfd = open(dir.isEmpty ? "." : dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 { fsync(dfd); close(dfd) }
    }

    /// Takes the state file's lock (`PATH.lock`, flock) for this process's lifetime, so two agents never write one
    /// state file. The lock file holds the owner's pid, for the error message. Returns a warning when the lock file
    /// cannot be created (then no agent can write the state file either, and the writer reports each failure).
    public static func lock(_ path: String) throws(ServerError) -> String? {
        let dir = path.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        if !dir.isEmpty { RPCServer.makeDirectories(dir) }
        let lockPath = path + ".lock"
        // Held read-only (flock needs no write access), so the agent keeps no file open for writing between state
        // writes: the file system can still be remounted read-only under it.
        let fd = open(lockPath, O_RDONLY | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            // The directory cannot be written (read-only, no permission, cannot be created): neither can the state
            // file, so no other agent can be writing it either. Forwarding goes on; each failed write is reported.
            return "state file lock \(lockPath): \(String(cString: strerror(errno))); commits will not be durable until "
                + "the directory is writable"
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let e = errno
            var buf = [UInt8](repeating: 0, count: 32)
            let n = pread(fd, &buf, buf.count, 0)
            let owner = n > 0 ? String(decoding: buf[0..<n], as: UTF8.self).filter(\.isNumber) : ""
            close(fd)
            if e == EWOULDBLOCK {
                throw ServerError("state file \(path) is in use by another agent\(owner.isEmpty ? "" : " (pid \(owner))"); "
                                  + "give each agent its own --instance or --state-file")
            }
            throw ServerError("state file lock \(lockPath): \(String(cString: strerror(e)))")
        }
        let pid = Array("\(getpid())\n".utf8)
        let wfd = open(lockPath, O_WRONLY | O_TRUNC | O_CLOEXEC)
        if wfd >= 0 {
            _ = pid.withUnsafeBytes { pwrite(wfd, $0.baseAddress, $0.count, 0) }
            close(wfd)
        }
        // The descriptor stays open (and the lock held) until the process exits.
        return nil
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
    /// Seconds between attempts while writes fail.
    public static let retrySeconds: Int32 = 1
    private struct Shared {
        var pending: FIBIntent?
        var durable: UInt64 = 0
        var lastError: String?
        /// The generation of the newest attempt that failed (0: none).
        var failedGeneration: UInt64 = 0
        var failures: UInt64 = 0
        var stop = false
    }
    private let shared: Mutex<Shared>
    private let wake: Int32
    /// Signalled after each write (for the control thread's poll loop).
    public let done: Int32
    private var thread = pthread_t()

    /// Whether the file now at `path` is a good copy (rotated to `.prev` by the next write); false after a start
    /// from `.prev`. Only the writer thread touches it after init.
    private var pathIsGood: Bool

    /// `pathIsGood`: the file at `path` is intact (StateFile.isIntact), so the first write may rotate it to `.prev`.
    public init(path: String, durableGeneration: UInt64, pathIsGood: Bool) {
        self.path = path
        self.pathIsGood = pathIsGood
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
    /// The last write's error, nil once a write succeeds again.
    public var lastError: String? { shared.withLock { $0.lastError } }
    /// The generation of the newest failed attempt (0: none): a durable wait for a generation ≤ this has failed.
    public var failedGeneration: UInt64 { shared.withLock { $0.failedGeneration } }
    /// Failed writes since start.
    public var failures: UInt64 { shared.withLock { $0.failures } }
    /// The durable generation, the newest failed one and the last error, read together.
    public var status: (durable: UInt64, failed: UInt64, error: String?) {
        shared.withLock { ($0.durable, $0.failedGeneration, $0.lastError) }
    }

    /// Writes what is pending and stops the thread.
    public func finish() {
        shared.withLock { $0.stop = true }
        mg_eventfd_signal(wake)
        pthread_join(thread, nil)
    }

    /// Takes the newest pending intent and writes it; a failed write is kept and tried again every
    /// `retrySeconds` until it succeeds or a newer generation replaces it (at stop: one last attempt).
    private func loop() {
        var p = pollfd(fd: wake, events: Int16(POLLIN), revents: 0)
        var retry: FIBIntent?
        while true {
            let (job, stop) = shared.withLock { s -> (FIBIntent?, Bool) in
                let j = s.pending
                s.pending = nil
                return (j, s.stop)
            }
            if let next = job ?? (stop ? retry : nil) {
                retry = nil
                let bytes = StateFile.encode(next.document(), generation: next.generation)
                var err: String?
                do { try StateFile.write(bytes, to: path, keepPrevious: pathIsGood) } catch { err = error.description }
                if err == nil { pathIsGood = true } else if !stop { retry = next }
                shared.withLock { s in
                    if let err {
                        s.lastError = err
                        s.failedGeneration = max(s.failedGeneration, next.generation)
                        s.failures &+= 1
                    } else {
                        s.durable = max(s.durable, next.generation)
                        s.lastError = nil
                    }
                }
                mg_eventfd_signal(done)
                continue
            }
            if stop { return }
            if poll(&p, 1, retry == nil ? 1000 : StateWriter.retrySeconds * 1000) == 0, let r = retry {
                // Nothing newer arrived: try the failed generation again.
                shared.withLock { s in if s.pending == nil { s.pending = r } }
                retry = nil
            }
            mg_eventfd_drain(wake)
        }
    }
}
