#if canImport(Glibc)
import Glibc
#endif
import Synchronization
internal import CControlSocket

/// One job run on a thread of its own, off the control thread: compiling a large resync, so the control loop keeps
/// answering other clients, delivering events and ticking while the tables are built. The job's result is read only
/// after `join()`; `done` (an eventfd the control loop watches) is signalled when the job has finished.
final class BuilderThread: @unchecked Sendable {
    private var thread = pthread_t()
    /// Released on the builder thread once run, so what it captured (a million-entry resync) is freed there.
    private var job: (() -> Void)?
    private let done: Int32
    private var joined = false
    private let finished = Atomic<Bool>(false)

    /// Starts `job` at once; nil if no thread could be started (the caller runs the job itself).
    init?(done: Int32, job: @escaping () -> Void) {
        self.job = job
        self.done = done
        let box = Unmanaged.passRetained(self).toOpaque()
        let rc = pthread_create(&thread, nil, { raw in
            let me = Unmanaged<BuilderThread>.fromOpaque(raw!).takeRetainedValue()
            me.job?()
            me.job = nil
            me.finished.store(true, ordering: .releasing)
            if me.done >= 0 { mg_eventfd_signal(me.done) }
            return nil
        }, box)
        if rc != 0 {
            Unmanaged<BuilderThread>.fromOpaque(box).release()
            return nil
        }
    }

    /// Whether the job has finished (its results may be read after `join()`, which then does not wait).
    var isFinished: Bool { finished.load(ordering: .acquiring) }

    /// Waits for the job to finish (at once after `done` was signalled).
    func join() {
        guard !joined else { return }
        pthread_join(thread, nil)
        joined = true
    }
}


/// A value handed to one job exactly once: the job takes it out, so it is freed where the job lets it go.
final class Held<T>: @unchecked Sendable {
    private var value: T?
    init(_ v: consuming T) { value = v }
    func take() -> T? {
        defer { value = nil }
        return value
    }
}

/// A value computed on a thread of its own while the caller does other work (the other CPU is idle while a resync
/// compiles); `value` waits for it. Computed here when no thread can be started.
final class ParallelSum: @unchecked Sendable {
    private var result: UInt64 = 0
    private var thread: BuilderThread?

    init(_ compute: @escaping () -> UInt64) {
        thread = BuilderThread(done: -1) { [unowned self] in self.result = compute() }
        if thread == nil { result = compute() }
    }

    var value: UInt64 {
        thread?.join()
        return result
    }
}
