/// An entity tag (RFC 9110 §8.8.3): an opaque quoted string, weak or strong.
public struct EntityTag: Sendable, Equatable, CustomStringConvertible {
    /// The characters between the quotes.
    public var opaque: String
    /// Whether the tag carries the `W/` prefix.
    public var isWeak: Bool

    /// Creates a tag from its opaque part.
    public init(opaque: String, isWeak: Bool = false) {
        self.opaque = opaque
        self.isWeak = isWeak
    }

    /// The strong tag the server gives a file: it changes whenever the file's content may have changed.
    ///
    /// The inode, size, and modification and change times (to the nanosecond) all go in: an in-place
    /// write moves the mtime, a replacement by rename changes the inode, and a content change hidden by
    /// restoring the old mtime (`touch -d`, `rsync -t` in place) still moves the ctime.
    public init(fileStamp stamp: FileStamp) {
        func hex(_ value: Int) -> String { String(UInt64(bitPattern: Int64(value)), radix: 16) }
        let mtime = stamp.mtimeSeconds &* 1_000_000_000 &+ stamp.mtimeNanoseconds
        let ctime = stamp.ctimeSeconds &* 1_000_000_000 &+ stamp.ctimeNanoseconds
        self.init(opaque: "\(String(stamp.inode, radix: 16))-\(hex(stamp.size))-\(hex(mtime))-\(hex(ctime))")
    }

    /// The header form: `"…"` or `W/"…"`.
    public var description: String { (isWeak ? "W/" : "") + "\"" + opaque + "\"" }

    /// Strong comparison: both strong and the same opaque string.
    public func strongMatches(_ other: EntityTag) -> Bool { !isWeak && !other.isWeak && opaque == other.opaque }

    /// Weak comparison: the same opaque string, whatever the prefixes.
    public func weakMatches(_ other: EntityTag) -> Bool { opaque == other.opaque }

    /// Parses one entity tag from the start of `text`; returns it and the rest, or nil when malformed.
    static func parseOne(_ text: Substring) -> (EntityTag, Substring)? {
        var rest = text
        var weak = false
        if rest.hasPrefix("W/") {
            weak = true
            rest = rest.dropFirst(2)
        }
        guard rest.first == "\"" else { return nil }
        rest = rest.dropFirst()
        guard let close = rest.firstIndex(of: "\"") else { return nil }
        let opaque = rest[..<close]
        // etagc: %x21 / %x23-7E / obs-text
        guard opaque.utf8.allSatisfy({ $0 == 0x21 || ($0 >= 0x23 && $0 != 0x7F) }) else { return nil }
        return (EntityTag(opaque: String(opaque), isWeak: weak), rest[rest.index(after: close)...])
    }
}

/// The value of an `If-Match` or `If-None-Match` header: `*` or a list of entity tags.
public enum EntityTagCondition: Sendable, Equatable {
    /// `*`: any current representation.
    case any
    /// A list of tags.
    case tags([EntityTag])
    /// A value that does not parse: it matches nothing.
    case malformed

    /// Parses a header value (several header lines are joined with commas beforehand).
    public static func parse(_ value: String) -> EntityTagCondition {
        let trimmed = value.trimmingSpaces
        if trimmed == "*" { return .any }
        var tags: [EntityTag] = []
        var rest = Substring(trimmed)
        while true {
            rest = rest.drop(while: { $0 == " " || $0 == "\t" || $0 == "," })
            if rest.isEmpty { break }
            guard let (tag, after) = EntityTag.parseOne(rest) else { return .malformed }
            tags.append(tag)
            rest = after.drop(while: { $0 == " " || $0 == "\t" })
            guard rest.isEmpty || rest.first == "," else { return .malformed }
        }
        return tags.isEmpty ? .malformed : .tags(tags)
    }

    /// Whether the condition holds for `current`, with strong (If-Match) or weak (If-None-Match) comparison.
    public func matches(_ current: EntityTag, strong: Bool) -> Bool {
        switch self {
        case .any: return true
        case .malformed: return false
        case .tags(let tags): return tags.contains { strong ? $0.strongMatches(current) : $0.weakMatches(current) }
        }
    }
}

/// The conditional and range headers of a request, as the server sees them.
public struct RequestPreconditions: Sendable, Equatable {
    /// `If-Match`.
    public var ifMatch: String?
    /// `If-None-Match`.
    public var ifNoneMatch: String?
    /// `If-Modified-Since`.
    public var ifModifiedSince: String?
    /// `If-Unmodified-Since`.
    public var ifUnmodifiedSince: String?
    /// `If-Range`.
    public var ifRange: String?
    /// `Range`.
    public var range: String?

    /// Creates the set; every header is optional.
    public init(ifMatch: String? = nil, ifNoneMatch: String? = nil, ifModifiedSince: String? = nil,
                ifUnmodifiedSince: String? = nil, ifRange: String? = nil, range: String? = nil) {
        self.ifMatch = ifMatch
        self.ifNoneMatch = ifNoneMatch
        self.ifModifiedSince = ifModifiedSince
        self.ifUnmodifiedSince = ifUnmodifiedSince
        self.ifRange = ifRange
        self.range = range
    }
}

/// What the preconditions of a GET or HEAD request decide (RFC 9110 §13.2.2).
public enum PreconditionOutcome: Sendable, Equatable {
    /// Answer normally; `honourRange` is false when `If-Range` did not match.
    case proceed(honourRange: Bool)
    /// 304 Not Modified.
    case notModified
    /// 412 Precondition Failed.
    case preconditionFailed

    /// Evaluates the headers in RFC 9110's order against the file's validators.
    public static func evaluate(_ request: RequestPreconditions, etag: EntityTag,
        lastModified: Int) -> PreconditionOutcome {
        if let ifMatch = request.ifMatch {
            if !EntityTagCondition.parse(ifMatch).matches(etag, strong: true) { return .preconditionFailed }
        } else if let value = request.ifUnmodifiedSince, let date = HTTPDate.parse(value.trimmingSpaces),
            lastModified > date {
            return .preconditionFailed
        }
        if let ifNoneMatch = request.ifNoneMatch {
            if EntityTagCondition.parse(ifNoneMatch).matches(etag, strong: false) { return .notModified }
        } else if let value = request.ifModifiedSince, let date = HTTPDate.parse(value.trimmingSpaces),
            lastModified <= date {
            return .notModified
        }
        guard request.range != nil, let ifRange = request.ifRange?.trimmingSpaces
            else { return .proceed(honourRange: true) }
        if ifRange.hasPrefix("\"") || ifRange.hasPrefix("W/") {
            guard let (tag, rest) = EntityTag.parseOne(Substring(ifRange)), rest.isEmpty else {
                return .proceed(honourRange: false)
            }
            return .proceed(honourRange: tag.strongMatches(etag))
        }
        // A date validator matches only exactly (RFC 9110 §13.1.5).
        return .proceed(honourRange: HTTPDate.parse(ifRange) == lastModified)
    }
}
