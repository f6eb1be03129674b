/// Where a signature is written: bytes at absolute offsets, in any order.
public protocol SignatureSink: AnyObject {
    /// Writes bytes at an absolute offset.
    func write(from buffer: UnsafeRawPointer, count: Int, at offset: Int) throws(FileSystemError)
}

extension SystemFile: SignatureSink {}

/// What a signature is computed from: bytes read at absolute offsets.
public protocol SignatureSource {
    /// A name for error messages.
    var path: String { get }
    /// Reads up to `count` bytes at `offset`; fewer only at the end of the data.
    func read(into buffer: UnsafeMutableRawPointer, count: Int, at offset: Int) throws(FileSystemError) -> Int
}

extension SystemFile: SignatureSource {}

/// Bytes in memory as a signature source, for tests and small inputs.
public struct MemorySource: SignatureSource {
    /// The bytes.
    public let bytes: [UInt8]
    /// A name for error messages.
    public let path: String

    /// Wraps bytes.
    public init(_ bytes: [UInt8], path: String = "<memory>") {
        self.bytes = bytes
        self.path = path
    }

    /// Copies bytes out of the array.
    public func read(into buffer: UnsafeMutableRawPointer, count: Int, at offset: Int) throws(FileSystemError) -> Int {
        let available = max(0, min(count, bytes.count - offset))
        if available > 0 {
            bytes.withUnsafeBytes { buffer.copyMemory(from: $0.baseAddress! + offset, byteCount: available) }
        }
        return available
    }
}

/// A signature sink in memory, for tests and for verifying a file against its signature.
public final class MemorySink: SignatureSink {
    /// The bytes written so far; gaps are zero.
    public private(set) var bytes: [UInt8] = []
    /// Bytes at or past this offset are dropped, to keep only a signature's header and coarse table.
    public let limit: Int

    /// Creates an empty sink that keeps bytes below `limit`.
    public init(limit: Int = .max) { self.limit = limit }

    /// Writes bytes at an absolute offset, growing the buffer as needed.
    public func write(from buffer: UnsafeRawPointer, count total: Int, at offset: Int) throws(FileSystemError) {
        let count = min(total, limit - offset)
        guard count > 0 else { return }
        if bytes.count < offset + count { bytes += [UInt8](repeating: 0, count: offset + count - bytes.count) }
        bytes.withUnsafeMutableBytes { $0.baseAddress!.advanced(by: offset).copyMemory(from: buffer, byteCount: count) }
    }
}

extension SignatureSink {
    func write(_ bytes: [UInt8], at offset: Int) throws(FileSystemError) {
        try withRawBytes(bytes) { (raw) throws(FileSystemError) in
            if let base = raw.baseAddress { try write(from: base, count: raw.count, at: offset) }
        }
    }
}

/// What signing one file produced.
public struct SigningOutcome: Sendable, Equatable {
    /// Bytes hashed: the file's length.
    public var length: Int
    /// Bytes of the signature written.
    public var signatureLength: Int
    /// The whole-file digest: SHA-1 for format 1, SHA-256 for format 2 (nil when the parameters leave
    /// it out: `SigningParameters.plainDigest`).
    public var fileDigest: [UInt8]?
    /// Format 2: the tree hash.
    public var treeHash: [UInt8]? = nil
    /// Format 2: the slice digests the tree hash is made of, 32 bytes each, in order (for the cache).
    public var sliceDigests: [UInt8]? = nil
}

/// Computes signatures, splitting one file's hashing across the pool's threads.
///
/// The calling thread reads the file once, in pieces, into a ring of buffers and feeds the whole-file
/// digest, which is inherently sequential; pool threads hash the blocks or slices of each piece at the
/// same time. Memory stays at `pieceSize × ring` whatever the file size.
public struct SignatureBuilder: Sendable {
    /// The format and sizes to write.
    public var parameters: SigningParameters
    /// The threads that hash pieces; nil hashes everything on the calling thread.
    public var pool: HashingPool?
    /// Target bytes per piece. 2 MiB (one huge page a buffer): the ring of four held 16 MiB at 4 MiB,
    /// half of shash's 34 MiB peak on the tarball (25 MiB now), at the same speed.
    public var targetPieceSize = 2 << 20
    /// When set, signing stops between pieces with a `cancelled` error.
    public var cancellation: CancellationFlag?

