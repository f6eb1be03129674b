/// One record of a format 2 table: a 32-bit rolling weak hash and a 64-bit truncated strong hash.
public struct HashRecord: Sendable, Equatable, Hashable {
    /// High 32 bits of the RK64 rolling hash of the piece.
    public var weak: UInt32
    /// First 8 bytes, big-endian, of the piece's strong hash.
    public var strong: UInt64

    /// Bytes per record on disk.
    public static let size = 12

    /// Creates a record.
    public init(weak: UInt32, strong: UInt64) {
        self.weak = weak
        self.strong = strong
    }

    /// Writes the record big-endian at `pointer`.
    @inline(__always)
    public func store(to pointer: UnsafeMutableRawPointer) {
        pointer.storeBytes(of: weak.bigEndian, toByteOffset: 0, as: UInt32.self)
        pointer.storeBytes(of: strong.bigEndian, toByteOffset: 4, as: UInt64.self)
    }

    /// Reads a big-endian record at `pointer`.
    @inline(__always)
    public static func load(from pointer: UnsafeRawPointer) -> HashRecord {
        HashRecord(
            weak: UInt32(bigEndian: pointer.loadUnaligned(fromByteOffset: 0, as: UInt32.self)),
            strong: UInt64(bigEndian: pointer.loadUnaligned(fromByteOffset: 4, as: UInt64.self))
        )
    }

    /// The first 8 bytes of a digest as a big-endian number.
    @inline(__always)
    static func truncate(_ digest: UnsafePointer<UInt8>) -> UInt64 {
        UInt64(bigEndian: UnsafeRawPointer(digest).loadUnaligned(as: UInt64.self))
    }

    /// The records as they are stored: 12 bytes each, one after the other.
    static func encoded(_ records: [HashRecord]) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: records.count * size)
        bytes.withUnsafeMutableBytes { raw in
            for (index, record) in records.enumerated() { record.store(to: raw.baseAddress! + index * size) }
        }
        return bytes
    }

    /// Parses `count` consecutive records.
    static func parseTable(_ bytes: UnsafeRawBufferPointer, count: Int) -> [HashRecord] {
        precondition(bytes.count >= count * size)
        guard let base = bytes.baseAddress else { return [] }
        return (0..<count).map { load(from: base + $0 * size) }
    }
}

/// The header of a format 2 signature and the table layout it implies.
public struct SignatureV2Header: Sendable, Equatable {
    /// Base name of the signed file.
    public var filename: String
    /// File length in bytes.
    public var length: Int
    /// Slice size in bytes (coarse granularity); a multiple of `blockSize`.
    public var sliceSize: Int
    /// Block size in bytes (fine granularity).
    public var blockSize: Int
    /// SHA-256 of the whole file, 32 bytes; nil when the writer left it out (`Tree-SHA-256` then proves
    /// the file alone).
    public var sha256: [UInt8]?
    /// Bytes per sketch entry (a multiple of the block size that divides the slice size), or nil for a
    /// signature without a sketch table.
    public var sketchUnit: Int?
    /// The tree hash (`TreeHash`, 32 bytes), or nil for a signature written before it existed. It
    /// proves the whole file like `sha256`, but can be checked on every core, and slice by slice.
    public var treeHash: [UInt8]?

    /// The only hashing scheme format 2 defines.
    public static let hashing = "rk64+sha256"
    /// Default slice size: 256 KiB (see docs/FORMAT.md for the measurements behind it).
    public static let defaultSliceSize = 256 * 1024
    /// Default block size: 2 KiB.
    public static let defaultBlockSize = 2 * 1024

    /// Most blocks in one sketch entry.
    public static let maxBlocksPerSketchEntry = 64

    /// The sketch unit writers choose: two blocks, or one when a slice holds an odd number of blocks.
    ///
    /// Sixteen bits per two blocks keep the table at one byte per block (what the first request can
    /// afford) while a changed unit passes for an unchanged one only once in 65,536 tests.
    public static func defaultSketchUnit(sliceSize: Int, blockSize: Int) -> Int {
        (sliceSize / blockSize) % 2 == 0 ? 2 * blockSize : blockSize
    }

