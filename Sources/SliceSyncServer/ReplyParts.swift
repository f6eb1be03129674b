import Foundation
import NIOCore
import SliceSync
import Synchronization

/// The rest of a large body, read from the file chunk by chunk as the client takes it, so that a
/// connection holds at most one chunk whatever the reply's size.
struct BodyStream {
    /// What comes next.
    enum Next {
        case chunk(ByteBuffer)
        case end
        /// The file is shorter than planned: the connection must close before the promised length,
        /// so that the client sees a truncated reply, never bytes that are not the file's.
        case fileShrank
    }

    private let file: SystemFile
    private let segments: [BodySegment]
    private var index = 0
    private var offset: Int?
    private let budget: StreamBudget.Share

    init(file: SystemFile, segments: [BodySegment], budget: StreamBudget) {
        self.file = file
        self.segments = segments
        self.budget = budget.enter()
    }

    mutating func next(allocator: ByteBufferAllocator) -> Next {
        guard index < segments.count else { return .end }
        switch segments[index] {
        case .bytes(let bytes):
            index += 1
            return .chunk(allocator.buffer(bytes: bytes))
        case .file(let range):
            let start = offset ?? range.lowerBound
            let chunk = start..<min(range.upperBound, start + budget.chunkSize)
            var buffer = allocator.buffer(capacity: chunk.count)
            guard FileReplies.read(chunk, from: file, into: &buffer) else { return .fileShrank }
            if chunk.upperBound == range.upperBound {
                index += 1
                offset = nil
            } else {
                offset = chunk.upperBound
            }
            return .chunk(buffer)
        }
    }
}

/// Shares a memory budget among the large bodies being sent at once: each reads chunks of the budget
/// divided by their number, between 32 KiB and 256 KiB. 256 KiB chunks halve the system calls of a
/// whole-file download against 64 KiB ones; but 256 clients downloading whole files would then hold
/// 64 MiB of chunks, twice over while a socket is still writable (peak RSS 107 MiB, measured); with the
/// budget they hold 32 KiB chunks (peak RSS 55 MiB), and 16 clients still get 256 KiB ones.
final class StreamBudget: Sendable {
    private let active = Atomic<Int>(0)
    private let total: Int

    init(total: Int = 8 << 20) {
        self.total = total
    }

    /// One body's part of the budget, for as long as it is held.
    final class Share: Sendable {
        private let budget: StreamBudget

        fileprivate init(_ budget: StreamBudget) {
            self.budget = budget
            budget.active.add(1, ordering: .relaxed)
        }

        deinit { budget.active.subtract(1, ordering: .relaxed) }

        /// The size of the next chunk, for the bodies being sent now.
        var chunkSize: Int {
            let share = budget.total / max(1, budget.active.load(ordering: .relaxed))
            return min(256 << 10, max(32 << 10, share & ~4095))
        }
    }

    func enter() -> Share { Share(self) }
}

/// The `Date` header value, formatted at most once per second.
struct CachedDate {
    private var second = -1
    private var text = ""

    /// The current time as an IMF-fixdate.
    mutating func now() -> String {
        let current = Int(Date().timeIntervalSince1970)
        if current != second {
            second = current
            text = HTTPDate.format(current)
        }
        return text
    }
}

/// Serialises access-log lines (the common log format) on standard output.
enum AccessLog {
    private static let lock = NSLock()

    static func write(peer: String, date: String, head: RequestHead, version: String, status: Int,
        headers: [(name: String, value: String)]) {
        let length = headers.first { $0.name == "Content-Length" }?.value ?? "-"
        let line = "\(peer) - - [\(date)] \"\(head.method) \(head.target) \(version)\" " +
            "\(status) \(length)\n"
        lock.lock()
        defer { lock.unlock() }
        FileHandle.standardOutput.write(Data(line.utf8))
    }
}