    /// Creates a builder.
    public init(parameters: SigningParameters, pool: HashingPool?) {
        self.parameters = parameters
        self.pool = pool
    }

    /// Signs `length` bytes of `source`, writing the signature to `sink` at offset 0 onwards.
    ///
    /// Throws `changedWhileReading` when the file turns out shorter or longer than `length`.
    /// With `zsync`, the same read pass also makes a zsync control file's records and SHA-1.
    public func sign(
        source: some SignatureSource, length: Int, filename: String, into sink: some SignatureSink,
        zsync: ZsyncMaker? = nil
    ) throws(FileSystemError) -> SigningOutcome {
        do {
            _ = try SignatureHeader.validateFilename(Array(filename.utf8))
            try parameters.validate(length: length)
        } catch {
            throw FileSystemError(.io, path: source.path, message: "cannot sign \(source.path): \(error.message)")
        }
        var layout = Layout(parameters: parameters, length: length, filename: filename,
                            targetPieceSize: targetPieceSize)
        // Pool threads make the zsync records of pieces of whole blocks; otherwise the driver does.
        if let zsync, layout.parallelPieces, layout.pieceSize % zsync.blockSize == 0 { layout.zsync = zsync.geometry }
        let ringSize = pool.map { $0.threadCount + 2 } ?? 1
        let buffers = BufferRing(count: min(ringSize, max(1, layout.pieceCount)), size: layout.pieceSize)
        let state = PipelineState(layout: layout, ringCount: buffers.count)
        let flags = CompletionFlags(count: buffers.count)
        // The whole-file digests are the sequential part of signing: format 1's SHA-1, format 2's plain
        // SHA-256 (left out by default), a zsync control file's SHA-1. They run together, in order, on a
        // lane of their own, so that the driver only reads (256 MiB with --zsync: 0.50 s → 0.24 s).
        let whole = WholeFileDigests(sha1: parameters.version == .v1 || zsync != nil,
                                     sha256: parameters.version == .v2 && parameters.plainDigest)
        let lane = layout.parallelPieces ? pool.map { SerialLane(pool: $0) } : nil

        try layout.writeHeaderPlaceholder(to: sink)
        var pending: [Int?] = Array(repeating: nil, count: buffers.count)
        // On any early exit, let in-flight jobs finish before their buffers go away.
        defer {
            for slot in pending.indices where pending[slot] != nil { flags.wait(slot) }
        }
        for piece in 0..<layout.pieceCount {
            let slot = piece % buffers.count
            if let earlier = pending[slot] {
                flags.wait(slot)
                pending[slot] = nil
                try state.drain(piece: earlier, buffer: buffers[slot], to: sink)
                zsync?.append(records: state.results[slot].zsyncRecords)
            }
            if let cancellation, cancellation.isCancelled {
                throw FileSystemError(.cancelled, path: source.path, message: "signing \(source.path) was stopped")
            }
            let range = layout.pieceRange(piece)
            let got = try source.read(into: buffers[slot], count: range.count, at: range.lowerBound)
            guard got == range.count else { throw changed(source) }
            pending[slot] = piece
            let job = PieceJob(layout: layout, piece: piece, buffers: buffers, slot: slot, results: state.results[slot])
            if let pool, layout.parallelPieces {
                flags.add(slot)
                pool.submit { [flags] in
                    job.run()
                    flags.markDone(slot)
                }
            } else {
                job.run()
            }
            if let whole, let lane {
                flags.add(slot)
                lane.submit { [flags, buffers] in
                    whole.update(buffers[slot], count: range.count)
                    flags.markDone(slot)
                }
            } else {
                whole?.update(buffers[slot], count: range.count)
            }
            if let zsync, layout.zsync == nil { zsync.addRecords(buffers[slot], count: range.count) }
        }
        // Drain what is still in flight, oldest first, so records reach the aggregate in file order.
        let firstPending = max(0, layout.pieceCount - buffers.count)
        for piece in firstPending..<layout.pieceCount {
            let slot = piece % buffers.count
            flags.wait(slot)
            pending[slot] = nil
            try state.drain(piece: piece, buffer: buffers[slot], to: sink)
            zsync?.append(records: state.results[slot].zsyncRecords)
        }
        var probe: UInt8 = 0
        guard try source.read(into: &probe, count: 1, at: length) == 0 else { throw changed(source) }

        let digests = whole?.finalize()
        if let sha1 = digests?.sha1 { zsync?.adopt(sha1: sha1) }
        let digest = parameters.version == .v1 ? digests?.sha1 : digests?.sha256
        let (written, treeHash) = try state.finish(digest: digest, to: sink)
        return SigningOutcome(length: length, signatureLength: written, fileDigest: digest, treeHash: treeHash,
            sliceDigests: treeHash == nil ? nil : state.sliceDigests)
    }

