#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import Logging
import Synchronization

/// One file on a server: where it really is after redirects, its validator and length, and what the
/// server has shown about Range requests. Shared by all requests of a download.
public final class RemoteFile: Sendable {
    struct State {
        var url: String
        var etag: String?
        var length: Int?
        /// Ranges per request the server has handled; starts at Apache's `MaxRanges` default (200,
        /// past which it answers with the whole file) and drops on refusals.
        var maxRanges: Int
        /// Set once a single-range request was answered with the whole file.
        var rangesUnsupported = false
        var requests = 0
        var bytesReceived = 0
        /// The status of the last answer that said the resource is not there (404, 410, 403).
        var missingStatus: Int?
    }

    let exchange: HTTPExchange
    let extraHeaders: [(String, String)]
    let logger: Logger
    private let state: Mutex<State>
    /// Most redirects followed for one request.
    static let maxRedirects = 8

    /// A remote file at `url`, fetched through `exchange` with `headers` added to every request.
    public init(url: String, exchange: HTTPExchange, headers: [(String, String)], maxRanges: Int = 200,
        logger: Logger) {
        self.exchange = exchange
        self.extraHeaders = headers
        self.logger = logger
        state = Mutex(State(url: url, maxRanges: maxRanges))
    }

    /// The URL after redirects.
    public var url: String { state.withLock { $0.url } }
    /// The length the server reported, once known.
    public var length: Int? { state.withLock { $0.length } }
    /// The strong ETag the server gave, once known.
    public var etag: String? { state.withLock { $0.etag } }
    /// Requests sent so far (redirects included).
    public var requests: Int { state.withLock { $0.requests } }
    /// Body bytes received so far.
    public var bytesReceived: Int { state.withLock { $0.bytesReceived } }
    /// The status of the last answer that said the resource is not there (404, 410 or 403).
    var missingStatus: Int? {
        get { state.withLock { $0.missingStatus } }
        set { state.withLock { $0.missingStatus = newValue } }
    }
    /// Ranges per request the server currently gets.
    public var maxRanges: Int { state.withLock { $0.maxRanges } }
    /// Whether the server ignores Range requests.
    public var rangesUnsupported: Bool { state.withLock { $0.rangesUnsupported } }

    /// Abandons the body of a redirect.
    private struct RedirectSeen: Error {}

    /// Sends GET with redirects followed (at most 8, never from https to http) and records the validator.
    /// `head` sees the final response head; `body` its body.
    func get(
        headers: [(String, String)],
        head: (HTTPResponseHead) throws -> Void,
        body: (UnsafeRawBufferPointer) throws -> Void
    ) async throws {
        var current = url
        for _ in 0...Self.maxRedirects {
            var location: String?
            var all = [("Accept-Encoding", "identity")] + extraHeaders + headers
            if let etag = state.withLock({ $0.etag }), !headers.contains(where: { $0.0 == "If-Match" }),
                etag.hasPrefix("\"") {
                all.append(("If-Match", etag))
            }
            state.withLock { $0.requests += 1 }
            do {
                try await exchange.get(current, headers: all, head: { response in
                    if [301, 302, 303, 307, 308].contains(response.status), let target = response.value("location") {
                        location = target
                        throw RedirectSeen()
                    }
                    // Where the resource really is, known from its head (a caller may stop reading early).
                    self.state.withLock { if $0.url != current { $0.url = current } }
                    try self.checkValidator(response)
                    try head(response)
                }, body: { chunk in
                    self.state.withLock { $0.bytesReceived += chunk.count }
                    try body(chunk)
                })
                return
            } catch is RedirectSeen {
                guard let location else { throw TransportError(.protocolViolation, "a redirect without a Location") }
                guard let next = URL(string: location,
                    relativeTo: URL(string: current))?.absoluteURL.absoluteString else {
                    throw TransportError(.redirect, "the server redirected to an invalid location: \(location)")
                }
                if current.lowercased().hasPrefix("https:") && next.lowercased().hasPrefix("http:") {
                    throw TransportError(.redirect, "refusing a redirect from \(current) to plain-HTTP \(next)")
                }
                logger.debug("redirected to \(next)")
                current = next
            }
        }
        throw TransportError(.redirect, "more than \(Self.maxRedirects) redirects from \(url)")
    }

    /// Remembers the first strong ETag and fails when a later reply carries another one.
    private func checkValidator(_ response: HTTPResponseHead) throws {
        guard (200..<300).contains(response.status), let etag = response.value("etag") else { return }
        try state.withLock { state in
            if let known = state.etag, known != etag {
                throw TransportError(.changed,
                    "the file changed on the server during the download (its ETag went from \(known) to \(etag))")
            }
            if state.etag == nil && etag.hasPrefix("\"") { state.etag = etag }
        }
    }

    /// Runs `operation`, trying again with backoff after transient failures.
    func retrying<T>(_ what: String, attempts: Int = 5, _ operation: () async throws -> T) async throws -> T {
        var attempt = 0
        while true {
            try Task.checkCancellation()
            attempt += 1
            do {
                return try await operation()
            } catch let error as TransportError where error.isTransient && attempt < attempts {
                let delay = Self.backoff(attempt)
                logger.info("\(what): \(error.message); retrying in \(delay) s")
                try await Task.sleep(nanoseconds: UInt64(delay * 1e9))
            }
        }
    }

    /// Seconds to wait before attempt `attempt + 1`: 0.25, 0.5, 1, 2, then 4.
    static func backoff(_ attempt: Int) -> Double { min(4.0, 0.25 * Double(1 << min(attempt - 1, 4))) }