    /// Creates a header after checking that the sizes are within the format's bounds.
    public init(filename: String, length: Int, sliceSize: Int, blockSize: Int, sketchUnit: Int? = nil, sha256: [UInt8]?,
                treeHash: [UInt8]? = nil) throws(SignatureError) {
        _ = try SignatureHeader.validateFilename(Array(filename.utf8))
        try Self.validate(length: length, sliceSize: sliceSize, blockSize: blockSize, sketchUnit: sketchUnit)
        guard sha256?.count ?? 32 == 32 else {
            throw SignatureError(.invalidHash, "a SHA-256 has 32 bytes, not \(sha256?.count ?? 0)")
        }
        guard sha256 != nil || treeHash != nil else {
            throw SignatureError(.missingField, "the signature has neither SHA-256 nor Tree-SHA-256: nothing would "
                + "prove the rebuilt file")
        }
        guard treeHash?.count ?? 32 == 32 else {
            throw SignatureError(.invalidHash, "a tree hash has 32 bytes, not \(treeHash?.count ?? 0)")
        }
        self.treeHash = treeHash
        self.filename = filename
        self.length = length
        self.sliceSize = sliceSize
        self.blockSize = blockSize
        self.sketchUnit = sketchUnit
        self.sha256 = sha256
        self.headerLength = 0
        self.headerLength = serialized().count
    }

    /// Checks the numeric fields against each other and against the format's bounds.
    public static func validate(length: Int, sliceSize: Int, blockSize: Int,
        sketchUnit: Int? = nil) throws(SignatureError) {
        guard (0...SignatureLimits.maxLength).contains(length) else {
            throw SignatureError(.valueOutOfRange, "Length \(length) is outside 0...\(SignatureLimits.maxLength)")
        }
        guard (SignatureLimits.minBlockSize...SignatureLimits.maxBlockSize).contains(blockSize) else {
            throw SignatureError(.valueOutOfRange,
                "Block \(blockSize) is outside \(SignatureLimits.minBlockSize)...\(SignatureLimits.maxBlockSize)")
        }
        guard (blockSize...SignatureLimits.maxSliceSize).contains(sliceSize) else {
            throw SignatureError(.valueOutOfRange,
                "Slice \(sliceSize) is outside \(blockSize)...\(SignatureLimits.maxSliceSize)")
        }
        guard sliceSize % blockSize == 0 else {
            throw SignatureError(.valueOutOfRange, "Slice \(sliceSize) is not a multiple of Block \(blockSize)")
        }
        guard sliceSize / blockSize <= SignatureLimits.maxBlocksPerSlice else {
            throw SignatureError(.valueOutOfRange,
                "Slice \(sliceSize) holds more than \(SignatureLimits.maxBlocksPerSlice) blocks of \(blockSize) bytes")
        }
        let slices = length == 0 ? 0 : (length - 1) / sliceSize + 1
        guard slices <= SignatureLimits.maxSliceCount else {
            throw SignatureError(.valueOutOfRange,
                "\(slices) slices is more than the \(SignatureLimits.maxSliceCount) allowed; use a larger slice size")
        }
        if let sketchUnit {
            guard sketchUnit >= blockSize, sketchUnit % blockSize == 0, sliceSize % sketchUnit == 0,
                  sketchUnit / blockSize <= maxBlocksPerSketchEntry else {
                throw SignatureError(.valueOutOfRange,
                    "Sketch \(sketchUnit) must be a multiple of Block \(blockSize) (at most " +
                        "\(maxBlocksPerSketchEntry) blocks) that divides Slice \(sliceSize)")
            }
        }
    }

    /// Number of slices (coarse records).
    public var sliceCount: Int { length == 0 ? 0 : (length - 1) / sliceSize + 1 }
    /// Number of blocks (fine records) in the whole file.
    public var blockCount: Int { length == 0 ? 0 : (length - 1) / blockSize + 1 }
    /// Blocks in every slice but possibly the last.
    public var blocksPerSlice: Int { sliceSize / blockSize }
    /// Number of sketch entries (0 without a sketch table).
    public var sketchCount: Int { sketchUnit.map { length == 0 ? 0 : (length - 1) / $0 + 1 } ?? 0 }

    /// The serialized header, including the blank line that ends it.
    public func serialized() -> [UInt8] {
        Array("""
        Version: 2
        Filename: \(filename)
        Length: \(length)
        Slice: \(sliceSize)
        Block: \(blockSize)\(sketchUnit.map { "\nSketch: \($0)" } ?? "")
        Hashing: \(Self.hashing)\(sha256.map { "\nSHA-256: \(Encoding.hex($0))" } ?? "")\
        \(treeHash.map { "\nTree-SHA-256: \(Encoding.hex($0))" } ?? "")


        """.utf8)
    }

