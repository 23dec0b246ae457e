#if canImport(Glibc)
import Glibc
#endif

/// A thread that writes full `CaptureWriter` buffers while replay processes the next frames (`--threads 2`): the
/// kernel's copy of written data into the page cache then runs on the other core. A fixed pool of buffers bounds
/// the memory and makes the producer wait when the writer falls behind. Writes of one file keep their order (one
/// thread, first in first out).
public final class WriteBehind: @unchecked Sendable {
    private struct Job { var fd: Int32; var buffer: UnsafeMutableRawPointer; var count: Int }

    private var mutex = pthread_mutex_t()
    private var changed = pthread_cond_t()
    private var free: [UnsafeMutableRawPointer] = []
    private var jobs: [Job] = []
    private var jobHead = 0
    private var busy = false
    private var stopping = false
    private var errors: [Int32: String] = [:]
    private var thread = pthread_t()

    /// `buffers`: how many `CaptureWriter.bufferSize` buffers exist in all (each open writer holds one).
    public init(buffers: Int = 8) {
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&changed, nil)
        for _ in 0..<buffers { free.append(.allocate(byteCount: CaptureWriter.bufferSize, alignment: 4096)) }
        let box = Unmanaged.passRetained(self).toOpaque()
        pthread_create(&thread, nil, { raw in
            let me = Unmanaged<WriteBehind>.fromOpaque(raw!).takeRetainedValue()
            me.loop()
            return nil
        }, box)
    }

    /// Stops the thread after the queued writes and frees the pool. Every writer using it must be closed first.
    public func finish() {
        pthread_mutex_lock(&mutex)
        stopping = true
        pthread_cond_broadcast(&changed)
        pthread_mutex_unlock(&mutex)
        pthread_join(thread, nil)
        for b in free { b.deallocate() }
        free = []
    }

    /// A free buffer; waits while every buffer is queued or being written.
    func take() -> UnsafeMutableRawPointer {
        pthread_mutex_lock(&mutex)
        while free.isEmpty { pthread_cond_wait(&changed, &mutex) }
        let b = free.removeLast()
        pthread_mutex_unlock(&mutex)
        return b
    }

    /// Returns an unused buffer to the pool.
    func give(_ buffer: UnsafeMutableRawPointer) {
        pthread_mutex_lock(&mutex)
        free.append(buffer)
        pthread_cond_broadcast(&changed)
        pthread_mutex_unlock(&mutex)
    }

    /// Queues `count` bytes of `buffer` for `fd`; the buffer returns to the pool once written.
    func submit(fd: Int32, buffer: UnsafeMutableRawPointer, count: Int) {
        pthread_mutex_lock(&mutex)
        jobs.append(Job(fd: fd, buffer: buffer, count: count))
        pthread_cond_broadcast(&changed)
        pthread_mutex_unlock(&mutex)
    }

    /// Waits until everything queued is written.
    func drain() {
        pthread_mutex_lock(&mutex)
        while jobHead < jobs.count || busy { pthread_cond_wait(&changed, &mutex) }
        pthread_mutex_unlock(&mutex)
    }

    /// The first write error on `fd`, if any; forgets it (the descriptor is about to be closed and reused).
    func error(fd: Int32) -> String? {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return errors.removeValue(forKey: fd)
    }

    private func loop() {
        pthread_mutex_lock(&mutex)
        while true {
            while jobHead == jobs.count && !stopping { pthread_cond_wait(&changed, &mutex) }
            if jobHead == jobs.count { break }
            let job = jobs[jobHead]
            jobHead += 1
            if jobHead == jobs.count { jobs.removeAll(keepingCapacity: true); jobHead = 0 }
            busy = true
            let failed = errors[job.fd] != nil
            pthread_mutex_unlock(&mutex)
            var message: String?
            var off = 0
            while !failed && off < job.count {
                let w = write(job.fd, job.buffer + off, job.count - off)
                if w > 0 { off += w; continue }
                if w < 0 && errno == EINTR { continue }
                message = String(cString: strerror(w < 0 ? errno : ENOSPC))
                break
            }
            pthread_mutex_lock(&mutex)
            if let message, errors[job.fd] == nil { errors[job.fd] = message }
            free.append(job.buffer)
            busy = false
            pthread_cond_broadcast(&changed)
        }
        pthread_mutex_unlock(&mutex)
    }
}
