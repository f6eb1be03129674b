#if canImport(Glibc)
import Glibc
#endif

/// One change reported by the kernel for a watched directory.
struct WatchEvent: Sendable, Equatable {
    /// The watch (directory) it concerns.
    var watch: Int32
    /// The inotify mask bits.
    var mask: UInt32
    /// Pairs the two halves of a rename.
    var cookie: UInt32
    /// The entry's name inside the directory: empty for events about the directory itself, nil when
    /// the name is not valid UTF-8.
    var name: String?

    var isDirectory: Bool { mask & UInt32(IN_ISDIR) != 0 }
    func has(_ bit: Int32) -> Bool { mask & UInt32(bit) != 0 }
}

/// What one wait on the watcher returned.
enum WatchWait {
    /// Events, in the order the kernel queued them.
    case events([WatchEvent])
    /// The timeout passed with nothing to report.
    case timedOut
    /// `wake()` was called.
    case woken
}

/// Directory watches through Linux inotify, plus a wake-up pipe so another thread can interrupt a wait.
///
/// Only directories are watched: their events name the entries that changed, which covers files
/// created, written, closed, renamed and deleted inside them without one watch per file.
final class DirectoryWatcher: @unchecked Sendable {
    /// The events the service reacts to.
    static let mask = UInt32(IN_CREATE | IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO
        | IN_DELETE | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR | IN_DONT_FOLLOW | IN_EXCL_UNLINK)

    private let inotify: Int32
    private let wakeRead: Int32
    private let wakeWrite: Int32
    private var buffer = [UInt8](repeating: 0, count: 256 * 1024)

    /// Why adding a watch failed.
    enum AddFailure: Error {
        /// The per-user watch limit (`fs.inotify.max_user_watches`) is reached.
        case limitReached
        /// The directory is gone or not a directory any more.
        case vanished
        /// Anything else, with its errno.
        case other(Int32)
    }

    /// Opens an inotify instance.
    init() throws(FileSystemError) {
        inotify = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        if inotify < 0 {
            let code = errno
            throw FileSystemError(errno: code,
                operation: code == EMFILE ? "open an inotify instance (the limit fs.inotify.max_user_instances is " +
                    "reached) for" : "open an inotify instance for", path: "the watched tree")
        }
        var fds: [Int32] = [0, 0]
        if pipe(&fds) != 0 {
            let code = errno
            close(inotify)
            throw FileSystemError(errno: code, operation: "create a wake-up pipe for", path: "the watched tree")
        }
        for fd in fds {
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        }
        wakeRead = fds[0]
        wakeWrite = fds[1]
    }

    deinit {
        close(inotify)
        close(wakeRead)
        close(wakeWrite)
    }

    /// Watches one directory (not its subdirectories); returns the watch descriptor.
    func add(_ directory: String) -> Result<Int32, AddFailure> {
        let watch = inotify_add_watch(inotify, directory, Self.mask)
        if watch >= 0 { return .success(watch) }
        switch errno {
        case ENOSPC: return .failure(.limitReached)
        case ENOENT, ENOTDIR: return .failure(.vanished)
        case let code: return .failure(.other(code))
        }
    }

    /// Stops watching; the kernel answers with an IN_IGNORED event for it.
    func remove(_ watch: Int32) {
        _ = inotify_rm_watch(inotify, watch)
    }

    /// Interrupts a `wait` in progress (or the next one), from any thread.
    func wake() {
        var byte: UInt8 = 1
        _ = write(wakeWrite, &byte, 1)
    }

    /// Blocks until events arrive, `wake()` is called, or `timeoutMilliseconds` pass (-1: no timeout).
    func wait(timeoutMilliseconds: Int32) -> WatchWait {
        var fds = [pollfd(fd: inotify, events: Int16(POLLIN), revents: 0),
            pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0)]
        let ready = poll(&fds, 2, timeoutMilliseconds)
        if ready <= 0 { return .timedOut }
        if fds[1].revents != 0 {
            var drain = [UInt8](repeating: 0, count: 64)
            while read(wakeRead, &drain, drain.count) > 0 {}
            return .woken
        }
        return .events(readEvents())
    }

    private func readEvents() -> [WatchEvent] {
        var events: [WatchEvent] = []
        while true {
            let count = buffer.withUnsafeMutableBytes { read(inotify, $0.baseAddress, $0.count) }
            guard count > 0 else { break }
            buffer.withUnsafeBytes { raw in
                var offset = 0
                let headerSize = MemoryLayout<inotify_event>.size
                while offset + headerSize <= count {
                    let watch = raw.loadUnaligned(fromByteOffset: offset, as: Int32.self)
                    let mask = raw.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self)
                    let cookie = raw.loadUnaligned(fromByteOffset: offset + 8, as: UInt32.self)
                    let nameLength = Int(raw.loadUnaligned(fromByteOffset: offset + 12, as: UInt32.self))
                    let nameStart = offset + headerSize
                    let nameBytes = raw[nameStart..<min(count, nameStart + nameLength)].prefix { $0 != 0 }
                    let name = String(validating: nameBytes, as: UTF8.self)
                    events.append(WatchEvent(watch: watch, mask: mask, cookie: cookie, name: name))
                    offset = nameStart + nameLength
                }
            }
        }
        return events
    }
}
