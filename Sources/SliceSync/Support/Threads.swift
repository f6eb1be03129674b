#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A mutex with a condition variable (POSIX), for the few places where threads that block on purpose
/// (hashing, copying) hand work to each other. Swift's `Mutex` has no condition variable, and
/// Foundation's `NSCondition` would pull all of Foundation, with ICU, into every program.
///
/// `@unchecked Sendable`: every access to the state it guards happens between `lock()` and `unlock()`,
/// and the POSIX objects live at a fixed heap address for the object's whole life.
public final class ThreadCondition: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>

    public init() {
        mutex = .allocate(capacity: 1)
        condition = .allocate(capacity: 1)
        precondition(pthread_mutex_init(mutex, nil) == 0 && pthread_cond_init(condition, nil) == 0,
                     "could not create a mutex and a condition variable")
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    public func lock() { pthread_mutex_lock(mutex) }
    public func unlock() { pthread_mutex_unlock(mutex) }
    /// Waits for a signal; call with the lock held (it is held again on return).
    public func wait() { pthread_cond_wait(condition, mutex) }
    /// Waits for a signal for at most `seconds`; false when the time ran out.
    public func wait(seconds: Int) -> Bool {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var deadline = now
        deadline.tv_sec += seconds
        return pthread_cond_timedwait(condition, mutex, &deadline) != ETIMEDOUT
    }
    public func signal() { pthread_cond_signal(condition) }
    public func broadcast() { pthread_cond_broadcast(condition) }

    /// Runs `body` with the lock held.
    public func withLock<T>(_ body: () throws -> T) rethrows -> T {
        lock()
        defer { unlock() }
        return try body()
    }
}

/// The process's one pool of threads for work that blocks on purpose (scans, assembly, hashing,
/// file I/O), which must stay off Swift's cooperative pool of one thread per core.
///
/// It grows when every thread is busy rather than queueing: its jobs wait for one another (an
/// assembly's copying job hands buffers to hashing jobs), so a bound could deadlock. A finished job's
/// thread takes the next one; a thread idle for `idleSeconds` ends. A mirror that rebuilds thousands of
/// files, or a push of thousands of parts, so runs on a handful of threads started once.
///
/// `@unchecked Sendable`: its variables are read and written only with `condition` held.
public final class BlockingPool: @unchecked Sendable {
    /// The pool every blocking job of the process runs on.
    public static let shared = BlockingPool(idleSeconds: 10)

    private let condition = ThreadCondition()
    private var jobs: [@Sendable () -> Void] = []
    private var head = 0
    /// Threads blocked waiting for a job.
    private var idle = 0
    private var started = 0
    private let idleSeconds: Int

    init(idleSeconds: Int) { self.idleSeconds = idleSeconds }

    /// Runs `job` on a thread of the pool: an idle one, or a new one when all are busy.
    public func run(_ job: @escaping @Sendable () -> Void) {
        condition.lock()
        jobs.append(job)
        // Each queued job needs a waiting thread of its own: a signal wakes one waiter.
        let needsThread = idle < jobs.count - head
        if needsThread { started += 1 } else { condition.signal() }
        condition.unlock()
        if needsThread { Self.detach { [self] in work() } }
    }

    /// Threads started since the pool was made (for tests: reuse shows as a count that stays put).
    public var threadsStarted: Int { condition.withLock { started } }
    /// Threads waiting for a job.
    var idleThreads: Int { condition.withLock { idle } }

    private func work() {
        condition.lock()
        while true {
            if head < jobs.count {
                let job = jobs[head]
                head += 1
                if head == jobs.count {
                    jobs.removeAll(keepingCapacity: true)
                    head = 0
                }
                condition.unlock()
                job()
                condition.lock()
                continue
            }
            idle += 1
            let signalled = condition.wait(seconds: idleSeconds)
            idle -= 1
            // A thread that timed out takes a job queued meanwhile before it ends.
            if !signalled && head == jobs.count {
                condition.unlock()
                return
            }
        }
    }

    /// A detached thread with a 1 MiB stack: the pool's jobs keep their big buffers on the heap.
    private static func detach(_ body: @escaping @Sendable () -> Void) {
        final class Box {
            let body: @Sendable () -> Void
            init(_ body: @escaping @Sendable () -> Void) { self.body = body }
        }
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        defer { pthread_attr_destroy(&attributes) }
        pthread_attr_setstacksize(&attributes, max(1 << 20, Int(PTHREAD_STACK_MIN)))
        pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
        let context = Unmanaged.passRetained(Box(body)).toOpaque()
        var thread = pthread_t()
        let status = pthread_create(&thread, &attributes, { context in
            guard let context else { return nil }
            let box = Unmanaged<Box>.fromOpaque(context).takeRetainedValue()
            box.body()
            return nil
        }, context)
        precondition(status == 0, "could not start a thread (pthread_create: \(status))")
    }
}

/// Runs blocking work on the blocking pool and waits for it without holding a thread of the
/// cooperative pool; cancelling the waiting task runs `onCancel` (the work checks its own flag).
func onBlockingPool<T: Sendable>(onCancel: @escaping @Sendable () -> Void = {},
                                 _ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withTaskCancellationHandler {
        try await withCheckedThrowingContinuation { continuation in
            BlockingPool.shared.run { continuation.resume(with: Result { try body() }) }
        }
    } onCancel: {
        onCancel()
    }
}

/// `value` with `places` digits after the decimal point (as printf's `%.Nf`), without Foundation.
public func formatFixed(_ value: Double, places: Int) -> String {
    guard value.isFinite else { return "\(value)" }
    var scale = 1.0
    for _ in 0..<places { scale *= 10 }
    let scaled = (abs(value) * scale).rounded()
    let whole = Int(scaled / scale)
    let fraction = Int(scaled - Double(whole) * scale)
    let sign = value < 0 && scaled > 0 ? "-" : ""
    guard places > 0 else { return sign + "\(whole)" }
    let digits = String(fraction)
    return sign + "\(whole)." + String(repeating: "0", count: max(0, places - digits.count)) + digits
}