    /// Bytes of the header as it stands in the file (blank line included); the coarse table starts here.
    ///
    /// Equal to `serialized().count` for headers this build writes; larger for a header read with extra fields.
    public private(set) var headerLength: Int
    /// Where the coarse table starts in the file.
    public var coarseTableOffset: Int { headerLength }
    /// Bytes of the coarse table.
    public var coarseTableLength: Int { sliceCount * HashRecord.size }
    /// Where the sketch table starts in the file (right after the coarse table).
    public var sketchTableOffset: Int { coarseTableOffset + coarseTableLength }
    /// Bytes of the sketch table.
    public var sketchTableLength: Int { sketchCount * SketchTable.entrySize }
    /// Where the fine tables start in the file.
    public var fineTablesOffset: Int { sketchTableOffset + sketchTableLength }
    /// Total bytes of the signature file.
    public var totalLength: Int { fineTablesOffset + blockCount * HashRecord.size }

    /// The byte range of a piece of the file: slice `index` at coarse granularity.
    public func sliceRange(_ index: Int) -> Range<Int> {
        let start = index * sliceSize
        return start..<min(start + sliceSize, length)
    }

    /// Indices of the blocks that make up slice `index`.
    public func blockRange(ofSlice index: Int) -> Range<Int> {
        let first = index * blocksPerSlice
        return first..<min(first + blocksPerSlice, blockCount)
    }

    /// The byte range of sketch unit `index` in the file.
    public func sketchUnitRange(_ index: Int) -> Range<Int> {
        let unit = sketchUnit ?? blockSize
        return (index * unit)..<min((index + 1) * unit, length)
    }

    /// Indices of the sketch units that make up slice `index` (none without a sketch table).
    public func sketchUnits(ofSlice index: Int) -> Range<Int> {
        guard let unit = sketchUnit else { return 0..<0 }
        let slice = sliceRange(index)
        return (slice.lowerBound / unit)..<((slice.upperBound + unit - 1) / unit)
    }

    /// The byte range, within the signature file, of the fine table of slice `index`.
    public func fineTableRange(ofSlice index: Int) -> Range<Int> {
        let blocks = blockRange(ofSlice: index)
        return (fineTablesOffset + blocks.lowerBound * HashRecord.size)..<(fineTablesOffset + blocks.upperBound
            * HashRecord.size)
    }

    /// Parses the header from the first bytes of a signature; `bytes` may hold more than the header.
    public static func parse(_ bytes: UnsafeRawBufferPointer) throws(SignatureError) -> SignatureV2Header {
        guard try SignatureVersion.detect(bytes) == .v2 else {
            throw SignatureError(.unsupportedVersion, "expected a version 2 signature")
        }
        let fields = try SignatureHeader.parse(bytes, endsWithBlankLine: true, isHeaderKey: { _ in true })
        let filename = try SignatureHeader.validateFilename(try fields.required("Filename"))
        let length = try fields.number("Length", in: 0...SignatureLimits.maxLength)
        let sliceSize = try fields.number("Slice", in: 1...SignatureLimits.maxSliceSize)
        let blockSize = try fields.number("Block", in: 1...SignatureLimits.maxBlockSize)
        let sketchUnit = try fields.value("Sketch").map { (raw) throws(SignatureError) in
            try SignatureHeader.parseDecimal(raw, field: "Sketch", in: 1...SignatureLimits.maxSliceSize)
        }
        let hashing = try fields.text("Hashing")
        guard hashing == Self.hashing else {
            throw SignatureError(.unsupportedHashing,
                "hashing \"\(hashing)\" is not supported (expected \(Self.hashing))")
        }
        let sha256 = try fields.value("SHA-256").map { (hex) throws(SignatureError) -> [UInt8] in
            guard let bytes = Encoding.decodeHex(hex, length: 32) else {
                throw SignatureError(.invalidHash,
                    "the SHA-256 field must be exactly 64 lowercase hex digits (it has \(hex.count) characters)")
            }
            return bytes
        }
        let treeHash = try fields.value("Tree-SHA-256").map { (hex) throws(SignatureError) -> [UInt8] in
            guard let bytes = Encoding.decodeHex(hex, length: 32) else {
                throw SignatureError(.invalidHash,
                    "the Tree-SHA-256 field must be exactly 64 lowercase hex digits (it has \(hex.count) characters)")
            }
            return bytes
        }
        var header = try SignatureV2Header(filename: filename, length: length, sliceSize: sliceSize,
            blockSize: blockSize,
                                           sketchUnit: sketchUnit, sha256: sha256, treeHash: treeHash)
        // Tables start after the header as read, which may carry fields this build does not know.
        header.headerLength = fields.length
        return header
    }

