#if canImport(Glibc)
import Glibc
#endif
import Control
import Wire
import FIB
internal import CControlSocket

/// What the control service needs from the running data plane (implemented by the agent; nil offline).
public protocol DataPlaneView: AnyObject {
    /// Ports in config order: name, interface, role, link up (nil: unknown), AF_XDP mode.
    func portStates() -> [(name: String, interface: String, role: String, up: Bool?, mode: String)]
    /// Per-port counters as a JSON object keyed by port name (pipeline, rings, kernel XDP statistics, XDP program).
    func portCounters() -> JSONValue
    /// Pipeline drops per reason (every reason, in order).
    func dropCounters() -> [(String, UInt64)]
    /// Records the next `count` packets (all workers); replaces an earlier request.
    func armTrace(count: Int)
    /// The records taken so far, oldest first, each a JSON object; removes them.
    func takeTrace() -> [JSONValue]
    /// A commit changed the FIB (the protection thread learns the next hops).
    func fibCommitted()
    /// Port and next-hop switches since the last call, each an event's params object (`type` port or nextHop).
    /// `engineBusy`: a builder thread owns the engine, so work that reads it (flushing the MACs learned behind a next
    /// hop that went down) waits for the next call without it.
    func protectionEvents(engineBusy: Bool) -> [JSONValue]
    /// The `nextHops` method's result: every next hop's state now.
    func nextHopStates() -> JSONValue
    /// The `bfd` method's result: every BFD session's state, timers and counters.
    func bfdSessions() -> JSONValue
    /// `nextHops.revert`: brings a next hop back from its backup now; the error says why not.
    func revertNextHop(_ name: String) -> (result: JSONValue?, refusal: String?)
    /// A multipoint VNI's counters summed over the workers (`SegmentCounters`, by name), by its counter slot.
    func segmentCounters(slot: Int) -> [(String, UInt64)]
    /// The MACs a multipoint VNI learned (sorted by MAC), and what its learner did.
    func learnedMACs(vni: UInt32) -> [LearnedMAC]
    func learnCounters(vni: UInt32) -> LearnCounters?
    /// Removes learned MACs of `vni`: all, those at a place (`Segment.siteID` / `vtepID`), or one MAC. Returns how many.
    func flushMACs(vni: UInt32, placeID: UInt64?, mac: UInt64?) -> Int
    /// The fast tier's state for `info` (nil: no fast tier).
    func fastTierInfo() -> JSONValue?
}

/// The JSON-RPC methods of the control socket (docs/control-protocol.md), run on the control thread.
public final class ControlService: RPCHandler {
    public static let version = Release.version
    /// Operations one apply call may carry; a resync chunk may carry as many entries.
    public static let maxOperationsPerCall = 100_000
    /// A resync with no chunk for this long is abandoned.
    public static let resyncIdleSeconds = 60.0

    public let engine: FIBEngine
    public weak var dataplane: DataPlaneView?
    public let stateWriter: StateWriter?
    public let bootID: String
    public let startedAt: Double
    var digest: UInt64 = 0
    var sortedKeys: [String: (generation: UInt64, keys: [EntryKey])] = [:]

    struct Resync {
        var session: String
        var owner: Int
        var expectedGeneration: UInt64?
        /// The chunks received so far, joined. A large chunk is appended on its decoder thread (the arrays are
        /// checked out to it: `fibOut`), so the copies of a growing array never land on the control thread.
        var fib = FIBSpec()
        var fibOut = false
        /// ILM, VNI and FTN entries received (the `maxEntries` limit), and all elements.
        var entries = 0, elements = 0
        var chunks = 0
        var lastActivity: Double
    }
    var resync: Resync?
    public private(set) var resyncsAbandoned = 0

    /// A resync of at least this many entries is compiled on a builder thread (`BuilderThread`), so the control
    /// thread keeps serving; nil: always on the control thread (offline tools, unit tests that want it inline).
    public var builderThreshold: Int?
    /// The agent's `builderThreshold`: about 10 ms of compiling (~1 µs per entry) and more.
    public static let builderThreshold = 10_000
    /// Signalled when a builder thread finishes: the control loop watches it and calls `finishCompile()`.
    public let builderDone: Int32
    /// What the control thread shows of the engine while a builder thread owns it.
    struct EngineFacts {
        var generation: UInt64
        var digest: String
        var counts: (nextHops: Int, groups: Int, ilm: Int, vni: Int, ftn: Int)
        var macs: Int
        var commitStats: CommitStats
    }
    /// A resync or large apply being compiled on a builder thread. The engine belongs to it until `finishCompile()`;
    /// requests that need it are answered `busy`.
    final class Compile: @unchecked Sendable {
        let client: RPCClient
        let id: JSONValue
        let durable: Bool
        let replying: Bool
        /// What is compiled, for messages: "a resync of N entries", "an apply of N changes".
        let what: String
        let started: Double
        let facts: EngineFacts
        var clientGone = false
        /// Written by the builder thread; read after `join()`.
        var outcome: Result<JobOutcome, Failure>?
        var thread: BuilderThread?
        init(client: RPCClient, id: JSONValue, durable: Bool, replying: Bool, what: String, facts: EngineFacts) {
            self.client = client; self.id = id; self.durable = durable; self.replying = replying
            self.what = what; self.facts = facts; started = ControlService.now()
        }
    }
    var compiling: Compile?
    /// Tests: runs on the builder thread before it compiles (to hold a compile open).
    var beforeCompile: (@Sendable () -> Void)?
    /// Whether a builder thread owns the engine now (the agent skips what reads it: /metrics' publish, SIGUSR1).
    public var isCompiling: Bool { compiling != nil }
    public private(set) var compiles = 0
    /// The longest time a large compile (a resync or apply of `builderThreshold` or more) held the engine (seconds),
    /// on a builder thread or inline.
    public private(set) var longestCompileSeconds = 0.0

    struct PendingTrace {
        var client: RPCClient
        var id: JSONValue
        var count: Int
        var deadline: Double
        var records: [JSONValue] = []
    }
    var trace: PendingTrace?
    var subscribers: [Int: RPCClient] = [:]
    /// Replies waiting for the state file to reach a generation ("durable": true).
    var durableWaits: [(client: RPCClient, id: JSONValue, generation: UInt64, result: JSONValue)] = []
    /// The state file error last reported in the log (nil: writes succeed).
    var reportedStateError: String?
    /// One event for the agent's log: a message and its key=value metadata.
    public struct LogEvent {
        public var message: String
        public var metadata: [(String, String)]
        public var isError: Bool
    }
    /// Where the service's log events go (the agent's logger); nil: nowhere. Called on the control thread only.
    public var log: ((LogEvent) -> Void)?
    /// What the agent measures of the socket for /metrics: every request (method, ok or error) and every commit's
    /// duration (seconds). Called on the control thread.
    public var observeRequest: ((_ method: String, _ ok: Bool) -> Void)?
    public var observeCommit: ((_ seconds: Double) -> Void)?
    /// Called at the end of every `tick()` (the control loop's turn): where the agent hands state to /metrics.
    public var afterTick: (() -> Void)?
    /// The control loop's longest round (wall, CPU seconds), for `info.controlLoop`; nil without a socket.
    public var controlLoopSteps: (() -> (wall: Double, cpu: Double))?

    /// The control state /metrics reports, read on the control thread.
    public struct MetricsState: Sendable {
        public var generation: UInt64 = 0
        public var entries: [(kind: String, count: Int)] = []
        public var durableGeneration: UInt64?
        public var stateFileFailures: UInt64 = 0
        public var stateFileFailing = false
        public var resyncOpen = false
        public var subscribers = 0
        public init() {}
    }

    public func metricsState() -> MetricsState {
        var m = MetricsState()
        let c = engine.counts
        m.generation = engine.generation
        m.entries = [("nextHop", c.nextHops), ("ecmpGroup", c.groups), ("ilm", c.ilm), ("vni", c.vni), ("ftn", c.ftn),
                     ("mac", engine.staticMACCount)]
        if let w = stateWriter {
            m.durableGeneration = w.durableGeneration
            m.stateFileFailures = UInt64(w.failures)
            m.stateFileFailing = w.lastError != nil
        }
        m.resyncOpen = resync != nil
        m.subscribers = subscribers.count
        return m
    }

    /// The method label of a request: a method of the protocol, or "unknown" (bounded, whatever clients send).
    static func methodLabel(_ m: String) -> String { parameters[m] != nil ? m : "unknown" }
    /// Whether the request being dispatched has an id (a notification gets no reply, so nothing is deferred for it).
    var replying = true

    public init(engine: FIBEngine, stateWriter: StateWriter?) {
        self.engine = engine
        self.stateWriter = stateWriter
        var r = [UInt8](repeating: 0, count: 16)
        if let f = fopen("/proc/sys/kernel/random/uuid", "r") {
            var buf = [CChar](repeating: 0, count: 64)
            if fgets(&buf, 64, f) != nil { r = buf.prefix { $0 != 0 && $0 != 10 }.map { UInt8(bitPattern: $0) } }
            fclose(f)
        }
        bootID = String(decoding: r, as: UTF8.self)
        startedAt = ControlService.now()
        builderDone = mg_eventfd()
        digest = engineDigest()
    }

