#if canImport(Glibc)
import Glibc
#endif
internal import CControlSocket
import Control
import Wire
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

/// The state file: the last committed FIB, so a restarted agent forwards before any controller connects. Two files:
///
/// - `PATH`, a **snapshot**: one header line `MPLSGATE-STATE 1 <generation> <length> <fnv1a64 hex>` and then
///   `<length>` bytes of the FIB document (the `--fib` format). Written as `PATH.tmp`, fsynced, the old file renamed
///   to `PATH.prev`, the new one renamed to `PATH`, the directory fsynced: at every instant one complete, checksummed
///   snapshot exists.
/// - `PATH.journal`, the commits since that snapshot: a header line `MPLSGATE-JOURNAL 1 <generation> <fnv1a64 hex>`
///   naming the snapshot it extends (its generation and body checksum), then one record per commit:
///   `<generation> <length> <fnv1a64 hex>` and a newline, `<length>` bytes of JSON (`{"set":[{"kind","entry"}…],
///   "delete":[{"kind","key"}…]}`: each touched key's state after the commit), a newline. A record is appended and
///   fdatasynced per write (group commit: one write for every record queued meanwhile), so a one-entry commit
///   writes a few hundred bytes instead of the whole FIB.
///
/// Loading takes `PATH` (else `PATH.prev`), then replays the journal if its header names that snapshot, record by
/// record while each is complete, verifies and continues the generations without a gap; a torn or corrupt tail is
/// reported and ignored (its commit was never acknowledged as durable). A journal naming another snapshot is
/// ignored: it predates the snapshot (a crash between writing a snapshot and starting its journal).
public enum StateFile {
    public struct Loaded {
        public var fib: FIBSpec
        public var generation: UInt64
        public var path: String
        /// Journal records replayed on top of the snapshot.
        public var journalRecords = 0
        /// The snapshot's own generation.
        public var snapshotGeneration: UInt64 = 0
        /// Whether new records may be appended to the journal on disk: it exists, names this snapshot and ends with
        /// the last record replayed (no torn or foreign tail). Otherwise the first write must be a snapshot.
        public var journalClean = false
    }

    static let magic = "MPLSGATE-STATE 1 "
    static let journalMagic = "MPLSGATE-JOURNAL 1 "


    /// Bytes reserved for a streamed snapshot's header: written last, padded with spaces.
    static let streamedHeaderBytes = 96

