#if canImport(Glibc)
import Glibc
#endif
import FIB
import Synchronization
import Testing

/// QSBR: a writer's synchronize() waits for online workers to pass a batch boundary, never for offline ones.
@Suite struct QuiescentStateTests {
    final class Flag: @unchecked Sendable {
        let value = Atomic<Bool>(false)
        var isSet: Bool { value.load(ordering: .acquiring) }
    }

    @Test func offlineWorkersNeverDelayAWriter() {
        let q = QuiescentState(workers: 3)
        for s in q.slots { q.offline(s) }
        var sleeps = 0
        q.synchronize { sleeps += 1 }
        #expect(sleeps == 0)
    }

    @Test func writerWaitsForAnOnlineWorkerToPassABatchBoundary() {
        let q = QuiescentState(workers: 2)
        q.online(q.slots[0])
        q.offline(q.slots[1])
        let done = Flag()
        // The writer runs on another thread; the worker (this thread) has not passed a boundary yet.
        var thread = pthread_t()
        final class Box: @unchecked Sendable { let q: QuiescentState; let done: Flag; init(_ q: QuiescentState, _ d: Flag) { self.q = q; done = d } }
        let box = Unmanaged.passRetained(Box(q, done)).toOpaque()
        pthread_create(&thread, nil, { raw in
            let b = Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
            b.q.synchronize { usleep(100) }
            b.done.value.store(true, ordering: .releasing)
            return nil
        }, box)
        usleep(50_000)
        let early = done.isSet
        #expect(!early, "synchronize returned while a worker held the old snapshot")
        q.quiescent(q.slots[0])
        pthread_join(thread, nil)
        let finished = done.isSet
        #expect(finished)
    }

    @Test func cellPublishesAndReturnsThePrevious() {
        let a = UnsafeMutablePointer<FIBSnapshot>.allocate(capacity: 1)
        let b = UnsafeMutablePointer<FIBSnapshot>.allocate(capacity: 1)
        defer { a.deallocate(); b.deallocate() }
        let cell = SnapshotCell(a)
        #expect(cell.load() == a)
        #expect(cell.exchange(b) == a)
        #expect(cell.load() == b)
    }
}