    static func now() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
    }

    static func hash(_ e: FIBEntry) -> UInt64 { ContentHash.of(e) }

    public var digestText: String {
        let s = String(digest, radix: 16)
        return String(repeating: "0", count: 16 - s.count) + s
    }

    deinit {
        if builderDone >= 0 { close(builderDone) }
    }

    // MARK: RPCHandler

    public func handle(line: ArraySlice<UInt8>, from client: RPCClient) {
        if let threshold = decodeThreshold, line.count >= threshold, builderDone >= 0 {
            // A large request (a resync chunk, a big apply) is parsed and decoded on a thread of its own: the control
            // thread goes on serving; this connection's next request waits behind it, so replies keep their order.
            let d: Decode
            if resync?.owner == client.id, resync?.fibOut == false {
                // The session's owner: likely a chunk, appended to the document on the decoder thread. Swapped out,
                // not copied, so the decoder holds the only reference and appends in place.
                var fib = FIBSpec()
                swap(&fib, &resync!.fib)
                resync!.fibOut = true
                resync!.lastActivity = ControlService.now()
                d = Decode(client: client, line: Array(line), chunk: resync!.chunks, accumulated: consume fib,
                           session: resync!.session, entriesBefore: resync!.entries, maxEntries: engine.maxEntries)
            } else {
                d = Decode(client: client, line: Array(line), chunk: resync?.chunks ?? 0)
            }
            client.deferReply()
            decoding.append(d)
            startDecodes()
            return
        }
        let parsed: Result<JSONValue, JSONSyntaxError>
        do { parsed = .success(try JSONParser.parse(Array(line))) } catch { parsed = .failure(error) }
        handle(parsed, predecoded: nil, from: client)
    }

    /// Requests of at least this many bytes are parsed and decoded on a thread (nil: on the control thread).
    public var decodeThreshold: Int?
    /// The agent's `decodeThreshold`: a request of ~1,000 entries (about 1–2 ms of parsing) and more.
    public static let decodeThreshold = 64 * 1024

    /// What a decoder thread made of a request: for `resync.chunk` and `apply` also their entries, decoded (the
    /// params then hold null in their place, so the control thread never walks or frees the big tree).
    enum Predecoded {
        case chunk(Result<DecodedChunk, ValidationError>)
        case apply(Result<DecodedOperations, Failure>)

        var chunk: Result<DecodedChunk, ValidationError>? { if case .chunk(let c) = self { c } else { nil } }
        var apply: Result<DecodedOperations, Failure>? { if case .apply(let a) = self { a } else { nil } }
    }

    /// A large request being parsed and decoded on a thread of its own.
    final class Decode: @unchecked Sendable {
        let client: RPCClient
        var line: [UInt8]
        let chunk: Int
        var thread: BuilderThread?
        var started = false
        var clientGone = false
        /// Written by the thread; read after it finished.
        var parsed: Result<JSONValue, JSONSyntaxError>?
        var predecoded: Predecoded?
        /// The open resync's document, checked out to this thread when the request comes from its owner (likely a
        /// chunk): a chunk that passes every check is appended here. Checked in again by the control thread.
        var accumulated: FIBSpec?
        let session: String?
        let entriesBefore: Int
        let maxEntries: Int
        init(client: RPCClient, line: [UInt8], chunk: Int, accumulated: FIBSpec? = nil, session: String? = nil,
             entriesBefore: Int = 0, maxEntries: Int = 0) {
            self.client = client; self.line = line; self.chunk = chunk; self.accumulated = accumulated
            self.session = session; self.entriesBefore = entriesBefore; self.maxEntries = maxEntries
        }

        func run() {
            let value: JSONValue
            // A chunk's ILM entries, and an apply's compact ILM operations, decoded straight from the bytes
            // (`CompactRows`, which parses the rest of the request too).
            let fast = CompactRows.parseChunk(line)
            let fastApply = fast == nil ? CompactRows.parseApply(line) : nil
            #if FUZZING
            if let fast { ControlService.checkFastPath(fast, line, chunk: chunk) }
            if let fastApply { ControlService.checkFastApply(fastApply, line) }
            #endif
            if let fast { value = fast.request } else if let fastApply { value = fastApply.request } else {
                do { value = try JSONParser.parse(line) } catch { parsed = .failure(error); return }
            }
            line = []
            parsed = .success(value)
            // Only a well-formed envelope's params are decoded here; anything else goes the usual way.
            guard case .object(var fields) = value,
                  let m = fields.firstIndex(where: { $0.0 == "method" }), case .string(let method) = fields[m].1,
                  let p = fields.firstIndex(where: { $0.0 == "params" }), case .object(var params) = fields[p].1
            else { return }
            let big: [String]
            switch method {
            case "resync.chunk":
                do throws(ValidationError) {
                    var spec = try ControlService.decodeChunk(params, chunk: chunk)
                    if let ilm = fast?.ilm { spec.ilm = ilm }
                    var part = DecodedChunk(spec)
                    if case .string(let sent)? = params.first(where: { $0.0 == "session" })?.1, sent == session,
                       part.count <= ControlService.maxOperationsPerCall, entriesBefore + part.entries <= maxEntries,
                       var fib = accumulated {
                        accumulated = nil   // `fib` is now the only reference: appended in place
                        part.before = (fib.nextHops.count, fib.ecmpGroups.count, fib.ilm.count, fib.vni.count, fib.ftn.count,
                                       fib.macs.count)
                        ControlService.appendChunk(part.part, to: &fib)
                        accumulated = fib
                        part.part = FIBSpec()
                        part.appended = true
                    }
                    predecoded = .chunk(.success(part))
                } catch {
                    predecoded = .chunk(.failure(error))
                }
                big = ControlService.chunkSections
            case "apply":
                do throws(Failure) {
                    if let operations = fastApply?.operations { predecoded = .apply(.success(operations)) } else {
                        predecoded = .apply(.success(try ControlService.decodeOperations(params.first { $0.0 == "operations" }?.1)))
                    }
                } catch {
                    predecoded = .apply(.failure(error))
                }
                big = ["operations"]
            default:
                return
            }
            for i in params.indices where big.contains(params[i].0) { params[i].1 = .null }
            fields[p].1 = .object(params)
            parsed = .success(.object(fields))   // the big tree is freed here, on this thread
        }
    }
    var decoding: [Decode] = []

    /// Decoder threads running at once; more large requests wait their turn (each holds its line and a tree).
    static let maxDecoders = 2

    /// Starts queued decodes while fewer than `maxDecoders` run (one that cannot get a thread runs here).
    func startDecodes() {
        var running = decoding.filter { $0.started && !($0.thread?.isFinished ?? true) }.count
        for d in decoding where !d.started && running < ControlService.maxDecoders {
            d.started = true
            d.thread = BuilderThread(done: builderDone) { d.run() }
            if d.thread == nil {
                d.run()
                mg_eventfd_signal(builderDone)
            } else {
                running += 1
            }
        }
    }

    /// Takes what builder and decoder threads finished (when `builderDone` is readable): the compile's reply, and
    /// each finished decode's request, handled (a connection has at most one in flight, so order is kept).
    public func collectFinishedWork() {
        if builderDone >= 0 { mg_eventfd_drain(builderDone) }
        if let c = compiling, c.thread?.isFinished ?? true { finishCompile() }
        var i = 0
        while i < decoding.count {
            let d = decoding[i]
            guard d.started, d.thread?.isFinished ?? true else { i += 1; continue }
            decoding.remove(at: i)
            d.thread?.join()
            checkIn(d)
            guard !d.clientGone, let parsed = d.parsed else { continue }
            d.client.resumeReplies()
            let chunksBefore = resync?.chunks
            handle(parsed, predecoded: d.predecoded, from: d.client)
            // A chunk is taken exactly when its session counts one more (`resyncChunk`).
            if resync?.chunks == chunksBefore { rollBackIfRefused(d) }
        }
        startDecodes()
    }

    /// At shutdown: finishes the compile and every decode (queued ones here), handling what they bring, so each
    /// request that was read completely is answered.
    public func finishAll() {
        finishCompile()
        for d in decoding where !d.started {
            d.started = true
            d.run()
        }
        for d in decoding { d.thread?.join() }
        collectFinishedWork()
        finishCompile()
    }

    /// A chunk its decoder appended to the session's document but the control thread then refused (a bad envelope,
    /// an unknown parameter): cut back out, so "not taken" holds.
    func rollBackIfRefused(_ d: Decode) {
        guard case .chunk(.success(let c))? = d.predecoded, c.appended, resync?.session == d.session,
              resync?.fibOut == false else { return }
        let b = c.before
        resync!.fib.nextHops.removeLast(resync!.fib.nextHops.count - b.nextHops)
        resync!.fib.ecmpGroups.removeLast(resync!.fib.ecmpGroups.count - b.ecmpGroups)
        resync!.fib.ilm.removeLast(resync!.fib.ilm.count - b.ilm)
        resync!.fib.vni.removeLast(resync!.fib.vni.count - b.vni)
        resync!.fib.ftn.removeLast(resync!.fib.ftn.count - b.ftn)
        resync!.fib.macs.removeLast(resync!.fib.macs.count - b.macs)
    }

    /// Handles `line` as if a decoder thread had parsed and decoded it, on this thread (the request fuzz target
    /// drives both paths through it).
    public func handleDecoded(line: ArraySlice<UInt8>, from client: RPCClient) {
        let d = Decode(client: client, line: Array(line), chunk: resync?.chunks ?? 0)
        d.run()
        if let parsed = d.parsed { handle(parsed, predecoded: d.predecoded, from: client) }
    }

    #if FUZZING
    /// `params.<name>` of a request tree.
    static func param(_ name: String, of tree: JSONValue) -> JSONValue? {
        guard case .object(let fields) = tree, case .object(let params)? = fields.first(where: { $0.0 == "params" })?.1 else { return nil }
        return params.first { $0.0 == name }?.1
    }

    /// The request fuzz target's check of the fast path: what it accepts, the usual parser (and `decodeILM`) accept
    /// too, with the same request and entries.
    static func checkFastPath(_ fast: (request: JSONValue, ilm: [ILMEntrySpec]?), _ line: [UInt8], chunk: Int) {
        guard let tree = try? JSONParser.parse(line) else { preconditionFailure("the fast path took a request the parser refuses") }
        guard let ilm = fast.ilm else {
            precondition(tree == fast.request, "the fast path parsed the request otherwise")
            return
        }
        let slow = try? FIBCodec.section(param("ilm", of: tree), "chunk \(chunk) ilm", FIBCodec.decodeILM)
        precondition(slow == ilm, "the fast path decoded other ILM entries than decodeILM")
        precondition(CompactRows.nulling("ilm", in: tree) == fast.request, "the fast path parsed the rest of the request otherwise")
    }

    /// The same for an apply: the usual parser and `decodeOperations` give the same changes and names.
    static func checkFastApply(_ fast: (request: JSONValue, operations: DecodedOperations?), _ line: [UInt8]) {
        guard let tree = try? JSONParser.parse(line) else { preconditionFailure("the fast path took an apply the parser refuses") }
        guard let f = fast.operations else {
            precondition(tree == fast.request, "the fast path parsed the apply otherwise")
            return
        }
        guard let slow = try? decodeOperations(param("operations", of: tree)) else {
            preconditionFailure("the fast path took an apply the usual path refuses")
        }
        precondition(slow.changes == f.changes && slow.opIndex == f.opIndex
                     && slow.origins.map { "\($0.row)\($0.list)" } == f.origins.map { "\($0.row)\($0.list)" },
                     "the fast path decoded another apply")
        precondition(CompactRows.nulling("operations", in: tree) == fast.request, "the fast path parsed the rest of the apply otherwise")
    }
    #endif

    /// Gives the resync's document back from a decoder (when its session is still open).
    func checkIn(_ d: Decode) {
        guard let fib = d.accumulated else { return }
        d.accumulated = nil
        if let r = resync, r.session == d.session {
            resync!.fib = fib
            resync!.fibOut = false
        }
    }

    func handle(_ parsed: Result<JSONValue, JSONSyntaxError>, predecoded: Predecoded?, from client: RPCClient) {
        var counted = false
        // A request that never reaches a method (bad JSON, bad envelope) counts as method "invalid", an error.
        defer { if !counted { observeRequest?("invalid", false) } }
        let value: JSONValue
        switch parsed {
        case .success(let v): value = v
        case .failure(let error):
            client.send(RPCError.line(id: .null, code: RPCError.parseError, message: "parse error: \(error.description)"))
            return
        }
        guard case .object(let fields) = value else {
            if case .array = value {
                client.send(RPCError.line(id: .null, code: RPCError.invalidRequest,
                                          message: "batch requests are not supported: send one request per line (apply is the atomic unit)"))
            } else {
                client.send(RPCError.line(id: .null, code: RPCError.invalidRequest, message: "a request is a JSON object"))
            }
            return
        }
        var id: JSONValue? = nil
        var method: String?
        var params: JSONValue = .object([])
        var version: String?
        for (k, v) in fields {
            switch k {
            case "id": id = v
            case "method": if case .string(let m) = v { method = m } else { method = "" }
            case "params": params = v
            case "jsonrpc": if case .string(let s) = v { version = s } else { version = "" }
            default: break
            }
        }
        let replyID = id ?? .null
        if let id {
            switch id {
            case .string, .number, .null: break
            default:
                client.send(RPCError.line(id: .null, code: RPCError.invalidRequest, message: "id must be a string, number or null"))
                return
            }
        }
        guard version == "2.0" else {
            client.send(RPCError.line(id: replyID, code: RPCError.invalidRequest, message: "jsonrpc must be \"2.0\""))
            return
        }
        guard let method, !method.isEmpty else {
            client.send(RPCError.line(id: replyID, code: RPCError.invalidRequest, message: "method must be a non-empty string"))
            return
        }
        guard case .object = params else {
            client.send(RPCError.line(id: replyID, code: RPCError.invalidParams, message: "params must be an object"))
            return
        }
        replying = id != nil
        let outcome = dispatch(method, params, client, replyID, predecoded: predecoded)
        counted = true
        if let o = observeRequest {
            if case .failure = outcome { o(ControlService.methodLabel(method), false) } else { o(ControlService.methodLabel(method), true) }
        }
        guard id != nil else { return }   // a notification: no reply
        if let line = ControlService.line(replyID, outcome) { client.send(line) } else { client.deferReply() }
    }

    /// The reply line of an outcome (nil: deferred, answered later).
    static func line(_ id: JSONValue, _ outcome: Outcome) -> String? {
        switch outcome {
        case .result(let r): return RPCError.resultLine(id: id, result: r)
        case .failure(let f): return RPCError.line(id: id, code: f.code, message: f.message, element: f.element, extra: f.extra)
        case .deferred: return nil
        }
    }

    public func disconnected(_ client: RPCClient) {
        if let r = resync, r.owner == client.id { resync = nil; resyncsAbandoned += 1 }
        subscribers[client.id] = nil
        if let t = trace, t.client === client { trace = nil }
        durableWaits.removeAll { $0.client === client }
        if let c = compiling, c.client === client { c.clientGone = true }
        for d in decoding where d.client === client { d.clientGone = true }
    }

    public func tick() {
        tickBody()
        // /metrics reads the engine: while a builder thread owns it, the last published values stay.
        if compiling == nil { afterTick?() }
    }

    private func tickBody() {
        let now = ControlService.now()
        if let r = resync, now - r.lastActivity > ControlService.resyncIdleSeconds { resync = nil; resyncsAbandoned += 1 }
        if var t = trace {
            if let dp = dataplane { t.records += dp.takeTrace() }
            if t.records.count >= t.count || now >= t.deadline {
                let records = Array(t.records.prefix(t.count))
                t.client.sendDeferred(RPCError.resultLine(id: t.id, result: .object([("packets", .array(records))])))
                dataplane?.armTrace(count: 0)
                trace = nil
            } else {
                trace = t
            }
        }
        if let w = stateWriter {
            // After a failed write the writer asks for the whole FIB, once per retry interval.
            if w.retryWanted && compiling == nil { w.submit(engine.intent()) }
            answerDurableWaits(w)
            let error = w.lastError
            if error != reportedStateError {
                if let error {
                    log?(LogEvent(message: "state file write failed: commits are applied but not durable; retrying",
                                  metadata: [("path", w.path), ("error", error),
                                             ("generation", "\(compiling?.facts.generation ?? engine.generation)"),
                                             ("retrySeconds", "\(StateWriter.retrySeconds)"),
                                             ("maxRetrySeconds", "\(StateWriter.maxRetrySeconds)")],
                                  isError: true))
                } else {
                    log?(LogEvent(message: "state file written again",
                                  metadata: [("path", w.path), ("durableGeneration", "\(w.durableGeneration)")],
                                  isError: false))
                }
                reportedStateError = error
            }
        }
        if let dp = dataplane {
            // Link events and next-hop switches, as the protection thread made them (milliseconds, not polling).
            for e in dp.protectionEvents(engineBusy: compiling != nil) {
                notify(e)
                if case .object(let f) = e {
                    let text = f.filter { $0.0 != "type" }.map { ($0.0, $0.1.plainText) }
                    let kind = f.first { $0.0 == "type" }?.1.plainText ?? "event"
                    let state = f.first { $0.0 == "state" }?.1.plainText ?? ""
                    let what = kind == "port" ? "port" : kind == "bfd" ? "BFD session" : kind == "mac" ? "learned MAC" : "next hop"
                    log?(LogEvent(message: "\(what) \(state)", metadata: text, isError: state == "down" || state == "duplicate"))
                }
            }
        }
    }

    /// Answers the durable waits the state writer has settled: written (the result), or failed (an error naming
    /// the generation: it stays applied, and the writer keeps retrying).
    func answerDurableWaits(_ w: StateWriter) {
        guard !durableWaits.isEmpty else { return }
        let status = w.status
        durableWaits.removeAll { wait in
            if wait.generation <= status.durable {
                wait.client.sendDeferred(RPCError.resultLine(id: wait.id, result: wait.result))
                return true
            }
            if wait.generation <= status.failed {
                let f = notDurable(wait.generation, status.error)
                wait.client.sendDeferred(RPCError.line(id: wait.id, code: f.code, message: f.message, extra: f.extra))
                return true
            }
            return false
        }
    }

    /// The error for a durable request whose generation could not be written.
    func notDurable(_ generation: UInt64, _ error: String?) -> Failure {
        Failure(RPCError.notDurable, "generation \(generation) is applied and forwarding, but the state file could not be "
                + "written: \(error ?? "write failed"); the agent retries after \(StateWriter.retrySeconds) s, then "
                + "twice as long each time, up to \(StateWriter.maxRetrySeconds) s (info.stateFileError)",
                extra: [("generation", num(generation))])
    }

    func notify(_ params: JSONValue) {
        let line = JSONWriter.write(.object([("jsonrpc", .string("2.0")), ("method", .string("event")), ("params", params)]))
        for c in subscribers.values { c.send(line) }
    }

    // MARK: dispatch

    struct Failure: Error {
        var code: Int
        var message: String
        var element: String?
        var extra: [(String, JSONValue)] = []
        init(_ code: Int, _ message: String, element: String? = nil, extra: [(String, JSONValue)] = []) {
            self.code = code; self.message = message; self.element = element; self.extra = extra
        }
    }

    enum Outcome {
        case result(JSONValue)
        case failure(Failure)
        case deferred
    }

    func dispatch(_ method: String, _ params: JSONValue, _ client: RPCClient, _ id: JSONValue,
                  predecoded: Predecoded? = nil) -> Outcome {
        do throws(Failure) {
            var r = try Params(params)
            if let allowed = ControlService.parameters[method],
               let extra = r.fields.first(where: { !allowed.contains($0.0) }) {
                throw Failure(RPCError.invalidParams, "params.\(extra.0) is not a parameter of \(method) (it takes: "
                              + (allowed.isEmpty ? "nothing" : allowed.sorted().joined(separator: ", ")) + ")", element: extra.0)
            }
            // While a builder thread owns the engine, only methods that do not read it are served.
            if compiling != nil && ControlService.parameters[method] != nil && !ControlService.servedWhileCompiling.contains(method) {
                try busyIfCompiling()
            }
            let out: Outcome
            switch method {
            case "info": out = .result(info())
            case "apply": out = try apply(&r, client, id, decoded: predecoded?.apply)
            case "resync.begin": out = .result(try resyncBegin(&r, client))
            case "resync.chunk": out = .result(try resyncChunk(&r, client, decoded: predecoded?.chunk))
            case "resync.end": out = try resyncEnd(&r, client, id)
            case "resync.abort": out = .result(try resyncAbort(&r, client))
            case "dump": out = .result(try dump(&r))
            case "counters": out = .result(try counters(&r))
            case "trace": out = try startTrace(&r, client, id)
            case "nextHops":
                guard let dp = dataplane else { throw Failure(RPCError.internalError, "no live data plane: next hops have no state") }
                out = .result(dp.nextHopStates())
            case "nextHops.revert":
                guard let dp = dataplane else { throw Failure(RPCError.internalError, "no live data plane: next hops have no state") }
                let name = try r.string("name")
                let r = dp.revertNextHop(name)
                if let refusal = r.refusal { throw Failure(RPCError.invalidParams, refusal, element: "name") }
                out = .result(r.result ?? .null)
            case "bfd":
                guard let dp = dataplane else { throw Failure(RPCError.internalError, "no live data plane: no BFD sessions") }
                out = .result(dp.bfdSessions())
            case "macs": out = .result(try macs(&r))
            case "macs.flush": out = .result(try flushMACs(&r))
            case "events.subscribe":
                subscribers[client.id] = client
                out = .result(.object([("subscribed", .bool(true)),
                                       ("generation", num(compiling?.facts.generation ?? engine.generation))]))
            default:
                throw Failure(RPCError.methodNotFound, "method \"\(method)\" does not exist (info, apply, resync.begin, "
                              + "resync.chunk, resync.end, resync.abort, dump, counters, nextHops, nextHops.revert, bfd, macs, trace, events.subscribe)")
            }
            return out
        } catch {
            return .failure(error)
        }
    }

    /// Methods answered while a resync compiles on a builder thread (`info` from the facts before it).
    static let servedWhileCompiling: Set<String> = ["info", "events.subscribe", "trace", "bfd", "nextHops.revert"]

    static let chunkSections = ["nextHops", "ecmpGroups", "ilm", "vni", "ftn", "macs"]

    static let parameters: [String: Set<String>] = [
        "info": [], "apply": ["operations", "expectedGeneration", "durable"],
        "resync.begin": ["expectedGeneration"],
        "resync.chunk": ["session", "nextHops", "ecmpGroups", "ilm", "vni", "ftn", "macs"],
        "resync.end": ["session", "durable"], "resync.abort": ["session"],
        "dump": ["kind", "cursor", "limit"], "counters": ["kind", "cursor", "limit"],
        "trace": ["count", "timeoutMs"], "events.subscribe": [], "nextHops": [], "nextHops.revert": ["name"], "bfd": [],
        "macs": ["vni"],
        "macs.flush": ["vni", "site", "vtep", "mac"],
    ]

    func num<T: BinaryInteger>(_ v: T) -> JSONValue { .number(String(v)) }

    func info() -> JSONValue {
        let facts = compiling?.facts ?? EngineFacts(generation: engine.generation, digest: digestText, counts: engine.counts,
                                                    macs: engine.staticMACCount, commitStats: engine.commitStats)
        let c = facts.counts
        var ports: [JSONValue] = []
        if let dp = dataplane {
            for p in dp.portStates() {
                var f: [(String, JSONValue)] = [("name", .string(p.name)), ("interface", .string(p.interface)),
                                                ("role", .string(p.role)), ("mode", .string(p.mode))]
                f.append(("state", .string(p.up.map { $0 ? "up" : "down" } ?? "unknown")))
                ports.append(.object(f))
            }
        } else {
            for p in engine.config.ports {
                ports.append(.object([("name", .string(p.name)), ("interface", .string(p.interface ?? "")),
                                      ("role", .string(p.role.name)), ("state", .string("unknown"))]))
            }
        }
        var f: [(String, JSONValue)] = [
            ("version", .string(ControlService.version)), ("bootId", .string(bootID)), ("pid", num(getpid())),
            ("uptimeSeconds", .number(String(Int(ControlService.now() - startedAt)))),
            ("generation", num(facts.generation)), ("digest", .string(facts.digest)),
        ]
        if let w = stateWriter {
            f.append(("durableGeneration", num(w.durableGeneration)))
            f.append(("stateFile", .string(w.path)))
            if let e = w.lastError { f.append(("stateFileError", .string(e))) }
            f.append(("stateFileFailures", num(w.failures)))
            let n = w.counts
            f.append(("stateFileWrites", .object([("snapshots", num(n.snapshots)), ("journalRecords", num(n.records)),
                                                  ("journalBytes", num(n.journalBytes)),
                                                  ("snapshotBytes", num(n.snapshotBytes))])))
        }
        let cs = facts.commitStats
        func triple<T: BinaryInteger>(_ t: (p50: T, p99: T, max: T)) -> JSONValue {
            .object([("p50", num(t.p50)), ("p99", num(t.p99)), ("max", num(t.max))])
        }
        f.append(("commitStats", .object([("commits", num(cs.commits)), ("window", num(CommitStats.window)),
                                          ("buildNs", triple(cs.buildNs)), ("graceNs", triple(cs.graceNs)),
                                          ("totalNs", triple(cs.totalNs)), ("tableBytes", triple(cs.bytesCopied))])))
        f += [
            ("entries", .object([("nextHops", num(c.nextHops)), ("ecmpGroups", num(c.groups)), ("ilm", num(c.ilm)),
                                 ("vni", num(c.vni)), ("ftn", num(c.ftn)), ("macs", num(facts.macs))])),
            ("resyncOpen", .bool(resync != nil)),
            ("compiling", compiling.map { c in
                .object([("what", .string(c.what)), ("milliseconds", num(Int((ControlService.now() - c.started) * 1000)))])
            } ?? .null),
            ("controlLoop", controlLoopSteps.map { f in
                let l = f()
                return .object([("longestStepMs", .number(String(Double(Int(l.wall * 100_000)) / 100))),
                                ("longestStepCpuMs", .number(String(Double(Int(l.cpu * 100_000)) / 100)))])
            } ?? .null),
            ("compiles", .object([("onBuilderThread", num(compiles)),
                                  ("longestMilliseconds", num(Int((longestCompileSeconds * 1000).rounded())))])),
            ("ports", .array(ports)),
            ("fastTier", dataplane?.fastTierInfo() ?? .null),
            ("limits", .object([("maxMessageBytes", num(RPCServer.maxMessageBytes)),
                                ("maxOperationsPerCall", num(ControlService.maxOperationsPerCall)),
                                ("maxEntries", num(engine.maxEntries)),
                                ("resyncIdleSeconds", num(Int(ControlService.resyncIdleSeconds)))])),
        ]
        return .object(f)
    }

    // MARK: apply

    /// One operation of `apply`: one change, or in the compact form many of one op and kind — `add`/`replace` with
    /// `"columns"` and `"rows"` (each row an entry, as in resync.chunk), `delete` with `"keys"`.
    static func decodeChanges(_ v: JSONValue, _ path: String, into changes: inout [FIBChange],
                       origins: inout [(row: Int, list: StaticString)]) throws(Failure) {
        do throws(ValidationError) {
            var r = try ObjectReader(v, path: path)
            let op = try r.string("op")
            let kind = try r.string("kind")
            guard ControlService.kinds.contains(kind) else {
                throw ValidationError("\(path).kind", "\"\(kind)\" is not nextHop, ecmpGroup, ilm, vni, ftn or mac")
            }
            switch op {
            case "add", "replace":
                if let columns = r.value("columns") {
                    let table: JSONValue = .object([("columns", columns), ("rows", r.value("rows") ?? .null)])
                    var row = 0
                    try FIBCodec.forEachElement(table, path) { (e, p) throws(ValidationError) in
                        let entry = try FIBCodec.decodeEntry(kind: kind, e, p)
                        changes.append(op == "add" ? .add(entry) : .replace(entry))
                        origins.append((row, "rows"))
                        row += 1
                    }
                } else {
                    let e = try FIBCodec.decodeEntry(kind: kind, try r.required("entry"), "\(path).entry")
                    changes.append(op == "add" ? .add(e) : .replace(e))
                    origins.append((-1, ""))
                }
            case "delete":
                if let keys = r.value("keys") {
                    guard case .array(let list) = keys else {
                        throw ValidationError("\(path).keys", "expected an array, got \(keys.typeName)")
                    }
                    for (i, k) in list.enumerated() {
                        changes.append(.delete(try FIBCodec.decodeKey(kind: kind, k, "\(path).keys[\(i)]")))
                        origins.append((i, "keys"))
                    }
                } else {
                    changes.append(.delete(try FIBCodec.decodeKey(kind: kind, try r.required("key"), "\(path).key")))
                    origins.append((-1, ""))
                }
            default:
                throw ValidationError("\(path).op", "\"\(op)\" is not add, replace or delete")
            }
            try r.rejectUnknownKeys()
        } catch {
            throw Failure(RPCError.invalidEntry, error.description, element: error.element, extra: ControlService.reason(error.kind))
        }
    }

    func busyIfResync(_ client: RPCClient) throws(Failure) {
        if let r = resync {
            throw Failure(RPCError.busy, "a resync is open (session \(r.session), \(r.owner == client.id ? "yours" : "another client's")); "
                          + "writes wait until it ends or is abandoned")
        }
    }

    /// An apply's operations decoded: the changes, and where each came from (its operation, and its row or key in
    /// a compact one) for error names.
    struct DecodedOperations {
        var changes: [FIBChange] = []
        var opIndex: [Int] = []
        var origins: [(row: Int, list: StaticString)] = []
    }

    /// Decodes `apply`'s operations; pure, so a decoder thread may run it.
    static func decodeOperations(_ value: JSONValue?) throws(Failure) -> DecodedOperations {
        guard let value else { throw Failure(RPCError.invalidParams, "params.operations is required", element: "operations") }
        guard case .array(let ops) = value else {
            throw Failure(RPCError.invalidParams, "params.operations must be an array, not \(value.typeName)", element: "operations")
        }
        guard ops.count <= ControlService.maxOperationsPerCall else {
            throw Failure(RPCError.limitExceeded, "\(ops.count) operations; at most \(ControlService.maxOperationsPerCall) per call (use resync for more)")
        }
        var d = DecodedOperations()
        d.changes.reserveCapacity(ops.count)
        for (i, v) in ops.enumerated() {
            try decodeChanges(v, "operations[\(i)]", into: &d.changes, origins: &d.origins)
            d.opIndex += repeatElement(i, count: d.changes.count - d.opIndex.count)
            guard d.changes.count <= ControlService.maxOperationsPerCall else {
                throw Failure(RPCError.limitExceeded, "more than \(ControlService.maxOperationsPerCall) operations in one call (use resync for more)")
            }
        }
        return d
    }

    func apply(_ r: inout Params, _ client: RPCClient, _ id: JSONValue,
               decoded: Result<DecodedOperations, Failure>?) throws(Failure) -> Outcome {
        try busyIfResync(client)
        let operations = r.value("operations")
        let d: DecodedOperations
        if let decoded { d = try decoded.get() } else { d = try ControlService.decodeOperations(operations) }
        let expected = try r.optionalUInt64("expectedGeneration")
        let durable = try r.optionalBool("durable") ?? false
        let changes = d.changes, opIndex = d.opIndex, origins = d.origins
        // No operations, no commit: the generation stays (with durable, a barrier for the current generation).
        if changes.isEmpty {
            let g = try unchanged(expected: expected)
            return awaitDurable(durable, client, id, g, .object([("generation", num(g)), ("applied", num(0))]))
        }
        let old = digest
        return try runEngineJob(size: changes.count, what: "an apply of \(changes.count) changes", client, id,
                                durable: durable) { [self] () throws(Failure) in
            let c = try applyToEngine(changes, expected: expected, digest: old, names: { i, c in
                let o = origins[i]
                let sub = o.row < 0 ? "" : ".\(o.list)[\(o.row)]"
                return "operations[\(opIndex[i])]\(sub) (\(c.entryKey))"
            })
            return JobOutcome(commit: c, generation: c.generation, counts: [("applied", changes.count)])
        }
    }

    /// The current generation, for a call that changes nothing (after checking `expected`).
    func unchanged(expected: UInt64?) throws(Failure) -> UInt64 {
        if let e = expected, e != engine.generation {
            throw Failure(RPCError.staleGeneration, "the FIB is at generation \(engine.generation), not \(e); read it again "
                          + "and retry", element: "expectedGeneration")
        }
        return engine.generation
    }

    /// The reply now, or (durable) once the state file holds generation `g` or its write fails.
    func awaitDurable(_ durable: Bool, _ client: RPCClient, _ id: JSONValue, _ g: UInt64, _ result: JSONValue,
                      replying: Bool? = nil) -> Outcome {
        guard durable, replying ?? self.replying, let w = stateWriter else { return .result(result) }
        let status = w.status
        if g <= status.durable { return .result(result) }
        if g <= status.failed { return .failure(notDurable(g, status.error)) }
        durableWaits.append((client, id, g, result))
        return .deferred
    }

    /// What a commit did to the engine, computed where the engine is (the control thread, or a builder thread for a
    /// large resync); `finishCommit` does the rest on the control thread.
    struct CommitResult {
        var generation: UInt64
        var digest: UInt64
        /// The keys a small commit touched, with their entries after it (a journal record); empty for a large one.
        var touched: [(key: EntryKey, entry: FIBEntry?)] = []
        /// Written as a snapshot (a resync-sized commit), not a journal record.
        var snapshot: Bool
        var seconds: Double
    }

    /// Applies through the engine, keeping the digest, the state file and event subscribers up to date.
    func commit(_ changes: [FIBChange], expected: UInt64?, names: (Int, FIBChange) -> String) throws(Failure) -> UInt64 {
        finishCommit(try applyToEngine(changes, expected: expected, digest: digest, names: names))
    }

    /// The engine's part of `commit`: touches only the engine, so a builder thread may run it.
    /// `document`: what the FIB equals after the commit (a resync's), so a large commit's digest is summed from it on
    /// a second thread while the engine works.
    func applyToEngine(_ changes: [FIBChange], expected: UInt64?, digest old: UInt64, document: FIBSpec? = nil,
                       names: (Int, FIBChange) -> String) throws(Failure) -> CommitResult {
        // A commit that rewrites much of the FIB (a resync) is summed again after it and written as a snapshot; any
        // other updates the digest by its keys' hashes before and after and becomes one journal record, so its cost
        // follows its own size, not the FIB's.
        let large = changes.count > StateWriter.largeCommit && changes.count * 2 > engine.entryCount
        var before: [EntryKey: UInt64] = [:]
        if !large {
            before.reserveCapacity(changes.count)
            for c in changes {
                let k = c.entryKey
                if before[k] == nil { before[k] = engine.entry(k).map(ControlService.hash) ?? 0 }
            }
        }
        let g: UInt64
        let started = ControlService.now()
        let summed = large ? document.map { doc in ParallelSum { ControlService.documentDigest(doc) } } : nil
        do { g = try engine.apply(changes, expectedGeneration: expected, elementName: names) } catch {
            _ = summed?.value
            throw ControlService.failure(error)
        }
        var result = CommitResult(generation: g, digest: old, snapshot: large, seconds: 0)
        if large {
            result.digest = summed?.value ?? engineDigest()
        } else {
            result.touched.reserveCapacity(before.count)
            for (k, old) in before {
                result.digest &-= old
                let e = engine.entry(k)
                if let e { result.digest &+= ControlService.hash(e) }
                result.touched.append((k, e))
            }
        }
        result.seconds = ControlService.now() - started
        return result
    }

    /// The digest a FIB equal to `fib` has (what `engineDigest` gives after a resync to it).
    static func documentDigest(_ fib: FIBSpec) -> UInt64 {
        var sum: UInt64 = 0
        for e in fib.nextHops { sum &+= hash(.nextHop(e)) }
        for e in fib.ecmpGroups { sum &+= hash(.ecmpGroup(e)) }
        for e in fib.ilm { sum &+= hash(.ilm(e)) }
        for e in fib.vni { sum &+= hash(.vni(e)) }
        for e in fib.ftn { sum &+= hash(.ftn(e)) }
        for e in fib.macs { sum &+= hash(.mac(e)) }
        return sum
    }

    /// The order-independent sum of every entry's hash.
    func engineDigest() -> UInt64 {
        var sum: UInt64 = 0
        engine.forEachEntry { sum &+= ControlService.hash($0) }
        return sum
    }

    /// The control thread's part of a commit: the digest, the state file, the data plane and event subscribers.
    @discardableResult
    func finishCommit(_ r: CommitResult) -> UInt64 {
        digest = r.digest
        sortedKeys.removeAll()
        dataplane?.fibCommitted()
        if let w = stateWriter {
            // Small commits become journal records; large ones (a resync) and the writer's requests, snapshots.
            if r.snapshot || w.nextWriteNeedsSnapshot { w.submit(engine.intent()) } else { w.submit(generation: r.generation, changes: r.touched) }
        }
        notify(.object([("type", .string("generation")), ("generation", num(r.generation)), ("digest", .string(digestText))]))
        observeCommit?(r.seconds)
        return r.generation
    }

    /// The engine's part of a validated document's commit into an empty engine (`FIBEngine.installFresh`).
    func installFreshInEngine(_ fib: FIBSpec, expected: UInt64?) throws(Failure) -> CommitResult {
        let started = ControlService.now()
        // The digest of the FIB after it is the document's: summed on a second thread while the tables are built.
        let digest = ParallelSum { ControlService.documentDigest(fib) }
        let g: UInt64
        do { g = try engine.installFresh(fib, expectedGeneration: expected) } catch {
            _ = digest.value
            throw ControlService.failure(error)
        }
        let sum = digest.value
        return CommitResult(generation: g, digest: sum, snapshot: true, seconds: ControlService.now() - started)
    }

    static func failure(_ e: TransactionError) -> Failure {
        let code: Int
        switch e.code {
        case .invalid: code = RPCError.invalidEntry
        case .notFound: code = RPCError.notFound
        case .exists: code = RPCError.exists
        case .referenced: code = RPCError.referenced
        case .staleGeneration: code = RPCError.staleGeneration
        case .tooLarge: code = RPCError.limitExceeded
        }
        return Failure(code, e.description, element: e.element.isEmpty ? nil : e.element,
                       extra: e.code == .invalid ? ControlService.reason(e.kind) : [])
    }

    /// An invalid entry's `data.reason`: the kind of mistake (docs/control-protocol.md, "Errors").
    static func reason(_ kind: ValidationError.Kind) -> [(String, JSONValue)] { [("reason", .string(kind.rawValue))] }

    // MARK: resync

    func resyncBegin(_ r: inout Params, _ client: RPCClient) throws(Failure) -> JSONValue {
        try busyIfResync(client)
        let expected = try r.optionalUInt64("expectedGeneration")
        if let e = expected, e != engine.generation {
            throw Failure(RPCError.staleGeneration, "the FIB is at generation \(engine.generation), not \(e)", element: "expectedGeneration")
        }
        var bytes = [UInt8](repeating: 0, count: 8)
        if let f = fopen("/dev/urandom", "rb") { _ = fread(&bytes, 1, 8, f); fclose(f) }
        let session = bytes.map { String($0, radix: 16) }.joined()
        resync = Resync(session: session, owner: client.id, expectedGeneration: expected, lastActivity: ControlService.now())
        return .object([("session", .string(session)), ("generation", num(engine.generation)),
                        ("maxEntriesPerChunk", num(ControlService.maxOperationsPerCall))])
    }

    func ownedResync(_ r: inout Params, _ client: RPCClient) throws(Failure) -> Resync {
        let session = try r.string("session")
        guard let s = resync, s.session == session else {
            throw Failure(RPCError.noSession, "no open resync session \(session) (never begun, ended, abandoned or timed out)", element: "session")
        }
        guard s.owner == client.id else {
            throw Failure(RPCError.busy, "resync session \(session) belongs to another connection", element: "session")
        }
        return s
    }

    /// The sections of a resync chunk's params decoded; pure, so a decoder thread may run it. `chunk` names errors.
    static func decodeChunk(_ fields: [(String, JSONValue)], chunk: Int) throws(ValidationError) -> FIBSpec {
        func value(_ k: String) -> JSONValue? { fields.first { $0.0 == k }?.1 }
        var part = FIBSpec()
        // Each section: an array of objects or the compact {"columns", "rows"} form (docs/control-protocol.md).
        part.nextHops = try FIBCodec.section(value("nextHops"), "chunk \(chunk) nextHops", FIBCodec.decodeNextHop)
        part.ecmpGroups = try FIBCodec.section(value("ecmpGroups"), "chunk \(chunk) ecmpGroups", FIBCodec.decodeGroup)
        part.ilm = try FIBCodec.section(value("ilm"), "chunk \(chunk) ilm", FIBCodec.decodeILM)
        part.vni = try FIBCodec.section(value("vni"), "chunk \(chunk) vni", FIBCodec.decodeVNI)
        part.ftn = try FIBCodec.section(value("ftn"), "chunk \(chunk) ftn", FIBCodec.decodeFTN)
        part.macs = try FIBCodec.section(value("macs"), "chunk \(chunk) macs", FIBCodec.decodeMAC)
        return part
    }

    /// A decoded chunk: its entries (empty once appended), whether its decoder thread already appended them to the
    /// session's document (only when every check below passes), and its counts.
    struct DecodedChunk {
        var part: FIBSpec
        var appended = false
        /// The document's array lengths before an append (to cut a refused chunk back out).
        var before = (nextHops: 0, ecmpGroups: 0, ilm: 0, vni: 0, ftn: 0, macs: 0)
        let count: Int
        /// ILM, VNI and FTN entries (the `maxEntries` limit).
        let entries: Int
        init(_ part: FIBSpec) {
            self.part = part
            count = part.nextHops.count + part.ecmpGroups.count + part.ilm.count + part.vni.count + part.ftn.count + part.macs.count
            entries = part.ilm.count + part.vni.count + part.ftn.count
        }
    }

    static func appendChunk(_ part: FIBSpec, to fib: inout FIBSpec) {
        fib.nextHops += part.nextHops; fib.ecmpGroups += part.ecmpGroups; fib.ilm += part.ilm
        fib.vni += part.vni; fib.ftn += part.ftn; fib.macs += part.macs
    }

    func resyncChunk(_ r: inout Params, _ client: RPCClient, decoded: Result<DecodedChunk, ValidationError>?) throws(Failure) -> JSONValue {
        // Only counts are read from the session here: a copy of it would share its arrays, and appending while a copy
        // is alive copies everything received so far (once per chunk: quadratic in the resync's size).
        let chunk = try ownedResync(&r, client).chunks
        for k in ControlService.chunkSections { _ = r.value(k) }
        let part: DecodedChunk
        do throws(ValidationError) {
            if let decoded { part = try decoded.get() } else { part = DecodedChunk(try ControlService.decodeChunk(r.fields, chunk: chunk)) }
        } catch {
            throw Failure(RPCError.invalidEntry, error.description + " (the chunk was not taken; the session stays open)", element: error.element,
                          extra: ControlService.reason(error.kind))
        }
        let count = part.count
        guard count <= ControlService.maxOperationsPerCall else {
            throw Failure(RPCError.limitExceeded, "\(count) entries in one chunk; at most \(ControlService.maxOperationsPerCall)")
        }
        let total = resync!.entries + part.entries
        let elements = resync!.elements + count
        guard total <= engine.maxEntries else {
            throw Failure(RPCError.limitExceeded, "the resync would hold \(total) entries; the limit is \(engine.maxEntries)")
        }
        if !part.appended { ControlService.appendChunk(part.part, to: &resync!.fib) }
        resync!.entries = total
        resync!.elements = elements
        resync!.chunks += 1
        resync!.lastActivity = ControlService.now()
        return .object([("chunk", num(chunk)), ("received", num(count)), ("total", num(elements))])
    }

    /// What an engine job (a resync's end, an apply) did: its commit (nil when nothing changed), the generation,
    /// and the counts its reply carries after the generation.
    struct JobOutcome {
        var commit: CommitResult?
        var generation: UInt64
        var counts: [(String, Int)]
    }

    /// Runs `job` (work on the engine) and answers with its outcome: on a builder thread when it is large (`size`
    /// ≥ `builderThreshold`), so the control thread goes on serving and the reply follows when the job is published
    /// (`finishCompile`); otherwise here.
    func runEngineJob(size: Int, what: String, _ client: RPCClient, _ id: JSONValue, durable: Bool,
                      _ job: @escaping () throws(Failure) -> JobOutcome) throws(Failure) -> Outcome {
        if let threshold = builderThreshold, size >= threshold, builderDone >= 0 {
            let facts = EngineFacts(generation: engine.generation, digest: digestText, counts: engine.counts,
                                    macs: engine.staticMACCount, commitStats: engine.commitStats)
            let c = Compile(client: client, id: id, durable: durable, replying: replying, what: what, facts: facts)
            let hook = beforeCompile
            c.thread = BuilderThread(done: builderDone) {
                hook?()
                do throws(Failure) { c.outcome = .success(try job()) } catch { c.outcome = .failure(error) }
            }
            if c.thread != nil {
                compiling = c
                return .deferred
            }
        }
        let started = ControlService.now()
        let outcome = try job()
        if size >= (builderThreshold ?? ControlService.builderThreshold) {
            longestCompileSeconds = max(longestCompileSeconds, ControlService.now() - started)
        }
        return finishJob(outcome, client, id, durable: durable, replying: replying)
    }

    func resyncEnd(_ r: inout Params, _ client: RPCClient, _ id: JSONValue) throws(Failure) -> Outcome {
        let s = try ownedResync(&r, client)
        let durable = try r.optionalBool("durable") ?? false
        resync = nil   // ends either way: an invalid resync changes nothing
        let entries = s.elements, expected = s.expectedGeneration
        let old = digest
        // The job takes the resync out of the box, so it is freed on the builder thread.
        let box = Held(consume s)
        return try runEngineJob(size: entries, what: "a resync of \(entries) entries", client, id, durable: durable) { [self] () throws(Failure) in
            let fib = box.take()?.fib ?? FIBSpec()
            return try compileResync(fib, expected: expected, digest: old)
        }
    }

    /// The engine's part of `resync.end`: validates the document and commits what differs. Touches only the engine
    /// (and reads `fib`), so a builder thread may run it.
    func compileResync(_ fib: FIBSpec, expected: UInt64?, digest old: UInt64) throws(Failure) -> JobOutcome {
        do throws(ValidationError) { try Control.validateDocument(fib, config: engine.config) } catch {
            throw Failure(RPCError.invalidEntry, error.description + " (the resync changed nothing)", element: error.element,
                          extra: ControlService.reason(error.kind))
        }
        if engine.isEmpty && !(fib.nextHops.isEmpty && fib.ecmpGroups.isEmpty && fib.ilm.isEmpty && fib.vni.isEmpty && fib.ftn.isEmpty) {
            // Into an empty FIB (a first start, a controller's first resync): no diff and no staging.
            let c = try installFreshInEngine(fib, expected: expected)
            let added = fib.nextHops.count + fib.ecmpGroups.count + fib.ilm.count + fib.vni.count + fib.ftn.count + fib.macs.count
            return JobOutcome(commit: c, generation: c.generation,
                              counts: [("added", added), ("replaced", FIBEngine.nextHopPhases(fib).late.count), ("deleted", 0)])
        }
        let changes = engine.diff(to: fib)
        var added = 0, replaced = 0, deleted = 0
        for c in changes {
            switch c { case .add: added += 1; case .replace: replaced += 1; case .delete: deleted += 1 }
        }
        var o = JobOutcome(commit: nil, generation: 0, counts: [("added", added), ("replaced", replaced), ("deleted", deleted)])
        // Nothing differs: no commit, the generation stays (the counts say the resync found the FIB as sent).
        if changes.isEmpty {
            o.generation = try unchanged(expected: expected)
        } else {
            let c = try applyToEngine(changes, expected: expected, digest: old, document: fib, names: { _, c in "\(c.entryKey)" })
            o.commit = c
            o.generation = c.generation
        }
        return o
    }

    /// The control thread's part of an engine job: finishes the commit and answers (now, or once durable).
    func finishJob(_ o: JobOutcome, _ client: RPCClient, _ id: JSONValue, durable: Bool, replying: Bool) -> Outcome {
        if let c = o.commit { finishCommit(c) }
        let result: JSONValue = .object([("generation", num(o.generation))] + o.counts.map { ($0.0, num($0.1)) })
        return awaitDurable(durable, client, id, o.generation, result, replying: replying)
    }

    /// Takes the builder thread's result (when `builderDone` is readable, or at shutdown: then it waits) and sends
    /// the deferred reply of its `resync.end` or `apply`. Nothing to do when no compile is running.
    public func finishCompile() {
        if builderDone >= 0 { mg_eventfd_drain(builderDone) }
        guard let c = compiling else { return }
        c.thread?.join()
        compiling = nil
        compiles += 1
        longestCompileSeconds = max(longestCompileSeconds, ControlService.now() - c.started)
        let out: Outcome
        switch c.outcome {
        case .success(let o)?:
            // A notification, or a client gone meanwhile, gets no reply and so no durable wait either.
            out = finishJob(o, c.client, c.id, durable: c.durable, replying: c.replying && !c.clientGone)
        case .failure(let f)?: out = .failure(f)
        case nil: out = .failure(Failure(RPCError.internalError, "the builder thread ended without a result"))
        }
        guard !c.clientGone, c.replying else { return }
        // Deferred: a durable wait, answered when the state file has the generation.
        if let line = ControlService.line(c.id, out) { c.client.sendDeferred(line) }
    }

    /// The answer to a request that needs the engine while a builder thread owns it.
    func busyIfCompiling() throws(Failure) {
        guard let c = compiling else { return }
        let ms = Int((ControlService.now() - c.started) * 1000)
        throw Failure(RPCError.busy, "\(c.what) is being compiled (for \(ms) ms); the FIB stays at "
                      + "generation \(c.facts.generation) until it is published: retry when info.compiling is null again")
    }

    func resyncAbort(_ r: inout Params, _ client: RPCClient) throws(Failure) -> JSONValue {
        let s = try ownedResync(&r, client)
        resync = nil
        return .object([("aborted", .string(s.session)), ("generation", num(engine.generation))])
    }

    // MARK: dump and counters

    func keys(_ kind: String) -> [EntryKey] {
        if let c = sortedKeys[kind], c.generation == engine.generation { return c.keys }
        let k = engine.keys(of: kind)
        sortedKeys[kind] = (engine.generation, k)
        return k
    }

    static let kinds = ["nextHop", "ecmpGroup", "ilm", "vni", "ftn", "mac"]

    /// The page of `kind` after the cursor: (keys, next cursor).
    func page(_ r: inout Params) throws(Failure) -> (kind: String, keys: ArraySlice<EntryKey>, next: JSONValue) {
        let kind = try r.string("kind")
        guard ControlService.kinds.contains(kind) else {
            throw Failure(RPCError.invalidParams, "kind \"\(kind)\" is not nextHop, ecmpGroup, ilm, vni, ftn or mac", element: "kind")
        }
        let limit = Int(try r.optionalUInt64("limit") ?? 1000)
        guard (1...100_000).contains(limit) else { throw Failure(RPCError.invalidParams, "limit must be 1–100000", element: "limit") }
        let cursor = Int(try r.optionalUInt64("cursor") ?? 0)
        let all = keys(kind)
        let start = min(cursor, all.count)
        let end = min(start + limit, all.count)
        return (kind, all[start..<end], end < all.count ? num(end) : .null)
    }

    func dump(_ r: inout Params) throws(Failure) -> JSONValue {
        let p = try page(&r)
        let entries: [JSONValue] = p.keys.compactMap { engine.entry($0).map(FIBCodec.encode) }
        return .object([("generation", num(engine.generation)), ("kind", .string(p.kind)), ("entries", .array(entries)),
                        ("next", p.next)])
    }

    func counters(_ r: inout Params) throws(Failure) -> JSONValue {
        var f: [(String, JSONValue)] = [("generation", num(engine.generation))]
        if let dp = dataplane {
            f.append(("ports", dp.portCounters()))
            f.append(("drops", .object(dp.dropCounters().map { ($0.0, num($0.1)) })))
        }
        if r.has("kind") {
            let p = try page(&r)
            var entries: [JSONValue] = []
            for k in p.keys {
                guard let c = engine.counters(k) else { continue }
                entries.append(.object([("key", ControlService.keyJSON(k)), ("packets", num(c.packets)), ("bytes", num(c.bytes))]))
            }
            f.append(("kind", .string(p.kind)))
            f.append(("entries", .array(entries)))
            f.append(("next", p.next))
        }
        return .object(f)
    }

    static func keyJSON(_ k: EntryKey) -> JSONValue {
        switch k {
        case .nextHop(let n), .ecmpGroup(let n): return .string(n)
        case .ilm(let l): return .number(String(l))
        case .vni(let v): return .number(String(v))
        case .ftn(let s):
            let colon = s.firstIndex(of: ":")!
            return .object([("vrf", .string(String(s[..<colon]))), ("prefix", .string(String(s[s.index(after: colon)...])))])
        case .mac(let m): return .object([("vni", .number(String(m.vni))), ("mac", .string(MACAddress(value: m.mac).description))])
        }
    }

    /// `macs`: each multipoint VNI (or the one asked for) with its places, counters and static MACs.
    func macs(_ r: inout Params) throws(Failure) -> JSONValue {
        let only = try r.optionalUInt64("vni")
        var list: [JSONValue] = []
        for v in engine.multipointVNIs where only == nil || UInt64(v) == only {
            guard case .vni(let e)? = engine.entry(.vni(v)), let m = e.multipoint, let slot = engine.segmentSlot(vni: v) else { continue }
            var f: [(String, JSONValue)] = [("vni", num(v)), ("localVtep", .string(m.localVTEP.description)),
                                            ("bumPerSecond", num(m.bumPerSecond)),
                                            ("sites", .array(m.sites.map { .string($0.name) })),
                                            ("vteps", .array(m.vteps.map { .string($0.address.description) }))]
            let l = m.learning
            f.append(("learning", .object([("enabled", .bool(l.enabled)), ("macLimit", num(l.macLimit)),
                                           ("agingSeconds", num(l.agingSeconds)), ("moveLimit", num(l.moveLimit)),
                                           ("moveWindowSeconds", num(l.moveWindowSeconds)), ("holdSeconds", num(l.holdSeconds))])))
            if let dp = dataplane {
                var counters = dp.segmentCounters(slot: slot)
                if let c = dp.learnCounters(vni: v) {
                    counters += [("learned", c.learned), ("refreshed", c.refreshed), ("moved", c.moved),
                                 ("duplicate", c.duplicate), ("overLimit", c.overLimit), ("aged", c.aged), ("flushed", c.flushed)]
                }
                f.append(("counters", .object(counters.map { ($0.0, num($0.1)) })))
            }
            var entries: [JSONValue] = engine.staticMACs(vni: v).map { e in
                var o: [(String, JSONValue)] = [("mac", .string(e.mac.description)), ("type", .string("static"))]
                if let s = e.site { o.append(("site", .string(s))) }
                if let t = e.vtep { o.append(("vtep", .string(t.description))) }
                return .object(o)
            }
            // Learned MACs after the static ones (a static MAC wins over a learned one of the same address).
            for e in dataplane?.learnedMACs(vni: v) ?? [] {
                var o: [(String, JSONValue)] = [("mac", .string(e.mac.description)), ("type", .string("learned")),
                                                (e.isSite ? "site" : "vtep", .string(e.place)), ("ageSeconds", num(e.age)),
                                                ("learnedSecondsAgo", num(e.learnedAgo)), ("moves", num(e.moves))]
                if e.frozen {
                    o.append(("duplicate", .bool(true)))
                    o.append(("frozenSeconds", num(e.frozenFor)))
                }
                entries.append(.object(o))
            }
            f.append(("macs", .array(entries)))
            list.append(.object(f))
        }
        if let only, list.isEmpty {
            throw Failure(RPCError.invalidParams, "vni \(only) is not a multipoint VNI", element: "vni")
        }
        return .object([("generation", num(engine.generation)), ("vnis", .array(list))])
    }

    /// `macs.flush {vni, [site | vtep | mac]}`: removes learned MACs (all of the VNI's, those at one site or local
    /// VTEP, or one MAC, which also releases a duplicate). Static MACs are FIB entries and stay.
    func flushMACs(_ r: inout Params) throws(Failure) -> JSONValue {
        guard let vni = try r.optionalUInt64("vni") else { throw Failure(RPCError.invalidParams, "vni is required", element: "vni") }
        guard vni <= UInt64(VNI.maxValue), case .vni(let e)? = engine.entry(.vni(UInt32(vni))), let m = e.multipoint else {
            throw Failure(RPCError.invalidParams, "vni \(vni) is not a multipoint VNI", element: "vni")
        }
        let site = try r.optionalString("site"), vtep = try r.optionalString("vtep"), macText = try r.optionalString("mac")
        guard [site, vtep, macText].compactMap({ $0 }).count <= 1 else {
            throw Failure(RPCError.invalidParams, "give at most one of site, vtep and mac", element: "site")
        }
        var placeID: UInt64?
        if let site {
            guard m.sites.contains(where: { $0.name == site }) else {
                throw Failure(RPCError.invalidParams, "vni \(vni) has no site \"\(site)\"", element: "site")
            }
            placeID = Segment.siteID(site)
        }
        if let vtep {
            guard let a = IPAddress(vtep), m.vteps.contains(where: { $0.address == a }) else {
                throw Failure(RPCError.invalidParams, "vni \(vni) has no local vtep \(vtep)", element: "vtep")
            }
            placeID = Segment.vtepID(IPv6Address(a))
        }
        var mac: UInt64?
        if let macText {
            guard let a = MACAddress(macText) else {
                throw Failure(RPCError.invalidParams, "\"\(macText)\" is not a MAC address (aa:bb:cc:dd:ee:ff)", element: "mac")
            }
            mac = a.value
        }
        guard let dp = dataplane else { throw Failure(RPCError.internalError, "no live data plane: nothing is learned") }
        let n = dp.flushMACs(vni: UInt32(vni), placeID: placeID, mac: mac)
        var meta: [(String, String)] = [("vni", "\(vni)"), ("flushed", "\(n)")]
        if let site { meta.append(("site", site)) }
        if let vtep { meta.append(("vtep", vtep)) }
        if let macText { meta.append(("mac", macText)) }
        log?(LogEvent(message: "learned MACs flushed", metadata: meta, isError: false))
        return .object([("vni", num(vni)), ("flushed", num(n))])
    }

    // MARK: trace

    func startTrace(_ r: inout Params, _ client: RPCClient, _ id: JSONValue) throws(Failure) -> Outcome {
        guard let dp = dataplane else { throw Failure(RPCError.internalError, "no live data plane to trace") }
        guard replying else { return .result(.null) }   // a trace nobody will read arms nothing
        let count = Int(try r.optionalUInt64("count") ?? 10)
        guard (1...1000).contains(count) else { throw Failure(RPCError.invalidParams, "count must be 1–1000", element: "count") }
        let timeout = Double(try r.optionalUInt64("timeoutMs") ?? 1000) / 1000
        guard timeout <= 60 else { throw Failure(RPCError.invalidParams, "timeoutMs must be at most 60000", element: "timeoutMs") }
        if let old = trace {
            old.client.sendDeferred(RPCError.line(id: old.id, code: RPCError.busy, message: "trace replaced by a newer request"))
        }
        _ = dp.takeTrace()
        dp.armTrace(count: count)
        trace = PendingTrace(client: client, id: id, count: count, deadline: ControlService.now() + timeout)
        return .deferred
    }
}

