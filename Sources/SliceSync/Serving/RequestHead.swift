/// A request head as an HTTP/1.x server receives it (RFC 9112 §3 and §5): the request line, and the
/// header fields kept as byte ranges of the head, so that a request costs one array and the few
/// strings the reply reads, not a string per field.
public struct RequestHead: Sendable {
    /// The method, as sent (methods are case-sensitive).
    public var method: String
    /// The request target, as sent.
    public var target: String
    /// The minor version of HTTP/1.x.
    public var minorVersion: Int
    /// The head's bytes, from the first byte of the first field line.
    private var bytes: [UInt8]
    /// Each field's name and value (without surrounding whitespace) in `bytes`.
    private var fields: [(name: Range<Int>, value: Range<Int>)]

    /// Why a head is refused, with the status that says so.
    public struct Rejection: Error, Sendable, Equatable {
        /// The status line after `HTTP/1.1 `, e.g. `400 Bad Request`.
        public var status: String
        /// What was wrong, for the server's debug log.
        public var reason: String

        public init(status: String, reason: String) {
            self.status = status
            self.reason = reason
        }

        static func badRequest(_ reason: String) -> Rejection {
            Rejection(status: "400 Bad Request", reason: reason)
        }
    }

    /// A head from its parts (HTTP/2 requests arrive this way).
    public init(method: String, target: String, minorVersion: Int = 1, fields: [(name: String, value: String)]) {
        self.method = method
        self.target = target
        self.minorVersion = minorVersion
        var bytes: [UInt8] = []
        var ranges: [(name: Range<Int>, value: Range<Int>)] = []
        for (name, value) in fields {
            let nameStart = bytes.count
            bytes += name.utf8
            let valueStart = bytes.count
            bytes += value.utf8
            ranges.append((nameStart..<valueStart, valueStart..<bytes.count))
        }
        self.bytes = bytes
        self.fields = ranges
    }

    private init(method: String, target: String, minorVersion: Int, bytes: [UInt8],
        fields: [(name: Range<Int>, value: Range<Int>)]) {
        self.method = method
        self.target = target
        self.minorVersion = minorVersion
        self.bytes = bytes
        self.fields = fields
    }

    /// Parses a complete head: the request line, the field lines and the empty line that ends them.
    /// Lines end with CRLF or a bare LF (RFC 9112 §2.2 lets a server accept either).
    public static func parse(_ all: [UInt8]) throws(Rejection) -> RequestHead {
        var lines = LineCursor(bytes: all)
        // Empty lines before a request line are allowed (RFC 9112 §2.2).
        var requestLine = lines.next()
        while let line = requestLine, line.isEmpty { requestLine = lines.next() }
        guard let line = requestLine else { throw .badRequest("no request line") }
        let (method, target, minor) = try parseRequestLine(all[line])
        var fields: [(name: Range<Int>, value: Range<Int>)] = []
        fields.reserveCapacity(8)
        while let field = lines.next(), !field.isEmpty {
            fields.append(try parseField(all, field))
        }
        let parsed = RequestHead(method: method, target: target, minorVersion: minor, bytes: all, fields: fields)
        try parsed.checkFields()
        return parsed
    }

    /// The values of every field called `name` (case-insensitive), in order.
    public func values(_ name: String) -> [String] {
        var found: [String] = []
        for field in fields where matches(field.name, name) {
            found.append(String(decoding: bytes[field.value], as: UTF8.self))
        }
        return found
    }

    /// The first value of the field `name`, if present.
    public func first(_ name: String) -> String? {
        fields.first { matches($0.name, name) }.map { String(decoding: bytes[$0.value], as: UTF8.self) }
    }

    /// All values of a repeated field joined with commas, as RFC 9110 §5.3 allows; nil when absent.
    public func joined(_ name: String) -> String? {
        let found = values(name)
        return found.isEmpty ? nil : found.joined(separator: ", ")
    }

    /// Every field as a name and a value, in order.
    public var allFields: [(name: String, value: String)] {
        fields.map { field in
            (String(decoding: bytes[field.name], as: UTF8.self), String(decoding: bytes[field.value], as: UTF8.self))
        }
    }

    /// Whether the connection stays open after the reply: HTTP/1.1 unless `Connection: close`,
    /// HTTP/1.0 only with `Connection: keep-alive` (RFC 9112 §9.3).
    public var isKeepAlive: Bool {
        let options = connectionOptions
        return minorVersion >= 1 ? !options.contains("close") : options.contains("keep-alive")
    }

    /// The body's length from `Content-Length` (0 when absent; `parse` refuses lengths that disagree).
    public var contentLength: Int { contentLengths.first.flatMap { Int($0) } ?? 0 }

