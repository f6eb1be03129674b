/// The ranges a server sends for a `Range` header, after its abuse rules (RFC 9110 §14.2).
public enum RangeSelection: Sendable, Equatable {
    /// Send the whole representation with 200.
    case whole
    /// Nothing is satisfiable: 416.
    case unsatisfiable
    /// One range: 206 with Content-Range.
    case single(Range<Int>)
    /// Several disjoint ranges: 206 multipart/byteranges, in this order.
    case multiple([Range<Int>])

    /// The server's default cap on the number of parts in one reply: Apache httpd's `MaxRanges`
    /// default, which is also what the slicesync client asks for at most.
    public static let defaultMaxRanges = 200

    /// Chooses what to send for `header` on a representation of `length` bytes.
    ///
    /// Overlapping ranges are merged, and then all parts go out in ascending order; without overlaps
    /// they keep the request's order. After merging the parts are disjoint, so a reply never carries
    /// more than the file plus a small header per part, whatever the request asks for. More than
    /// `maxRanges` parts after merging is treated as an abusive request and answered with the whole file.
    public static func select(header: String, length: Int, maxRanges: Int = defaultMaxRanges) -> RangeSelection {
        switch RangeRequest.parse(header, length: length) {
        case .invalid: return .whole
        case .unsatisfiable: return .unsatisfiable
        case .ranges(let ranges):
            let parts = coalesced(ranges)
            if parts.count > maxRanges { return .whole }
            return parts.count == 1 ? .single(parts[0]) : .multiple(parts)
        }
    }

    /// The ranges unchanged when none overlap, otherwise merged into ascending disjoint ranges.
    static func coalesced(_ ranges: [Range<Int>]) -> [Range<Int>] {
        guard ranges.count > 1 else { return ranges }
        let sorted = ranges.sorted { $0.lowerBound < $1.lowerBound }
        let overlaps = zip(sorted, sorted.dropFirst()).contains { $1.lowerBound < $0.upperBound }
        guard overlaps else { return ranges }
        var merged: [Range<Int>] = []
        for range in sorted {
            if let last = merged.last, range.lowerBound < last.upperBound {
                merged[merged.count - 1] = last.lowerBound..<max(last.upperBound, range.upperBound)
            } else {
                merged.append(range)
            }
        }
        return merged
    }
}

/// A piece of a response body: literal bytes or a byte range of the file.
public enum BodySegment: Sendable, Equatable {
    /// Bytes the server made (multipart headers and the closing boundary).
    case bytes([UInt8])
    /// Bytes read from the file.
    case file(Range<Int>)

    /// The segment's length in bytes.
    public var count: Int {
        switch self {
        case .bytes(let bytes): return bytes.count
        case .file(let range): return range.count
        }
    }
}

/// A `multipart/byteranges` body (RFC 9110 §14.6), laid out before anything is sent.
public struct MultipartByteRanges: Sendable, Equatable {
    /// The boundary between parts.
    public let boundary: String
    /// The body: each part's header followed by its file range, then the closing delimiter.
    public let segments: [BodySegment]

    /// Lays out `ranges` of a representation of `length` bytes and type `contentType`.
    public init(ranges: [Range<Int>], length: Int, contentType: String, boundary: String) {
        self.boundary = boundary
        var segments: [BodySegment] = []
        segments.reserveCapacity(ranges.count * 2 + 1)
        for range in ranges {
            let head = "\r\n--\(boundary)\r\nContent-Type: \(contentType)\r\nContent-Range: bytes " +
                "\(range.lowerBound)-\(range.upperBound - 1)/\(length)\r\n\r\n"
            segments.append(.bytes(Array(head.utf8)))
            segments.append(.file(range))
        }
        segments.append(.bytes(Array("\r\n--\(boundary)--\r\n".utf8)))
        self.segments = segments
    }

    /// The `Content-Type` header of the whole reply.
    public var contentType: String { "multipart/byteranges; boundary=\(boundary)" }

    /// The exact body length.
    public var contentLength: Int { segments.reduce(0) { $0 + $1.count } }

    /// A fresh random boundary: 20 hexadecimal digits, which cannot occur in a part header.
    public static func randomBoundary() -> String {
        var generator = SystemRandomNumberGenerator()
        let value = generator.next() as UInt64
        let hex = String(value, radix: 16)
        return "slicesync" + String(repeating: "0", count: 16 - hex.count) + hex
    }
}

