/// Limits every signature reader enforces before it allocates anything.
public enum SignatureLimits {
    /// Longest header, in bytes, including its terminating line.
    public static let maxHeaderBytes = 4096
    /// Longest header line, in bytes, without its newline.
    public static let maxHeaderLine = 512
    /// Most fields a header may have.
    public static let maxHeaderFields = 32
    /// Longest file name, in bytes of UTF-8 (Linux NAME_MAX).
    public static let maxFilenameBytes = 255
    /// Largest file length a signature may describe: 1 PiB.
    public static let maxLength = 1 << 50
    /// Largest slice size: 1 GiB.
    public static let maxSliceSize = 1 << 30
    /// Most slices a signature may list (format 1 lines, format 2 coarse records).
    public static let maxSliceCount = 1 << 24
    /// Smallest format 2 block size.
    public static let minBlockSize = 64
    /// Largest format 2 block size: 1 MiB.
    public static let maxBlockSize = 1 << 20
    /// Most blocks in one format 2 slice, which bounds one fine table.
    public static let maxBlocksPerSlice = 1 << 16
}

/// The `Key: value` lines at the top of a signature, parsed strictly.
struct SignatureHeader {
    /// Fields in file order, keys unique.
    private(set) var fields: [(key: String, value: [UInt8])] = []
    /// Bytes consumed, including the newline of the last header line.
    var length = 0

    /// The raw value of a field, or nil.
    func value(_ key: String) -> [UInt8]? {
        fields.first { $0.key == key }?.value
    }

    /// The raw value of a required field.
    func required(_ key: String) throws(SignatureError) -> [UInt8] {
        guard let value = value(key) else { throw SignatureError(.missingField, "the header has no \"\(key)\" field") }
        return value
    }

    /// The value of a required field as text.
    func text(_ key: String) throws(SignatureError) -> String {
        let raw = try required(key)
        guard let text = String(validating: raw, as: UTF8.self) else {
            throw SignatureError(.malformedLine, "the \"\(key)\" field is not valid UTF-8")
        }
        return text
    }

    /// The value of a required field as a strictly written decimal in `range`.
    func number(_ key: String, in range: ClosedRange<Int>) throws(SignatureError) -> Int {
        try Self.parseDecimal(try required(key), field: key, in: range)
    }

    /// Parses a decimal number: ASCII digits only, no sign, no spaces, no leading zeros, no overflow.
    static func parseDecimal(_ digits: [UInt8], field: String,
        in range: ClosedRange<Int>) throws(SignatureError) -> Int {
        guard !digits.isEmpty else { throw SignatureError(.invalidNumber, "the \"\(field)\" field is empty") }
        guard digits.count == 1 || digits[0] != UInt8(ascii: "0") else {
            throw SignatureError(.invalidNumber, "the \"\(field)\" field has leading zeros")
        }
        var value = 0
        for digit in digits {
            guard digit >= UInt8(ascii: "0"), digit <= UInt8(ascii: "9") else {
                throw SignatureError(.invalidNumber, "the \"\(field)\" field is not a plain decimal number")
            }
            let (times10, o1) = value.multipliedReportingOverflow(by: 10)
            let (next, o2) = times10.addingReportingOverflow(Int(digit - UInt8(ascii: "0")))
            guard !o1, !o2 else { throw SignatureError(.valueOutOfRange, "the \"\(field)\" field overflows") }
            value = next
        }
        guard range.contains(value) else {
            throw SignatureError(.valueOutOfRange,
                "the \"\(field)\" field is \(value), outside \(range.lowerBound)...\(range.upperBound)")
        }
        return value
    }

    /// Checks a file name: non-empty, at most 255 bytes, no slash, NUL or control character, not "." or "..".
    static func validateFilename(_ raw: [UInt8]) throws(SignatureError) -> String {
        guard !raw.isEmpty else { throw SignatureError(.invalidFilename, "the file name is empty") }
        guard raw.count <= SignatureLimits.maxFilenameBytes else {
            throw SignatureError(.invalidFilename,
                "the file name is longer than \(SignatureLimits.maxFilenameBytes) bytes")
        }
        guard !raw.contains(UInt8(ascii: "/")) else {
            throw SignatureError(.invalidFilename, "the file name contains \"/\"")
        }
        guard !raw.contains(0) else { throw SignatureError(.invalidFilename, "the file name contains a NUL byte") }
        guard !raw.contains(where: { $0 < 0x20 || $0 == 0x7F }) else {
            throw SignatureError(.invalidFilename, "the file name contains a control character")
        }
        guard raw != Array("..".utf8), raw != Array(".".utf8) else {
            throw SignatureError(.invalidFilename, "the file name is \"\(String(decoding: raw, as: UTF8.self))\"")
        }
        guard let name = String(validating: raw, as: UTF8.self) else {
            throw SignatureError(.invalidFilename, "the file name is not valid UTF-8")
        }
        return name
    }

