/// Parsing of `Content-Range` headers and `multipart/byteranges` bodies (RFC 9110 §14.4, §14.6).
public enum ByteRanges {
    /// A parsed `Content-Range: bytes FIRST-LAST/COMPLETE` (COMPLETE may be `*`).
    public struct ContentRange: Sendable, Equatable {
        /// The bytes the part holds.
        public var range: Range<Int>
        /// The complete length of the representation, when the server said it.
        public var completeLength: Int?
    }

    /// Parses a Content-Range value strictly; nil when it is not a valid byte range.
    public static func parseContentRange(_ value: String) -> ContentRange? {
        let trimmed = value.trimmingSpaces
        guard trimmed.hasPrefix("bytes ") else { return nil }
        let rest = trimmed.dropFirst(6)
        guard let slash = rest.firstIndex(of: "/"), let dash = rest[..<slash].firstIndex(of: "-") else { return nil }
        guard let first = decimal(rest[..<dash]), let last = decimal(rest[rest.index(after: dash)..<slash]),
            first <= last,
              last < Int.max else { return nil }
        let completeText = rest[rest.index(after: slash)...]
        var complete: Int?
        if completeText != "*" {
            guard let value = decimal(completeText), last < value else { return nil }
            complete = value
        }
        return ContentRange(range: first..<(last + 1), completeLength: complete)
    }

    /// Parses the total length of an unsatisfied-range reply: `bytes */LENGTH`.
    public static func parseUnsatisfiedLength(_ value: String) -> Int? {
        let trimmed = value.trimmingSpaces
        guard trimmed.hasPrefix("bytes */") else { return nil }
        return decimal(trimmed.dropFirst(8))
    }

    /// The boundary parameter of a `multipart/byteranges` content type, or nil.
    public static func boundary(ofContentType value: String) -> String? {
        let parts = value.split(separator: ";").map { $0.trimmingSpaces }
        guard let type = parts.first, type.lowercased() == "multipart/byteranges" else { return nil }
        for parameter in parts.dropFirst() {
            let pieces = parameter.split(separator: "=", maxSplits: 1).map { String($0).trimmingSpaces }
            guard pieces.count == 2, pieces[0].lowercased() == "boundary" else { continue }
            var boundary = pieces[1]
            if boundary.hasPrefix("\""), boundary.hasSuffix("\""),
                boundary.count >= 2 { boundary = String(boundary.dropFirst().dropLast()) }
            guard !boundary.isEmpty, boundary.utf8.count <= 70 else { return nil }
            return boundary
        }
        return nil
    }

    /// One part of a multipart body.
    public struct Part: Sendable, Equatable {
        /// Where the bytes belong.
        public var range: Range<Int>
        /// The complete length the part's Content-Range announced.
        public var completeLength: Int?
        /// Where the part's bytes are in the body.
        public var bodyRange: Range<Int>
    }

    /// Splits a complete `multipart/byteranges` body into parts; throws on any malformation.
    public static func parseMultipart(_ body: [UInt8], boundary: String) throws(TransportError) -> [Part] {
        var reader = PartialReplyReader(boundary: boundary)
        var parts: [Part] = []
        var current: ContentRange?
        do {
            try body.withUnsafeBytes { raw in
                func collect(_ event: PartialReplyReader.Event) {
                    switch event {
                    case .part(let contentRange):
                        current = contentRange
                    case .data(_, let bytes):
                        // One body in one piece: each part's data arrives as one event.
                        guard let current, let base = raw.baseAddress, let start = bytes.baseAddress else { return }
                        let offset = start - base
                        parts.append(Part(range: current.range, completeLength: current.completeLength,
                                          bodyRange: offset..<(offset + bytes.count)))
                    }
                }
                try reader.feed(raw, collect)
                try reader.finish(collect)
            }
        } catch let error as TransportError {
            throw error
        } catch {
            throw TransportError(.protocolViolation, "the multipart reply could not be read: \(error)")
        }
        return parts
    }

    /// The `Range` header value for ranges (which must be sorted and disjoint).
    public static func header(for ranges: [Range<Int>]) -> String {
        "bytes=" + ranges.map { "\($0.lowerBound)-\($0.upperBound - 1)" }.joined(separator: ",")
    }

    private static func decimal(_ text: Substring) -> Int? {
        guard !text.isEmpty, text.count <= 18, text.allSatisfy({ $0 >= "0" && $0 <= "9" }) else { return nil }
        return Int(text)
    }
}

extension StringProtocol {
    /// The text without leading and trailing spaces and tabs.
    public var trimmingSpaces: String {
        var slice = Substring(self)
        while let first = slice.first, first == " " || first == "\t" { slice = slice.dropFirst() }
        while let last = slice.last, last == " " || last == "\t" { slice = slice.dropLast() }
        return String(slice)
    }
}