    /// Parses the header from the first bytes of a signature held in an array.
    public static func parse(_ bytes: [UInt8]) throws(SignatureError) -> SignatureV2Header {
        try withRawBytes(bytes) { (raw) throws(SignatureError) in try parse(raw) }
    }

    /// Two headers are equal when their fields are; how they were read does not matter.
    public static func == (lhs: SignatureV2Header, rhs: SignatureV2Header) -> Bool {
        lhs.filename == rhs.filename && lhs.length == rhs.length && lhs.sliceSize == rhs.sliceSize
            && lhs.blockSize == rhs.blockSize && lhs.sketchUnit == rhs.sketchUnit && lhs.sha256 == rhs.sha256
            && lhs.treeHash == rhs.treeHash
    }
}

/// A complete format 2 signature: header, coarse table and all fine tables.
public struct SignatureV2: Sendable, Equatable {
    /// The header.
    public var header: SignatureV2Header
    /// One record per slice.
    public var coarse: [HashRecord]
    /// One record per block, slices in order.
    public var fine: [HashRecord]
    /// One entry per sketch unit when the header has a sketch unit, else empty.
    public var sketch: [UInt16]

    /// Creates a signature from its parts; the sketch, when nil, is derived from the fine records.
    public init(header: SignatureV2Header, coarse: [HashRecord], fine: [HashRecord], sketch: [UInt16]? = nil) {
        self.header = header
        self.coarse = coarse
        self.fine = fine
        self.sketch = sketch ?? SketchTable.entries(fine: fine, header: header)
    }

    /// The exact bytes of the signature file.
    public func serialized() -> [UInt8] {
        header.serialized() + HashRecord.encoded(coarse) + SketchTable.encoded(sketch) + HashRecord.encoded(fine)
    }

    /// Parses a whole format 2 signature, checking the table sizes against the header.
    public static func parse(_ bytes: [UInt8]) throws(SignatureError) -> SignatureV2 {
        try withRawBytes(bytes) { (raw) throws(SignatureError) in try parse(raw) }
    }

    /// Parses a whole format 2 signature from raw memory.
    public static func parse(_ bytes: UnsafeRawBufferPointer) throws(SignatureError) -> SignatureV2 {
        let header = try SignatureV2Header.parse(bytes)
        let coarse = try parseCoarseTable(bytes, header: header)
        let start = header.fineTablesOffset
        let expected = header.totalLength
        guard bytes.count >= expected else {
            throw SignatureError(.truncated,
                "the sketch and fine tables need \(expected - header.sketchTableOffset) bytes but only " +
                    "\(max(0, bytes.count - header.sketchTableOffset)) follow the coarse table")
        }
        guard bytes.count == expected else {
            throw SignatureError(.trailingData, "there are \(bytes.count - expected) bytes after the fine tables")
        }
        let sketch = SketchTable.parse(bytes, header: header)
        let fine = HashRecord.parseTable(UnsafeRawBufferPointer(rebasing: bytes[start..<expected]),
            count: header.blockCount)
        return SignatureV2(header: header, coarse: coarse, fine: fine, sketch: sketch)
    }

    /// Parses the coarse table that follows the header in `bytes` (which may end right after it).
    public static func parseCoarseTable(_ bytes: UnsafeRawBufferPointer,
        header: SignatureV2Header) throws(SignatureError) -> [HashRecord] {
        let start = header.headerLength
        let end = start + header.coarseTableLength
        guard bytes.count >= end else {
            throw SignatureError(.truncated,
                "the coarse table needs \(header.coarseTableLength) bytes but only \(max(0, bytes.count - start)) " +
                    "follow the header")
        }
        return HashRecord.parseTable(UnsafeRawBufferPointer(rebasing: bytes[start..<end]), count: header.sliceCount)
    }

    /// Parses the fine table of one slice, as fetched by itself (for example with a Range request).
    public static func parseFineTable(_ bytes: [UInt8], ofSlice index: Int,
        header: SignatureV2Header) throws(SignatureError) -> [HashRecord] {
        guard (0..<header.sliceCount).contains(index) else {
            throw SignatureError(.valueOutOfRange, "slice \(index) does not exist; the file has \(header.sliceCount)")
        }
        let count = header.blockRange(ofSlice: index).count
        guard bytes.count == count * HashRecord.size else {
            throw SignatureError(bytes.count < count * HashRecord.size ? .truncated : .trailingData,
                                 "the fine table of slice \(index) must be \(count * HashRecord.size) bytes, not " +
                                     "\(bytes.count)")
        }
        return bytes.withUnsafeBytes { HashRecord.parseTable($0, count: count) }
    }
}