extension JSONValue {
    /// A scalar as text (strings unquoted); containers as JSON. For logs and tables.
    public var plainText: String {
        switch self {
        case .string(let s): return s
        case .number(let n): return n
        case .bool(let b): return b ? "true" : "false"
        case .null: return "null"
        default: return JSONWriter.write(self)
        }
    }
}

extension FIBChange {
    var entryKey: EntryKey {
        switch self {
        case .add(let e), .replace(let e): return e.key
        case .delete(let k): return k
        }
    }
}

/// Typed access to a request's params object, naming the offending member in errors.
struct Params {
    var fields: [(String, JSONValue)]
    var used = Set<String>()

    init(_ v: JSONValue) throws(ControlService.Failure) {
        guard case .object(let f) = v else { throw ControlService.Failure(RPCError.invalidParams, "params must be an object") }
        fields = f
    }

    func has(_ k: String) -> Bool { fields.contains { $0.0 == k } }

    mutating func value(_ k: String) -> JSONValue? {
        used.insert(k)
        return fields.first { $0.0 == k }?.1
    }

    mutating func string(_ k: String) throws(ControlService.Failure) -> String {
        guard let v = value(k) else { throw ControlService.Failure(RPCError.invalidParams, "params.\(k) is required", element: k) }
        guard case .string(let s) = v else { throw ControlService.Failure(RPCError.invalidParams, "params.\(k) must be a string, not \(v.typeName)", element: k) }
        return s
    }