    /// Signs a byte array in memory and parses the result; for tests and small inputs.
    public func signature(of bytes: [UInt8], filename: String) throws -> Signature {
        let sink = MemorySink()
        _ = try sign(source: MemorySource(bytes), length: bytes.count, filename: filename, into: sink)
        return try Signature.parse(sink.bytes)
    }

    private func changed(_ source: some SignatureSource) -> FileSystemError {
        FileSystemError(.changedWhileReading, path: source.path,
            message: "\(source.path) changed size while it was being hashed")
    }
}

/// The fixed geometry of one signing run: piece boundaries, record offsets, header bytes.
struct Layout: Sendable {
    let parameters: SigningParameters
    let length: Int
    let filename: String
    /// Bytes per piece; a multiple of the unit hashed in parallel.
    let pieceSize: Int
    let pieceCount: Int
    /// Whether pool threads hash pieces (false for format 1 with slices larger than a piece).
    let parallelPieces: Bool
    let headerLength: Int
    /// Format 2: where the sketch table and the fine tables start (the header's length does not depend on its hash).
    let sketchTableOffset: Int
    let fineTablesOffset: Int
    /// Set when pool threads also make zsync records (pieces are whole zsync blocks).
    var zsync: ZsyncRecordGeometry?

    init(parameters: SigningParameters, length: Int, filename: String, targetPieceSize: Int) {
        self.parameters = parameters
        self.length = length
        self.filename = filename
        switch parameters.version {
        case .v1:
            if parameters.sliceSize <= targetPieceSize {
                pieceSize = parameters.sliceSize * max(1, targetPieceSize / parameters.sliceSize)
                parallelPieces = true
            } else {
                pieceSize = targetPieceSize
                parallelPieces = false
            }
            headerLength = SignatureV1.header(filename: filename, sliceSize: parameters.sliceSize, length: length).count
            sketchTableOffset = 0
            fineTablesOffset = 0
        case .v2:
            // Whole sketch units per piece, so that each piece's sketch entries are its own.
            let unit = parameters.sketchUnit ?? parameters.blockSize
            pieceSize = unit * max(1, targetPieceSize / unit)
            parallelPieces = true
            let header = Self.v2Header(parameters: parameters, length: length, filename: filename,
                sha256: parameters.plainDigest ? Self.placeholderHash : nil, treeHash: Self.placeholderHash)
            headerLength = header.headerLength
            sketchTableOffset = header.sketchTableOffset
            fineTablesOffset = header.fineTablesOffset
        }
        pieceCount = length == 0 ? 0 : (length - 1) / pieceSize + 1
    }

    func pieceRange(_ piece: Int) -> Range<Int> {
        let start = piece * pieceSize
        return start..<min(start + pieceSize, length)
    }

    func v2Header(sha256: [UInt8]?, treeHash: [UInt8]) -> SignatureV2Header {
        Self.v2Header(parameters: parameters, length: length, filename: filename, sha256: sha256, treeHash: treeHash)
    }

    private static func v2Header(parameters: SigningParameters, length: Int, filename: String, sha256: [UInt8]?,
                                 treeHash: [UInt8]) -> SignatureV2Header {
        // The builder validates the parameters against the length and the caller the name before a Layout exists.
        try! SignatureV2Header(filename: filename, length: length, sliceSize: parameters.sliceSize,
                               blockSize: parameters.blockSize, sketchUnit: parameters.sketchUnit, sha256: sha256,
                               treeHash: treeHash)
    }

    func writeHeaderPlaceholder(to sink: some SignatureSink) throws(FileSystemError) {
        if parameters.version == .v1 {
            try sink.write(SignatureV1.header(filename: filename, sliceSize: parameters.sliceSize, length: length),
                at: 0)
        }
    }

    var sliceCount: Int { length == 0 ? 0 : (length - 1) / parameters.sliceSize + 1 }
    private static let placeholderHash = [UInt8](repeating: 0, count: 32)
}

