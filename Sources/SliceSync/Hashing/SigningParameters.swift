/// What kind of signature to write: the format version and its slice and block sizes.
public struct SigningParameters: Sendable, Equatable, Codable {
    /// The format version.
    public var version: SignatureVersion
    /// Slice size in bytes.
    public var sliceSize: Int
    /// Block size in bytes; format 2 only.
    public var blockSize: Int
    /// Whether the block size is the default rather than chosen: then tar archives get 512-byte blocks.
    public var blockSizeIsDefault: Bool
    /// Whether format 2 signatures carry a sketch table (see `SketchTable`); on unless turned off.
    public var sketch = true
    /// Whether format 2 signatures carry the plain SHA-256 of the file besides the tree hash. Off by
    /// default: the tree hash proves the file and is computed on every core, while the plain SHA-256 is
    /// one sequential pass that bounds signing (docs/FORMAT.md, "The tree hash"). A zsync control
    /// file's `File-Hash` needs it.
    public var plainDigest = false

    /// Bytes per sketch entry of the format 2 signatures these parameters write, or nil for none.
    public var sketchUnit: Int? {
        version == .v2 && sketch ? SignatureV2Header.defaultSketchUnit(sliceSize: sliceSize, blockSize: blockSize) : nil
    }

    /// Default slice size of format 1, as in the original slicesync: 1 MiB.
    public static let defaultV1SliceSize = 1 << 20

    /// Parameters with every size checked against the format's bounds; nil sizes take the defaults.
    public init(version: SignatureVersion = .v2, sliceSize: Int? = nil, blockSize: Int? = nil) throws(SignatureError) {
        self.version = version
        blockSizeIsDefault = blockSize == nil
        switch version {
        case .v1:
            guard blockSize == nil else {
                throw SignatureError(.valueOutOfRange, "format 1 has no blocks; a block size applies to format 2 only")
            }
            let slice = sliceSize ?? Self.defaultV1SliceSize
            guard (1...SignatureLimits.maxSliceSize).contains(slice) else {
                throw SignatureError(.valueOutOfRange,
                    "slice size \(slice) is outside 1...\(SignatureLimits.maxSliceSize)")
            }
            self.sliceSize = slice
            self.blockSize = 0
        case .v2:
            let block = blockSize ?? SignatureV2Header.defaultBlockSize
            let slice = sliceSize ?? max(SignatureV2Header.defaultSliceSize, block)
            try SignatureV2Header.validate(length: 0, sliceSize: slice, blockSize: block)
            self.sliceSize = slice
            self.blockSize = block
        }
    }

    /// Block size for tar archives when none is chosen. Tar members start on 512-byte boundaries and
    /// every member's header (its name and time) changes between two releases while most contents do
    /// not; with 512-byte blocks only the headers are fetched, and the extended headers, which all
    /// change to the same new time, are fetched once (measured on two botocore sdists: 5.5 MB on the
    /// wire against 11.6 MB with 2 KiB blocks and zsync's 14.6 MB).
    public static let tarBlockSize = 512

    /// These parameters for a file whose first bytes are `start`: a tar archive gets `tarBlockSize`
    /// blocks when the block size is the default.
    public func forFile(startingWith start: [UInt8]) -> SigningParameters {
        guard version == .v2, blockSizeIsDefault, sliceSize % Self.tarBlockSize == 0, Self.isTarHeader(start)
            else { return self }
        var adapted = self
        adapted.blockSize = Self.tarBlockSize
        return adapted
    }

    /// Bytes of a file's start that `forFile(startingWith:)` looks at.
    public static let sniffedBytes = 512

    /// Whether `bytes` begin with a tar header: the `ustar` magic (POSIX, GNU and pax archives) and a
    /// header checksum that adds up.
    static func isTarHeader(_ bytes: [UInt8]) -> Bool {
        guard bytes.count >= 512, bytes[257..<262].elementsEqual("ustar".utf8) else { return false }
        var sum = 0
        for (index, byte) in bytes[0..<512].enumerated() { sum += (148..<156).contains(index) ? 0x20 : Int(byte) }
        let field = bytes[148..<156].prefix { $0 >= 0x30 && $0 <= 0x37 || $0 == 0x20 }.filter { $0 != 0x20 }
        guard !field.isEmpty, let stored = Int(String(decoding: field, as: UTF8.self), radix: 8) else { return false }
        return stored == sum
    }

    /// Whether a signature described by `summary` was written with these parameters.
    public func matches(_ summary: SignatureSummary) -> Bool {
        summary.version == version && summary.sliceSize == sliceSize
            && (version == .v1 || summary.blockSize == blockSize && summary.sketchUnit == sketchUnit
                && summary.hasTreeHash && summary.hasPlainDigest == plainDigest)
    }

    /// Checks that a file of `length` bytes fits the format with these sizes.
    public func validate(length: Int) throws(SignatureError) {
        switch version {
        case .v1:
            guard length <= SignatureLimits.maxLength else {
                throw SignatureError(.valueOutOfRange,
                    "the file is larger than the \(SignatureLimits.maxLength) bytes a signature can describe")
            }
            let count = SignatureV1.sliceCount(length: length, sliceSize: sliceSize)
            guard count <= SignatureLimits.maxSliceCount else {
                throw SignatureError(.valueOutOfRange,
                    "the file would need \(count) slices, more than \(SignatureLimits.maxSliceCount)"
                        + "; use a larger slice size")
            }
        case .v2:
            try SignatureV2Header.validate(length: length, sliceSize: sliceSize, blockSize: blockSize)
        }
    }
}

/// Parses a size such as `4096`, `64K`, `1M` or `2G` (binary multiples); nil when malformed or too large.
public func parseByteSize(_ text: String) -> Int? {
    var digits = Substring(text)
    var multiplier = 1
    if let last = digits.last, !last.isNumber {
        switch last {
        case "k", "K": multiplier = 1 << 10
        case "m", "M": multiplier = 1 << 20
        case "g", "G": multiplier = 1 << 30
        default: return nil
        }
        digits = digits.dropLast()
        if digits.last == "i" || digits.last == "I" { return nil }
    }
    guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }), digits.count <= 15,
          let value = Int(digits) else { return nil }
    let (result, overflow) = value.multipliedReportingOverflow(by: multiplier)
    return overflow ? nil : result
}
