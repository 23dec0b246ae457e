#if canImport(Glibc)
import Glibc
#endif
internal import CControlSocket

/// An error starting the server, worded for the operator.
public struct ServerError: Error, CustomStringConvertible {
    public let description: String
    public init(_ d: String) { description = d }
}

/// Who may connect: root and the agent's own user always; more users and groups by number.
public struct PeerPolicy: Sendable {
    public var uids: Set<UInt32> = []
    public var gids: Set<UInt32> = []
    public init(uids: Set<UInt32> = [], gids: Set<UInt32> = []) { self.uids = uids; self.gids = gids }

    public func allows(uid: UInt32, gid: UInt32) -> Bool {
        uid == 0 || uid == geteuid() || uids.contains(uid) || gids.contains(gid)
    }
}

/// A connected client as the service sees it.
public final class RPCClient {
    public let id: Int
    public let uid: UInt32
    public let pid: Int32
    let fd: Int32
    var input: [UInt8] = []
    /// Bytes of `input` already handed to the handler.
    var consumed = 0
    /// Bytes of `input` already searched for a newline (so a long message is scanned once, not once per read).
    var scanned = 0
    /// The newline that ends the next unhandled request, once found.
    var lineEnd: Int?
    var output: [UInt8] = []
    var outputOffset = 0
    /// The peer sent EOF: the requests it sent are still served, then the connection closes.
    var eof = false
    /// After an oversized message: closes once the error is written.
    var closing = false
    /// After an oversized message: input is read and thrown away until this time, so the client can finish
    /// sending and read the error instead of getting a reset.
    var discardUntil = 0.0
    var wroteShutdown = false
    /// A request's reply is deferred (a durable commit, a trace): the connection's next requests wait behind it,
    /// so replies go out in request order.
    public private(set) var awaitingReply = false

    init(id: Int, fd: Int32, uid: UInt32, pid: Int32) { self.id = id; self.fd = fd; self.uid = uid; self.pid = pid }

    /// The peer cannot take replies any more (EPIPE): they are discarded.
    var peerGone = false

    /// Queues one line (a response or a notification).
    public func send(_ line: String) {
        if peerGone { return }
        output.append(contentsOf: line.utf8)
        output.append(0x0A)
    }

    /// The request being handled will be answered later, with `sendDeferred`.
    public func deferReply() { awaitingReply = true }

    /// The deferred request is handled after all (its parsing finished elsewhere): it answers as any other.
    func resumeReplies() { awaitingReply = false }

    /// Queues the deferred reply; the connection's next request is served after it.
    public func sendDeferred(_ line: String) {
        send(line)
        awaitingReply = false
    }

    /// Unwritten reply bytes.
    var pendingOutput: Int { output.count - outputOffset }
}

/// Hooks for the libFuzzer target, which drives the service without a socket.
public enum FuzzSupport {
    public static func makeClient() -> RPCClient { RPCClient(id: 1, fd: -1, uid: 0, pid: 0) }
    public static func discardOutput(_ c: RPCClient) { c.output.removeAll(keepingCapacity: true); c.outputOffset = 0 }
    public static func output(_ c: RPCClient) -> String { String(decoding: c.output[c.outputOffset...], as: UTF8.self) }
}

/// What the server asks of the service that implements the methods.
public protocol RPCHandler: AnyObject {
    /// One complete line from a client (without the newline). Responses go through `client.send`.
    func handle(line: ArraySlice<UInt8>, from client: RPCClient)
    /// The client went away (closed, reset, or was dropped for a limit).
    func disconnected(_ client: RPCClient)
    /// Called about every 100 ms and after every wake-up (timeouts, periodic work).
    func tick()
}

/// A newline-delimited JSON-RPC server on a Unix stream socket, run by the control thread with poll(): no client
/// can block another (non-blocking sockets, per-client buffers with limits), and nothing here touches the data
/// plane. Extra file descriptors (signals, the state writer) can be watched with their own callbacks.
public final class RPCServer {
    /// Largest request line accepted; a longer one is answered with an error and the connection is closed (the
    /// stream cannot be re-synchronised). Documented in docs/control-protocol.md.
    public static let maxMessageBytes = 32 << 20
    /// A client that leaves more than this many response bytes unread is disconnected.
    public static let maxPendingOutputBytes = 256 << 20
    /// No further request of a client is served while more than this many of its reply bytes are unread: a client
    /// that pipelines requests and never reads costs one reply's memory, not one per request.
    public static let outputHighWater = 1 << 20
    public static let maxClients = 256
    /// Bytes read from a socket per read call.
    static let readSize = 1 << 18

