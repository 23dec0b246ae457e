#if canImport(Glibc)
import Glibc
#endif

/// A joinable OS thread running a closure (workers are plain pthreads: no executor, no Foundation).
public final class NativeThread: @unchecked Sendable {
    private var thread = pthread_t()

    private final class Box { let body: @Sendable () -> Void; init(_ b: @escaping @Sendable () -> Void) { body = b } }

    public init(name: String, _ body: @escaping @Sendable () -> Void) throws(AgentError) {
        let box = Unmanaged.passRetained(Box(body)).toOpaque()
        let rc = pthread_create(&thread, nil, { raw in
            let box = Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
            box.body()
            return nil
        }, box)
        if rc != 0 {
            Unmanaged<Box>.fromOpaque(box).release()
            throw AgentError("starting thread \(name) failed: \(errnoText(rc))")
        }
    }

    public func join() { pthread_join(thread, nil) }
}
