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

    private static let pauseTarget: (name: String, file: String)? = {
        guard let name = getenv("SLICESYNC_PAUSE_AT"), let file = getenv("SLICESYNC_PAUSE_FILE") else { return nil }
        return (String(cString: name), String(cString: file))
    }()

    /// `SLICESYNC_PAUSE_AT=NAME` with `SLICESYNC_PAUSE_FILE=PATH`: at `NAME`, creates `PATH.reached` and
    /// waits (a minute at most) until `PATH` exists, so that a test can change the world at that moment
    /// (the remote object during a push). Unset, it costs one comparison.
    static func pause(_ name: String) {
        guard let pauseTarget, pauseTarget.name == name else { return }
        let marker = open(pauseTarget.file + ".reached", O_CREAT | O_WRONLY | O_CLOEXEC, 0o644)
        if marker >= 0 { close(marker) }
        for _ in 0..<1200 where access(pauseTarget.file, F_OK) != 0 { usleep(50_000) }
    }
}