    public let path: String
    let listenFD: Int32
    let policy: PeerPolicy
    public weak var handler: RPCHandler?
    var clients: [Int32: RPCClient] = [:]
    var nextID = 1
    var watches: [(fd: Int32, onReadable: () -> Void)] = []
    public private(set) var refusedPeers = 0

    /// Creates the socket at `path` (mode 0660). A stale socket file (nobody listening) is replaced; a live one, or
    /// a path that is not a socket, is refused.
    public init(path: String, policy: PeerPolicy) throws(ServerError) {
        self.path = path
        self.policy = policy
        guard path.utf8.count < 108 else { throw ServerError("socket path \(path) is longer than 107 bytes") }
        let dir = path.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        if !dir.isEmpty { RPCServer.makeDirectories(dir) }
        var st = stat()
        if lstat(path, &st) == 0 {
            guard st.st_mode & S_IFMT == S_IFSOCK else {
                throw ServerError("\(path) exists and is not a socket; remove it or choose another --socket")
            }
            if RPCServer.isLive(path) {
                throw ServerError("another process is serving \(path) (is an agent already running for this instance?)")
            }
            unlink(path)
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw ServerError("socket: \(String(cString: strerror(errno)))") }
        var addr = RPCServer.address(path)
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0 else {
            let e = errno
            close(fd)
            throw ServerError("cannot bind \(path): \(String(cString: strerror(e)))")
        }
        chmod(path, 0o660)
        guard listen(fd, 64) == 0 else {
            close(fd)
            throw ServerError("listen on \(path): \(String(cString: strerror(errno)))")
        }
        listenFD = fd
    }

    deinit { shutdown() }

    private var isShut = false

    /// Closes every connection and removes the socket file.
    public func shutdown() {
        guard !isShut else { return }
        isShut = true
        for c in clients.values { close(c.fd) }
        clients = [:]
        close(listenFD)
        unlink(path)
    }

    static func makeDirectories(_ dir: String) {
        var prefix = ""
        for part in dir.split(separator: "/") {
            prefix += "/" + part
            mkdir(prefix, 0o755)
        }
    }