/// Per-piece hashing results, filled by a pool thread and read by the driver.
final class PieceResults: @unchecked Sendable {
    /// Format 2: full RK64 per block.
    var rolling: [UInt64] = []
    /// Format 2: full SHA-256 per block, 32 bytes each.
    var digests: [UInt8] = []
    /// Encoded records of the piece: 12-byte fine records (format 2) or 29-byte lines (format 1).
    var records: [UInt8] = []
    /// The zsync block records of the piece, when pool threads make them.
    var zsyncRecords: [UInt8] = []
}

/// Hashes the units of one piece: blocks for format 2, slices for format 1.
struct PieceJob: @unchecked Sendable {
    let layout: Layout
    let piece: Int
    /// Held so the memory outlives the job even if the builder gives up early.
    let buffers: BufferRing
    let slot: Int
    let results: PieceResults

    private var buffer: UnsafeMutableRawPointer { buffers[slot] }

    func run() {
        let range = layout.pieceRange(piece)
        switch layout.parameters.version {
        case .v2: hashBlocks(count: range.count)
        case .v1: if layout.parallelPieces { hashSlices(count: range.count) }
        }
        if let zsync = layout.zsync { results.zsyncRecords = zsync.records(of: buffer, count: range.count) }
    }

    private func hashBlocks(count: Int) {
        let blockSize = layout.parameters.blockSize
        let blocks = (count + blockSize - 1) / blockSize
        results.rolling = Array(repeating: 0, count: blocks)
        if results.digests.count != blocks * 32 { results.digests = Array(repeating: 0, count: blocks * 32) }
        if results.records.count != blocks * HashRecord.size {
            results.records = Array(repeating: 0, count: blocks * HashRecord.size)
        }
        results.rolling.withUnsafeMutableBufferPointer { rolling in
            results.digests.withUnsafeMutableBufferPointer { digests in
                results.records.withUnsafeMutableBytes { records in
                    TreeHash.blockDigests(buffer, length: count, blockSize: blockSize, into: digests.baseAddress!)
                    for index in 0..<blocks {
                        let start = index * blockSize
                        let rk = RollingHash.hash(buffer + start, count: min(blockSize, count - start))
                        let digest = digests.baseAddress! + index * 32
                        rolling[index] = rk
                        HashRecord(weak: RollingHash.weak(rk), strong: HashRecord.truncate(digest))
                            .store(to: records.baseAddress! + index * HashRecord.size)
                    }
                }
            }
        }
    }

    private func hashSlices(count: Int) {
        let sliceSize = layout.parameters.sliceSize
        let slices = (count + sliceSize - 1) / sliceSize
        var lines: [UInt8] = []
        lines.reserveCapacity(slices * SignatureV1.lineLength)
        for index in 0..<slices {
            let start = index * sliceSize
            lines += V1SliceHash(of: buffer + start, count: min(sliceSize, count - start)).line
            lines.append(UInt8(ascii: "\n"))
        }
        results.records = lines
    }
}

/// The driver's in-order aggregation: slice records of format 2, sequential slices of format 1.
final class PipelineState {
    let layout: Layout
    let results: [PieceResults]
    private var coarse: [UInt8] = []
    private var sliceDigest = StreamingDigest(.sha256)
    /// Format 2: the slice digests, in order, for the tree hash.
    private var treeDigest = StreamingDigest(.sha256)
    /// Format 2: the same digests kept (32 bytes per slice: 512 KiB for 4 GiB), for the cache.
    private(set) var sliceDigests: [UInt8] = []
    private var sliceRolling: UInt64 = 0
    private var blocksInSlice = 0
    private var slicesDone = 0
    private let blockFactor: UInt64
    // Format 1 with slices larger than a piece: running slice state.
    private var v1Adler = Adler32.initial
    private var v1MD5: StreamingDigest?
    private var v1SliceFill = 0

    init(layout: Layout, ringCount: Int) {
        self.layout = layout
        results = (0..<ringCount).map { _ in PieceResults() }
        blockFactor = layout.parameters.version == .v2 ? RollingHash.power(layout.parameters.blockSize) : 0
        if layout.parameters.version == .v1 && !layout.parallelPieces { v1MD5 = StreamingDigest(.md5) }
    }

