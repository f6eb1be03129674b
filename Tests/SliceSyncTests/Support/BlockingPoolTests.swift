import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif
@testable import SliceSync

@Suite("The blocking pool")
struct BlockingPoolTests {
    /// Waits for `count` jobs of a batch, on the calling thread. A condition variable, because the test
    /// itself is a plain thread blocked on the pool's jobs, as the pool's own callers are; the count
    /// is in a `Mutex` so the type needs no unchecked conformance.
    private final class Countdown: Sendable {
        private let condition = ThreadCondition()
        private let remaining: Mutex<Int>
        init(_ count: Int) { remaining = Mutex(count) }
        func done() {
            condition.lock()
            remaining.withLock { $0 -= 1 }
            condition.broadcast()
            condition.unlock()
        }
        func wait() {
            condition.lock()
            while remaining.withLock({ $0 }) > 0 { condition.wait() }
            condition.unlock()
        }
    }

    @Test func jobsRunOneAfterAnotherReuseOneThread() {
        let pool = BlockingPool(idleSeconds: 30)
        let ran = Atomic<Int>(0)
        for _ in 0..<200 {
            let finished = Countdown(1)
            pool.run {
                ran.add(1, ordering: .relaxed)
                finished.done()
            }
            finished.wait()
            // The job's thread is back waiting a moment after the job: the next one is its.
            var waited = 0
            while pool.idleThreads == 0 && waited < 2000 {
                usleep(500)
                waited += 1
            }
        }
        #expect(ran.load(ordering: .relaxed) == 200)
        #expect(pool.threadsStarted == 1)
    }

    @Test func jobsThatWaitForEachOtherAllRunAtOnce() {
        // Eight jobs each wait until all eight have started: a bounded pool would hang here.
        let pool = BlockingPool(idleSeconds: 30)
        let started = Countdown(8)
        let finished = Countdown(8)
        for _ in 0..<8 {
            pool.run {
                started.done()
                started.wait()
                finished.done()
            }
        }
        finished.wait()
        #expect(pool.threadsStarted == 8)
        // The same eight threads serve the next batch, once they are back waiting.
        var waited = 0
        while pool.idleThreads < 8 && waited < 2000 {
            usleep(500)
            waited += 1
        }
        let again = Countdown(8)
        for _ in 0..<8 { pool.run { again.done() } }
        again.wait()
        #expect(pool.threadsStarted == 8)
    }

    @Test func noJobIsLeftBehindWhileIdleThreadsEnd() {
        // Threads end the moment they find no work, so jobs keep arriving while threads are deciding to
        // end: every job must still run.
        let pool = BlockingPool(idleSeconds: 0)
        let finished = Countdown(2000)
        for index in 0..<2000 {
            pool.run { finished.done() }
            if index % 97 == 0 { usleep(200) }
        }
        finished.wait()
        #expect(pool.threadsStarted >= 1)
    }
}