    mutating func optionalString(_ k: String) throws(ControlService.Failure) -> String? {
        guard has(k) else { return nil }
        return try string(k)
    }

    mutating func array(_ k: String) throws(ControlService.Failure) -> [JSONValue] {
        guard let v = value(k) else { throw ControlService.Failure(RPCError.invalidParams, "params.\(k) is required", element: k) }
        guard case .array(let a) = v else { throw ControlService.Failure(RPCError.invalidParams, "params.\(k) must be an array, not \(v.typeName)", element: k) }
        return a
    }

    mutating func optionalArray(_ k: String) throws(ValidationError) -> [JSONValue] {
        guard let v = value(k) else { return [] }
        guard case .array(let a) = v else { throw ValidationError(k, "must be an array, not \(v.typeName)") }
        return a
    }

    mutating func optionalUInt64(_ k: String) throws(ControlService.Failure) -> UInt64? {
        guard let v = value(k) else { return nil }
        guard case .number(let n) = v, let x = UInt64(n) else {
            throw ControlService.Failure(RPCError.invalidParams, "params.\(k) must be a non-negative integer", element: k)
        }
        return x
    }

    mutating func optionalBool(_ k: String) throws(ControlService.Failure) -> Bool? {
        guard let v = value(k) else { return nil }
        guard case .bool(let b) = v else { throw ControlService.Failure(RPCError.invalidParams, "params.\(k) must be true or false", element: k) }
        return b
    }

    func rejectUnknown() throws(ControlService.Failure) {
        if let extra = fields.first(where: { !used.contains($0.0) }) {
            throw ControlService.Failure(RPCError.invalidParams, "params.\(extra.0) is not a parameter of this method", element: extra.0)
        }
    }
}