    /// Every `Content-Length` value, lists split (`5, 5` is two values).
    private var contentLengths: [String] {
        values("Content-Length").flatMap { $0.split(separator: ",") }.map { $0.trimmingSpaces }
    }

    /// Whether the body is sent with `Transfer-Encoding` (and so cannot be skipped by length).
    public var hasTransferEncoding: Bool { first("Transfer-Encoding") != nil }

    private var connectionOptions: [String] {
        values("Connection").flatMap { $0.split(separator: ",") }.map { $0.trimmingSpaces.lowercased() }
    }

    private func matches(_ range: Range<Int>, _ wanted: String) -> Bool {
        guard range.count == wanted.utf8.count else { return false }
        var index = range.lowerBound
        for byte in wanted.utf8 {
            // ASCII case folding: field names are tokens, so folding bit 5 of a letter is exact.
            let have = bytes[index]
            guard have == byte || (have | 0x20 == byte | 0x20 && (byte | 0x20) &- 0x61 < 26) else { return false }
            index += 1
        }
        return true
    }

    /// Request smuggling guards (RFC 9112 §6.3): a length that is not a number, lengths that
    /// disagree, or a length beside a transfer coding; and `Host`, which an HTTP/1.1 request must carry
    /// exactly once (§3.2; at most once in HTTP/1.0).
    private func checkFields() throws(Rejection) {
        let hosts = values("Host")
        if hosts.count > 1 || (hosts.isEmpty && minorVersion >= 1) {
            throw .badRequest(hosts.isEmpty ? "no Host field in an HTTP/1.1 request" : "more than one Host field")
        }
        let lengths = contentLengths
        if let firstLength = lengths.first {
            guard lengths.allSatisfy({ $0 == firstLength }),
                  !firstLength.isEmpty, firstLength.utf8.count <= 18,
                  firstLength.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
                throw .badRequest("invalid Content-Length")
            }
            if hasTransferEncoding { throw .badRequest("Content-Length with Transfer-Encoding") }
        }
    }

    private static func parseRequestLine(_ line: ArraySlice<UInt8>) throws(Rejection) -> (String, String, Int) {
        let parts = line.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[0].isEmpty, !parts[1].isEmpty else {
            throw .badRequest("malformed request line")
        }
        guard parts[0].allSatisfy(isTokenByte) else { throw .badRequest("malformed method") }
        guard parts[1].allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { throw .badRequest("malformed target") }
        let version = Array(parts[2])
        let prefix = Array("HTTP/".utf8)
        guard version.count == 8, Array(version[0..<5]) == prefix, version[6] == UInt8(ascii: "."),
              isDigit(version[5]), isDigit(version[7]) else { throw .badRequest("malformed HTTP version") }
        guard version[5] == UInt8(ascii: "1") else {
            throw Rejection(status: "505 HTTP Version Not Supported", reason: "HTTP major version not 1")
        }
        return (String(decoding: parts[0], as: UTF8.self), String(decoding: parts[1], as: UTF8.self),
            Int(version[7] - 0x30))
    }

    private static func parseField(_ bytes: [UInt8], _ line: Range<Int>) throws(Rejection)
    -> (name: Range<Int>, value: Range<Int>) {
        // A line that starts with whitespace folds onto the previous one (obsolete; RFC 9112 §5.2
        // lets a server refuse it), and whitespace before the colon is refused outright (§5.1).
        guard let colon = bytes[line].firstIndex(of: UInt8(ascii: ":")), colon > line.lowerBound,
              bytes[line.lowerBound..<colon].allSatisfy(isTokenByte) else {
            throw .badRequest("malformed header field")
        }
        var start = colon + 1
        var end = line.upperBound
        while start < end, bytes[start] == 0x20 || bytes[start] == 0x09 { start += 1 }
        while end > start, bytes[end - 1] == 0x20 || bytes[end - 1] == 0x09 { end -= 1 }
        guard bytes[start..<end].allSatisfy({ $0 >= 0x20 || $0 == 0x09 }), !bytes[start..<end].contains(0x7F) else {
            throw .badRequest("control character in a header field")
        }
        return (line.lowerBound..<colon, start..<end)
    }

    private static func isDigit(_ byte: UInt8) -> Bool { byte >= 0x30 && byte <= 0x39 }

    /// tchar (RFC 9110 §5.6.2).
    private static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case 0x30...0x39, 0x41...0x5A, 0x61...0x7A: return true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"),
             UInt8(ascii: "'"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."),
             UInt8(ascii: "^"), UInt8(ascii: "_"), UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            return true
        default: return false
        }
    }
}

