import Synchronization

/// Caps the rate at which bytes are taken from the network, across every connection of a run
/// (`slicesync --limit-rate`).
///
/// A reader that takes more than its share sleeps before it reads on; while it sleeps it leaves the
/// rest of the reply in the socket, so TCP's own flow control slows the server down: no byte is
/// dropped or buffered beyond what the HTTP stack already holds.
public final class RateLimiter: Sendable {
    /// The bookkeeping, a pure value: a token bucket that may go into debt.
    struct Bucket: Sendable, Equatable {
        /// Bytes per second.
        let rate: Double
        /// Most bytes that can be taken at once after an idle spell.
        let burst: Double
        private(set) var tokens: Double
        private(set) var last: Double

        init(rate: Int, now: Double) {
            self.rate = Double(max(1, rate))
            // A tenth of a second's worth, but never less than a network read, so a slow rate still
            // makes progress in whole reads.
            burst = max(self.rate / 10, 16 * 1024)
            tokens = burst
            last = now
        }

        /// Takes `bytes` at time `now` (seconds); returns how long the taker must wait.
        mutating func take(_ bytes: Int, now: Double) -> Double {
            tokens = min(burst, tokens + max(0, now - last) * rate)
            last = max(last, now)
            tokens -= Double(bytes)
            return tokens < 0 ? -tokens / rate : 0
        }
    }

    private let bucket: Mutex<Bucket>
    private let start = ContinuousClock.now

    /// A limiter of `bytesPerSecond`.
    public init(bytesPerSecond: Int) {
        bucket = Mutex(Bucket(rate: bytesPerSecond, now: 0))
    }

    /// The cap, in bytes per second.
    public var bytesPerSecond: Int { bucket.withLock { Int($0.rate) } }

    /// Accounts for `bytes` just read and waits as long as the cap asks.
    public func took(_ bytes: Int) async throws {
        let now = (ContinuousClock.now - start).inSeconds
        let delay = bucket.withLock { $0.take(bytes, now: now) }
        if delay > 0 { try await Task.sleep(nanoseconds: UInt64(delay * 1e9)) }
    }
}
