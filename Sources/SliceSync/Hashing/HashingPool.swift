#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// A fixed number of workers, on the blocking pool, that run CPU-bound hashing jobs.
///
/// Hashing blocks a thread for milliseconds at a time, so it runs here rather than on Swift's
/// cooperative pool, where it would starve other tasks. Shared by every file a run signs; the width
/// bounds how many cores signing takes.
///
/// `@unchecked Sendable`: its stored properties are constants; the queue guards its own state.
public final class HashingPool: @unchecked Sendable {
    private let queue = JobQueue()
    /// Number of workers.
    public let threadCount: Int

    /// Starts `threads` workers (default: one per core).
    public init(threads: Int = ProcessInfo.processInfo.activeProcessorCount) {
        threadCount = max(1, threads)
        for _ in 0..<threadCount {
            // Workers hold the queue, not the pool, so they can finish after the pool is released.
            BlockingPool.shared.run { [queue] in queue.work() }
        }
    }

    deinit { queue.stop() }

    /// Queues a job; it runs on one of the pool's threads. An urgent job runs before every job that is
    /// not, as soon as a thread is free.
    public func submit(urgent: Bool = false, _ job: @escaping @Sendable () -> Void) {
        queue.push(job, urgent: urgent)
    }

    /// Lets queued jobs finish, then ends the workers.
    public func shutdown() {
        queue.stop()
    }
}

/// The jobs waiting for a pool thread.
///
/// `@unchecked Sendable`: its variables are read and written only with `condition` held.
private final class JobQueue: @unchecked Sendable {
    private let condition = ThreadCondition()
    private var jobs: [@Sendable () -> Void] = []
    private var head = 0
    private var urgentJobs: [@Sendable () -> Void] = []
    private var stopping = false

    func push(_ job: @escaping @Sendable () -> Void, urgent: Bool) {
        condition.lock()
        if urgent {
            urgentJobs.append(job)
        } else {
            jobs.append(job)
        }
        condition.signal()
        condition.unlock()
    }

    func stop() {
        condition.lock()
        stopping = true
        condition.broadcast()
        condition.unlock()
    }

    func work() {
        while true {
            condition.lock()
            while head == jobs.count && urgentJobs.isEmpty && !stopping { condition.wait() }
            if !urgentJobs.isEmpty {
                let job = urgentJobs.removeFirst()
                condition.unlock()
                job()
                continue
            }
            if head == jobs.count {
                condition.unlock()
                return
            }
            let job = jobs[head]
            head += 1
            if head > 1024 && head * 2 > jobs.count {
                jobs.removeFirst(head)
                head = 0
            }
            condition.unlock()
            job()
        }
    }
}

/// Per-slot counts of jobs still running, which a thread can wait on, for jobs submitted to a
/// `HashingPool` or a `SerialLane`.
///
/// `@unchecked Sendable`: `running` is read and written only with `condition` held.
final class CompletionFlags: @unchecked Sendable {
    private let condition = ThreadCondition()
    private var running: [Int]

    init(count: Int) { running = Array(repeating: 0, count: count) }

    /// Counts a job on `index` that is about to start.
    func add(_ index: Int) {
        condition.lock()
        running[index] += 1
        condition.unlock()
    }

    func markDone(_ index: Int) {
        condition.lock()
        precondition(running[index] > 0, "a job finished that was never counted")
        running[index] -= 1
        if running[index] == 0 { condition.broadcast() }
        condition.unlock()
    }

    /// Waits until every job counted on `index` has finished.
    func wait(_ index: Int) {
        condition.lock()
        while running[index] > 0 { condition.wait() }
        condition.unlock()
    }
}

/// Jobs that run one after another, in the order submitted, on a hashing pool's threads, ahead of its
/// other jobs: the sequential pass of signing (the whole-file digests) beside its parallel piece jobs,
/// without holding a thread while idle.
///
/// Ahead, because the sequential pass is the longest chain of a signing run: as a thread of its own it
/// shared two cores with two pool workers and got two thirds of one, and 256 MiB with --zsync took
/// 0.27 s where its digests take 0.18 s.
final class SerialLane: Sendable {
    private let pool: HashingPool
    private let state = Mutex<(jobs: [@Sendable () -> Void], draining: Bool)>(([], false))

    init(pool: HashingPool) { self.pool = pool }

    /// Queues a job; it runs after every job submitted before it.
    func submit(_ job: @escaping @Sendable () -> Void) {
        let start = state.withLock { state in
            state.jobs.append(job)
            defer { state.draining = true }
            return !state.draining
        }
        if start { pool.submit(urgent: true) { self.drain() } }
    }

    private func drain() {
        while true {
            let next = state.withLock { state in
                defer { state.jobs.removeAll() }
                if state.jobs.isEmpty { state.draining = false }
                return state.jobs
            }
            if next.isEmpty { return }
            for job in next { job() }
        }
    }
}
