import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// Serves `GET /metrics` over HTTP/1.1 with SwiftNIO (NIOHTTP1 parses; nothing here parses HTTP) on one event-loop
/// thread of its own. The body is rendered at scrape time by `render`, on that thread: it must read counters
/// without locks and never wait for the control thread or a worker.
public final class MetricsServer: Sendable {
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"
    /// Connections open at once; more are closed on accept (the agent's file descriptors are shared with the
    /// control socket and the state file).
    public static let maxConnections = 16
    /// A connection idle this long is closed.
    public static let idleSeconds: Int64 = 30

    private let group: MultiThreadedEventLoopGroup
    private let channel: Channel
    /// Where it listens, as bound (the port is the kernel's choice when 0 was asked for).
    public let boundAddress: String

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// Binds `host:port` and starts serving.
    public init(host: String, port: Int, render: @escaping @Sendable () -> [UInt8]) throws(Failure) {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let open = ConnectionCount()
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                guard open.enter() else { return channel.close() }
                channel.closeFuture.whenComplete { _ in open.leave() }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        IdleStateHandler(allTimeout: .seconds(MetricsServer.idleSeconds)))
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(MetricsHandler(render: render))
                }
            }
            .childChannelOption(.socketOption(.so_reuseaddr), value: 1)
        do {
            channel = try bootstrap.bind(host: host, port: port).wait()
        } catch {
            try? group.syncShutdownGracefully()
            throw Failure(description: "--metrics \(host):\(port): cannot listen: \(error)")
        }
        self.group = group
        let ip = channel.localAddress?.ipAddress ?? host
        boundAddress = (ip.contains(":") ? "[\(ip)]" : ip) + ":\(channel.localAddress?.port ?? port)"
    }

    /// Stops listening and joins the thread.
    public func stop() {
        try? channel.close().wait()
        try? group.syncShutdownGracefully()
    }
}

/// Connections open now, against `MetricsServer.maxConnections`.
final class ConnectionCount: Sendable {
    private let n = Atomic<Int>(0)
    func enter() -> Bool {
        if n.add(1, ordering: .relaxed).newValue > MetricsServer.maxConnections { n.subtract(1, ordering: .relaxed); return false }
        return true
    }
    func leave() { n.subtract(1, ordering: .relaxed) }
}

/// One connection: a request head and end make one response; anything but GET or HEAD of /metrics is refused.
final class MetricsHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let render: @Sendable () -> [UInt8]
    private var head: HTTPRequestHead?

    init(render: @escaping @Sendable () -> [UInt8]) { self.render = render }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h): head = h
        case .body: break
        case .end:
            guard let h = head else { return }
            head = nil
            respond(context: context, to: h)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent { context.close(promise: nil) } else { context.fireUserInboundEventTriggered(event) }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) { context.close(promise: nil) }

    private func respond(context: ChannelHandlerContext, to request: HTTPRequestHead) {
        let path = request.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? request.uri
        var status = HTTPResponseStatus.ok
        var body: [UInt8]
        var type = MetricsServer.contentType
        if path != "/metrics" {
            status = .notFound
            body = Array("not found: the metrics are at /metrics\n".utf8)
            type = "text/plain; charset=utf-8"
        } else if request.method != .GET && request.method != .HEAD {
            status = .methodNotAllowed
            body = Array("GET /metrics\n".utf8)
            type = "text/plain; charset=utf-8"
        } else {
            body = render()
        }
        var headers = HTTPHeaders()
        // The exposition format, whatever the Accept header asks for: it is the only one served.
        headers.add(name: "Content-Type", value: type)
        headers.add(name: "Content-Length", value: String(body.count))
        if status == .methodNotAllowed { headers.add(name: "Allow", value: "GET, HEAD") }
        let keepAlive = request.isKeepAlive
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        else if request.version.major == 1 && request.version.minor == 0 { headers.add(name: "Connection", value: "keep-alive") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: request.version, status: status, headers: headers))),
                      promise: nil)
        if request.method != .HEAD {
            var buffer = context.channel.allocator.buffer(capacity: body.count)
            buffer.writeBytes(body)
            context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        }
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive {
            let channel = context.channel
            done.whenComplete { _ in channel.close(promise: nil) }
        }
    }
}
