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
        guard let first = decimal(rest[..<dash]), let last = decimal(rest[rest.index(after: dash)..<slash]), first <= last,
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
            if boundary.hasPrefix("\""), boundary.hasSuffix("\""), boundary.count >= 2 { boundary = String(boundary.dropFirst().dropLast()) }
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
        let delimiter = Array("--\(boundary)".utf8)
        var parts: [Part] = []
        guard var index = find(delimiter, in: body, from: 0) else {
            throw TransportError(.protocolViolation, "the multipart reply has no boundary line")
        }
        while true {
            index += delimiter.count
            // The closing delimiter is followed by "--".
            if index + 1 < body.count && body[index] == UInt8(ascii: "-") && body[index + 1] == UInt8(ascii: "-") { return parts }
            guard let headerEnd = find(Array("\r\n\r\n".utf8), in: body, from: index) else {
                throw TransportError(.protocolViolation, "a part of the multipart reply has no end of headers")
            }
            guard headerEnd - index <= 8192 else { throw TransportError(.protocolViolation, "a part of the multipart reply has over-long headers") }
            let headerText = String(decoding: body[index..<headerEnd], as: UTF8.self)
            var contentRange: ContentRange?
            for line in headerText.split(separator: "\r\n") {
                let pieces = line.split(separator: ":", maxSplits: 1)
                guard pieces.count == 2 else { continue }
                if pieces[0].trimmingSpaces.lowercased() == "content-range" {
                    contentRange = parseContentRange(String(pieces[1]))
                    if contentRange == nil { throw TransportError(.protocolViolation, "a part has an invalid Content-Range: \(pieces[1].trimmingSpaces)") }
                }
            }
            guard let contentRange else { throw TransportError(.protocolViolation, "a part of the multipart reply has no Content-Range") }
            let dataStart = headerEnd + 4
            let dataEnd = dataStart + contentRange.range.count
            guard dataEnd + 2 + delimiter.count <= body.count else {
                throw TransportError(.protocolViolation, "the multipart reply ends inside a part")
            }
            guard body[dataEnd] == UInt8(ascii: "\r"), body[dataEnd + 1] == UInt8(ascii: "\n"),
                  Array(body[(dataEnd + 2)..<(dataEnd + 2 + delimiter.count)]) == delimiter else {
                throw TransportError(.protocolViolation, "a part's length does not match its Content-Range")
            }
            parts.append(Part(range: contentRange.range, completeLength: contentRange.completeLength, bodyRange: dataStart..<dataEnd))
            index = dataEnd + 2
        }
    }

    /// The `Range` header value for ranges (which must be sorted and disjoint).
    public static func header(for ranges: [Range<Int>]) -> String {
        "bytes=" + ranges.map { "\($0.lowerBound)-\($0.upperBound - 1)" }.joined(separator: ",")
    }

    private static func find(_ needle: [UInt8], in haystack: [UInt8], from start: Int) -> Int? {
        guard needle.count <= haystack.count, start <= haystack.count - needle.count else { return nil }
        let first = needle[0]
        var index = start
        let last = haystack.count - needle.count
        while index <= last {
            if haystack[index] == first && haystack[index..<(index + needle.count)].elementsEqual(needle) { return index }
            index += 1
        }
        return nil
    }

    private static func decimal(_ text: Substring) -> Int? {
        guard !text.isEmpty, text.count <= 18, text.allSatisfy({ $0 >= "0" && $0 <= "9" }) else { return nil }
        return Int(text)
    }
}

extension StringProtocol {
    var trimmingSpaces: String {
        var slice = Substring(self)
        while let first = slice.first, first == " " || first == "\t" { slice = slice.dropFirst() }
        while let last = slice.last, last == " " || last == "\t" { slice = slice.dropLast() }
        return String(slice)
    }
}