    static func address(_ path: String) -> sockaddr_un {
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in path.utf8.enumerated() where i < raw.count - 1 { raw[i] = b }
        }
        return addr
    }

    static func isLive(_ path: String) -> Bool {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var addr = address(path)
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        return rc == 0
    }

    /// Watches another descriptor; `onReadable` runs on the control thread when it is readable.
    public func watch(fd: Int32, onReadable: @escaping () -> Void) { watches.append((fd, onReadable)) }

    /// Serves until `shouldStop()` is true; one poll() round at a time, 100 ms at most.
    public func run(until shouldStop: () -> Bool) {
        while !shouldStop() { pollOnce(timeoutMs: 100) }
    }

    /// One round: accept, read, serve at most one request per client (so one client's pipeline cannot delay
    /// another's request), tick, write. A client is read only while no complete request of its is waiting, so
    /// its input stays within one message plus one read.
    public func pollOnce(timeoutMs: Int32) {
        var fds: [pollfd] = [pollfd(fd: listenFD, events: Int16(POLLIN), revents: 0)]
        for w in watches { fds.append(pollfd(fd: w.fd, events: Int16(POLLIN), revents: 0)) }
        var order: [Int32] = []
        var ready = false
        for (fd, c) in clients {
            if canServe(c) && findLine(c) != nil { ready = true }
            var ev: Int16 = 0
            if c.pendingOutput > 0 { ev |= Int16(POLLOUT) }
            if !(c.eof || c.closing && c.discardUntil == 0) && findLine(c) == nil { ev |= Int16(POLLIN) }
            // Nothing to read or write now (done reading, or a request already waits): not polled, so a peer's
            // hang-up cannot make poll() return at once round after round.
            if ev == 0 { continue }
            order.append(fd)
            fds.append(pollfd(fd: fd, events: ev, revents: 0))
        }
        let n = poll(&fds, nfds_t(fds.count), ready ? 0 : timeoutMs)
        let wall = RPCServer.monotonic(), cpu = RPCServer.threadCPU()
        defer {
            longestStep.wall = max(longestStep.wall, RPCServer.monotonic() - wall)
            longestStep.cpu = max(longestStep.cpu, RPCServer.threadCPU() - cpu)
        }
        if n > 0 {
            if fds[0].revents & Int16(POLLIN) != 0 { acceptAll() }
            for (i, w) in watches.enumerated() where fds[1 + i].revents != 0 { w.onReadable() }
            for (i, fd) in order.enumerated() {
                let r = fds[1 + watches.count + i].revents
                guard r != 0, let c = clients[fd] else { continue }
                if r & Int16(POLLIN | POLLHUP | POLLERR) != 0 && !c.eof { readFrom(c) }
            }
        }
        serveRequests()
        handler?.tick()
        flushAll()
    }

    /// Whether the client's next request may be handled now: no reply of its is deferred and it reads its replies.
    func canServe(_ c: RPCClient) -> Bool {
        !c.closing && !c.awaitingReply && c.pendingOutput <= RPCServer.outputHighWater
    }

    /// Hands each client's next complete request (at most one per client) to the handler.
    func serveRequests() {
        for c in Array(clients.values) {
            guard clients[c.fd] != nil, canServe(c), let nl = findLine(c) else { continue }
            let line = c.input[c.consumed..<nl]
            c.consumed = nl + 1
            c.scanned = c.consumed
            c.lineEnd = nil
            if line.count > RPCServer.maxMessageBytes {
                refuseOversized(c, "message of \(line.count) bytes exceeds the \(RPCServer.maxMessageBytes)-byte limit; closing")
                continue
            }
            if !line.allSatisfy({ $0 == 0x20 || $0 == 0x0D || $0 == 0x09 }) { handler?.handle(line: line, from: c) }
            guard clients[c.fd] != nil else { continue }
            if c.pendingOutput > RPCServer.maxPendingOutputBytes { drop(c); continue }
            if c.consumed == c.input.count || c.consumed > 1 << 20 {
                c.input.removeFirst(c.consumed)
                c.scanned -= c.consumed
                c.consumed = 0
            }
        }
    }

    /// The index of the newline ending the client's next request, if it has arrived.
    func findLine(_ c: RPCClient) -> Int? {
        if let e = c.lineEnd { return e }
        guard let nl = c.input[max(c.consumed, c.scanned)...].firstIndex(of: 0x0A) else {
            c.scanned = c.input.count
            return nil
        }
        c.lineEnd = nl
        return nl
    }

    /// Writes what each client can take now; drops clients that are gone, hoard output, or are done.
    public func flushAll() {
        for c in Array(clients.values) {
            if c.pendingOutput > 0 { writeTo(c) }
            guard clients[c.fd] != nil else { continue }
            if c.pendingOutput > RPCServer.maxPendingOutputBytes { drop(c) ; continue }
            guard c.pendingOutput == 0 else { continue }
            if c.closing {
                if c.discardUntil > RPCServer.monotonic() {
                    if !c.wroteShutdown { _ = Glibc.shutdown(c.fd, Int32(SHUT_WR)); c.wroteShutdown = true }
                } else {
                    drop(c)
                }
            } else if c.eof && !c.awaitingReply && findLine(c) == nil {
                drop(c)
            }
        }
    }

    /// The longest round of the loop since start (from poll() returning to the last write): wall-clock seconds,
    /// and CPU seconds of the control thread (the wall time also counts waiting for a CPU).
    public private(set) var longestStep = (wall: 0.0, cpu: 0.0)

    static func threadCPU() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
    }

    static func monotonic() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
    }

    /// Answers an oversized message, then reads and discards for a while before closing.
    func refuseOversized(_ c: RPCClient, _ message: String) {
        c.send(RPCError.line(id: .null, code: RPCError.invalidRequest, message: message))
        c.input = []
        c.consumed = 0
        c.scanned = 0
        c.lineEnd = nil
        c.closing = true
        c.discardUntil = RPCServer.monotonic() + 5
    }

    func acceptAll() {
        while true {
            var uid: UInt32 = 0, gid: UInt32 = 0, pid: Int32 = 0
            let fd = mg_accept_peer(listenFD, &uid, &gid, &pid)
            if fd == -EAGAIN || fd == -EWOULDBLOCK { return }
            if fd < 0 { if fd == -EINTR || fd == -ECONNABORTED { continue }; return }
            if !policy.allows(uid: uid, gid: gid) {
                refusedPeers += 1
                let msg = "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":\(RPCError.permissionDenied),\"message\":\"uid \(uid) is not allowed on this socket (--allow-uid / --allow-gid)\"}}\n"
                _ = msg.withCString { write(fd, $0, strlen($0)) }
                close(fd)
                continue
            }
            if clients.count >= RPCServer.maxClients {
                let msg = "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":\(RPCError.busy),\"message\":\"too many clients (\(RPCServer.maxClients))\"}}\n"
                _ = msg.withCString { write(fd, $0, strlen($0)) }
                close(fd)
                continue
            }
            let c = RPCClient(id: nextID, fd: fd, uid: uid, pid: pid)
            nextID += 1
            clients[fd] = c
        }
    }

    /// Reads until a complete request is buffered or the socket is empty. A partial request longer than the
    /// message limit is refused.
    func readFrom(_ c: RPCClient) {
        var buf = [UInt8](repeating: 0, count: RPCServer.readSize)
        while c.discardUntil > 0 || findLine(c) == nil {
            let n = read(c.fd, &buf, buf.count)
            if n > 0 {
                if c.discardUntil > 0 { continue }
                c.input.append(contentsOf: buf[0..<n])
                if findLine(c) == nil && c.input.count - c.consumed > RPCServer.maxMessageBytes {
                    refuseOversized(c, "message exceeds the \(RPCServer.maxMessageBytes)-byte limit; closing")
                }
                continue
            }
            if n == 0 {
                c.eof = true
                if c.closing && c.pendingOutput == 0 { drop(c) }   // else flushAll drops it once the error is out
                return
            }
            if errno == EAGAIN || errno == EINTR { return }
            drop(c)
            return
        }
    }

    func writeTo(_ c: RPCClient) {
        while c.outputOffset < c.output.count {
            let n = c.output[c.outputOffset...].withUnsafeBytes { write(c.fd, $0.baseAddress, $0.count) }
            if n > 0 { c.outputOffset += n; continue }
            if n < 0 && (errno == EAGAIN || errno == EINTR) { break }
            if n < 0 && (errno == EPIPE || errno == ECONNRESET) && !c.closing {
                // The peer stopped reading: its replies go nowhere, but the requests it sent are still carried out
                // (read until EOF, like an ordinary close).
                c.peerGone = true
                c.output = []
                c.outputOffset = 0
                return
            }
            drop(c)
            return
        }
        if c.outputOffset == c.output.count {
            // Keep a small buffer's capacity; give a large reply's memory back.
            if c.output.capacity > RPCServer.outputHighWater { c.output = [] } else { c.output.removeAll(keepingCapacity: true) }
            c.outputOffset = 0
        }
        else if c.outputOffset > 1 << 20 { c.output.removeFirst(c.outputOffset); c.outputOffset = 0 }
    }

    func drop(_ c: RPCClient) {
        guard clients.removeValue(forKey: c.fd) != nil else { return }
        close(c.fd)
        handler?.disconnected(c)
    }
}

