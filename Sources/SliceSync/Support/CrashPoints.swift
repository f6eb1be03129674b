#if canImport(Glibc)
import Glibc
#endif

/// Named moments of work that must survive a crash, where the crash tests stop the process.
///
/// `SLICESYNC_CRASH_AT=NAME` makes the process exit at once (status 137, as after `kill -9`, with
/// nothing flushed or cleaned up) the first time it reaches `NAME`. Random kills cannot be aimed at a
/// window of microseconds; this can, so every phase of an in-place update is tested. Unset, it costs
/// one comparison.
enum CrashPoints {
    private static let target: String? = {
        guard let value = getenv("SLICESYNC_CRASH_AT") else { return nil }
        return String(cString: value)
    }()

    /// Exits here when the crash tests asked for `name`.
    static func reach(_ name: String) {
        guard let target, target == name else { return }
        _exit(137)
    }
}