/// What a file server knows about the file it is about to send.
public struct FileRepresentation: Sendable, Equatable {
    /// The file's length in bytes.
    public var length: Int
    /// Its strong entity tag.
    public let etag: EntityTag
    /// Its modification time, in whole seconds since the epoch.
    public let lastModified: Int
    /// Its media type.
    public var contentType: String
    /// The `ETag` and `Last-Modified` values, formatted once: a connection that asks for many ranges of
    /// one file reuses them.
    public let etagText: String
    public let lastModifiedText: String

    /// Describes a file from its stamp.
    public init(stamp: FileStamp, contentType: String) {
        self.init(length: stamp.size, etag: EntityTag(fileStamp: stamp), lastModified: stamp.mtimeSeconds,
            contentType: contentType)
    }

    /// Describes a representation from its parts.
    public init(length: Int, etag: EntityTag, lastModified: Int, contentType: String) {
        self.length = length
        self.etag = etag
        self.lastModified = lastModified
        self.contentType = contentType
        etagText = etag.description
        lastModifiedText = HTTPDate.format(lastModified)
    }
}

/// The status, headers and body of a reply to GET or HEAD on a file, decided without any I/O.
public struct FileResponsePlan: Sendable, Equatable {
    /// The status code.
    public var status: Int
    /// Header fields in the order they are sent.
    public var headers: [(name: String, value: String)]
    /// What to send as the body (empty for HEAD and for replies without content).
    public var body: [BodySegment]

    /// The value of the `Content-Length` header, when there is one.
    public var contentLength: Int? {
        headers.first { $0.name == "Content-Length" }.flatMap { Int($0.value) }
    }

    /// Plans the reply to GET (or HEAD, when `isHead`) for `file` with the request's `preconditions`.
    public static func plan(
        file: FileRepresentation,
        preconditions: RequestPreconditions,
        isHead: Bool,
        maxRanges: Int = RangeSelection.defaultMaxRanges,
        boundary: @autoclosure () -> String = MultipartByteRanges.randomBoundary()
    ) -> FileResponsePlan {
        let etag = file.etagText
        let lastModified = file.lastModifiedText
        var honourRange = true
        switch PreconditionOutcome.evaluate(preconditions, etag: file.etag, lastModified: file.lastModified) {
        case .notModified:
            return FileResponsePlan(status: 304, headers: [("ETag", etag), ("Last-Modified", lastModified)], body: [])
        case .preconditionFailed:
            return FileResponsePlan(status: 412, headers: [("Content-Length", "0")], body: [])
        case .proceed(let honour):
            honourRange = honour
        }
        var selection = RangeSelection.whole
        if honourRange, let header = preconditions.range {
            selection = RangeSelection.select(header: header, length: file.length, maxRanges: maxRanges)
        }
        // One array, filled in sending order: this runs for every reply.
        var headers: [(name: String, value: String)] = []
        headers.reserveCapacity(7)
        var status = 200
        var body: [BodySegment] = []
        switch selection {
        case .whole:
            headers.append(("Content-Type", file.contentType))
            if file.length > 0 { body = [.file(0..<file.length)] }
        case .unsatisfiable:
            status = 416
            headers.append(("Content-Range", "bytes */\(file.length)"))
        case .single(let range):
            status = 206
            headers.append(("Content-Type", file.contentType))
            headers.append(("Content-Range", "bytes \(range.lowerBound)-\(range.upperBound - 1)/\(file.length)"))
            body = [.file(range)]
        case .multiple(let ranges):
            status = 206
            let multipart = MultipartByteRanges(ranges: ranges, length: file.length, contentType: file.contentType,
                boundary: boundary())
            headers.append(("Content-Type", multipart.contentType))
            body = multipart.segments
        }
        headers.append(("ETag", etag))
        headers.append(("Last-Modified", lastModified))
        headers.append(("Accept-Ranges", "bytes"))
        headers.append(("Content-Length", String(body.reduce(0) { $0 + $1.count })))
        return FileResponsePlan(status: status, headers: headers, body: isHead ? [] : body)
    }

    public static func == (lhs: FileResponsePlan, rhs: FileResponsePlan) -> Bool {
        lhs.status == rhs.status && lhs.body == rhs.body
            && lhs.headers.map { [$0.name, $0.value] } == rhs.headers.map { [$0.name, $0.value] }
    }
}