/// JSON-RPC 2.0 error codes: the standard ones and MPLSGate's (docs/control-protocol.md).
public enum RPCError {
    public static let parseError = -32700
    public static let invalidRequest = -32600
    public static let methodNotFound = -32601
    public static let invalidParams = -32602
    public static let internalError = -32603
    /// A resync is open (or another one was asked for): try again when it ends.
    public static let busy = -32001
    /// expectedGeneration is not the current generation.
    public static let staleGeneration = -32002
    /// An element is invalid or inconsistent (dangling reference, reserved label, bad value).
    public static let invalidEntry = -32003
    /// add of an existing key.
    public static let exists = -32004
    /// replace / delete of a missing key.
    public static let notFound = -32005
    /// delete of a next hop or group still referenced.
    public static let referenced = -32006
    /// A limit (entries, operations per call) would be exceeded.
    public static let limitExceeded = -32007
    /// No such resync session (never begun, ended, abandoned or timed out).
    public static let noSession = -32008
    /// The peer's uid/gid is not on the allow-list.
    public static let permissionDenied = -32009
    /// `durable: true`: the commit is applied (and forwarding), but the state file could not be written.
    public static let notDurable = -32010

    /// A result response line.
    public static func resultLine(id: JSONValue, result: JSONValue) -> String {
        JSONWriter.write(.object([("jsonrpc", .string("2.0")), ("id", id), ("result", result)]))
    }

    /// One error response line; `data` carries `element` and any `extra` members.
    public static func line(id: JSONValue, code: Int, message: String, element: String? = nil,
                            extra: [(String, JSONValue)] = []) -> String {
        var err: [(String, JSONValue)] = [("code", .number(String(code))), ("message", .string(message))]
        var data: [(String, JSONValue)] = element.map { [("element", .string($0))] } ?? []
        data += extra
        if !data.isEmpty { err.append(("data", .object(data))) }
        return JSONWriter.write(.object([("jsonrpc", .string("2.0")), ("id", id), ("error", .object(err))]))
    }
}