/// Walks the lines of a head: each line without its CRLF or LF.
private struct LineCursor {
    let bytes: [UInt8]
    var position = 0

    mutating func next() -> Range<Int>? {
        guard position < bytes.count else { return nil }
        let start = position
        guard let newline = bytes[start...].firstIndex(of: 0x0A) else {
            position = bytes.count
            return start..<bytes.count
        }
        position = newline + 1
        let end = newline > start && bytes[newline - 1] == 0x0D ? newline - 1 : newline
        return start..<end
    }
}

extension Substring {
    /// Without leading and trailing spaces and tabs.
    fileprivate var trimmingSpaces: String {
        String(drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }
}

/// Finds where request heads begin and end in the bytes of an HTTP/1.x connection, as they arrive,
/// and enforces the size limits with their own statuses: 414 for a request line too long, 431 for a
/// head too large. Bodies are skipped by their `Content-Length`; after a chunked body nothing more is
/// read, because the server answers such a request and closes the connection.
///
/// A pure state machine: the connection handler feeds it bytes and acts on what it reports.
public struct RequestFramer: Sendable {
    /// The size limits of a request head.
    public struct Limits: Sendable {
        /// The longest request line.
        public var maxRequestLineBytes: Int
        /// The largest head, request line and fields together.
        public var maxHeaderBytes: Int

        public init(maxRequestLineBytes: Int, maxHeaderBytes: Int) {
            self.maxRequestLineBytes = maxRequestLineBytes
            self.maxHeaderBytes = maxHeaderBytes
        }
    }

    /// What a call to ``consume(_:)`` found.
    public enum Event: Sendable {
        /// A complete head.
        case head(RequestHead)
        /// A head that breaks a limit or the grammar: answer with this status and close.
        case reject(RequestHead.Rejection)
    }

    private let limits: Limits
    private var head: [UInt8] = []
    private var lineBytes = 0
    private var inRequestLine = false
    private var recent: UInt32 = 0
    private var bodyRemaining = 0
    /// After a chunked body or a rejection: nothing more is framed.
    private var stopped = false

    /// Whether part of a head has arrived and its end has not.
    public private(set) var inHead = false

    public init(limits: Limits) {
        self.limits = limits
        head.reserveCapacity(512)
    }

    /// Consumes bytes up to and including the end of the next head, and returns how many it took
    /// and the head (or rejection) it completed; with no event, it took them all.
    public mutating func consume(_ bytes: UnsafeRawBufferPointer) -> (consumed: Int, event: Event?) {
        if stopped { return (bytes.count, nil) }
        var index = 0
        var runStart = 0
        while index < bytes.count {
            if bodyRemaining > 0 {
                let skipped = min(bodyRemaining, bytes.count - index)
                bodyRemaining -= skipped
                index += skipped
                runStart = index
                continue
            }
            let byte = bytes[index]
            index += 1
            if !inHead {
                // Empty lines between requests are allowed (RFC 9112 §2.2).
                if byte == 0x0D || byte == 0x0A {
                    runStart = index
                    continue
                }
                inHead = true
                inRequestLine = true
                lineBytes = 0
                recent = 0
                head.removeAll(keepingCapacity: true)
                runStart = index - 1
            }
            recent = recent << 8 | UInt32(byte)
            if inRequestLine {
                if byte == 0x0A {
                    inRequestLine = false
                } else {
                    lineBytes += 1
                    if lineBytes > limits.maxRequestLineBytes {
                        return reject(index, "414 URI Too Long", "request line over the limit")
                    }
                }
            }
            if head.count + index - runStart > limits.maxHeaderBytes {
                return reject(index, "431 Request Header Fields Too Large", "head over the limit")
            }
            if byte == 0x0A && (recent == 0x0D0A_0D0A || recent & 0xFFFF == 0x0A0A) {
                head.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[runStart..<index]))
                inHead = false
                return (index, finishHead())
            }
        }
        if inHead && runStart < bytes.count {
            head.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[runStart..<bytes.count]))
        }
        return (bytes.count, nil)
    }

    private mutating func reject(_ index: Int, _ status: String, _ reason: String) -> (Int, Event?) {
        stopped = true
        inHead = false
        return (index, .reject(RequestHead.Rejection(status: status, reason: reason)))
    }

    private mutating func finishHead() -> Event {
        do {
            let parsed = try RequestHead.parse(head)
            if parsed.hasTransferEncoding {
                stopped = true
            } else {
                bodyRemaining = parsed.contentLength
            }
            return .head(parsed)
        } catch {
            stopped = true
            return .reject(error)
        }
    }
}