    /// Records the complete length from a reply; fails when it contradicts an earlier one.
    func noteLength(_ length: Int) throws {
        try state.withLock { state in
            if let known = state.length, known != length {
                throw TransportError(.changed,
                    "the file changed on the server during the download (its length went from \(known) to \(length))")
            }
            state.length = length
        }
    }

    /// Fetches one request's worth of ranges (sorted, disjoint) and hands the bytes that lie within
    /// them to `deliver` as they arrive, cut into pieces of whole `unit`s (see `UnitCollector`);
    /// `deliver` returns the part it accepted. Returns the parts of `ranges` not accepted.
    ///
    /// Nothing of the reply is held beyond 64 KiB or one unit: whatever arrived whole before the connection
    /// broke or the reply turned out malformed is accepted, and the caller asks again only for the rest.
    func fetchOnce(_ ranges: [Range<Int>], unit: Int, deliver: (Range<Int>,
        UnsafeRawBufferPointer) throws -> Range<Int>) async throws -> [Range<Int>] {
        let expected = ranges.reduce(0) { $0 + $1.count }
        let limit = expected + ranges.count * 512 + 65536
        var received = 0
        var response: HTTPResponseHead?
        var reader: PartialReplyReader?
        let collector = UnitCollector(unit: unit, wanted: ranges)
        func handle(_ event: PartialReplyReader.Event) throws {
            switch event {
            case .part(let contentRange):
                if let total = contentRange.completeLength { try noteLength(total) }
            case .data(let offset, let bytes):
                try collector.add(offset: offset, bytes: bytes, deliver: deliver)
            }
        }
        do {
            try await get(headers: [("Range", ByteRanges.header(for: ranges))], head: { head in
                response = head
                // Only a 206 carries ranges. A 200 carries the whole file, never a range: it is never
                // appended; the caller falls back (fewer ranges per request, or one plain download).
                guard head.status == 206 else { throw BodyNotNeeded() }
                reader = try PartialReplyReader(head: head)
            }, body: { chunk in
                received += chunk.count
                guard received <= limit else {
                    throw TransportError(.protocolViolation,
                        "the server sent more than the \(expected) bytes asked for")
                }
                try reader?.feed(chunk, handle)
            })
            try reader?.finish(handle)
            try collector.flush(deliver)
        } catch is BodyNotNeeded {
            // Handled below, from the status.
        } catch {
            // What arrived whole before the reply broke off is kept: only the rest is asked for again.
            try? collector.flushWholeUnits(deliver)
            throw error
        }
        guard let response else { throw TransportError(.protocolViolation, "no response") }
        switch response.status {
        case 206:
            let missing = ranges.flatMap { collector.accepted.gaps(in: $0) }
            if !missing.isEmpty && ranges.count > 1 {
                let changed = state.withLock { state in
                    defer { state.maxRanges = 1 }
                    return state.maxRanges > 1
                }
                if changed {
                    logger.info("the server answered only part of a multi-range request; asking one range at a time")
                }
            }
            return missing
        case 200:
            let changed = state.withLock { state in
                let before = (state.maxRanges, state.rangesUnsupported)
                if ranges.count > 1 { state.maxRanges = 1 } else { state.rangesUnsupported = true }
                return before != (state.maxRanges, state.rangesUnsupported)
            }
            if changed {
                if ranges.count > 1 {
                    logger.info("""
                        the server answered a multi-range request with the whole file; asking one range at a time
                        """)
                } else {
                    logger.info("the server ignores Range requests")
                }
            }
            return ranges
        case 416:
            if let total = response.value("content-range")
                .flatMap(ByteRanges.parseUnsatisfiedLength) { try noteLength(total) }
            throw TransportError(.changed,
                "the server says the requested bytes are past the end of the file: it is shorter than its signature " +
                    "says", status: 416)
        case 412:
            throw TransportError.changedOnServer
        case let status where [400, 413, 414, 431, 501].contains(status) && ranges.count > 1:
            // 501 (GitHub's CDN) refuses multi-range outright; the others object to the request's size.
            let limit = status == 501 ? 1 : max(1, ranges.count / 4)
            let changed = state.withLock { state in
                guard limit < state.maxRanges else { return false }
                state.maxRanges = limit
                return true
            }
            if changed {
                logger.info("""
                    the server refused \(ranges.count) ranges in one request (HTTP \(status)); asking at most \
                    \(limit) per request
                    """)
            }
            return ranges
        default:
            throw TransportError(.status, "the server answered HTTP \(response.status) for a range of \(url)",
                status: response.status)
        }
    }

    /// Abandons the body of a reply whose status says all there is to know.
    private struct BodyNotNeeded: Error {}
}

/// Sorted, disjoint integer ranges.
struct ByteRangeSet: Sendable {
    private(set) var ranges: [Range<Int>] = []

    mutating func insert(_ range: Range<Int>) {
        guard !range.isEmpty else { return }
        var merged = range
        var result: [Range<Int>] = []
        for existing in ranges {
            if existing.upperBound < merged.lowerBound || merged.upperBound < existing.lowerBound {
                result.append(existing)
            } else {
                merged = min(existing.lowerBound, merged.lowerBound)..<max(existing.upperBound, merged.upperBound)
            }
        }
        result.append(merged)
        ranges = result.sorted { $0.lowerBound < $1.lowerBound }
    }

    /// The parts of `range` not covered.
    func gaps(in range: Range<Int>) -> [Range<Int>] {
        var result: [Range<Int>] = []
        var cursor = range.lowerBound
        for existing in ranges where existing.upperBound > cursor && existing.lowerBound < range.upperBound {
            if existing.lowerBound > cursor { result.append(cursor..<existing.lowerBound) }
            cursor = max(cursor, existing.upperBound)
        }
        if cursor < range.upperBound { result.append(cursor..<range.upperBound) }
        return result
    }
}