    /// Writes a snapshot of `intent` straight from the engine's tables, entry by entry (no document or JSON tree of
    /// the whole FIB in memory), atomically like `write`. The header is written last into space reserved at the start
    /// (padded with spaces, which readers skip). Returns the file's size and the body's checksum.
    public static func writeSnapshot(_ intent: FIBIntent, to path: String, keepPrevious: Bool) throws(ServerError) -> (bytes: Int, checksum: String, id: String) {
        let tmp = path + ".tmp"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw ServerError("\(tmp): \(String(cString: strerror(errno)))") }
        var failure: ServerError?
        var buffer = [UInt8](repeating: 0x20, count: streamedHeaderBytes)
        buffer.reserveCapacity(1 << 20)
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        var length = 0
        func emit(_ s: String) {
            for b in s.utf8 {
                buffer.append(b)
                hash = (hash ^ UInt64(b)) &* 0x100_0000_01B3
                length += 1
            }
            if buffer.count >= 1 << 20, failure == nil {
                do { try writeAll(fd, buffer, tmp) } catch { failure = error }
                buffer.removeAll(keepingCapacity: true)
            }
        }
        emit("{\"version\":\(schemaVersion)")
        var first = true
        var sections = 0
        intent.forEachSection({ name, _ in
            emit((sections == 0 ? "" : "]") + ",\"\(name)\":[")
            sections += 1
            first = true
        }, { e in
            emit((first ? "" : ",") + JSONWriter.write(FIBCodec.encode(e)))
            first = false
        })
        emit("]}")
        let checksum = hex(hash)
        // A random id names this snapshot in its journal's header: a journal of another snapshot of equal generation
        // and content (a restart with --fib) is never replayed onto it.
        let id = hex(UInt64.random(in: 0...UInt64.max))
        var header = Array("\(magic)\(intent.generation) \(length) \(checksum) \(id)".utf8)
        header += [UInt8](repeating: 0x20, count: streamedHeaderBytes - 1 - header.count) + [0x0A]
        do throws(ServerError) {
            if let failure { throw failure }
            try writeAll(fd, buffer, tmp)
            guard pwrite(fd, header, header.count, 0) == header.count else {
                throw ServerError("\(tmp): \(String(cString: strerror(errno)))")
            }
            guard fsync(fd) == 0 else { throw ServerError("fsync \(tmp): \(String(cString: strerror(errno)))") }
        } catch { close(fd); throw error }
        close(fd)
        if keepPrevious { _ = rename(path, path + ".prev") }
        guard rename(tmp, path) == 0 else { throw ServerError("rename \(tmp): \(String(cString: strerror(errno)))") }
        syncDirectory(of: path)
        return (streamedHeaderBytes + length, checksum, id)
    }

    /// One journal record: the keys a commit touched and their entries after it (nil: deleted).
    public static func encodeRecord(generation: UInt64, changes: [(key: EntryKey, entry: FIBEntry?)]) -> [UInt8] {
        var set: [JSONValue] = [], deleted: [JSONValue] = []
        for (k, e) in changes {
            if let e {
                set.append(.object([("kind", .string(k.kind)), ("entry", FIBCodec.encode(e))]))
            } else {
                deleted.append(.object([("kind", .string(k.kind)), ("key", .string(keyText(k)))]))
            }
        }
        let body = Array(JSONWriter.write(.object([("set", .array(set)), ("delete", .array(deleted))])).utf8)
        return Array("\(generation) \(body.count) \(hex(fnv1a64(body)))\n".utf8) + body + [0x0A]
    }

    static func keyText(_ k: EntryKey) -> String {
        switch k {
        case .nextHop(let n), .ecmpGroup(let n), .ftn(let n): return n
        case .ilm(let l): return String(l)
        case .vni(let v): return String(v)
        case .mac(let m): return m.description
        }
    }

    public static func journalHeader(generation: UInt64, checksum: String, id: String) -> [UInt8] {
        Array("\(journalMagic)\(generation) \(checksum) \(id)\n".utf8)
    }

    /// Loads the newest good copy and replays its journal; `problems` lists the files that were corrupt or
    /// unreadable (and a torn journal tail), and why.
    public static func load(path: String) -> (loaded: Loaded?, problems: [(path: String, error: String)]) {
        var problems: [(path: String, error: String)] = []
        for p in [path, path + ".prev"] {
            switch read(p) {
            case .success(var l):
                l.snapshotGeneration = l.generation
                if let problem = replayJournal(path + ".journal", onto: &l) {
                    problems.append((path + ".journal", problem))
                }
                return (l.loaded, problems)
            case .failure(let e): if !e.missing { problems.append((p, e.message)) }
            }
        }
        return (nil, problems)
    }

    struct LoadError: Error { var message: String; var missing = false }

    struct Snapshot {
        var fib: FIBSpec
        var generation: UInt64
        var path: String
        var checksum: String
        /// The snapshot's random id (header field 4; empty in files written before it existed).
        var id: String
        var snapshotGeneration: UInt64 = 0
        var records = 0
        var journalClean = false
        var loaded: Loaded {
            Loaded(fib: fib, generation: generation, path: path, journalRecords: records, snapshotGeneration: snapshotGeneration,
                   journalClean: journalClean)
        }
    }

    static func read(_ path: String) -> Result<Snapshot, LoadError> {
        let verified: (generation: UInt64, body: [UInt8], checksum: String, id: String)
        switch verify(path) {
        case .success(let v): verified = v
        case .failure(let e): return .failure(e)
        }
        do {
            let fib = try FIBCodec.decodeFIB(verified.body)
            return .success(Snapshot(fib: fib, generation: verified.generation, path: path, checksum: verified.checksum,
                                     id: verified.id))
        } catch {
            return .failure(LoadError(message: "invalid FIB: \(error)"))
        }
    }

    /// Applies the journal's records that continue `s` (same snapshot, next generations). Returns a problem to
    /// report (a torn or corrupt tail, a journal that cannot be read), or nil.
    static func replayJournal(_ path: String, onto s: inout Snapshot) -> String? {
        guard let bytes = readWholeFile(path) else {
            return errno == ENOENT ? nil : String(cString: strerror(errno))
        }
        guard let nl = bytes.firstIndex(of: 0x0A) else { return bytes.isEmpty ? nil : "no header line" }
        let header = String(decoding: bytes[0..<nl], as: UTF8.self)
        guard header.hasPrefix(journalMagic) else { return "not an MPLSGate journal (bad header)" }
        let fields = header.dropFirst(journalMagic.count).split(separator: " ")
        guard fields.count == 3, let base = UInt64(fields[0]) else { return "malformed header" }
        // Another snapshot's journal: written before `s` replaced that snapshot, so `s` already holds it.
        guard base == s.snapshotGeneration, fields[1] == s.checksum, fields[2] == s.id else { return nil }
        var tables = Tables(s.fib)
        var at = nl + 1
        var problem: String?
        while at < bytes.count {
            guard let end = bytes[at...].firstIndex(of: 0x0A) else { problem = "torn record header at byte \(at)"; break }
            let f = String(decoding: bytes[at..<end], as: UTF8.self).split(separator: " ")
            guard f.count == 3, let g = UInt64(f[0]), let length = Int(f[1]), length >= 0 else {
                problem = "malformed record header at byte \(at)"; break
            }
            let bodyStart = end + 1
            guard bytes.count - bodyStart > length, bytes[bodyStart + length] == 0x0A else {
                problem = "torn record (generation \(g)) at byte \(at): its commit was not durable"; break
            }
            let body = Array(bytes[bodyStart..<(bodyStart + length)])
            guard hex(fnv1a64(body)) == f[2] else { problem = "record checksum mismatch (generation \(g)) at byte \(at)"; break }
            guard g == s.generation + 1 else { problem = "record generation \(g) does not follow \(s.generation)"; break }
            do { try tables.apply(body) } catch { problem = "invalid record (generation \(g)): \(error)"; break }
            s.generation = g
            s.records += 1
            at = bodyStart + length + 1
        }
        if s.records > 0 { s.fib = tables.fib(version: s.fib.version) }
        s.journalClean = problem == nil
        return problem
    }

    /// A FIB by key, for replaying journal records.
    struct Tables {
        var nextHops: [String: NextHopSpec] = [:], groups: [String: ECMPGroupSpec] = [:]
        var ilm: [UInt32: ILMEntrySpec] = [:], vni: [UInt32: VNIEntrySpec] = [:], ftn: [String: FTNEntrySpec] = [:]
        var macs: [MACKey: MACEntrySpec] = [:]

        init(_ fib: FIBSpec) {
            for e in fib.nextHops { nextHops[e.name] = e }
            for e in fib.ecmpGroups { groups[e.name] = e }
            for e in fib.ilm { ilm[e.label] = e }
            for e in fib.vni { vni[e.vni] = e }
            for e in fib.ftn { ftn[e.key] = e }
            for e in fib.macs { macs[e.key] = e }
        }

        mutating func apply(_ body: [UInt8]) throws(ValidationError) {
            let doc = try FIBCodec.parseDocument(body)
            var r = try ObjectReader(doc, path: "record")
            for (i, v) in try r.array("set").enumerated() {
                var o = try ObjectReader(v, path: "set[\(i)]")
                switch try FIBCodec.decodeEntry(kind: try o.string("kind"), try o.required("entry"), "set[\(i)].entry") {
                case .nextHop(let e): nextHops[e.name] = e
                case .ecmpGroup(let e): groups[e.name] = e
                case .ilm(let e): ilm[e.label] = e
                case .vni(let e): vni[e.vni] = e
                case .ftn(let e): ftn[e.key] = e
                case .mac(let e): macs[e.key] = e
                }
            }
            for (i, v) in try r.array("delete").enumerated() {
                var o = try ObjectReader(v, path: "delete[\(i)]")
                let key = try o.string("key")
                switch try o.string("kind") {
                case "nextHop": nextHops[key] = nil
                case "ecmpGroup": groups[key] = nil
                case "ilm": ilm[UInt32(key) ?? UInt32.max] = nil
                case "vni": vni[UInt32(key) ?? UInt32.max] = nil
                case "ftn": ftn[key] = nil
                case "mac":
                    let parts = key.split(separator: "/", maxSplits: 1)
                    guard parts.count == 2, let v = UInt32(parts[0]), let m = MACAddress(String(parts[1])) else {
                        throw ValidationError("delete[\(i)].key", "\"\(key)\" is not VNI/MAC")
                    }
                    macs[MACKey(vni: v, mac: m.value)] = nil
                case let k: throw ValidationError("delete[\(i)].kind", "unknown kind \(k)")
                }
            }
        }

        func fib(version: Int) -> FIBSpec {
            FIBSpec(version: version, nextHops: nextHops.keys.sorted().map { nextHops[$0]! },
                    ecmpGroups: groups.keys.sorted().map { groups[$0]! }, ilm: ilm.keys.sorted().map { ilm[$0]! },
                    vni: vni.keys.sorted().map { vni[$0]! }, ftn: ftn.keys.sorted().map { ftn[$0]! },
                    macs: macs.keys.sorted().map { macs[$0]! })
        }
    }

    /// Whether `path` holds a complete state file whose checksum verifies (the FIB itself is not decoded).
    public static func isIntact(_ path: String) -> Bool {
        if case .success = verify(path) { return true }
        return false
    }

    /// Reads `path` and checks its header, length and checksum.
    static func verify(_ path: String) -> Result<(generation: UInt64, body: [UInt8], checksum: String, id: String), LoadError> {
        guard let bytes = readWholeFile(path) else {
            return .failure(LoadError(message: String(cString: strerror(errno)), missing: errno == ENOENT))
        }
        guard let nl = bytes.firstIndex(of: 0x0A) else { return .failure(LoadError(message: "no header line")) }
        let header = String(decoding: bytes[0..<nl], as: UTF8.self)
        guard header.hasPrefix(magic) else { return .failure(LoadError(message: "not an MPLSGate state file (bad header)")) }
        let fields = header.dropFirst(magic.count).split(separator: " ")
        guard fields.count == 3 || fields.count == 4, let generation = UInt64(fields[0]), let length = Int(fields[1]) else {
            return .failure(LoadError(message: "malformed header"))
        }
        let body = Array(bytes[(nl + 1)...])
        guard body.count == length else {
            return .failure(LoadError(message: "truncated: \(body.count) of \(length) bytes"))
        }
        guard hex(fnv1a64(body)) == fields[2] else { return .failure(LoadError(message: "checksum mismatch")) }
        return .success((generation, body, String(fields[2]), fields.count == 4 ? String(fields[3]) : ""))
    }

    /// Writes atomically (tmp, fsync, rename, fsync dir). Throws a message on failure. `keepPrevious`: the file now
    /// at `path` is a good copy and becomes `PATH.prev`; when false (it is missing or corrupt: the agent started
    /// from `.prev`), `.prev` is left alone, so a loadable copy exists at every instant.
    public static func write(_ bytes: [UInt8], to path: String, keepPrevious: Bool = true) throws(ServerError) {
        let tmp = path + ".tmp"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw ServerError("\(tmp): \(String(cString: strerror(errno)))") }
        do throws(ServerError) { try writeAll(fd, bytes, tmp) } catch { close(fd); throw error }
        guard fsync(fd) == 0 else { close(fd); throw ServerError("fsync \(tmp): \(String(cString: strerror(errno)))") }
        close(fd)
        if keepPrevious { _ = rename(path, path + ".prev") }
        guard rename(tmp, path) == 0 else { throw ServerError("rename \(tmp): \(String(cString: strerror(errno)))") }
        syncDirectory(of: path)
    }

    static func writeAll(_ fd: Int32, _ bytes: [UInt8], _ name: String) throws(ServerError) {
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n <= 0 { throw ServerError("\(name): \(String(cString: strerror(errno)))") }
            off += n
        }
    }

    static func syncDirectory(of path: String) {
        let dir = path.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        let dfd = open(dir.isEmpty ? "." : dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 { fsync(dfd); close(dfd) }
    }

    /// Appends journal records and fdatasyncs them. The file is opened per call, so no file stays open for
    /// writing between writes (the file system can be remounted read-only under the agent).
    public static func append(_ bytes: [UInt8], toJournal path: String) throws(ServerError) {
        let fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC)
        guard fd >= 0 else { throw ServerError("\(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        try writeAll(fd, bytes, path)
        guard fdatasync(fd) == 0 else { throw ServerError("fdatasync \(path): \(String(cString: strerror(errno)))") }
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

/// Writes committed FIBs to the state file on its own thread: each commit's changes as a journal record (queued
/// records go out in one write and one fdatasync), and now and then a whole snapshot, after which the journal
/// starts over. A reply to apply means "applied" (forwarding uses it); `durableGeneration` says what is on disk.
///
/// The control thread submits a snapshot (the intent, an O(1) copy) instead of a record when a commit is large,
/// when the next write must be one (`nextWriteNeedsSnapshot`: the journal on disk does not continue the FIB the
/// agent loaded, or it outgrew the last snapshot), and when the writer asks for one now (`retryWanted`). After a
/// failed write the journal is not trusted: records are not written (their generations count as failed) until a
/// snapshot succeeds; the writer asks for a fresh snapshot `retrySeconds` after its first failed attempt, then after
/// twice as long each time the retry fails too, up to `maxRetrySeconds` (a disk that stays full is not rewritten with
/// the whole FIB every second), and at once again after a success.
public final class StateWriter: @unchecked Sendable {
    public let path: String
    public var journalPath: String { path + ".journal" }
    /// Seconds before the first retry after a failed write; each further failure doubles it, up to `maxRetrySeconds`.
    public static let retrySeconds: Int32 = 1
    public static let maxRetrySeconds: Int32 = 30
    /// A commit touching more keys than this, and more than half as many as the FIB holds, is written as a snapshot.
    public static let largeCommit = 4096
    /// The journal may grow to this many bytes, or the last snapshot's size if larger, before a snapshot is asked for.
    public static let journalFloorBytes = 8 << 20

    enum Job {
        case record(generation: UInt64, changes: [(key: EntryKey, entry: FIBEntry?)])
        case snapshot(FIBIntent)
        var generation: UInt64 {
            switch self {
            case .record(let g, _): return g
            case .snapshot(let i): return i.generation
            }
        }
    }

    private struct Shared {
        var jobs: [Job] = []
        /// The next write must be a snapshot (the journal does not continue the FIB, or it grew long).
        var snapshotNeeded = false
        /// After a failure: the control thread should submit a snapshot now (set once per retry interval).
        var retryWanted = false
        var durable: UInt64 = 0
        var lastError: String?
        /// The generation of the newest attempt that failed (0: none).
        var failedGeneration: UInt64 = 0
        var failures: UInt64 = 0
        var journalBytes = 0
        var snapshotBytes = 0
        var snapshots: UInt64 = 0
        var records: UInt64 = 0
        var stop = false
    }
    private let shared: Mutex<Shared>
    private let wake: Int32
    /// Signalled after each write (for the control thread's poll loop).
    public let done: Int32
    private var thread = pthread_t()

    /// Whether the file now at `path` is a good copy (rotated to `.prev` by the next snapshot); false after a start
    /// from `.prev`. Only the writer thread touches it after init.
    private var pathIsGood: Bool
    /// Whether records may be appended: the journal on disk extends the last snapshot up to the last record.
    /// Writer thread only.
    private var journalGood: Bool
    /// When the last failure happened (monotonic seconds), and how many attempts in a row failed: the retry pace.
    /// Writer thread only.
    private var failedAt: Double = 0
    private var failuresInARow = 0

    /// Seconds to wait after the `n`th failure in a row before asking for a retry: 1, 2, 4, … up to the maximum.
    public static func retryDelay(afterFailures n: Int) -> Int32 {
        min(maxRetrySeconds, retrySeconds << Int32(min(max(n - 1, 0), 5)))
    }

    /// `pathIsGood`: the file at `path` is intact (StateFile.isIntact), so the first snapshot may rotate it to
    /// `.prev`. `journalContinues`: the journal on disk extends the FIB the agent loaded up to `durableGeneration`
    /// (the agent started from `path` and its journal); otherwise the first write must be a snapshot.
    public init(path: String, durableGeneration: UInt64, pathIsGood: Bool, journalContinues: Bool = false) {
        self.path = path
        self.pathIsGood = pathIsGood
        self.journalGood = journalContinues
        let dir = path.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        if !dir.isEmpty { RPCServer.makeDirectories(dir) }
        var st = stat()
        let journalBytes = stat(path + ".journal", &st) == 0 ? Int(st.st_size) : 0
        let snapshotBytes = stat(path, &st) == 0 ? Int(st.st_size) : 0
        shared = Mutex(Shared(snapshotNeeded: !journalContinues, durable: durableGeneration,
                              journalBytes: journalBytes, snapshotBytes: snapshotBytes))
        wake = mg_eventfd()
        done = mg_eventfd()
        let box = Unmanaged.passRetained(self).toOpaque()
        pthread_create(&thread, nil, { raw in
            let me = Unmanaged<StateWriter>.fromOpaque(raw!).takeRetainedValue()
            me.loop()
            return nil
        }, box)
    }

    /// Whether the next commit must be written as a snapshot (see the type's comment).
    public var nextWriteNeedsSnapshot: Bool { shared.withLock { $0.snapshotNeeded || $0.retryWanted } }
    /// Whether the writer asks for a snapshot now, commit or not: a retry after a failed write.
    public var retryWanted: Bool { shared.withLock { $0.retryWanted } }

    /// Queues a whole snapshot of a new generation (it supersedes every job queued before it).
    public func submit(_ intent: FIBIntent) {
        shared.withLock { s in
            s.jobs.removeAll()
            s.jobs.append(.snapshot(intent))
            s.snapshotNeeded = false
            s.retryWanted = false
        }
        mg_eventfd_signal(wake)
    }

    /// Queues one commit: the keys it touched and their entries after it (nil: deleted).
    public func submit(generation: UInt64, changes: [(key: EntryKey, entry: FIBEntry?)]) {
        shared.withLock { $0.jobs.append(.record(generation: generation, changes: changes)) }
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
    /// Snapshots and journal records written since start, and the journal's and last snapshot's sizes.
    public var counts: (snapshots: UInt64, records: UInt64, journalBytes: Int, snapshotBytes: Int) {
        shared.withLock { ($0.snapshots, $0.records, $0.journalBytes, $0.snapshotBytes) }
    }

    /// Writes what is pending and stops the thread.
    public func finish() {
        shared.withLock { $0.stop = true }
        mg_eventfd_signal(wake)
        pthread_join(thread, nil)
    }

    private static func monotonic() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    private func loop() {
        var p = pollfd(fd: wake, events: Int16(POLLIN), revents: 0)
        while true {
            let (jobs, stop) = shared.withLock { s -> ([Job], Bool) in
                let j = s.jobs
                s.jobs.removeAll()
                return (j, s.stop)
            }
            if !jobs.isEmpty {
                write(jobs)
                mg_eventfd_signal(done)
                continue
            }
            if stop { return }
            let failing = shared.withLock { $0.lastError != nil }
            if poll(&p, 1, 1000) == 0 || failing {
                // While writes fail, ask the control thread for a fresh snapshot once the retry delay has passed.
                if failing, Self.monotonic() - failedAt >= Double(Self.retryDelay(afterFailures: failuresInARow)) {
                    failedAt = Self.monotonic()
                    shared.withLock { $0.retryWanted = true }
                    mg_eventfd_signal(done)
                }
            }
            mg_eventfd_drain(wake)
        }
    }

    /// Writes the newest snapshot among `jobs` (if any), then the records after it.
    private func write(_ jobs: [Job]) {
        var records = jobs[...]
        var error: String?
        var durable: UInt64 = 0
        var failed: UInt64 = 0
        var snapshotBytes: Int?
        var skippedFrom: UInt64 = 0
        if let i = jobs.lastIndex(where: { if case .snapshot = $0 { return true }; return false }),
           case .snapshot(let intent) = jobs[i] {
            records = jobs[(i + 1)...]
            do throws(ServerError) {
                let written = try StateFile.writeSnapshot(intent, to: path, keepPrevious: pathIsGood)
                pathIsGood = true
                // The journal starts over, naming this snapshot; written whole and renamed, like the snapshot.
                let header = StateFile.journalHeader(generation: intent.generation, checksum: written.checksum, id: written.id)
                try StateFile.write(header, to: journalPath, keepPrevious: false)
                journalGood = true
                durable = intent.generation
                snapshotBytes = written.bytes
                // The snapshot's transient memory goes back to the system, not into this thread's malloc arena.
                _ = mg_malloc_trim()
            } catch let e {
                error = e.description
                journalGood = false
                failed = intent.generation
            }
        }
        var appended = 0
        if let last = records.last {
            if journalGood {
                var bytes: [UInt8] = []
                for case .record(let g, let changes) in records {
                    bytes += StateFile.encodeRecord(generation: g, changes: changes)
                }
                do throws(ServerError) {
                    try StateFile.append(bytes, toJournal: journalPath)
                    durable = last.generation
                    appended = bytes.count
                } catch let e {
                    error = e.description
                    journalGood = false
                    failed = last.generation
                }
            } else {
                // Not written: they wait for the next snapshot, which holds them (asked for once per retry interval
                // after the last failed attempt; skipping records is no attempt).
                skippedFrom = last.generation
            }
        }
        let newError = error
        let wasGood = journalGood
        let recordCount = records.count
        let failing = newError != nil
        if failing {
            failedAt = Self.monotonic()
            failuresInARow += 1
        } else if durable > 0 {
            failuresInARow = 0
        }
        shared.withLock { s in
            if let b = snapshotBytes {
                s.snapshotBytes = b
                s.journalBytes = 0
                s.snapshots &+= 1
            }
            if appended > 0 { s.journalBytes += appended; s.records &+= UInt64(recordCount) }
            if durable > 0 { s.durable = max(s.durable, durable) }
            if let newError {
                s.lastError = newError
                s.failedGeneration = max(s.failedGeneration, failed)
                s.failures &+= 1
            } else if skippedFrom > 0 {
                // Records skipped behind a failure: still not durable, and the error stays what it was.
                s.failedGeneration = max(s.failedGeneration, skippedFrom)
                if s.lastError == nil { s.lastError = "the journal is behind a failed write; waiting for a snapshot" }
            } else {
                s.lastError = nil
            }
            // A journal longer than the snapshot (or the floor) is compacted by the next snapshot.
            if wasGood, s.journalBytes > max(StateWriter.journalFloorBytes, s.snapshotBytes) { s.snapshotNeeded = true }
        }
    }
}