    /// Reads one line starting at `start`; returns its bytes and the index after its newline.
    static func line(in bytes: UnsafeRawBufferPointer, from start: Int,
        limit: Int) throws(SignatureError) -> (ArraySlice<UInt8>, Int) {
        let end = min(bytes.count, start + limit + 1)
        var index = start
        while index < end {
            if bytes[index] == UInt8(ascii: "\n") {
                return (ArraySlice(bytes[start..<index]), index + 1)
            }
            index += 1
        }
        if end - start > limit { throw SignatureError(.lineTooLong, "a line is longer than \(limit) bytes") }
        throw SignatureError(.truncated, "the signature ends in the middle of a line")
    }

    /// Parses `Key: value` lines from the start while `isHeaderLine` accepts them; stops before the first
    /// line it rejects (or after an empty line when `endsWithBlankLine`).
    static func parse(
        _ bytes: UnsafeRawBufferPointer,
        endsWithBlankLine: Bool,
        isHeaderKey: (String) -> Bool
    ) throws(SignatureError) -> SignatureHeader {
        var header = SignatureHeader()
        var offset = 0
        while true {
            if offset >= SignatureLimits.maxHeaderBytes {
                throw SignatureError(.headerTooLong,
                    "the header is longer than \(SignatureLimits.maxHeaderBytes) bytes")
            }
            if offset == bytes.count {
                if endsWithBlankLine || header.fields.isEmpty {
                    throw SignatureError(.truncated, "the signature ends inside its header")
                }
                break
            }
            let (line, next) = try self.line(in: bytes, from: offset, limit: SignatureLimits.maxHeaderLine)
            if line.isEmpty {
                guard endsWithBlankLine else { break }
                header.length = next
                return header
            }
            guard let separator = line.firstRange(of: [UInt8(ascii: ":"), UInt8(ascii: " ")]) else {
                if endsWithBlankLine || header.fields.isEmpty {
                    throw SignatureError(.malformedLine,
                        "header line \(header.fields.count + 1) is not of the form \"Key: value\"")
                }
                break
            }
            guard let key = String(validating: line[line.startIndex..<separator.lowerBound],
                as: UTF8.self), !key.isEmpty else {
                throw SignatureError(.malformedLine, "header line \(header.fields.count + 1) has no readable key")
            }
            if !isHeaderKey(key) {
                guard endsWithBlankLine else { break }
            }
            guard header.value(key) == nil else {
                throw SignatureError(.duplicateField, "the header has the field \"\(key)\" twice")
            }
            guard header.fields.count < SignatureLimits.maxHeaderFields else {
                throw SignatureError(.headerTooLong,
                    "the header has more than \(SignatureLimits.maxHeaderFields) fields")
            }
            header.fields.append((key, Array(line[separator.upperBound...])))
            offset = next
            header.length = next
        }
        return header
    }
}

/// The format version a signature declares on its first line.
public enum SignatureVersion: Int, Sendable, Codable, CaseIterable {
    /// The original text format.
    case v1 = 1
    /// The hierarchical format.
    case v2 = 2

    /// Reads the version from the first line, which must be exactly `Version: N`.
    public static func detect(_ bytes: UnsafeRawBufferPointer) throws(SignatureError) -> SignatureVersion {
        let limit = min(bytes.count, 64)
        guard let newline = bytes[0..<limit].firstIndex(of: UInt8(ascii: "\n")) else {
            if bytes.count < 64 { throw SignatureError(.truncated, "the signature ends before its first line does") }
            throw SignatureError(.malformedLine, "the first line is not \"Version: N\"")
        }
        let line = Array(bytes[0..<newline])
        let prefix = Array("Version: ".utf8)
        guard line.starts(with: prefix) else {
            throw SignatureError(.malformedLine,
                "the first line is not \"Version: N\"; is this a .slicesync signature?")
        }
        let number = try SignatureHeader.parseDecimal(Array(line[prefix.count...]), field: "Version",
            in: 0...Int(Int32.max))
        guard let version = SignatureVersion(rawValue: number) else {
            throw SignatureError(.unsupportedVersion,
                "signature version \(number) is not supported (this build reads 1 and 2)")
        }
        return version
    }
}
