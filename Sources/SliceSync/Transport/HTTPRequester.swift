/// The body of a request: nothing, bytes in memory, or a range of a local file streamed from disk (a
/// part of many MiB is never held whole).
public enum RequestBody: Sendable {
    case empty
    case bytes([UInt8])
    case file(path: String, range: Range<Int>)

    /// The whole of the file at `path`, as long as it is now.
    public static func wholeFile(_ path: String) throws -> RequestBody {
        .file(path: path, range: 0..<(try FileSystem.stamp(path)?.size ?? 0))
    }

    /// Its length in bytes.
    public var count: Int {
        switch self {
        case .empty: 0
        case .bytes(let bytes): bytes.count
        case .file(_, let range): range.count
        }
    }
}

/// A reply whose body was collected whole (small replies only: XML documents, signatures).
public struct HTTPReply: Sendable {
    /// Status and headers.
    public var head: HTTPResponseHead
    /// The body.
    public var body: [UInt8]

    /// A reply from its parts.
    public init(head: HTTPResponseHead, body: [UInt8]) {
        self.head = head
        self.body = body
    }
}

/// Any HTTP method with a body: what publishing needs beyond `HTTPExchange`'s streamed GET.
///
/// Implementations must not follow redirects or retry; the caller does both under its own rules.
public protocol HTTPRequester: Sendable {
    /// Sends one request and collects the reply's body, failing with a protocol violation when the body
    /// is longer than `limit`.
    func send(method: String, url: String, headers: [(String, String)], body: RequestBody,
              limit: Int) async throws -> HTTPReply
}
