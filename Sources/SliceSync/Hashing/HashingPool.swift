#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

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

    /// Queues a job; it runs on one of the pool's threads.
    public func submit(_ job: @escaping @Sendable () -> Void) {
        queue.push(job)
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
    private var stopping = false

    func push(_ job: @escaping @Sendable () -> Void) {
        condition.lock()
        jobs.append(job)
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
            while head == jobs.count && !stopping { condition.wait() }
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

/// A one-shot countdown that a thread can wait on, for jobs submitted to a `HashingPool`.
///
/// `@unchecked Sendable`: `done` is read and written only with `condition` held.
final class CompletionFlags: @unchecked Sendable {
    private let condition = ThreadCondition()
    private var done: [Bool]

    init(count: Int) { done = Array(repeating: false, count: count) }

    func markDone(_ index: Int) {
        condition.lock()
        done[index] = true
        condition.broadcast()
        condition.unlock()
    }

    func waitAndReset(_ index: Int) {
        condition.lock()
        while !done[index] { condition.wait() }
        done[index] = false
        condition.unlock()
    }
}
