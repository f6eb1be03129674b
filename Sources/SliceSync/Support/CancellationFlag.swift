import Synchronization

/// A flag that long-running work on plain threads polls to stop early.
public final class CancellationFlag: Sendable {
    private let flag = Atomic<Bool>(false)

    /// Creates a flag that is not set.
    public init() {}

    /// Asks the work to stop.
    public func cancel() { flag.store(true, ordering: .releasing) }

    /// Whether the work was asked to stop.
    public var isCancelled: Bool { flag.load(ordering: .acquiring) }
}
