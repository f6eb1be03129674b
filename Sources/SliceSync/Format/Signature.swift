/// A parsed signature of either format version.
public enum Signature: Sendable, Equatable {
    /// The original text format.
    case v1(SignatureV1)
    /// The hierarchical format.
    case v2(SignatureV2)

    /// Parses a complete signature file of either version.
    public static func parse(_ bytes: [UInt8]) throws(SignatureError) -> Signature {
        try withRawBytes(bytes) { (raw) throws(SignatureError) -> Signature in
            switch try SignatureVersion.detect(raw) {
            case .v1: .v1(try SignatureV1.parse(raw))
            case .v2: .v2(try SignatureV2.parse(raw))
            }
        }
    }

    /// The format version.
    public var version: SignatureVersion {
        switch self {
        case .v1: .v1
        case .v2: .v2
        }
    }

    /// The exact bytes of the signature file.
    public func serialized() -> [UInt8] {
        switch self {
        case .v1(let signature): signature.serialized()
        case .v2(let signature): signature.serialized()
        }
    }

    /// The exact bytes of this signature for the same content under another file name (after a rename).
    public func serialized(renamedTo filename: String) -> [UInt8] {
        switch self {
        case .v1(var signature):
            signature.filename = filename
            return signature.serialized()
        case .v2(var signature):
            signature.header.filename = filename
            return signature.serialized()
        }
    }

    /// The header facts every version carries.
    public var summary: SignatureSummary {
        switch self {
        case .v1(let s): SignatureSummary(version: .v1, filename: s.filename, length: s.length, sliceSize: s.sliceSize,
            blockSize: nil)
        case .v2(let s): SignatureSummary(version: .v2, filename: s.header.filename, length: s.header.length,
            sliceSize: s.header.sliceSize,
                                          blockSize: s.header.blockSize, sketchUnit: s.header.sketchUnit,
                                          hasTreeHash: s.header.treeHash != nil, hasPlainDigest: s.header.sha256 != nil)
        }
    }
}

/// The header facts of a signature of either version, readable from its first few hundred bytes.
public struct SignatureSummary: Sendable, Equatable {
    /// The format version.
    public var version: SignatureVersion
    /// Base name of the signed file.
    public var filename: String
    /// File length in bytes.
    public var length: Int
    /// Slice size in bytes.
    public var sliceSize: Int
    /// Block size in bytes (format 2 only).
    public var blockSize: Int?
    /// Sketch unit in bytes (format 2 signatures with a sketch table only).
    public var sketchUnit: Int?
    /// Whether the signature carries a tree hash (format 2 signatures written since it exists).
    public var hasTreeHash: Bool
    /// Whether the signature carries the plain whole-file digest (always in format 1; optional in 2).
    public var hasPlainDigest: Bool

    /// Creates a summary.
    public init(version: SignatureVersion, filename: String, length: Int, sliceSize: Int, blockSize: Int?,
        sketchUnit: Int? = nil,
                hasTreeHash: Bool = false, hasPlainDigest: Bool = true) {
        self.hasTreeHash = hasTreeHash
        self.hasPlainDigest = hasPlainDigest
        self.version = version
        self.filename = filename
        self.length = length
        self.sliceSize = sliceSize
        self.blockSize = blockSize
        self.sketchUnit = sketchUnit
    }

    /// Reads the summary from the first bytes of a signature without parsing its tables.
    public static func parse(prefix bytes: [UInt8]) throws(SignatureError) -> SignatureSummary {
        try withRawBytes(bytes) { (raw) throws(SignatureError) -> SignatureSummary in
            switch try SignatureVersion.detect(raw) {
            case .v1:
                let (filename, slice, length, _) = try SignatureV1.parseHeader(raw)
                return SignatureSummary(version: .v1, filename: filename, length: length, sliceSize: slice,
                    blockSize: nil)
            case .v2:
                let header = try SignatureV2Header.parse(raw)
                return SignatureSummary(version: .v2, filename: header.filename, length: header.length,
                    sliceSize: header.sliceSize,
                                        blockSize: header.blockSize, sketchUnit: header.sketchUnit,
                                        hasTreeHash: header.treeHash != nil, hasPlainDigest: header.sha256 != nil)
            }
        }
    }
}
