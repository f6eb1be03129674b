/// The status line and headers of an HTTP response.
public struct HTTPResponseHead: Sendable {
    /// The status code.
    public var status: Int
    /// Header fields with lowercased names, in order.
    public var headers: [(name: String, value: String)]

    /// Creates a head; names are lowercased.
    public init(status: Int, headers: [(String, String)]) {
        self.status = status
        self.headers = headers.map { ($0.0.lowercased(), $0.1) }
    }

    /// The first value of a header, by case-insensitive name.
    public func value(_ name: String) -> String? {
        let lower = name.lowercased()
        return headers.first { $0.name == lower }?.value
    }
}

/// One HTTP GET, streamed: the only thing the client needs from an HTTP library.
///
/// Implementations must not follow redirects, decompress, or retry; the caller does each of those
/// under its own rules.
public protocol HTTPExchange: Sendable {
    /// Sends GET `url` with `headers`. Calls `head` once with the response head, then `body` with each
    /// chunk of the body in order. Either callback may throw to abandon the response.
    func get(
        _ url: String,
        headers: [(String, String)],
        head: (HTTPResponseHead) throws -> Void,
        body: (UnsafeRawBufferPointer) throws -> Void
    ) async throws
}

/// A failure to talk to a server or a reply that cannot be used.
public struct TransportError: Error, Sendable, CustomStringConvertible {
    /// What went wrong; stable across releases.
    public enum Code: String, Sendable {
        /// The connection broke or could not be made for a reason that may pass.
        case connection
        /// Nothing listens there, or the host name does not resolve: trying again will not help.
        case unreachable
        /// No answer in time.
        case timeout
        /// The TLS handshake or certificate check failed.
        case tls
        /// The server answered with an error status.
        case status
        /// The reply broke the protocol (bad Content-Range, truncated body, malformed multipart).
        case protocolViolation = "protocol"
        /// The file changed on the server while it was being fetched.
        case changed
        /// Too many redirects, or a redirect to plain HTTP from HTTPS.
        case redirect
        /// The URL is not an http or https URL.
        case badURL = "bad-url"
    }

    /// The code.
    public var code: Code
    /// A sentence for people.
    public var message: String
    /// The HTTP status, when the server answered.
    public var status: Int?

    /// Creates an error.
    public init(_ code: Code, _ message: String, status: Int? = nil) {
        self.code = code
        self.message = message
        self.status = status
    }

    /// The message.
    public var description: String { message }

    /// Whether trying again may help.
    public var isTransient: Bool {
        switch code {
        case .connection, .timeout: true
        case .status: (status ?? 0) >= 500 || status == 408 || status == 429
        case .protocolViolation: true
        default: false
        }
    }
}
