import Foundation
import Synchronization

/// A task executor with its own threads, so a server under test keeps running while test functions
/// block the cooperative pool (blocking sockets, waiting for child processes); on a two-core machine
/// those would otherwise starve the server they are waiting for.
public final class DedicatedExecutor: TaskExecutor, @unchecked Sendable {
    private let jobs = Mutex<[UnownedJob]>([])
    private let available = NSCondition()

    /// Starts `threads` worker threads; they live as long as the test process.
    public init(threads: Int = 2, name: String = "test-executor") {
        for index in 0..<threads {
            let thread = Thread { [unowned self] in self.work() }
            thread.name = "\(name)-\(index)"
            thread.start()
        }
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let unowned = UnownedJob(job)
        jobs.withLock { $0.append(unowned) }
        available.lock()
        available.signal()
        available.unlock()
    }

    private func work() {
        while true {
            available.lock()
            var next = jobs.withLock { $0.isEmpty ? nil : $0.removeFirst() }
            while next == nil {
                available.wait()
                next = jobs.withLock { $0.isEmpty ? nil : $0.removeFirst() }
            }
            available.unlock()
            next?.runSynchronously(on: asUnownedTaskExecutor())
        }
    }
}
