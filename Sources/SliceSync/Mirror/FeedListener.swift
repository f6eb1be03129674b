import Logging
import Synchronization

/// Listens to a server's change feed (`/.slicesync/.slicesync-events`, Server-Sent Events, which
/// `syncserver` offers), reconnecting with backoff and resuming with `Last-Event-ID`. It only records
/// the latest event; the watch loop decides what to do. A server without a feed (nginx, S3: 404, or
/// not an event stream) is noted once, and the watch loop polls instead.
final class FeedListener: Sendable {
    /// The latest event's ID.
    let latest = Mutex<String?>(nil)
    /// Whether a stream is open now.
    let connected = Atomic<Bool>(false)
    /// Whether the server has no feed.
    let unsupported = Atomic<Bool>(false)

    private struct NoFeed: Error {}

    /// Listens until the task is cancelled or the server turns out to have no feed.
    func run(url: String, exchange: HTTPExchange, headers: [(String, String)], logger: Logger) async {
        var backoff = Duration.milliseconds(250)
        while !Task.isCancelled {
            var parser = EventStreamParser()
            do {
                var extra = headers + [("Accept", "text/event-stream")]
                if let last = latest.withLock({ $0 }) { extra.append(("Last-Event-ID", last)) }
                try await exchange.get(url, headers: extra, head: { head in
                    guard head.status == 200, head.value("content-type")?.hasPrefix("text/event-stream") == true
                    else { throw NoFeed() }
                    connected.store(true, ordering: .releasing)
                    backoff = .milliseconds(250)
                }, body: { chunk in
                    for id in parser.take(chunk) { latest.withLock { $0 = id } }
                })
            } catch is NoFeed {
                unsupported.store(true, ordering: .releasing)
                logger.info("\(url) offers no change feed: the manifest is checked every interval instead")
                return
            } catch {
                logger.debug("the change feed \(url) broke off (\(error)); reconnecting in \(backoff)")
            }
            connected.store(false, ordering: .releasing)
            try? await Task.sleep(for: backoff)
            backoff = min(backoff * 2, .seconds(30))
        }
    }
}

/// Splits a Server-Sent Events stream into events; yields the IDs of `manifest` events (and of events
/// without a type, the default `message`).
struct EventStreamParser {
    private var line: [UInt8] = []
    private var id: String?
    private var type = ""
    private var hasData = false
    private var lastID: String?

    /// Takes the next bytes; returns the IDs of the events they complete.
    mutating func take(_ bytes: UnsafeRawBufferPointer) -> [String] {
        var completed: [String] = []
        for byte in bytes {
            if byte == UInt8(ascii: "\n") {
                if let id = finishLine() { completed.append(id) }
            } else if byte != UInt8(ascii: "\r"), line.count < 4096 {
                line.append(byte)
            }
        }
        return completed
    }

    private mutating func finishLine() -> String? {
        defer { line.removeAll(keepingCapacity: true) }
        guard !line.isEmpty else {
            // A blank line dispatches the event, when it has data (a comment alone is none).
            defer { id = nil; type = ""; hasData = false }
            if let id { lastID = id }
            guard hasData, type.isEmpty || type == "manifest" || type == "message", let dispatched = id ?? lastID
            else {
                return nil
            }
            return dispatched
        }
        let text = String(decoding: line, as: UTF8.self)
        if text.hasPrefix(":") { return nil }
        let field = text.prefix { $0 != ":" }
        var value = text.dropFirst(field.count).dropFirst()
        if value.hasPrefix(" ") { value = value.dropFirst() }
        switch field {
        case "id": id = String(value)
        case "event": type = String(value)
        case "data": hasData = true
        default: break
        }
        return nil
    }
}
