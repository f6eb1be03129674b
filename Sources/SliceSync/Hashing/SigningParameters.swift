/// What kind of signature to write: the format version and its slice and block sizes.
public struct SigningParameters: Sendable, Equatable, Codable {
    /// The format version.
    public var version: SignatureVersion
    /// Slice size in bytes.
    public var sliceSize: Int
    /// Block size in bytes; format 2 only.
    public var blockSize: Int

    /// Default slice size of format 1, as in the original slicesync: 1 MiB.
    public static let defaultV1SliceSize = 1 << 20

    /// Parameters with every size checked against the format's bounds; nil sizes take the defaults.
    public init(version: SignatureVersion = .v2, sliceSize: Int? = nil, blockSize: Int? = nil) throws(SignatureError) {
        self.version = version
        switch version {
        case .v1:
            guard blockSize == nil else {
                throw SignatureError(.valueOutOfRange, "format 1 has no blocks; --block applies to format 2 only")
            }
            let slice = sliceSize ?? Self.defaultV1SliceSize
            guard (1...SignatureLimits.maxSliceSize).contains(slice) else {
                throw SignatureError(.valueOutOfRange, "slice size \(slice) is outside 1...\(SignatureLimits.maxSliceSize)")
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

    /// Whether a signature described by `summary` was written with these parameters.
    public func matches(_ summary: SignatureSummary) -> Bool {
        summary.version == version && summary.sliceSize == sliceSize && (version == .v1 || summary.blockSize == blockSize)
    }

    /// Checks that a file of `length` bytes fits the format with these sizes.
    public func validate(length: Int) throws(SignatureError) {
        switch version {
        case .v1:
            guard length <= SignatureLimits.maxLength else {
                throw SignatureError(.valueOutOfRange, "the file is larger than the \(SignatureLimits.maxLength) bytes a signature can describe")
            }
            let count = SignatureV1.sliceCount(length: length, sliceSize: sliceSize)
            guard count <= SignatureLimits.maxSliceCount else {
                throw SignatureError(.valueOutOfRange, "the file would need \(count) slices, more than \(SignatureLimits.maxSliceCount); use a larger --slice")
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
