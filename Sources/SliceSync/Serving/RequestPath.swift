/// The path of an HTTP request target, percent-decoded once and checked (RFC 9112 §3.2, RFC 3986).
public struct RequestPath: Sendable, Equatable {
    /// The decoded segments, without empty and `.` segments.
    public var segments: [String]
    /// Whether the path ended with a slash (a directory listing was asked for).
    public var hasTrailingSlash: Bool
    /// The raw query, without the `?`.
    public var query: String?

    /// Why a request target was refused.
    public enum Rejection: Error, Sendable, Equatable {
        /// Not origin-form (`/…`).
        case notOriginForm
        /// A `%` not followed by two hexadecimal digits.
        case badPercentEncoding
        /// The decoded bytes are not UTF-8.
        case invalidUTF8
        /// A NUL or other control byte after decoding.
        case controlCharacter
        /// A backslash, which some systems treat as a separator.
        case backslash
        /// A `..` segment after decoding.
        case parentSegment
    }

    /// The slash-joined relative path ("" for the root).
    public var relativePath: String { segments.joined(separator: "/") }

    /// Decodes the path of `target`.
    public static func parse(_ target: String) throws(Rejection) -> RequestPath {
        // Bytes, not Characters: the kernel splits paths on the byte "/", and this runs per request.
        var utf8 = Array(target.utf8)
        if let path = pathOfAbsoluteForm(utf8) { utf8 = path }
        var end = utf8.firstIndex(of: UInt8(ascii: "#")) ?? utf8.count
        var query: String?
        if let mark = utf8[..<end].firstIndex(of: UInt8(ascii: "?")) {
            query = String(decoding: utf8[(mark + 1)..<end], as: UTF8.self)
            end = mark
        }
        guard end > 0, utf8[0] == UInt8(ascii: "/") else { throw .notOriginForm }
        let bytes = try percentDecoded(Array(utf8[..<end]))
        guard String(validating: bytes, as: UTF8.self) != nil else { throw .invalidUTF8 }
        if bytes.contains(where: { $0 < 0x20 || $0 == 0x7F }) { throw .controlCharacter }
        if bytes.contains(0x5C) { throw .backslash }
        var segments: [String] = []
        for segment in bytes.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: true) {
            if segment.count == 1 && segment.first == UInt8(ascii: ".") { continue }
            if segment.count == 2 && segment.allSatisfy({ $0 == UInt8(ascii: ".") }) { throw .parentSegment }
            segments.append(String(decoding: segment, as: UTF8.self))
        }
        return RequestPath(segments: segments, hasTrailingSlash: bytes.last == UInt8(ascii: "/"), query: query)
    }

    /// The path and query of an absolute-form target (`http://host:port/path?query`), which a server
    /// must accept as well as the usual `/path` (RFC 9112 §3.2.2); nil for any other form. The
    /// authority is not checked: the server serves one tree whatever host it is asked for.
    private static func pathOfAbsoluteForm(_ target: [UInt8]) -> [UInt8]? {
        let lowered = target.prefix(8).map { $0 | 0x20 }
        let schemeLength: Int
        if lowered.starts(with: Array("http://".utf8)) {
            schemeLength = 7
        } else if lowered.starts(with: Array("https://".utf8)) {
            schemeLength = 8
        } else {
            return nil
        }
        let rest = target[schemeLength...]
        guard let pathStart = rest.firstIndex(where: { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "?")
            || $0 == UInt8(ascii: "#") }) else { return [UInt8(ascii: "/")] }
        guard pathStart > schemeLength else { return nil }
        return target[pathStart] == UInt8(ascii: "/") ? Array(target[pathStart...])
            : [UInt8(ascii: "/")] + target[pathStart...]
    }

    private static func percentDecoded(_ bytes: [UInt8]) throws(Rejection) -> [UInt8] {
        guard bytes.contains(0x25) else { return bytes }
        var result: [UInt8] = []
        result.reserveCapacity(bytes.count)
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            if byte == 0x25 {
                guard index + 2 < bytes.count, let high = hexValue(bytes[index + 1]),
                    let low = hexValue(bytes[index + 2]) else {
                    throw .badPercentEncoding
                }
                result.append(high << 4 | low)
                index += 3
            } else {
                result.append(byte)
                index += 1
            }
        }
        return result
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case 0x30...0x39: return byte - 0x30
        case 0x41...0x46: return byte - 0x41 + 10
        case 0x61...0x66: return byte - 0x61 + 10
        default: return nil
        }
    }

    /// Percent-encodes a path for use in a URL or an `href`: everything but unreserved characters and `/`.
    public static func encode(_ path: String) -> String {
        var result = ""
        for byte in path.utf8 {
            switch byte {
            case 0x30...0x39, 0x41...0x5A, 0x61...0x7A, 0x2D, 0x2E, 0x5F, 0x7E, 0x2F:
                result.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                let hex = String(byte, radix: 16, uppercase: true)
                result += "%" + (hex.count == 1 ? "0" + hex : hex)
            }
        }
        return result
    }
}
