/// One slice of a format 1 signature: the zlib Adler-32 and the MD5 of the slice.
public struct V1SliceHash: Sendable, Hashable {
    /// Adler-32 of the slice.
    public var adler32: UInt32
    /// MD5 of the slice, 16 bytes.
    public var md5: [UInt8]

    /// Creates a slice hash.
    public init(adler32: UInt32, md5: [UInt8]) {
        self.adler32 = adler32
        self.md5 = md5
    }

    /// The hash of `count` bytes at `pointer`.
    public init(of pointer: UnsafeRawPointer, count: Int) {
        let md5 = StreamingDigest(.md5)
        md5.update(pointer, count: count)
        self.init(adler32: Adler32.update(Adler32.initial, pointer, count: count), md5: md5.finalize())
    }

    /// The 28-character base64 line (without newline) of this slice: Adler-32 big-endian then MD5.
    public var line: [UInt8] {
        let bytes = [UInt8(adler32 >> 24), UInt8(adler32 >> 16 & 255), UInt8(adler32 >> 8 & 255),
            UInt8(adler32 & 255)] + md5
        return Encoding.base64(bytes)
    }
}

/// A format 1 signature: the original slicesync text format, read and written byte-exactly.
public struct SignatureV1: Sendable, Equatable {
    /// Base name of the signed file.
    public var filename: String
    /// Slice size in bytes.
    public var sliceSize: Int
    /// File length in bytes.
    public var length: Int
    /// One hash per slice, `ceil(length / sliceSize)` of them.
    public var slices: [V1SliceHash]
    /// SHA-1 of the whole file, 20 bytes.
    public var sha1: [UInt8]

    /// The only slice hashing scheme format 1 defines.
    public static let sliceHashing = "adler32+md5"
    /// Bytes per slice line, newline included.
    public static let lineLength = 29
    private static let headerKeys: Set<String> = ["Version", "Filename", "Slice", "Slice Hashing", "Length"]

    /// Creates a signature from its parts.
    public init(filename: String, sliceSize: Int, length: Int, slices: [V1SliceHash], sha1: [UInt8]) {
        self.filename = filename
        self.sliceSize = sliceSize
        self.length = length
        self.slices = slices
        self.sha1 = sha1
    }

    /// Number of slices a file of `length` bytes has.
    public static func sliceCount(length: Int, sliceSize: Int) -> Int {
        length == 0 ? 0 : (length - 1) / sliceSize + 1
    }

    /// The header text, every line ending in a newline.
    public static func header(filename: String, sliceSize: Int, length: Int) -> [UInt8] {
        Array(("Version: 1\nFilename: \(filename)\nSlice: \(sliceSize)\nSlice Hashing: \(sliceHashing)\nLength: " +
            "\(length)\n").utf8)
    }

    /// The closing `sha1:` line.
    public static func trailer(sha1: [UInt8]) -> [UInt8] {
        Array("sha1: \(Encoding.hex(sha1))\n".utf8)
    }

    /// The exact bytes of the signature file.
    public func serialized() -> [UInt8] {
        var out = Self.header(filename: filename, sliceSize: sliceSize, length: length)
        out.reserveCapacity(out.count + slices.count * Self.lineLength + 47)
        for slice in slices {
            out += slice.line
            out.append(UInt8(ascii: "\n"))
        }
        out += Self.trailer(sha1: sha1)
        return out
    }

    /// Parses a whole format 1 signature, checking every field, line and count.
    public static func parse(_ bytes: [UInt8]) throws(SignatureError) -> SignatureV1 {
        try withRawBytes(bytes) { (raw) throws(SignatureError) in try parse(raw) }
    }

    /// Parses and checks the five header fields; returns them and the header's length in bytes.
    static func parseHeader(_ bytes: UnsafeRawBufferPointer)
        throws(SignatureError) -> (filename: String, sliceSize: Int, length: Int, headerLength: Int) {
        guard try SignatureVersion.detect(bytes) == .v1 else {
            throw SignatureError(.unsupportedVersion, "expected a version 1 signature")
        }
        let header = try SignatureHeader.parse(bytes, endsWithBlankLine: false, isHeaderKey: headerKeys.contains)
        let filename = try SignatureHeader.validateFilename(try header.required("Filename"))
        let sliceSize = try header.number("Slice", in: 1...SignatureLimits.maxSliceSize)
        let hashing = try header.text("Slice Hashing")
        guard hashing == sliceHashing else {
            throw SignatureError(.unsupportedHashing,
                "slice hashing \"\(hashing)\" is not supported (expected \(sliceHashing))")
        }
        let length = try header.number("Length", in: 0...SignatureLimits.maxLength)
        let count = sliceCount(length: length, sliceSize: sliceSize)
        guard count <= SignatureLimits.maxSliceCount else {
            throw SignatureError(.valueOutOfRange,
                "\(count) slices is more than the \(SignatureLimits.maxSliceCount) allowed; use a larger slice size")
        }
        return (filename, sliceSize, length, header.length)
    }

    /// Parses a whole format 1 signature from raw memory.
    public static func parse(_ bytes: UnsafeRawBufferPointer) throws(SignatureError) -> SignatureV1 {
        let (filename, sliceSize, length, headerLength) = try parseHeader(bytes)
        let count = sliceCount(length: length, sliceSize: sliceSize)
        var slices: [V1SliceHash] = []
        // Reserve no more than the input could hold, so a lying header cannot make us allocate.
        slices.reserveCapacity(min(count, (bytes.count - headerLength) / lineLength))
        var offset = headerLength
        for index in 0..<count {
            let (line, next) = try SignatureHeader.line(in: bytes, from: offset, limit: SignatureLimits.maxHeaderLine)
            guard line.count == lineLength - 1, let decoded = Encoding.decodeBase64(line), decoded.count == 20 else {
                if line.starts(with: Array("sha1: ".utf8)) {
                    throw SignatureError(.truncated,
                        "found the sha1 line after \(index) slice lines; the header announces \(count)")
                }
                if line.contains(UInt8(ascii: ":")) {
                    throw SignatureError(.unknownField,
                        "line \(index + 6) is an unexpected header field; version 1 has exactly five")
                }
                throw SignatureError(.invalidRecord,
                    "slice line \(index + 1) is not 28 characters of canonical base64 encoding 20 bytes")
            }
            let adler = UInt32(decoded[0]) << 24 | UInt32(decoded[1]) << 16 | UInt32(decoded[2]) << 8
                | UInt32(decoded[3])
            slices.append(V1SliceHash(adler32: adler, md5: Array(decoded[4...])))
            offset = next
        }
        let (trailer, end) = try SignatureHeader.line(in: bytes, from: offset, limit: SignatureLimits.maxHeaderLine)
        let prefix = Array("sha1: ".utf8)
        guard trailer.starts(with: prefix) else {
            if trailer.count == lineLength - 1 && Encoding.decodeBase64(trailer) != nil {
                throw SignatureError(.trailingData, "there are more slice lines than the \(count) the header announces")
            }
            throw SignatureError(.malformedLine, "the last line is not \"sha1: <40 hex digits>\"")
        }
        guard let sha1 = Encoding.decodeHex(trailer.dropFirst(prefix.count), length: 20) else {
            throw SignatureError(.invalidHash, "the sha1 line does not hold exactly 40 lowercase hex digits")
        }
        guard end == bytes.count else {
            throw SignatureError(.trailingData, "there are \(bytes.count - end) bytes after the sha1 line")
        }
        return SignatureV1(filename: filename, sliceSize: sliceSize, length: length, slices: slices, sha1: sha1)
    }
}