    func drain(piece: Int, buffer: UnsafeMutableRawPointer, to sink: some SignatureSink) throws(FileSystemError) {
        let range = layout.pieceRange(piece)
        let result = results[piece % results.count]
        switch layout.parameters.version {
        case .v2:
            let blockSize = layout.parameters.blockSize
            let firstBlock = range.lowerBound / blockSize
            try sink.write(result.records, at: layout.fineTablesOffset + firstBlock * HashRecord.size)
            if let unit = layout.parameters.sketchUnit {
                let records = result.records.withUnsafeBytes {
                    HashRecord.parseTable($0, count: result.records.count / HashRecord.size)
                }
                try sink.write(SketchTable.encoded(SketchTable.entries(fine: records,
                    blocksPerEntry: unit / blockSize)),
                               at: layout.sketchTableOffset + range.lowerBound / unit * SketchTable.entrySize)
            }
            let blocksPerSlice = layout.parameters.sliceSize / blockSize
            result.digests.withUnsafeBytes { digests in
                for index in 0..<result.rolling.count {
                    let size = min(blockSize, range.count - index * blockSize)
                    let factor = size == blockSize ? blockFactor : RollingHash.power(size)
                    sliceRolling = sliceRolling &* factor &+ result.rolling[index]
                    sliceDigest.update(digests.baseAddress! + index * 32, count: 32)
                    blocksInSlice += 1
                    if blocksInSlice == blocksPerSlice { closeSlice() }
                }
            }
            if range.upperBound == layout.length && blocksInSlice > 0 { closeSlice() }
            if !coarse.isEmpty && (coarse.count >= 64 * 1024 || range.upperBound == layout.length) {
                try sink.write(coarse,
                    at: layout.headerLength + (slicesDone - coarse.count / HashRecord.size) * HashRecord.size)
                coarse.removeAll(keepingCapacity: true)
            }
        case .v1:
            if layout.parallelPieces {
                let firstSlice = range.lowerBound / layout.parameters.sliceSize
                try sink.write(result.records, at: layout.headerLength + firstSlice * SignatureV1.lineLength)
            } else {
                try drainSequentialV1(range: range, buffer: buffer, to: sink)
            }
        }
    }

    private func closeSlice() {
        let digest = sliceDigest.finalize()
        treeDigest.update(digest)
        sliceDigests += digest
        let record = digest.withUnsafeBufferPointer {
            HashRecord(weak: RollingHash.weak(sliceRolling), strong: HashRecord.truncate($0.baseAddress!))
        }
        coarse += HashRecord.encoded([record])
        sliceRolling = 0
        blocksInSlice = 0
        slicesDone += 1
    }

    private func drainSequentialV1(range: Range<Int>, buffer: UnsafeMutableRawPointer,
        to sink: some SignatureSink) throws(FileSystemError) {
        let sliceSize = layout.parameters.sliceSize
        var position = 0
        while position < range.count {
            let take = min(sliceSize - v1SliceFill, range.count - position)
            v1Adler = Adler32.update(v1Adler, buffer + position, count: take)
            v1MD5!.update(buffer + position, count: take)
            v1SliceFill += take
            position += take
            if v1SliceFill == sliceSize || range.lowerBound + position == layout.length {
                var line = V1SliceHash(adler32: v1Adler, md5: v1MD5!.finalize()).line
                line.append(UInt8(ascii: "\n"))
                try sink.write(line, at: layout.headerLength + slicesDone * SignatureV1.lineLength)
                slicesDone += 1
                v1Adler = Adler32.initial
                v1SliceFill = 0
            }
        }
    }

    /// Writes what depends on the whole file (the v2 header, the v1 sha1 line); returns the total size
    /// and, for format 2, the tree hash.
    func finish(digest: [UInt8]?, to sink: some SignatureSink)
        throws(FileSystemError) -> (length: Int, treeHash: [UInt8]?) {
        switch layout.parameters.version {
        case .v1:
            let offset = layout.headerLength + layout.sliceCount * SignatureV1.lineLength
            // Format 1 always computes its SHA-1 (see `sign`).
            let trailer = SignatureV1.trailer(sha1: digest ?? [])
            try sink.write(trailer, at: offset)
            return (offset + trailer.count, nil)
        case .v2:
            let treeHash = treeDigest.finalize()
            let header = layout.v2Header(sha256: digest, treeHash: treeHash)
            try sink.write(header.serialized(), at: 0)
            return (header.totalLength, treeHash)
        }
    }
}
